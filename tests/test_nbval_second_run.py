"""The nbval second-run plugin: every notebook runs again in its kernel, errors and slow cells fail."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.support import ROOT, require_binary

pytest_plugins = ("pytester",)


def notebook(path: Path, *sources: str, tags: dict[int, list[str]] | None = None) -> Path:
    """Write a notebook whose code cells are `sources`, executed-looking, with no stored outputs."""
    nb = nbformat.v4.new_notebook()
    for index, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source, execution_count=index + 1)
        cell.metadata["tags"] = (tags or {}).get(index, [])
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(autouse=True)
def importable_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytester run starts in a temporary folder: let it import tests.nbval_second_run from the repository."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_nbval(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """nbval with the plugin over the notebooks in pytester's folder, and no other plugin (hypothesis, xdist, anyio
    and the rest cost about 2 s of start-up per run)."""
    return pytester.runpytest_subprocess(
        "--disable-plugin-autoload",
        "-p", "nbval.plugin",
        "-p", "tests.nbval_second_run",
        "--nbval", "--nbval-current-env", "-o", "filterwarnings=default",
        *args,
    )  # fmt: skip


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


def test_the_kernel_is_shut_down_so_its_atexit_handlers_run(pytester: pytest.Pytester) -> None:
    """After the notebook, its kernel exits through a shutdown request: a file an atexit handler writes is there."""
    marker = pytester.path / "exited.txt"
    notebook(
        pytester.path / "a.ipynb",
        f"import atexit, pathlib\n_ = atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran')",
    )
    run_nbval(pytester).assert_outcomes(passed=2)
    assert marker.read_text() == "ran"


def test_a_kernel_with_a_redis_server_child_exits_cleanly(pytester: pytest.Pytester) -> None:
    """ipykernel's shutdown ends the kernel's redis-server and the kernel still exits itself: the folder is removed."""
    require_binary("redis-server", "apt-get install redis-server")
    record = pytester.path / "folder.txt"
    notebook(
        pytester.path / "a.ipynb",
        "import atexit, pathlib\nfrom helpers.redis_server import start_redis\n"
        "server = start_redis()\n_ = atexit.register(server.stop)\n"
        f"_ = pathlib.Path({str(record)!r}).write_text(str(server.folder))",
    )
    run_nbval(pytester).assert_outcomes(passed=2)
    folder = Path(record.read_text())
    assert folder.name.startswith("wslab-redis-") and not folder.exists(), f"{folder} was left behind"
