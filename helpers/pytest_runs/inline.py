"""ipytest set up for a lesson: tests defined in a `%%ipytest` cell run in the kernel, each run recorded.

Two places a test can run, and each has its trap (lesson 14 shows both):

- `in_thread=False`, the kernel's own thread. A running event loop is there (the kernel's), so
  pytest-asyncio's `Runner.run()` refuses every async test; sync tests (Starlette's TestClient) are fine,
  and pytest-timeout's SIGALRM method works, which TestClient needs: its `receive()` has no timeout.
- `in_thread=True`, a fresh thread with no loop: async tests run. pytest-timeout must be off there: off the
  main thread it switches to its "thread" method, which on expiry ends the whole process with `os._exit(1)`
  (pytest_timeout.py, `pytest_timeout_set_timer` and `timeout_timer`), taking the kernel with it. So this mode
  does not load it; give each await its own timeout instead.

Both read no configuration file (`-c` the null device), so the project's own pytest settings stay out of
the lesson's runs; both load only the plugins the lesson uses (pytest-asyncio, pytest-timeout on the kernel's
thread, `helpers.pytest_runs.record`, so that `record.last_run()` holds what ran), not every plugin installed,
which also saves seconds per run.
"""

from __future__ import annotations

import contextlib
import os

import ipytest

from helpers.pytest_runs.record import Run, last_run

__all__ = ["INLINE_OPTIONS", "run_file", "use_ipytest"]

INLINE_OPTIONS = (
    "-c",
    os.devnull,
    "-qq",
    "--color=no",
    "--tb=short",
    "-p",
    "no:cacheprovider",
    "--disable-plugin-autoload",
    "-p",
    "pytest_asyncio.plugin",
    "-p",
    "helpers.pytest_runs.record",
    "--clean-paths",
    # The same terminal width and no CI mode on every machine, so the stored output matches in CI too.
    "-p",
    "helpers.pytest_runs.terminal",
    # pytest-asyncio warns when this is unset; "function" gives each async fixture the loop of its test.
    "-o",
    "asyncio_default_fixture_loop_scope=function",
    # In a kernel the plugins are imported before pytest starts, so it cannot rewrite their asserts, and says so.
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)


def use_ipytest(*, in_thread: bool) -> str:
    """Configure ipytest (and its `%%ipytest` magic) for the following cells; returns where tests will run."""
    if not isinstance(in_thread, bool):
        raise TypeError(f"in_thread must be True or False, not {in_thread!r}")
    options = INLINE_OPTIONS if in_thread else (*INLINE_OPTIONS, "-p", "pytest_timeout")
    # autoconfig, not config: ipytest 0.14.2's config() resets `coverage` to a truthy sentinel, adding --cov.
    ipytest.autoconfig(run_in_thread=in_thread, addopts=list(options), raise_on_error=False)
    return "a thread of their own (no event loop, no pytest-timeout)" if in_thread else "the kernel's thread"


def run_file(path: str | os.PathLike[str], *args: str, rootdir: str | os.PathLike[str] | None = None) -> Run:
    """Run the tests of one file in this kernel (not the notebook's own); returns the recorded run.

    `rootdir` (default: the file's folder) is where pytest looks for conftest.py files above the test file,
    and what node ids are relative to; pass the project's folder for a file in its tests/ folder."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no test file at {path}: write it first (for example with %%writefile)")
    target = os.path.abspath(path)
    root = os.path.abspath(rootdir) if rootdir is not None else os.path.dirname(target)
    # pytest names tests relative to the folder it runs in: run it in `root`, so ids read tests/test_x.py::...
    with contextlib.chdir(root):
        ipytest.run(*args, f"--rootdir={root}", target, defopts=False)
    return last_run()
