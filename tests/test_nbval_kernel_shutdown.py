"""The nbval kernel-shutdown plugin: a notebook's kernel exits through a shutdown request, so its atexit runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import nbval_child
from tests.nbval_child import notebook
from tests.support import require_binary

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.usefixtures("repo_on_pythonpath")


def run_nbval(pytester: pytest.Pytester) -> pytest.RunResult:
    return nbval_child.run_nbval(pytester, "tests.nbval_kernel_shutdown")


def test_the_kernel_is_shut_down_so_its_atexit_handlers_run(pytester: pytest.Pytester) -> None:
    """After the notebook, its kernel exits through a shutdown request: a file an atexit handler writes is there."""
    marker = pytester.path / "exited.txt"
    notebook(
        pytester.path / "a.ipynb",
        f"import atexit, pathlib\n_ = atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran')",
    )
    run_nbval(pytester).assert_outcomes(passed=1)
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
    run_nbval(pytester).assert_outcomes(passed=1)
    folder = Path(record.read_text())
    assert folder.name.startswith("wslab-redis-") and not folder.exists(), f"{folder} was left behind"
