"""Tests for helpers.server_logs: each server keeps its own WARNING+ records, one line per error, nothing printed."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette

from helpers import server_logs
from helpers.clients import attempt, attempt_sync
from helpers.demo_apps import echo
from helpers.server_logs import MAX_RECORDS, ServerLog
from helpers.servers import ServerStartError, ThreadServer, serve, serve_on_loop
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(60)


async def crashing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app that accepts a WebSocket and raises on its first message (the message names the error)."""
    if scope["type"] == "lifespan":
        return
    await receive()
    await send({"type": "websocket.accept"})
    message = await receive()
    raise RuntimeError(f"handler crashed on {message.get('text')!r}")


def record(level: int, message: str, exc: BaseException | None = None) -> logging.LogRecord:
    """A log record as uvicorn would make it, on its 'uvicorn.error' logger."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("uvicorn.error", level, __file__, 1, message, None, exc_info)


def wait_for_errors(server: ThreadServer, count: int = 1, timeout: float = 3.0) -> list[str]:
    """The server's errors once it has at least `count` (bounded wait: uvicorn logs after the connection ends)."""
    deadline = time.monotonic() + timeout
    while len(server.errors) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.errors


def on_server(server: ThreadServer, logger: str, level: int, message: str) -> None:
    """Log `message` from a task on the server's own loop, as code in its handlers would."""

    async def log() -> None:
        logging.getLogger(logger).log(level, message)

    server.run(log())


# ------------------------------------------------------------------------------------------------ ServerLog


def test_errors_are_one_line_each_and_exceptions_read_type_colon_message() -> None:
    """errors holds one line per ERROR-or-worse record: 'Type: message' for an exception, else its message."""
    log = ServerLog()
    log.add(record(logging.WARNING, "a warning"))
    log.add(record(logging.ERROR, "Exception in ASGI application\n", ValueError("bad value")))
    log.add(record(logging.CRITICAL, "  plainly broken  "))
    log.add(record(logging.ERROR, "Exception in ASGI application\n", KeyError("user")))
    assert log.errors == ["ValueError: bad value", "plainly broken", "KeyError: 'user'"]
    assert log.lines == ["a warning", "ValueError: bad value", "plainly broken", "KeyError: 'user'"]


def test_an_exception_without_a_message_is_just_its_type() -> None:
    """An exception whose message is empty is shown as its type alone, with no dangling colon."""
    log = ServerLog()
    log.add(record(logging.ERROR, "Exception in ASGI application\n", TimeoutError()))
    assert log.errors == ["TimeoutError"]


def test_a_traceback_text_is_summarised_by_its_last_line() -> None:
    """A record whose message is a whole traceback (a lifespan failure) is summarised by its last non-blank line."""
    traceback_text = (
        "Traceback (most recent call last):\n"
        '  File "app.py", line 3, in lifespan\n'
        "    raise RuntimeError('database unreachable')\n"
        "RuntimeError: database unreachable\n\n"
    )
    log = ServerLog()
    log.add(record(logging.ERROR, traceback_text))
    log.add(record(logging.ERROR, "   \n"))
    assert log.errors == ["RuntimeError: database unreachable", ""]


def test_the_log_is_bounded_and_keeps_the_newest_records() -> None:
    """A ServerLog keeps at most MAX_RECORDS records, dropping the oldest first."""
    log = ServerLog()
    for n in range(MAX_RECORDS + 50):
        log.add(record(logging.ERROR, f"error {n}"))
    assert len(log.records) == MAX_RECORDS
    assert log.errors[0] == "error 50"
    assert log.errors[-1] == f"error {MAX_RECORDS + 49}"


def test_clear_empties_the_log() -> None:
    """clear() forgets every record, so a lesson can look at the errors of one step only."""
    log = ServerLog()
    log.add(record(logging.ERROR, "old"))
    log.clear()
    assert (list(log.records), log.errors, log.lines) == ([], [], [])
    log.add(record(logging.ERROR, "new"))
    assert log.errors == ["new"]


def test_echo_prints_each_record_to_stderr_only_when_on(capsys: pytest.CaptureFixture[str]) -> None:
    """With echo on, each record is also printed to stderr as '[server <level>] message'; off (the default), nothing."""
    quiet, loud = ServerLog(), ServerLog(echo=True)
    assert quiet.echo is False
    quiet.add(record(logging.ERROR, "kept quietly"))
    assert capsys.readouterr() == ("", "")
    loud.add(record(logging.WARNING, "shown"))
    loud.add(record(logging.ERROR, "also shown"))
    assert capsys.readouterr() == ("", "[server warning] shown\n[server error] also shown\n")
    loud.echo = False
    loud.add(record(logging.ERROR, "quiet again"))
    assert capsys.readouterr() == ("", "")
    assert loud.errors == ["also shown", "quiet again"]


