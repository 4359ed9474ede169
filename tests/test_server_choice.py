"""Tests for choosing the ASGI server: serve(server=...) and serve_process(server=...) with every name in SERVERS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from helpers import servers
from helpers.clients import attempt_sync, connect
from helpers.demo_apps import echo
from helpers.servers import MAX_MESSAGE_BYTES, SERVERS, ServerUsageError, serve, serve_process
from helpers.usage import UsageTypeError
from tests.support import Snapshot, assert_back_to, listening_ports

pytestmark = pytest.mark.timeout(60)

THREAD_SERVERS = [name for name in SERVERS if name != "daphne"]
CYCLES = 20


async def echo_once(url: str, message: str = "hello") -> str:
    """Send one message with a real websockets client and return the server's reply."""
    async with connect(url) as ws:
        await ws.send(message)
        reply = await asyncio.wait_for(ws.recv(), 2.0)
    assert isinstance(reply, str)
    return reply


def test_servers_lists_every_name_with_uvicorn_first() -> None:
    """SERVERS names the five servers, the default (uvicorn) first."""
    assert SERVERS == ("uvicorn", "uvicorn-websockets", "uvicorn-wsproto", "hypercorn", "daphne")


@pytest.mark.parametrize("server", THREAD_SERVERS)
def test_each_thread_server_starts_echoes_and_stops(no_leaks: Snapshot, server: str) -> None:
    """serve(echo, server=name) accepts on a free loopback port, echoes a message, and stops for good."""
    with serve(echo, server=server, name=f"choice-{server}") as handle:
        assert handle.server == server and handle.running
        assert handle.url == f"http://127.0.0.1:{handle.port}"
        assert asyncio.run(echo_once(handle.ws_url("/"))) == "hello"
        assert handle.run(asyncio.sleep(0, result=42)) == 42  # the handle's loop is the server's loop
        assert servers.running_servers() == {f"choice-{server}": handle.url}
    assert not handle.running
    handle.stop()  # idempotent
    assert handle.port not in listening_ports()
    assert handle.errors == []


@pytest.mark.parametrize("server", SERVERS)
def test_each_process_server_starts_echoes_and_stops(no_leaks: Snapshot, server: str) -> None:
    """serve_process("helpers.demo_apps:echo", server=name) echoes a message and its child exits with 0 on stop."""
    with serve_process("helpers.demo_apps:echo", server=server, name=f"proc-{server}") as handle:
        assert handle.server == server and handle.running
        assert asyncio.run(echo_once(handle.ws_url("/"))) == "hello"
    assert handle.process.returncode == 0, handle.output
    assert handle.errors == []


@pytest.mark.timeout(20)  # about 0.1 s a cycle; 20 s means something hangs
@pytest.mark.parametrize("server", THREAD_SERVERS)
def test_twenty_thread_server_cycles_leave_nothing_behind(server: str) -> None:
    """20 serve/echo/stop cycles leave threads, fds and listening ports as they were, each well under a second."""
    serve(echo, server=server, name="warm-up").stop()  # the first start imports the server's modules
    before = Snapshot.take()
    started = time.monotonic()
    for _ in range(CYCLES):
        with serve(echo, server=server, name="cycle") as handle:
            assert attempt_sync(handle.ws_url("/"), send=["x"], receive=1).messages == ["x"]
    per_cycle = (time.monotonic() - started) / CYCLES
    assert_back_to(before)
    assert per_cycle < 0.5, f"{server}: {per_cycle:.3f} s per cycle"


# Cycles per server in a child process: 20 for daphne, which has no thread form, so that every server is cycled 20
# times one way or the other; 5 for the rest, whose 20 thread cycles are above (each child start costs about 0.5 s
# of CPU on imports, which the suite's other tests wait for).
PROCESS_CYCLES = {name: CYCLES if name == "daphne" else 5 for name in SERVERS}


