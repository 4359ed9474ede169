"""Tests for helpers.loops: naming loops, crossing between them safely, and spotting patched asyncio."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from helpers import loops
from helpers.demo_apps import echo
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError, UsageTypeError
from tests.support import ROOT

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Iterator[ThreadServer]:
    with serve(echo, name="loops") as handle:
        yield handle


async def whereabouts() -> loops.Whereabouts:
    return loops.where_am_i()


def test_where_am_i_names_the_main_thread_loop_and_the_server_loop(server: ThreadServer) -> None:
    """On the main thread's loop and on a server's loop, where_am_i() names thread and loop without addresses."""

    async def main() -> tuple[loops.Whereabouts, loops.Whereabouts]:
        return loops.where_am_i(), await loops.await_on(server.loop, whereabouts())

    here, there = asyncio.run(main())
    assert str(here) == "thread 'MainThread', the main thread's loop (running)"  # "the kernel's loop" in Jupyter
    assert str(there) == "thread 'uvicorn-loops', server 'loops' loop (running)"


def test_where_am_i_without_a_loop() -> None:
    """Plain code on a thread with no loop says so."""
    assert str(loops.where_am_i()) == "thread 'MainThread', no loop (not running)"


def test_run_on_returns_the_result_from_the_other_loop(server: ThreadServer) -> None:
    """run_on() executes the coroutine on the target loop's thread and returns its value."""

    async def thread_name() -> str:
        return threading.current_thread().name

    assert loops.run_on(server.loop, thread_name()) == "uvicorn-loops"


def test_run_on_own_loop_is_refused_instead_of_deadlocking() -> None:
    """run_on() targeting the caller's own loop raises at once with the fix (just await)."""

    async def main() -> None:
        loops.run_on(asyncio.get_running_loop(), asyncio.sleep(0))

    with pytest.raises(loops.LoopUsageError, match=r"would deadlock: just `await` it"):
        asyncio.run(main())


def test_run_on_a_closed_loop_says_to_recreate_the_object() -> None:
    """A stopped server's loop is closed; run_on() explains instead of hanging."""
    server = serve(echo, name="closing")
    server.stop()
    assert loops.loop_name(server.loop) == "server 'closing' loop (closed)"
    with pytest.raises(loops.LoopUsageError, match=r"that loop is closed"):
        loops.run_on(server.loop, asyncio.sleep(0))


def test_passing_a_function_instead_of_a_coroutine_is_explained(server: ThreadServer) -> None:
    """run_on(loop, fn) without calling fn raises an error showing the right call."""
    with pytest.raises(loops.LoopUsageError, match=r"call the async function"):
        loops.run_on(server.loop, whereabouts)  # type: ignore[arg-type]


def test_await_on_times_out_with_the_loop_named(server: ThreadServer) -> None:
    """await_on() gives up after its timeout and names the loop it waited on."""

    async def main() -> None:
        await loops.await_on(server.loop, asyncio.sleep(5), timeout=0.1)

    with pytest.raises(TimeoutError, match=r"server 'loops' loop"):
        asyncio.run(main())


def test_call_on_runs_a_callback_on_the_target_thread(server: ThreadServer) -> None:
    """call_on() schedules a plain function on the target loop's thread."""
    seen: list[str] = []
    done = threading.Event()
    loops.call_on(server.loop, lambda: (seen.append(threading.current_thread().name), done.set()))
    assert done.wait(2) and seen == ["uvicorn-loops"]