# ------------------------------------------------------------------------------------------------ install()


def test_install_is_idempotent() -> None:
    """However often install() runs, 'uvicorn' has one router (and stops propagating) and 'asyncio' one filter."""
    first = server_logs.install()
    second = server_logs.install()
    assert first is second
    uvicorn_logger = logging.getLogger(server_logs.UVICORN_LOGGER)
    asyncio_logger = logging.getLogger("asyncio")
    assert uvicorn_logger.handlers.count(first) == 1
    assert uvicorn_logger.propagate is False
    assert asyncio_logger.filters.count(first) == 1


def test_a_record_no_server_claims_still_reaches_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """A uvicorn WARNING+ record no server claims (a learner's own run) is printed as '[uvicorn <level>] msg'."""
    server_logs.install()
    logging.getLogger("uvicorn.error").warning("nobody's server")
    assert capsys.readouterr().err == "[uvicorn warning] nobody's server\n"


def test_an_asyncio_record_no_server_claims_passes_the_filter(no_leaks: Snapshot) -> None:
    """The asyncio-logger filter keeps an unclaimed record (from outside every server) for asyncio's own handling."""
    router = server_logs.install()
    with serve(echo, name="logs-bystander") as server:
        outside = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "outside", None, None)
        assert router.filter(outside) is True
        assert server.log.lines == []


def test_an_asyncio_report_becomes_a_record_with_nothing_formatted() -> None:
    """loop_exception_handler keeps asyncio's report as one ERROR record, the exception unformatted, shown as a line."""
    log = ServerLog()
    loop = asyncio.new_event_loop()
    try:
        log.loop_exception_handler(loop, {"message": "Task exception was never retrieved", "exception": KeyError("k")})
        log.loop_exception_handler(loop, {"message": "Task was destroyed but it is pending!"})
    finally:
        loop.close()
    assert log.errors == ["KeyError: 'k'", "Task was destroyed but it is pending!"]
    assert all(r.exc_text is None for r in log.records)


# ------------------------------------------------------------------------------------------------ real servers


def test_a_handler_exception_lands_on_its_own_server_and_is_not_printed(
    no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler's exception is one 'Type: message' line in its own server's errors, not another's; none printed."""
    with serve(crashing, name="logs-crashing") as crashy, serve(echo, name="logs-healthy") as healthy:
        assert attempt_sync(crashy.ws_url("/"), send=["boom"]).close_code == 1006
        assert attempt_sync(healthy.ws_url("/"), send=["fine"], receive=1).messages == ["fine"]
        assert wait_for_errors(crashy) == ["RuntimeError: handler crashed on 'boom'"]
        assert healthy.errors == [] and healthy.log.lines == []
        kept = crashy.log.records[0]
        assert kept.exc_info is not None and isinstance(kept.exc_info[1], RuntimeError)
    assert capsys.readouterr() == ("", "")


def test_each_crash_is_its_own_line(no_leaks: Snapshot) -> None:
    """Three crashed connections give three error lines, in order."""
    with serve(crashing, name="logs-three-crashes") as server:
        for word in ("one", "two", "three"):
            attempt_sync(server.ws_url("/"), send=[word])
            wait_for_errors(server, count=["one", "two", "three"].index(word) + 1)
        assert server.errors == [f"RuntimeError: handler crashed on {w!r}" for w in ("one", "two", "three")]


def test_echo_logs_prints_a_servers_records_to_stderr(no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]) -> None:
    """serve(echo_logs=True) keeps the records on the server and also prints each one to stderr."""
    with serve(crashing, name="logs-echoed", echo_logs=True) as server:
        assert server.log.echo is True
        attempt_sync(server.ws_url("/"), send=["loud"])
        assert wait_for_errors(server) == ["RuntimeError: handler crashed on 'loud'"]
    assert capsys.readouterr().err == "[server error] Exception in ASGI application\n\n"