@pytest.mark.timeout(90)  # a child takes about 0.5 s to start (imports) and 0.2 s to stop
@pytest.mark.parametrize("server", SERVERS)
def test_process_server_cycles_leave_nothing_behind(no_leaks: Snapshot, server: str) -> None:
    """serve_process/echo/stop cycles (20 for daphne) leave no child, fd, thread or port, and every child exits 0."""
    for _ in range(PROCESS_CYCLES[server]):
        with serve_process("helpers.demo_apps:echo", server=server, name="proc-cycle") as handle:
            assert attempt_sync(handle.ws_url("/"), send=["x"], receive=1).messages == ["x"]
        assert handle.process.returncode == 0, handle.output


@pytest.mark.parametrize("start", [serve, serve_process])
def test_an_unknown_server_name_lists_the_valid_names(no_leaks: Snapshot, start: object) -> None:
    """A name not in SERVERS is refused before anything starts, with every valid name in the message."""
    app = echo if start is serve else "helpers.demo_apps:echo"
    with pytest.raises(ServerUsageError, match="unknown server 'gunicorn'") as caught:
        start(app, server="gunicorn")  # type: ignore[operator]
    assert all(repr(name) in str(caught.value) for name in SERVERS)
    with pytest.raises(UsageTypeError, match="server must be a str"):
        start(app, server=None)  # type: ignore[operator]
    assert servers.running_servers() == {}


def test_daphne_in_a_thread_says_to_use_a_process(no_leaks: Snapshot) -> None:
    """serve(..., server="daphne") is refused, naming the reason (one reactor per process) and serve_process."""
    with pytest.raises(ServerUsageError, match="reactor is one per process") as caught:
        serve(echo, server="daphne")
    assert 'serve_process("module:app", server="daphne")' in str(caught.value)


def test_ws_and_a_uvicorn_server_name_together_are_refused(no_leaks: Snapshot) -> None:
    """ws= would contradict the protocol the name chooses, so it is refused with what to pass instead."""
    with pytest.raises(ServerUsageError, match="pass only server="):
        serve(echo, server="uvicorn-wsproto", ws="websockets")


def test_a_setting_hypercorn_does_not_have_is_refused(no_leaks: Snapshot) -> None:
    """serve(server="hypercorn", ws_max_size=...) is refused: the option is uvicorn's, hypercorn would ignore it."""
    with pytest.raises(servers.UsageError, match="'ws_max_size' is not a hypercorn Config setting"):
        serve(echo, server="hypercorn", ws_max_size=10)


async def echoed_or_close_code(url: str, size: int) -> int | str:
    """ "echoed" if a binary message of `size` bytes comes back, else the code the server closed with."""
    async with connect(url, max_size=None) as ws:  # the client's own 1 MiB limit must not be what is measured
        await ws.send(bytes(size))
        try:
            reply = await asyncio.wait_for(ws.recv(), 5.0)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006
    return "echoed" if reply == bytes(size) else "garbled"


@pytest.mark.parametrize(("server", "limit"), [("uvicorn-wsproto", MAX_MESSAGE_BYTES), ("hypercorn", 16 * 1024 * 1024)])
def test_the_message_limit_is_the_helpers_for_uvicorn_and_the_librarys_for_hypercorn(
    no_leaks: Snapshot, server: str, limit: int
) -> None:
    """uvicorn gets MAX_MESSAGE_BYTES from make_config; hypercorn keeps its own 16 MiB default (1009 above it)."""
    with serve(echo, server=server, name="limit") as handle:
        assert asyncio.run(echoed_or_close_code(handle.ws_url("/"), limit)) == "echoed"
        assert asyncio.run(echoed_or_close_code(handle.ws_url("/"), limit + 1)) == 1009


