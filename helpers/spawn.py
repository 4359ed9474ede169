"""Start a child process that the kernel ends when this process ends, from one lasting thread.

Linux's PR_SET_PDEATHSIG signals a child when the *thread* that forked it ends, not the process. So every helper's
children (redis-server, nginx, the lesson-15 client) are started by the one spawner thread here, which lives as long
as the process and starts at import, before anything counts threads; never by a short-lived worker (an evidence
run, a quiz's Show me), whose end would kill them. Elsewhere than Linux nothing is set: each helper still stops its
children itself, and at exit.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import signal
import subprocess
import sys
from typing import Any

__all__ = ["spawn"]


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

    return _spawner.submit(start).result()
