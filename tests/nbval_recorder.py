"""A pytest plugin for `make upgrade-check`: record what strict nbval found in each notebook cell, as JSON lines.

nbval reports a changed output as a pass/fail with a diff meant for a terminal. The upgrade radar needs it as
data: which notebook, which cell, what the stored output was and what the run produced (both sanitized with
the same patterns nbval compared), and the error a cell raised now. With `-p tests.nbval_recorder`, every
nbval cell item appends one line to a file in the folder named by the RECORD_ENV environment variable (one
file per pytest-xdist worker, so no two processes write to one file):

    {"notebook": "07_fastapi_broadcasting.ipynb", "cell": 44, "code_cell": 19, "outcome": "failed",
     "first_line": "...", "stored": "...", "now": "...", "error": "AssertionError: ..." or null}

A cell that passed is recorded with outcome "passed" and no outputs, so the report can count what was checked.
Without RECORD_ENV set, the plugin records nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from nbval.plugin import IPyNbCell

RECORD_ENV = "NBVAL_RECORD"


def output_text(outputs: list[Any]) -> str:
    """The outputs nbval compares, as one text: streams, text/plain or markdown of results, and errors."""
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(str(output.get("text", "")))
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}\n")
        else:
            data = output.get("data", {})
            text = data.get("text/markdown") or data.get("text/plain") or ""
            parts.append(str(text) + "\n")
    return "".join(parts)


def raised(outputs: list[Any]) -> str | None:
    """'Type: message' of the first error among `outputs`, or None."""
    for output in outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def record_of(item: IPyNbCell, outcome: str) -> dict[str, Any]:
    """What the radar keeps of one nbval cell item: the stored and new outputs, sanitized, when it failed."""
    source = str(item.cell.source)
    record: dict[str, Any] = {
        "notebook": Path(str(item.fspath)).name,
        # nbval numbers code cells only ("Cell 19"); the report names the cell's place among all cells, as
        # nbformat and the lessons' own tools count (0-based), which also counts markdown cells.
        "cell": next(i for i, cell in enumerate(item.parent.nb.cells) if cell is item.cell),
        "code_cell": item.cell_num,
        "outcome": outcome,
        "first_line": source.strip().splitlines()[0] if source.strip() else "",
    }
    if outcome == "failed":
        now = item.test_outputs or []
        record["stored"] = item.sanitize(output_text(item.sanitize_outputs(item.cell.outputs)))
        record["now"] = item.sanitize(output_text(item.sanitize_outputs(now)))
        record["error"] = raised(now)
    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    folder = os.environ.get(RECORD_ENV)
    if not folder or call.when != "call" or not isinstance(item, IPyNbCell):
        return
    report = outcome.get_result()
    line = json.dumps(record_of(item, "failed" if report.failed else "passed"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(Path(folder) / f"cells-{worker}.jsonl", "a", encoding="utf-8") as sink:
        sink.write(line + "\n")
