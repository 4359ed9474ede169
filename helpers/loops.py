"""Which event loop is this, and how do I safely run something on another one?

A notebook has at least two loops once a server runs on its own thread (`serve()`): the kernel's loop on the
main thread (your cells) and each such server's own loop on its thread. Objects such as `asyncio.Lock`,
`asyncio.Queue`, a Redis connection or a `Broadcast` belong to the loop they were first used on. These helpers
name the loops (never by memory address, so outputs stay stable) and cross between them the safe way, and
`run_in_thread()` / `run_on_private_loop()` are the one place that runs work on a worker thread with a time limit
(a quiz experiment, a challenge check, `attempt_sync()`, a blocking Django call).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from helpers.usage import UsageTypeError, check_positive

__all__ = [
    "LoopUsageError",
    "ThreadTimeout",
    "Whereabouts",
    "asyncio_patches",
    "await_on",
    "call_on",
    "label_loop",
    "loop_label",
    "loop_name",
    "remember_kernel_loop",
    "run_in_thread",
    "run_on",
    "run_on_private_loop",
    "where_am_i",
]

T = TypeVar("T")


class LoopUsageError(RuntimeError):
    """A cross-loop call that cannot work as written; the message says what to do instead."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The loop the main thread is running, if this code runs on the main thread or it is known."""
    if threading.current_thread() is threading.main_thread():
        return _running_loop()
    return _main_loop


_main_loop: asyncio.AbstractEventLoop | None = None
# Names for loops that helpers create (a thread server's), kept after the loop stops so "which loop is this?"
# still has an answer; weak, so a label never keeps a loop alive.
_loop_labels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = weakref.WeakKeyDictionary()


def label_loop(loop: asyncio.AbstractEventLoop, label: str) -> None:
    """Name `loop` for `loop_name()`, e.g. "server 'echo' loop" (`servers` does it for every thread server)."""
    _loop_labels[loop] = label


def loop_label(loop: asyncio.AbstractEventLoop) -> str | None:
    """The label `label_loop()` gave `loop`, else None."""
    return _loop_labels.get(loop)


def remember_kernel_loop() -> None:
    """Record the main thread's running loop, so code on other threads can name it."""
    global _main_loop
    if threading.current_thread() is threading.main_thread():
        _main_loop = _running_loop()


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def loop_name(loop: asyncio.AbstractEventLoop | None) -> str:
    """A stable, readable name: "the kernel's loop", "server 'echo' loop", or "another loop"."""
    if loop is None:
        return "no loop"
    label = _loop_labels.get(loop)
    if label is not None:
        return f"{label} (closed)" if loop.is_closed() else label
    if loop is _kernel_loop() or loop is _main_loop:
        # In a notebook the main thread's loop is the kernel's: the one your cells run on.
        return "the kernel's loop" if _in_kernel() else "the main thread's loop"
    return "another loop"


@dataclass(frozen=True)
class Whereabouts:
    """Where a piece of code is running: its thread, its loop's name, and whether that loop is running."""

    thread: str
    loop: str
    running: bool

    def __str__(self) -> str:
        state = "running" if self.running else "not running"
        return f"thread {self.thread!r}, {self.loop} ({state})"


def where_am_i() -> Whereabouts:
    """Describe the current thread and the loop running on it (if any)."""
    remember_kernel_loop()
    loop = _running_loop()
    return Whereabouts(threading.current_thread().name, loop_name(loop), loop is not None and loop.is_running())


def _check_target(loop: object, coro: object, timeout: object) -> None:
    if not isinstance(loop, asyncio.AbstractEventLoop):
        if asyncio.iscoroutine(coro):
            coro.close()
        hint = " (a server handle: pass server.loop)" if hasattr(loop, "loop") else ""
        raise UsageTypeError(f"loop must be an asyncio event loop{hint}, not {type(loop).__name__}")
    check_positive(timeout, "timeout")
    if not asyncio.iscoroutine(coro):
        raise LoopUsageError(
            f"expected a coroutine object, got {type(coro).__name__}: call the async function, e.g. "
            "run_on(loop, publish('hi')), not run_on(loop, publish)."
        )
    if loop.is_closed():
        coro.close()
        raise LoopUsageError("that loop is closed (its server stopped?): create the object again on a running loop.")
    if not loop.is_running():
        coro.close()
        raise LoopUsageError("that loop is not running, so nothing would ever execute the coroutine.")


