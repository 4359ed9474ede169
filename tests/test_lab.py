"""`make lab` (tools/lab.py) serves JupyterLab on 127.0.0.1 with the first notebook available."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT, load_script

TOKEN = "websocket-lab-test-token"


def get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


@pytest.mark.timeout(120)
def test_lab_serves_jupyterlab_on_loopback_with_the_first_notebook(tmp_path: Path) -> None:
    """tools/lab.py starts JupyterLab on 127.0.0.1: /api/status answers and 00_start_here.ipynb is served."""
    lab = load_script("tools/lab.py", "lab_tool")
    port = lab.free_port()
    env = dict(os.environ, JUPYTER_TOKEN=TOKEN)
    # Throwaway Jupyter folders: the test must not touch the developer's .jupyter-local.
    for name in lab.ENVIRONMENT:
        env[name] = str(tmp_path / name.lower())
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "lab.py"), "--no-browser", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = get(f"http://127.0.0.1:{port}/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert status is not None and status[0] == 200, status
        assert "started" in json.loads(status[1])
        code, body = get(f"http://127.0.0.1:{port}/api/contents/00_start_here.ipynb?content=0")
        assert code == 200 and json.loads(body)["name"] == "00_start_here.ipynb"
        assert get(f"http://127.0.0.1:{port}/lab")[0] == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
