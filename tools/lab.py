"""Start JupyterLab on loopback, opening the first notebook (`make lab` runs this).

    python tools/lab.py [--port N] [--no-browser]

Jupyter's config, data and runtime folders are kept inside the repo (.jupyter-local/, set by the
Makefile or here), so nothing is registered for the user outside the project.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script (`python tools/lab.py`): make the repo's helpers importable

from helpers.servers import free_port  # noqa: E402  (needs the path above)

FIRST_NOTEBOOK = "00_start_here.ipynb"
LOCAL = ROOT / ".jupyter-local"
# Default settings, copied into JUPYTERLAB_SETTINGS_DIR where it has none of its own yet: no "Would you like to
# get notified about official Jupyter news?" toast. A setting the learner changes later is kept.
DEFAULT_SETTINGS = ROOT / "tools" / "jupyterlab-settings"
ENVIRONMENT = {
    "JUPYTER_CONFIG_DIR": LOCAL / "config",
    "JUPYTER_RUNTIME_DIR": LOCAL / "runtime",
    "JUPYTERLAB_SETTINGS_DIR": LOCAL / "lab-settings",
    "JUPYTERLAB_WORKSPACES_DIR": LOCAL / "lab-workspaces",
    "IPYTHONDIR": LOCAL / "ipython",
    "MPLCONFIGDIR": LOCAL / "matplotlib",
}


def command(port: int, open_browser: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={ROOT / 'notebooks'}",
        f"--ServerApp.open_browser={open_browser}",
        # No calls home: news and update checks stay off.
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        # Containers and CI machines often run as root; Jupyter refuses that unless told.
        *(["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        FIRST_NOTEBOOK,
    ]


def install_default_settings(settings_dir: Path) -> list[Path]:
    """Copy each file of DEFAULT_SETTINGS that settings_dir lacks; return the files written."""
    written = []
    for source in sorted(DEFAULT_SETTINGS.rglob("*.jupyterlab-settings")):
        target = settings_dir / source.relative_to(DEFAULT_SETTINGS)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text())
            written.append(target)
    return written


def lab_url(port: int, token: str) -> str:
    """The address to click: the first notebook, with the token, so it does not land on a login page."""
    return f"http://127.0.0.1:{port}/lab/tree/{FIRST_NOTEBOOK}?token={token}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: 8888 if free, else any)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    args = parser.parse_args(argv)
    port = args.port
    if port == 0:
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 8888))
            port = 8888
        except OSError:
            port = free_port()
    for name, path in ENVIRONMENT.items():
        os.environ.setdefault(name, str(path))
        Path(os.environ[name]).mkdir(parents=True, exist_ok=True)
    install_default_settings(Path(os.environ["JUPYTERLAB_SETTINGS_DIR"]))
    # Jupyter reads the token from JUPYTER_TOKEN (kept out of the command line, which `ps` shows); it is
    # new each run unless you set one.
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    os.environ["JUPYTER_TOKEN"] = token
    cmd = command(port, not args.no_browser)
    print(f"JupyterLab on {lab_url(port, token)}\n(open that address; Ctrl+C here to stop)", flush=True)
    os.chdir(ROOT / "notebooks")
    os.execv(cmd[0], cmd)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
