"""The browser tests' JupyterLab launcher: a port taken between choosing and binding costs a retry, not the run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.servers import free_port
from tests.browser import conftest as lab_fixtures

pytestmark = pytest.mark.timeout(120)


def test_a_port_taken_before_jupyterlab_binds_it_is_replaced_by_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the first chosen port is already taken, the launcher starts JupyterLab again on another port."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    ports: Iterator[int] = iter([taken_port])
    monkeypatch.setattr(lab_fixtures, "free_port", lambda: next(ports, None) or free_port())
    root = tmp_path / "notebooks"
    root.mkdir()
    env = {**lab_fixtures.os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    log = tmp_path / "lab.log"
    try:
        process, url = lab_fixtures._launch_lab(root, env, log)
    finally:
        taken.close()
    try:
        assert not url.endswith(f":{taken_port}")
        assert process.poll() is None
    finally:
        lab_fixtures._stop(process)
