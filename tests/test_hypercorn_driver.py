"""Tests for helpers.hypercorn_driver: hypercorn is imported only by a process that starts a hypercorn server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.timeout(60)

# A fresh interpreter: this test process may have imported hypercorn already (other tests start hypercorn servers).
SERVE_AND_REPORT = """
import sys
from helpers.clients import attempt_sync
from helpers.demo_apps import echo
from helpers.servers import serve
with serve(echo, server={server!r}, name="import-check") as handle:
    assert attempt_sync(handle.ws_url("/"), send=["x"], receive=1).messages == ["x"]
print("hypercorn" in sys.modules)
"""


@pytest.mark.parametrize(("server", "imported"), [("uvicorn", "False"), ("hypercorn", "True")])
def test_only_a_hypercorn_server_imports_hypercorn(server: str, imported: str) -> None:
    """A uvicorn server in a thread leaves hypercorn unimported; a hypercorn server imports it."""
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_REPORT.format(server=server)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported


def test_a_uvicorn_process_server_child_does_not_import_hypercorn() -> None:
    """The child side of serve_process (helpers.process_entry) imports hypercorn only to run hypercorn."""
    code = "import sys, helpers.process_entry; print('hypercorn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
