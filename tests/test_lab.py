"""`make lab` (tools/lab.py) serves JupyterLab on 127.0.0.1 with the first notebook available."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def running_lab(tmp_path: Path, token: str | None) -> Iterator[tuple[int, str]]:
    """tools/lab.py --no-browser on a free port with throwaway Jupyter folders; yields the port and its first line."""
    lab = load_script("tools/lab.py", "lab_tool")
    port = lab.free_port()
    env = {key: value for key, value in os.environ.items() if key != "JUPYTER_TOKEN"}
    if token is not None:
        env["JUPYTER_TOKEN"] = token
    # Throwaway Jupyter folders: the test must not touch the developer's .jupyter-local.
    for name in lab.ENVIRONMENT:
        env[name] = str(tmp_path / name.lower())
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "lab.py"), "--no-browser", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                get(f"http://127.0.0.1:{port}/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        assert process.poll() is None, "JupyterLab exited"
        yield port, first_line
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.timeout(120)
def test_lab_serves_jupyterlab_on_loopback_with_the_first_notebook(tmp_path: Path) -> None:
    """tools/lab.py starts JupyterLab on 127.0.0.1: /api/status answers and 00_start_here.ipynb is served."""
    with running_lab(tmp_path, TOKEN) as (port, _):
        status = get(f"http://127.0.0.1:{port}/api/status")
        assert status[0] == 200, status
        assert "started" in json.loads(status[1])
        code, body = get(f"http://127.0.0.1:{port}/api/contents/00_start_here.ipynb?content=0")
        assert code == 200 and json.loads(body)["name"] == "00_start_here.ipynb"
        assert get(f"http://127.0.0.1:{port}/lab")[0] == 200


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.timeout(120)
def test_the_printed_url_carries_the_token_and_opens_the_first_notebook(tmp_path: Path) -> None:
    """The address make lab prints opens the first notebook when clicked; without its token it lands on login."""
    with running_lab(tmp_path, None) as (port, first_line):
        url = first_line.split("JupyterLab on ", 1)[1].split()[0]
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/00_start_here.ipynb?token=")
        assert len(url.split("token=", 1)[1]) >= 32  # a fresh random token, not an empty one
        opener = urllib.request.build_opener(NoRedirect)
        with opener.open(url, timeout=5) as response:  # a browser sends no Authorization header: only the URL
            assert response.status == 200
            assert b"jupyter-config-data" in response.read()
        tokenless = url.split("?", 1)[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(tokenless, timeout=5)
        refused.value.close()
        assert refused.value.code == 302 and "/login" in refused.value.headers["Location"]


def test_default_settings_turn_the_news_toast_off_and_keep_the_learners_own(tmp_path: Path) -> None:
    """install_default_settings writes fetchNews "false" where no setting exists, and leaves an existing file alone."""
    lab = load_script("tools/lab.py", "lab_tool")
    written = lab.install_default_settings(tmp_path)
    notification = tmp_path / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    assert written == [notification]
    assert '"fetchNews": "false"' in notification.read_text()
    notification.write_text('{"fetchNews": "true"}')
    assert lab.install_default_settings(tmp_path) == []
    assert notification.read_text() == '{"fetchNews": "true"}'
