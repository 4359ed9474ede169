"""Tests for binder/ (repo2docker): its files parse, and postBuild's commands work in a fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.support import ROOT

BINDER = ROOT / "binder"


def test_binder_has_an_environment_and_an_executable_postbuild() -> None:
    """binder/ holds environment.yml (named, on conda-forge, with a pip section) and an executable bash postBuild."""
    environment = (BINDER / "environment.yml").read_text()
    assert environment.count("\nname: websocket-lab\n") == 1 and "\n  - pip:\n" in environment
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK)
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "pip install --no-deps -e .\n" in text


@pytest.mark.timeout(180)
def test_postbuild_installs_the_helpers_and_the_lab_settings_in_a_fresh_venv(tmp_path: Path) -> None:
    """postBuild, run in a copy of the project with a fresh venv first on PATH, installs helpers and the settings."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "helpers", "binder", "tools"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, project / name)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    home = tmp_path / "home"
    home.mkdir()
    environment = dict(
        os.environ,  # pip's own settings (an index, a proxy) still apply
        PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        HOME=str(home),
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    environment.pop("VIRTUAL_ENV", None)
    environment.pop("PYTHONPATH", None)
    result = subprocess.run(
        ["bash", "binder/postBuild"], cwd=project, env=environment, capture_output=True, text=True, timeout=150
    )
    assert result.returncode == 0, result.stdout + result.stderr
    where = "import importlib.util; print(importlib.util.find_spec('helpers').origin)"
    found = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", where],
        cwd=home,  # not the repository, whose own helpers/ would be found first
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert Path(found.stdout.strip()) == project / "helpers" / "__init__.py"  # editable: the project's own files
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    assert '"fetchNews": "false"' in settings.read_text()
