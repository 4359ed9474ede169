"""Tests for .devcontainer/devcontainer.json: it parses, its Python is the pinned one, its commands are make targets."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from tests.support import ROOT


def config() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    return data


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def test_the_image_has_the_python_the_environment_pins() -> None:
    """The image is a Python 3.11+ dev container, the same minor version environment.yml pins."""
    image = config()["image"]
    version = re.search(r"python:\d+-(\d+)\.(\d+)-", image)
    assert version, image
    assert (int(version.group(1)), int(version.group(2))) >= (3, 11)
    assert f"- python={version.group(1)}.{version.group(2)}" in (ROOT / "environment.yml").read_text()


def test_every_command_is_a_make_target_the_makefile_has() -> None:
    """onCreate runs `make system-packages` then `make setup`; every command in the file is `make <target>`."""
    data = config()
    commands = [data[key] for key in data if key.endswith("Command")]
    assert data["onCreateCommand"] == "make system-packages && make setup"
    targets = makefile_targets()
    for command in commands:
        for step in command.split("&&"):
            words = step.split()
            assert words[0] == "make" and len(words) == 2 and words[1] in targets, step


def test_jupyterlab_is_forwarded_on_the_port_make_lab_prefers() -> None:
    """Port 8888 (tools/lab.py's default when free) is forwarded and labelled as JupyterLab."""
    data = config()
    assert data["forwardPorts"] == [8888]
    assert "JupyterLab" in data["portsAttributes"]["8888"]["label"]


def test_the_system_packages_target_names_what_the_lessons_need() -> None:
    """`make system-packages` installs redis-server, nginx and chromium, and here (all present) it only says so."""
    text = (ROOT / "Makefile").read_text()
    assert "SYSTEM_PACKAGES := redis-server nginx chromium" in text
    dry = subprocess.run(["make", "-n", "system-packages"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0 and "apt-get install" in dry.stdout
