"""Start a child process that the kernel ends when this process ends, from one lasting thread.

Linux's PR_SET_PDEATHSIG signals a child when the *thread* that forked it ends, not the process. So every helper's
children (redis-server, nginx, the lesson-15 client) are started by the one spawner thread here, which lives as long
as the process and starts at import, before anything counts threads; never by a short-lived worker (an evidence
run, a quiz's Show me), whose end would kill them. Elsewhere than Linux nothing is set: each helper still stops its
children itself, and at exit.

Every child is also reaped the moment it ends (`reap`): a child that ended but was never waited for stays a zombie,
and ipykernel's shutdown counts zombies as children still running. It signals them again and again for about
2.5 s, until nbval or JupyterLab stops waiting and terminates the kernel, whose atexit clean-up (the temporary
folders the helpers remove at exit) then never runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import signal
import subprocess
import sys
import threading
from typing import Any

__all__ = ["reap", "spawn"]


def _die_with_parent(death_signal: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, death_signal)  # PR_SET_PDEATHSIG


_spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-spawner")
_spawner.submit(int).result()  # start its thread now, at import, so it is there before anything counts threads


def spawn(command: list[str], *, death_signal: int = signal.SIGTERM, **popen_options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(command, **popen_options)` from the spawner thread; the child gets `death_signal` when
    this process dies (SIGKILL for a child that may be stopped with SIGSTOP: it could not act on SIGTERM)."""

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, preexec_fn=functools.partial(_die_with_parent, death_signal), **popen_options)

    return reap(_spawner.submit(start).result())


def reap(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Collect `process`'s exit status as soon as it ends, from a daemon thread; returns `process`.

    Waiting from another thread is safe: Popen guards waitpid with a lock, `poll()` meanwhile reports the child
    as running (it is), and a `wait(timeout)` elsewhere returns once this thread has collected the status.
    """
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return process
