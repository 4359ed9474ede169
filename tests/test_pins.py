"""Tests for the dependency pins: requirements, constraints and environment.yml agree exactly."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path, section: str | None = None) -> dict[str, str]:
    """name -> version for every `name==version` line (inside `section:` only, when given)."""
    found: dict[str, str] = {}
    inside = section is None
    for line in path.read_text().splitlines():
        if section is not None and line.strip() == f"- {section}:":
            inside = True
            continue
        match = PIN.match(line)
        if inside and match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def requirement_pins() -> dict[str, str]:
    return pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-dev.txt")


def test_every_requirement_is_pinned_exactly() -> None:
    """Each requirement line (other than -r includes and comments) is an exact `==` pin."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                assert PIN.match(line), f"{name}: {line!r} is not pinned with =="


def test_environment_yml_installs_the_same_pins() -> None:
    """environment.yml's pip section pins exactly what requirements*.txt pin."""
    assert pins(ROOT / "environment.yml", section="pip") == requirement_pins()


def test_environment_yml_uses_python_311_from_conda_forge() -> None:
    """environment.yml asks for conda-forge and Python 3.11, like the rest of the project."""
    text = (ROOT / "environment.yml").read_text()
    assert "- conda-forge" in text and "- python=3.11" in text


def test_constraints_agree_with_requirements() -> None:
    """constraints.txt (every installed package) holds each requirement at the same version."""
    constraints = pins(ROOT / "constraints.txt")
    for name, version in requirement_pins().items():
        assert constraints.get(name) == version, f"{name}: requirements {version}, constraints {constraints.get(name)}"


def test_redis_py_is_the_version_that_works_with_broadcaster_and_channels_redis() -> None:
    """redis-py is pinned below 8 on purpose (redis-py 8 breaks broadcaster 0.3.1's first subscription)."""
    assert requirement_pins()["redis"].startswith("7.")


def conda_packages(path: Path) -> list[str]:
    """The conda dependencies of an environment file (the entries before its pip section)."""
    packages = []
    for line in path.read_text().split("dependencies:", 1)[1].splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry.startswith("- ") and not entry.endswith(":"):
            packages.append(entry[2:].strip())
        if entry == "- pip:":
            break
    return packages


def test_binders_environment_installs_the_same_pins() -> None:
    """binder/environment.yml's pip section pins exactly what requirements*.txt pin."""
    assert pins(ROOT / "binder" / "environment.yml", section="pip") == requirement_pins()


def test_binders_environment_has_the_same_python_and_system_packages() -> None:
    """binder/environment.yml asks for conda-forge, Python 3.11, redis-server and nginx, as environment.yml does."""
    binder = conda_packages(ROOT / "binder" / "environment.yml")
    assert binder == conda_packages(ROOT / "environment.yml")
    assert {"python=3.11", "redis-server", "nginx"} <= set(binder)
    assert "- conda-forge" in (ROOT / "binder" / "environment.yml").read_text()


def test_the_site_requirements_are_pinned_and_locked() -> None:
    """requirements-site.txt pins Jupyter Book exactly, and constraints-site.txt holds the same version."""
    site = pins(ROOT / "requirements-site.txt")
    assert set(site) == {"jupyter-book"}
    constraints = pins(ROOT / "constraints-site.txt")
    assert all(constraints.get(name) == version for name, version in site.items())
