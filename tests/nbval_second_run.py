"""A pytest plugin for the strict nbval stage: after a notebook's cells, run them all again in the same kernel.

nbval checks that a fresh kernel reproduces the stored outputs. A learner's next step is Run All again in
that kernel: re-serving by name must replace servers instead of piling them up, and, with a fixed port=,
instead of failing with "address already in use". This plugin adds that second run to nbval's own kernel,
so a notebook is executed twice here and not twice more in a separate test:

- after the last cell of each notebook comes one more item per code cell, `Cell N (second run)`, which runs
  the cell again in the same kernel. Its outputs are not compared (a second run may differ, e.g. in what a
  server has already seen), but an error fails it, unless the cell is tagged raises-exception;
- every cell, in either run, must finish within CELL_LIMIT_SECONDS (the ini option `nbval_cell_limit`
  overrides it): lessons stay quick to run.

Load it with `-p tests.nbval_second_run` next to `--nbval` (tools/test_stages.py, `make notebooks-test`, does). With
pytest-xdist, use `--dist loadfile`: a notebook's items share one kernel, so they must stay on one worker.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Generator
from typing import Any

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

CELL_LIMIT_SECONDS = 5.0
SECOND_RUN = " (second run)"


class SecondRunCell(IPyNbCell):  # type: ignore[misc]
    """A code cell run again in its notebook's kernel after the whole notebook ran once."""


def second_run(first_run: list[IPyNbCell]) -> list[SecondRunCell]:
    """One second-run item per first-run cell of a notebook, in the same order and under the same notebook."""
    items = []
    for cell in first_run:
        options = defaultdict(bool, cell.options)
        options["check"] = False  # only errors count in the second run
        items.append(
            SecondRunCell.from_parent(
                cell.parent, name=cell.name + SECOND_RUN, cell_num=cell.cell_num, cell=cell.cell, options=options
            )
        )
    return items


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "nbval_cell_limit", "seconds a notebook cell may take, in either run", default=str(CELL_LIMIT_SECONDS)
    )


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Put each notebook's second-run items straight after its last cell, so its kernel is still running."""
    arranged: list[Any] = []
    current: IPyNbFile | None = None
    first_run: list[IPyNbCell] = []
    for item in [*items, None]:
        notebook = item.parent if isinstance(item, IPyNbCell) else None
        if notebook is not current and first_run:
            arranged.extend(second_run(first_run))
            first_run = []
        current = notebook
        if item is None:
            break
        arranged.append(item)
        if notebook is not None and not isinstance(item, SecondRunCell):
            first_run.append(item)
    items[:] = arranged


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Generator[None, None, None]:
    """Fail a notebook cell that ran longer than CELL_LIMIT_SECONDS, after nbval's own checks passed."""
    started = time.monotonic()
    result = yield
    took = time.monotonic() - started
    limit = float(item.config.getini("nbval_cell_limit"))
    if isinstance(item, IPyNbCell) and took > limit:
        pytest.fail(
            f"{item.name} took {took:.1f} s; a cell must finish within {limit:g} s: "
            "shorten its waits or split it into smaller cells"
        )
    return result