def test_only_warnings_and_worse_are_kept(no_leaks: Snapshot) -> None:
    """Records below WARNING from a server's code are not kept; warnings are kept as lines but are not errors."""
    with serve(echo, name="logs-levels") as server:
        on_server(server, "uvicorn.error", logging.INFO, "just info")
        on_server(server, "uvicorn.error", logging.WARNING, "a warning")
        on_server(server, "uvicorn.error", logging.ERROR, "an error")
        assert server.log.lines == ["a warning", "an error"]
        assert server.errors == ["an error"]


def test_asyncio_records_from_a_server_thread_stay_on_that_server(
    no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    """An asyncio-logger WARNING+ record from a server's thread goes to that server's log instead of stderr."""
    with serve(echo, name="logs-asyncio") as server:
        on_server(server, "asyncio", logging.ERROR, "Task exception was never retrieved")
        on_server(server, "asyncio", logging.DEBUG, "asyncio chatter")
        assert server.errors == ["Task exception was never retrieved"]
        assert server.log.lines == ["Task exception was never retrieved"]
    assert capsys.readouterr() == ("", "")


def test_a_task_exception_reported_after_stop_stays_on_the_server(
    no_leaks: Snapshot, caplog: pytest.LogCaptureFixture
) -> None:
    """A task whose exception nobody retrieved is reported at a later GC to its server's log, not asyncio's logger."""

    async def fails() -> None:
        raise ValueError("nobody awaited me")

    with serve(echo, name="logs-late-report") as server:
        made: list[asyncio.Task[None]] = []
        server.loop.call_soon_threadsafe(lambda: made.append(server.loop.create_task(fails())))
        deadline = time.monotonic() + 3
        while not made and time.monotonic() < deadline:
            time.sleep(0.01)
    cycle: list[object] = [made.pop()]
    cycle.append(cycle)  # the task is freed only by the collection below, as it was in a later test's code
    del cycle
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        gc.collect()
    assert server.errors == ["ValueError: nobody awaited me"]
    assert [r for r in caplog.records if r.name == "asyncio"] == []


def test_a_lifespan_traceback_is_reported_by_its_last_line(no_leaks: Snapshot) -> None:
    """A lifespan startup failure, logged as a whole traceback, reaches the start error as one 'Type: message' line."""

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unreachable")
        yield

    with pytest.raises(ServerStartError) as failed:
        serve(Starlette(lifespan=lifespan), name="logs-bad-lifespan")
    assert "RuntimeError: database unreachable" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_a_server_on_the_callers_loop_gets_the_records_of_that_loops_tasks(
    no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    """A serve_on_loop() server gets the records of tasks on the caller's loop; after its stop they print again."""

    async def scenario() -> tuple[list[str], list[str]]:
        server = await serve_on_loop(crashing, name="logs-on-loop")
        try:
            outcome = await attempt(server.ws_url("/"), send=["on loop"])
            assert outcome.close_code == 1006
            deadline = time.monotonic() + 3
            while not server.errors and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            logging.getLogger("uvicorn.error").warning("from a cell on the same loop")
        finally:
            await server.stop()
        errors_while_serving = server.errors
        logging.getLogger("uvicorn.error").warning("after stop")
        return errors_while_serving, server.log.lines

    errors, lines = asyncio.run(scenario())
    assert errors == ["RuntimeError: handler crashed on 'on loop'"]
    assert lines == ["RuntimeError: handler crashed on 'on loop'", "from a cell on the same loop"]
    assert capsys.readouterr().err == "[uvicorn warning] after stop\n"


def test_loop_matcher_matches_only_while_that_loop_runs_on_this_thread() -> None:
    """loop_matcher(loop) claims records emitted while that loop runs on the current thread, and no others."""
    loop = asyncio.new_event_loop()
    try:
        match = server_logs.loop_matcher(loop)
        some_record = record(logging.ERROR, "x")

        async def inside() -> bool:
            return match(some_record)

        async def other_loop() -> bool:
            return match(some_record)

        assert loop.run_until_complete(inside()) is True
        assert match(some_record) is False  # no loop running here
        assert asyncio.run(other_loop()) is False
    finally:
        loop.close()


def test_an_exception_message_with_line_breaks_still_gives_one_line_and_keeps_a_trailing_colon() -> None:
    """Line breaks in an exception's message become spaces, and a colon the message ends with is kept."""
    log = ServerLog()
    for exc in (RuntimeError("a\nb"), ValueError("ends with colon:")):
        try:
            raise exc
        except Exception:
            log.add(logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "boom", None, sys.exc_info()))
    assert log.errors == ["RuntimeError: a b", "ValueError: ends with colon:"]
