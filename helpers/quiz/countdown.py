"""The countdown behind a timed attempt: a bounded background thread, so the kernel is never blocked.

Kept apart from the widget because its one subtle rule (a stopped or restarted countdown must stay silent, so an
answer submitted at the last moment is never also counted as a time-out) is tested on its own, without ipywidgets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Countdown"]


class Countdown:
    """A background thread that ticks while an attempt's time runs, then calls `on_expire` once.

    It never blocks the caller and lives at most one attempt. Each `start()` opens a new *generation*;
    the callbacks receive it, and `is_current(generation)` tells a late callback from a stopped countdown
    to do nothing (so an answer submitted at the last moment is never also counted as a time-out).
    """

    def __init__(
        self,
        on_tick: Callable[[int, float], None],
        on_expire: Callable[[int], None],
        *,
        tick: float = 0.25,
    ) -> None:
        self.on_tick = on_tick
        self.on_expire = on_expire
        self.tick = tick
        self.generation = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def is_current(self, generation: int) -> bool:
        return generation == self.generation and not self._stop.is_set()

    def start(self, seconds: float) -> int:
        """(Re)start the countdown for `seconds`; a previous countdown is stopped first."""
        with self._lock:
            self._stop.set()
            self.generation += 1
            stop = self._stop = threading.Event()
            deadline = time.monotonic() + seconds
            thread = threading.Thread(
                target=self._run, args=(self.generation, deadline, stop), name="quiz-countdown", daemon=True
            )
            self._thread = thread
        thread.start()
        return self.generation

    def _run(self, generation: int, deadline: float, stop: threading.Event) -> None:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            self.on_tick(generation, max(0.0, remaining))
            if remaining <= 0:
                self.on_expire(generation)
                return
            stop.wait(min(self.tick, remaining))

    def stop(self, *, wait: bool = False) -> None:
        """Stop ticking; with wait=True also wait (bounded) for the thread to end."""
        with self._lock:
            self._stop.set()
            self.generation += 1
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(self.tick + 1.0)