@pytest.mark.timeout(30)
def test_library_defaults_give_a_process_served_uvicorn_its_own_16_mib_limit(no_leaks: Snapshot) -> None:
    """serve_process(..., library_defaults=True) leaves out the lesson's 1 MiB limit: uvicorn's 16 MiB applies."""
    big = MAX_MESSAGE_BYTES + 1
    with serve_process("helpers.demo_apps:echo", name="lesson-limits") as handle:
        assert asyncio.run(echoed_or_close_code(handle.ws_url("/"), big)) == 1009
    with serve_process("helpers.demo_apps:echo", name="library-limits", library_defaults=True) as handle:
        assert asyncio.run(echoed_or_close_code(handle.ws_url("/"), big)) == "echoed"
        assert asyncio.run(echoed_or_close_code(handle.ws_url("/"), 16 * 1024 * 1024 + 1)) == 1009


def test_library_defaults_must_be_a_bool() -> None:
    """library_defaults="yes" is refused with a type error before any process starts."""
    with pytest.raises(UsageTypeError, match="library_defaults must be True or False"):
        serve_process("helpers.demo_apps:echo", library_defaults="yes")  # type: ignore[arg-type]


def test_hypercorn_errors_are_kept_on_the_handle(no_leaks: Snapshot) -> None:
    """An exception in the app under hypercorn lands in handle.errors (its error log goes to the ServerLog)."""

    async def broken(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "websocket":
            raise RuntimeError("handler broke")

    with serve(broken, server="hypercorn", name="broken") as handle:
        attempt_sync(handle.ws_url("/"), send=["x"])
        deadline = time.monotonic() + 2.0
        while not handle.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any("handler broke" in line for line in handle.errors), handle.log.lines


@pytest.mark.parametrize("server", SERVERS)
def test_a_child_handler_crash_shows_in_errors_under_every_server(
    no_leaks: Snapshot, tmp_path: Path, server: str
) -> None:
    """ProcessServer.errors reads each server's error log format (uvicorn's, hypercorn's, daphne's) from stderr."""
    (tmp_path / "crashy.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'websocket':\n"
        "        await receive()\n"
        "        await send({'type': 'websocket.accept'})\n"
        "        await receive()\n"
        "        raise RuntimeError('handler crashed in the child')\n"
    )
    with serve_process("crashy:app", server=server, name="crashy", app_dir=tmp_path) as handle:
        attempt_sync(handle.ws_url("/"), send=["x"])
        deadline = time.monotonic() + 3  # daphne looks at finished applications once a second
        while "RuntimeError: handler crashed in the child" not in handle.errors and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "RuntimeError: handler crashed in the child" in handle.errors, handle.output


async def stop_while_connected(url: str, stop: Callable[[], None]) -> tuple[float, int | str]:
    """How long `stop` takes with a client connected, and the close code that client then sees."""
    async with connect(url) as ws:
        await ws.send("x")
        await ws.recv()
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, stop)
        took = time.monotonic() - started
        try:
            await asyncio.wait_for(ws.recv(), 1.0)
        except ConnectionClosed as exc:
            return took, exc.rcvd.code if exc.rcvd else 1006
    return took, "still open"


@pytest.mark.parametrize(
    ("server", "in_process", "most_seconds", "code"),
    [
        ("uvicorn", False, 1.0, 1012),
        ("uvicorn-websockets", False, 1.0, 1012),
        ("uvicorn-wsproto", False, 1.0, 1012),
        ("hypercorn", False, 4.0, 1011),  # waits out its graceful_timeout (3 s), then closes what is left
        ("hypercorn", True, 4.5, 1011),
        ("daphne", True, 2.0, 1006),  # stops the reactor: the connection just drops
    ],
)
def test_stop_with_a_client_connected_is_bounded_and_closes_it_the_servers_way(
    no_leaks: Snapshot, server: str, in_process: bool, most_seconds: float, code: int
) -> None:
    """stop() with a client still connected returns in bounded time; each server closes that client its own way."""
    if in_process:
        handle: servers.ThreadServer | servers.ProcessServer = serve_process(
            "helpers.demo_apps:echo", server=server, name="held"
        )
    else:
        handle = serve(echo, server=server, name="held")
    took, seen = asyncio.run(stop_while_connected(handle.ws_url("/"), handle.stop))
    assert took < most_seconds and seen == code
