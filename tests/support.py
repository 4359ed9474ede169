"""What tests share: the repository root, system-package gates, and leak checks (threads, fds, ports, children).

Tests import these from here; tests/conftest.py holds only the pytest fixtures built on them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

__all__ = [
    "IN_CI",
    "ROOT",
    "Seen",
    "Snapshot",
    "assert_back_to",
    "child_pids",
    "listening_ports",
    "load_script",
    "open_fds",
    "require_binary",
]

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def load_script(relative: str, module_name: str) -> ModuleType:
    """Import a script that is not in a package (tools/*.py) as `module_name`, for its tests."""
    spec = importlib.util.spec_from_file_location(module_name, ROOT / relative)
    assert spec and spec.loader, f"cannot load {relative}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def require_binary(name: str, install_hint: str) -> str:
    """Path of a system binary; skip without it on a developer machine, fail in CI (which installs it)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({install_hint})"
    if IN_CI:
        pytest.fail(f"{message}; .ci/run should have installed it")
    pytest.skip(message)


def listening_ports() -> set[int]:
    """TCP ports this process listens on (IPv4 and IPv6): /proc/net rows whose socket inode we hold."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # TCP_LISTEN, and the socket is ours
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def open_fds() -> int:
    """How many file descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    """PIDs of live processes whose parent is this process."""
    me = str(os.getpid())
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may contain spaces): state ppid ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if ppid == me and state != "Z":
            found.add(int(entry.name))
    return found


@dataclass
class Snapshot:
    """What a test may leave behind, counted at one moment: threads, fds, our listening ports, live children."""

    threads: int
    fds: int
    ports: set[int]
    children: set[int]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(threading.active_count(), open_fds(), listening_ports(), child_pids())


def assert_back_to(before: Snapshot, timeout: float = 3.0) -> None:
    """Wait (bounded) until threads, fds, our listening ports and children are back to `before`."""
    deadline = time.monotonic() + timeout
    while True:
        now = Snapshot.take()
        ok = (
            now.threads <= before.threads
            and now.fds <= before.fds
            and now.ports <= before.ports
            and now.children <= before.children
        )
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert now.threads <= before.threads, f"threads left: {[t.name for t in threading.enumerate()]}"
    assert now.fds <= before.fds, f"fds leaked: {before.fds} -> {now.fds}"
    assert now.ports <= before.ports, f"ports still listening: {sorted(now.ports - before.ports)}"
    assert now.children <= before.children, f"child processes left: {sorted(now.children - before.children)}"


class Seen:
    """What a test server's app saw, in order: ("text", message) per message, ("disconnect", code) when a client left.

    Thread-safe: the app runs on a server thread while the test reads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, value: Any) -> None:
        with self.lock:
            self.events.append((kind, value))

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [value for k, value in self.events if k == kind]
