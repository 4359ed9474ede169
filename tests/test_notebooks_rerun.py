"""Every notebook runs twice in one kernel without errors, and no cell takes more than 5 s.

nbval checks that a fresh kernel reproduces the stored outputs; this test checks what a learner does
next: run all cells again in the same kernel (re-serving by name must replace servers instead of piling them
up, and, with a fixed port=, instead of failing with "address already in use"), and that each cell stays quick.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CELL_LIMIT_SECONDS = 5.0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_twice_in_one_kernel_with_quick_cells(path: Path) -> None:
    """All cells run twice in the same kernel; only cells tagged raises-exception may raise; each is under 5 s."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=30, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    slow: list[str] = []
    with client.setup_kernel():
        for run in (1, 2):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                started = time.monotonic()
                client.execute_cell(cell, index)  # raises CellExecutionError on an unexpected error
                took = time.monotonic() - started
                if took > CELL_LIMIT_SECONDS:
                    slow.append(f"run {run}, cell {index} ({cell.get('id')}): {took:.1f} s")
    assert not slow, "cells slower than 5 s:\n" + "\n".join(slow)