def test_asyncio_patches_is_empty_here_and_lists_nest_asyncio_changes_in_a_subprocess() -> None:
    """This process's asyncio is pristine; after nest_asyncio.apply() (in a subprocess) the changes are listed."""
    assert loops.asyncio_patches() == []
    script = (
        "import asyncio, nest_asyncio\nfrom helpers.loops import asyncio_patches\n"
        "nest_asyncio.apply(asyncio.new_event_loop())\nprint(*asyncio_patches(), sep='\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert "asyncio.run replaced by nest_asyncio.run" in result.stdout.splitlines(), result.stderr
    assert "asyncio.Task is the pure-Python Task (C Task swapped out)" in result.stdout.splitlines()


def test_passing_a_server_instead_of_its_loop_is_explained(server: ThreadServer) -> None:
    """run_on(server, ...) says to pass server.loop, and closes the coroutine so no warning follows."""
    with pytest.raises(UsageTypeError, match=r"pass server.loop"):
        loops.run_on(server, whereabouts())  # type: ignore[arg-type]


def test_an_impossible_timeout_is_refused(server: ThreadServer) -> None:
    """run_on() with a zero timeout raises UsageError instead of timing out at once."""
    coro = whereabouts()
    with pytest.raises(UsageError, match="timeout must be above zero"):
        loops.run_on(server.loop, coro, timeout=0)
    coro.close()


def test_label_loop_names_a_loop_for_loop_name_and_keeps_it_after_closing() -> None:
    """A loop labelled with label_loop() is named by loop_name(), with "(closed)" once it is closed."""
    loop = asyncio.new_event_loop()
    try:
        assert loops.loop_label(loop) is None
        loops.label_loop(loop, "server 'x' loop")
        assert loops.loop_label(loop) == "server 'x' loop"
        assert loops.loop_name(loop) == "server 'x' loop"
    finally:
        loop.close()
    assert loops.loop_name(loop) == "server 'x' loop (closed)"


def test_run_in_thread_returns_the_result_from_a_named_worker_thread() -> None:
    """run_in_thread() calls the function on a new thread with the given name and returns what it returned."""
    assert loops.run_in_thread(lambda: threading.current_thread().name, timeout=5, name="worker-x") == "worker-x"


def test_run_in_thread_raises_what_the_function_raised() -> None:
    """An exception in the worker is raised in the caller as it is, not wrapped."""

    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        loops.run_in_thread(fail, timeout=5, name="failing")


def test_run_in_thread_times_out_with_the_thread_name_and_leaves_the_work_running() -> None:
    """Work that outlasts the timeout raises ThreadTimeout naming the thread; the work still finishes later."""
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        release.wait(5)
        finished.set()

    with pytest.raises(loops.ThreadTimeout, match=r"^slow-worker did not finish within 0.2 s$"):
        loops.run_in_thread(slow, timeout=0.2, name="slow-worker")
    release.set()
    assert finished.wait(5)


def test_run_in_thread_refuses_an_impossible_timeout() -> None:
    """A timeout of zero is refused before any thread starts."""
    with pytest.raises(UsageError, match="timeout"):
        loops.run_in_thread(lambda: None, timeout=0, name="never")


def test_run_on_private_loop_works_while_this_thread_runs_a_loop() -> None:
    """From inside a running loop (a notebook cell), the coroutine runs on another thread's fresh loop."""

    async def where() -> tuple[str, bool]:
        return threading.current_thread().name, asyncio.get_running_loop() is outer

    async def main() -> tuple[str, bool]:
        return loops.run_on_private_loop(where(), timeout=5, name="private")

    outer = asyncio.new_event_loop()
    try:
        assert outer.run_until_complete(main()) == ("private", False)
    finally:
        outer.close()


def test_run_on_private_loop_refuses_a_function_and_closes_a_coroutine_it_will_not_run() -> None:
    """Passing the async function (not its coroutine) is refused; a bad timeout closes the coroutine unrun."""

    async def work() -> None:
        await asyncio.sleep(0)

    with pytest.raises(loops.LoopUsageError, match=r"call the async function"):
        loops.run_on_private_loop(work, timeout=5, name="x")  # type: ignore[arg-type]
    coro = work()
    with pytest.raises(UsageError, match="timeout"):
        loops.run_on_private_loop(coro, timeout=-1, name="x")
    assert coro.cr_frame is None  # closed: no "never awaited" warning
