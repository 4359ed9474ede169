"""The nbval second-run plugin: every notebook runs again in its kernel, errors and slow cells fail."""

from __future__ import annotations

import nbformat
import pytest

from tests import nbval_child
from tests.nbval_child import notebook

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.usefixtures("repo_on_pythonpath")


def run_nbval(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return nbval_child.run_nbval(pytester, "tests.nbval_second_run", *args)


def test_every_code_cell_runs_a_second_time_after_the_notebook(pytester: pytest.Pytester) -> None:
    """Each code cell gets a second-run item after the notebook's last cell, in the same order."""
    notebook(pytester.path / "a.ipynb", "x = 1", "x += 1")
    result = run_nbval(pytester, "--collect-only", "-q")
    assert result.outlines[:4] == [
        "a.ipynb::Cell 0",
        "a.ipynb::Cell 1",
        "a.ipynb::Cell 0 (second run)",
        "a.ipynb::Cell 1 (second run)",
    ]


def test_the_second_run_shares_the_first_runs_kernel(pytester: pytest.Pytester) -> None:
    """State from the first run is still there in the second: a counter reaches 2."""
    notebook(pytester.path / "a.ipynb", "n = globals().get('n', 0) + 1\nassert n <= 2, n", "assert n in (1, 2)")
    run_nbval(pytester).assert_outcomes(passed=4)


def test_a_cell_that_fails_only_when_run_again_fails_its_second_run(pytester: pytest.Pytester) -> None:
    """A cell that works once but not twice in one kernel passes the first run and fails the second."""
    notebook(pytester.path / "a.ipynb", "assert 'seen' not in globals()\nseen = True", "pass")
    result = run_nbval(pytester)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED a.ipynb::Cell 0 (second run)*"])


def test_a_cell_tagged_raises_exception_may_raise_in_the_second_run(pytester: pytest.Pytester) -> None:
    """raises-exception still means an error is expected, in both runs."""
    path = notebook(pytester.path / "a.ipynb", "raise ValueError('shown on purpose')", tags={0: ["raises-exception"]})
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="shown on purpose", traceback=[])]
    nbformat.write(nb, path)
    run_nbval(pytester).assert_outcomes(passed=2)


def test_a_slow_cell_fails_with_a_message_that_says_what_to_do(pytester: pytest.Pytester) -> None:
    """A cell over the time limit fails in each run, and the message names the limit and the fix."""
    notebook(pytester.path / "a.ipynb", "import time; time.sleep(0.6)", "pass")
    result = run_nbval(pytester, "-o", "nbval_cell_limit=0.4")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*Cell 0 took * s; a cell must finish within 0.4 s: shorten its waits*"])