def run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """Run `coro` on `loop` (another thread's loop) and wait, blocking this thread, for its result.

    Refuses to run on the caller's own loop, which would wait forever on itself.
    """
    _check_target(loop, coro, timeout)
    if _running_loop() is loop:
        coro.close()
        raise LoopUsageError("run_on() was called on the loop it targets, which would deadlock: just `await` it.")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"the coroutine did not finish on {loop_name(loop)} within {timeout} s") from None


async def await_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """From async code, run `coro` on another loop and await its result without blocking our own loop."""
    _check_target(loop, coro, timeout)
    if _running_loop() is loop:
        return await asyncio.wait_for(coro, timeout)
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        future.cancel()
        raise TimeoutError(f"the coroutine did not finish on {loop_name(loop)} within {timeout} s") from None


def call_on(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """Schedule a plain function on `loop` from any thread (the thread-safe `call_soon`)."""
    if loop.is_closed():
        raise LoopUsageError("that loop is closed (its server stopped?): nothing can be scheduled on it.")
    loop.call_soon_threadsafe(callback, *args)


class ThreadTimeout(TimeoutError):
    """Work given to `run_in_thread()` did not finish in time (it goes on, on its daemon thread)."""


def run_in_thread(fn: Callable[[], T], *, timeout: float, name: str) -> T:
    """Call `fn()` on a new daemon thread named `name`; wait at most `timeout` seconds for its result.

    Whatever `fn()` raises is raised here. After `timeout` this raises ThreadTimeout and leaves `fn()` running:
    Python cannot stop a thread, and a daemon thread does not keep the process alive. Callers that can stop
    the work another way (a server's `stop()`) do so; the message of the ThreadTimeout names the thread.
    """
    check_positive(timeout, "timeout")
    result: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ThreadTimeout(f"{name} did not finish within {timeout:g} s")
    if failure:
        raise failure[0]
    return result[0]


def run_on_private_loop(coro: Coroutine[Any, Any, T], *, timeout: float, name: str) -> T:
    """Run `coro` with `asyncio.run()` on a new loop in a worker thread (`run_in_thread()`) and return its result.

    It works in a notebook cell, whose thread already runs a loop (where `asyncio.run()` refuses), and, like
    any blocking call there, it stops that loop meanwhile.
    """
    if not asyncio.iscoroutine(coro):
        raise LoopUsageError(
            f"expected a coroutine object, got {type(coro).__name__}: call the async function, e.g. "
            "run_on_private_loop(main(), ...), not run_on_private_loop(main, ...)."
        )
    try:
        check_positive(timeout, "timeout")
    except BaseException:
        coro.close()  # it will never run: no "never awaited" warning
        raise
    return run_in_thread(lambda: asyncio.run(coro), timeout=timeout, name=name)


def asyncio_patches() -> list[str]:
    """The marks nest_asyncio leaves in this process's asyncio; empty when none is present.

    It looks for a replaced asyncio.run, the pure-Python Task and Future classes, a nest-patched running
    loop, and the pure-Python running-loop lookup.
    """
    import asyncio.events
    import asyncio.tasks

    found = []
    if getattr(asyncio.run, "__module__", "asyncio.runners") != "asyncio.runners":
        found.append(f"asyncio.run replaced by {asyncio.run.__module__}.run")
    if asyncio.Task is getattr(asyncio.tasks, "_PyTask", None):
        found.append("asyncio.Task is the pure-Python Task (C Task swapped out)")
    if asyncio.Future is getattr(asyncio.futures, "_PyFuture", None):
        found.append("asyncio.Future is the pure-Python Future (C Future swapped out)")
    loop = _running_loop()
    if loop is not None and hasattr(loop, "_nest_patched"):
        found.append(f"the running {type(loop).__name__} is patched for nesting")
    if asyncio.events._get_running_loop is getattr(asyncio.events, "_py__get_running_loop", None):
        found.append("asyncio's running-loop lookup is the pure-Python one")
    return found
