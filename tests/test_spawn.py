"""Tests for helpers.spawn: children started from one lasting thread, which die with the process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from helpers.spawn import spawn
from tests.support import ROOT

SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)"]


def _gone(pid: int, within: float = 5.0) -> bool:
    """Has `pid` ended (exited, or a zombie not yet reaped)? Looks at least once, then until `within` s have passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":  # a zombie has ended; its parent has not reaped it
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_child_started_from_a_short_lived_thread_outlives_that_thread() -> None:
    """The thread that asks for a child may end at once: the child, forked by the spawner thread, keeps running."""
    started: list[subprocess.Popen[bytes]] = []
    worker = threading.Thread(target=lambda: started.append(spawn(SLEEPER)))
    worker.start()
    worker.join(5)
    child = started[0]
    try:
        time.sleep(0.3)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
@pytest.mark.parametrize("death_signal", [signal.SIGTERM, signal.SIGKILL])
def test_a_child_gets_its_death_signal_when_the_parent_process_dies(death_signal: int) -> None:
    """A parent that spawns a sleeper and then dies at once takes the sleeper with it."""
    parent = textwrap.dedent(
        f"""
        import os, sys
        from helpers.spawn import spawn
        child = spawn({SLEEPER!r}, death_signal={int(death_signal)})
        print(child.pid, flush=True)
        os._exit(0)
        """
    )
    done = subprocess.run([sys.executable, "-c", parent], cwd=ROOT, capture_output=True, text=True, timeout=30)
    pid = int(done.stdout.strip())
    try:
        assert _gone(pid), f"the child {pid} outlived its parent"
    finally:
        if not _gone(pid, within=0):
            with contextlib.suppress(ProcessLookupError):  # it may end between the look and the kill
                os.kill(pid, signal.SIGKILL)


def test_a_child_that_ends_is_reaped_without_anyone_waiting() -> None:
    """A spawned child that exits leaves no zombie: its status is collected at once, with no wait() or poll() here."""
    child = spawn([sys.executable, "-c", "raise SystemExit(3)"])
    deadline = time.monotonic() + 10
    while child.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.returncode == 3
    assert not os.path.exists(f"/proc/{child.pid}"), "the ended child is still in the process table (a zombie)"


def test_stop_and_wait_still_work_beside_the_reaper() -> None:
    """terminate() then wait(timeout) on a spawned child returns its status, though the reaper thread waits too."""
    child = spawn(SLEEPER)
    assert child.poll() is None
    child.terminate()
    assert child.wait(5) == -signal.SIGTERM
