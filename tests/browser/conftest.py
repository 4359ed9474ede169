"""Real JupyterLab in real Chromium: fixtures that start both on loopback and always stop them by pid.

JupyterLab runs on a temporary copy of notebooks/ with throwaway config, data and runtime folders,
no token, autosave and news checks off. Chromium is Debian's (Playwright's own browser download is
not used), launched headless through Playwright's `executable_path`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.servers import free_port
from tests.support import IN_CI, ROOT, require_binary
from tests.xdist_groups import pytest_collection_modifyitems  # noqa: F401  (the hook: keeps xdist groups whole)

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LAB_START_TIMEOUT = 60
LAB_BIND_ATTEMPTS = 3


@dataclass
class Lab:
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path


def _write_settings(settings_dir: Path) -> None:
    """User settings for the throwaway lab: no autosave, no news, no update checks, no cell windowing."""
    files = {
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        # Render every cell: with windowing, outputs scrolled out of view are not in the page to check.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, content in files.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require_binary("chromium", "apt-get install chromium")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Lab]:
    """JupyterLab on a free loopback port serving a temporary copy of notebooks/."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = dict(os.environ)
    for name in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "IPYTHONDIR",
        "MPLCONFIGDIR",
    ):
        env[name] = str(base / name.lower())
    env["JUPYTERLAB_SETTINGS_DIR"] = str(base / "settings")
    _write_settings(base / "settings")
    log = base / "lab.log"
    process, url = _launch_lab(root, env, log)
    try:
        yield Lab(url, root, process, log)
    finally:
        _stop(process)


def _lab_command(root: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
    ]


def _launch_lab(root: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start JupyterLab on a free port and wait for /api/status; try a fresh port when the chosen one was taken.

    JupyterLab must be told its port, so another program (an outgoing connection's ephemeral port, a server on
    port 0) can take it between choosing and binding: CI saw "The port N is already in use" once.
    """
    said = ""
    for _ in range(LAB_BIND_ATTEMPTS):
        port = free_port()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                _lab_command(root, port),
                env=env,
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        if _wait_for_lab(url, process):
            return process, url
        _stop(process)
        said = log.read_text(errors="replace")
        if f"port {port} is already in use" not in said:
            raise RuntimeError(f"JupyterLab did not start:\n{said[-3000:]}")
    raise RuntimeError(f"JupyterLab found no free port in {LAB_BIND_ATTEMPTS} tries:\n{said[-3000:]}")


def _wait_for_lab(url: str, process: subprocess.Popen[bytes]) -> bool:
    """True once JupyterLab answers /api/status; False if it exits or LAB_START_TIMEOUT passes first."""
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    return False


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


def new_page(browser: Any, width: int = 1400) -> tuple[Any, Any]:
    """A fresh browser context (its own cookies and storage) and a page in it, with the tests' default timeout."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, page


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = new_page(browser)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def lab_page(browser: Any, lab: Lab) -> Iterator[Any]:
    """One page per worker with JupyterLab loaded once: a test opens its notebook from the file browser and closes
    it (kernel shut down) at the end (test_notebooks_in_lab.opened), as a learner going through the series would;
    loading JupyterLab again for each notebook cost seconds of CPU each time."""
    context, page = new_page(browser)
    try:
        load_lab(page, lab)
        yield page
    finally:
        context.close()


def load_lab(page: Any, lab: Lab) -> None:
    """JupyterLab in `page` on an empty workspace, its file browser listing the notebooks."""
    page.goto(f"{lab.url}/lab?reset")
    page.wait_for_selector(".jp-DirListing-itemText", timeout=60_000)


def stop_kernels_of(lab: Lab, name: str) -> None:
    """End the sessions JupyterLab holds for notebook `name`, so its kernel (and the servers it started) stops now.

    A kernel left to the end of the session keeps its servers and threads running beside every later notebook,
    and one killed when JupyterLab stops skips its atexit clean-up (temporary folders are left behind).
    """
    with urllib.request.urlopen(f"{lab.url}/api/sessions", timeout=10) as response:
        sessions = json.loads(response.read())
    for session in sessions:
        if session.get("path") == name:
            request = urllib.request.Request(f"{lab.url}/api/sessions/{session['id']}", method="DELETE")
            with urllib.request.urlopen(request, timeout=30):
                pass


def save_screenshot(page: Any, name: str) -> Path:
    """Screenshot as a test artifact (test-artifacts/ is git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


__all__ = ["IN_CI", "Lab", "load_lab", "new_page", "save_screenshot", "stop_kernels_of"]
