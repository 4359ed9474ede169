"""Tests for helpers.faults.relay: forwarding, freezing each way, thawing, cutting, closing, stopping, bad arguments."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from helpers.clients import connect
from helpers.faults.relay import Relay, RelayStats, RelayUsageError, start_relay
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError, UsageTypeError
from tests.support import ROOT, Seen, Snapshot

pytestmark = pytest.mark.timeout(30)

QUIET = 0.3  # how long "nothing arrives" is watched for


def echo_app(seen: Seen) -> Starlette:
    """Echo each text; "bye" gets a close with 4000; every message and disconnect goes into `seen`."""

    async def endpoint(websocket: Any) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                seen.add("disconnect", message.get("code"))
                return
            seen.add("text", message["text"])
            if message["text"] == "bye":
                await websocket.close(4000)
                return
            await websocket.send_text(message["text"])

    return Starlette(routes=[WebSocketRoute("/echo", endpoint)])


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def scene() -> Iterator[tuple[ThreadServer, Relay, Seen]]:
    """An echo server, what its app saw, and a relay to it; stopped after the test."""
    seen = Seen()
    with serve(echo_app(seen), name="faults-relay-echo") as server, start_relay(server.port) as relay:
        yield server, relay, seen


async def recv_or_none(ws: Any, timeout: float = QUIET) -> Any:
    """The next message, or None if none arrives within `timeout`."""
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        return None


def test_the_relay_forwards_both_ways_and_passes_the_servers_close_on(
    scene: tuple[ThreadServer, Relay, Seen], no_leaks: Snapshot
) -> None:
    """Messages reach the server and replies come back through the relay; a close from the server gets through."""
    server, relay, seen = scene

    async def talk() -> tuple[str, RelayStats, int | None]:
        async with connect(relay.ws_url("echo")) as ws:
            await ws.send("hi")
            reply = await ws.recv()
            during = relay.stats()
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        return str(reply), during, closed.value.rcvd.code if closed.value.rcvd else None

    reply, during, code = asyncio.run(talk())
    assert relay.port != server.port and relay.target_port == server.port
    assert relay.ws_url("echo") == f"ws://127.0.0.1:{relay.port}/echo"
    assert reply == "hi" and code == 4000 and seen.of("text") == ["hi", "bye"]
    assert during.connections == 1 and during.accepted == 1 and during.frozen == ()
    assert during.to_server > 0 and during.to_client > 0
    assert wait_until(lambda: relay.stats().connections == 0)


def test_freeze_to_server_holds_the_clients_messages_while_its_sends_return(
    scene: tuple[ThreadServer, Relay, Seen],
) -> None:
    """Frozen to_server: the client's send returns at once, the server gets nothing, and thaw() delivers it."""
    _, relay, seen = scene

    async def talk() -> tuple[float, list[Any], RelayStats, Any]:
        async with connect(relay.ws_url("/echo")) as ws:
            relay.freeze("to_server")
            started = time.monotonic()
            await ws.send("waits")
            took = time.monotonic() - started
            await asyncio.sleep(QUIET)
            while_frozen, stats = seen.of("text"), relay.stats()
            relay.thaw()
            return took, while_frozen, stats, await ws.recv()

    took, while_frozen, stats, reply = asyncio.run(talk())
    assert took < 0.1 and while_frozen == [] and stats.frozen == ("to_server",)
    assert reply == "waits" and seen.of("text") == ["waits"] and relay.stats().frozen == ()


def test_freeze_to_client_lets_messages_in_but_holds_the_replies(scene: tuple[ThreadServer, Relay, Seen]) -> None:
    """Frozen to_client: the server gets the message, its reply waits until thaw()."""
    _, relay, seen = scene

    async def talk() -> tuple[Any, Any]:
        async with connect(relay.ws_url("/echo")) as ws:
            relay.freeze("to_client")
            await ws.send("ping-me")
            held = await recv_or_none(ws)
            relay.thaw("to_client")
            return held, await ws.recv()

    held, reply = asyncio.run(talk())
    assert seen.of("text") == ["ping-me"]
    assert held is None and reply == "ping-me"


def test_freeze_both_holds_each_way_and_thaw_delivers_in_order(scene: tuple[ThreadServer, Relay, Seen]) -> None:
    """Frozen both ways nothing moves; after thaw() the server gets every message in order and each reply returns."""
    _, relay, seen = scene

    async def talk() -> tuple[Any, list[Any], tuple[str, ...], list[Any]]:
        async with connect(relay.ws_url("/echo")) as ws:
            relay.freeze()
            for text in ("1", "2", "3"):
                await ws.send(text)
            held = await recv_or_none(ws)
            arrived, frozen = seen.of("text"), relay.stats().frozen
            relay.thaw()
            return held, arrived, frozen, [await ws.recv() for _ in range(3)]

    held, arrived, frozen, replies = asyncio.run(talk())
    assert held is None and arrived == [] and frozen == ("to_server", "to_client")
    assert replies == ["1", "2", "3"] and seen.of("text") == ["1", "2", "3"]


def test_a_freeze_applies_to_connections_opened_after_it(scene: tuple[ThreadServer, Relay, Seen]) -> None:
    """A handshake through a relay frozen beforehand never completes (the TCP connect does); after thaw() one does."""
    _, relay, _ = scene
    relay.freeze("to_client")

    async def talk() -> Any:
        with pytest.raises(TimeoutError):
            async with connect(relay.ws_url("/echo"), open_timeout=QUIET):
                pass
        relay.thaw()
        async with connect(relay.ws_url("/echo")) as ws:
            await ws.send("after")
            return await ws.recv()

    assert asyncio.run(talk()) == "after"
    assert relay.stats().accepted == 2


def test_a_frozen_sender_keeps_writing_until_the_kernel_buffers_fill_then_gets_it_all(no_leaks: Snapshot) -> None:
    """Frozen to_server, a client's non-blocking sends take megabytes before they would block; thaw() delivers all."""
    with socket.create_server(("127.0.0.1", 0)) as target, start_relay(target.getsockname()[1]) as relay:
        relay.freeze("to_server")
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            peer, _ = target.accept()
            with peer:
                client.setblocking(False)
                sent = bytearray()
                with pytest.raises(BlockingIOError):
                    while True:
                        chunk = bytes([len(sent) % 251]) * 65536
                        sent += chunk[: client.send(chunk)]
                peer.settimeout(QUIET)
                with pytest.raises(TimeoutError):
                    peer.recv(1)
                relay.thaw()
                peer.settimeout(2.0)
                got = bytearray()
                while len(got) < len(sent):
                    got += peer.recv(1 << 20)
    assert len(sent) > 1_000_000
    assert got == sent


def test_a_frozen_path_is_noticed_by_the_servers_keepalive_only(no_leaks: Snapshot) -> None:
    """Frozen both ways, uvicorn's unanswered ping drops the client within interval + timeout; the client stays open."""
    seen = Seen()
    server = serve(echo_app(seen), name="faults-relay-keepalive", ws_ping_interval=0.1, ws_ping_timeout=0.2)
    with server, start_relay(server.port) as relay:

        async def talk() -> tuple[list[Any], float, str, ConnectionClosed]:
            async with connect(relay.ws_url("/echo"), ping_interval=None) as ws:
                await asyncio.sleep(QUIET)  # pings come and go through the open path
                answered = seen.of("disconnect")
                relay.freeze()
                frozen_at = time.monotonic()
                while not seen.of("disconnect") and time.monotonic() - frozen_at < 2:
                    await asyncio.sleep(0.01)
                noticed, state = time.monotonic() - frozen_at, ws.state.name
                relay.thaw()
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return answered, noticed, state, closed.value

        answered, noticed, state, closed = asyncio.run(talk())
    assert answered == [] and seen.of("disconnect") == [1005]  # uvicorn sent 1011; its app is told 1005
    assert noticed < 1.0 and state == "OPEN"  # ping_interval + ping_timeout is 0.3 s; the rest is slack for a busy CI
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (1011, "keepalive ping timeout")


def test_cut_resets_both_sides_without_a_close_frame(scene: tuple[ThreadServer, Relay, Seen]) -> None:
    """cut() gives the client ConnectionClosedError (reset, no close frame either way) and the app a disconnect."""
    _, relay, seen = scene

    async def talk() -> tuple[int, ConnectionClosed]:
        async with connect(relay.ws_url("/echo")) as ws:
            await ws.send("x")
            await ws.recv()
            count = relay.cut()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return count, closed.value

    count, closed = asyncio.run(talk())
    assert count == 1 and isinstance(closed, ConnectionClosedError)
    assert closed.rcvd is None and closed.sent is None and isinstance(closed.__cause__, ConnectionResetError)
    assert wait_until(lambda: seen.of("disconnect") == [1005])  # uvicorn's code for a lost connection
    assert wait_until(lambda: relay.stats().connections == 0)


def test_close_connections_ends_both_sides_with_a_fin(scene: tuple[ThreadServer, Relay, Seen]) -> None:
    """close_connections() gives the client an end of stream (no close frame, no reset) and the app a disconnect."""
    _, relay, seen = scene

    async def talk() -> tuple[int, ConnectionClosed]:
        async with connect(relay.ws_url("/echo")) as ws:
            await ws.send("x")
            await ws.recv()
            count = relay.close_connections()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return count, closed.value

    count, closed = asyncio.run(talk())
    assert count == 1 and closed.rcvd is None and isinstance(closed.__cause__, EOFError)
    assert wait_until(lambda: seen.of("disconnect") == [1005])
    assert wait_until(lambda: relay.stats().connections == 0)


def test_stop_closes_connections_leaves_nothing_behind_and_is_idempotent(no_leaks: Snapshot) -> None:
    """stop() ends the client's connection and the relay's thread, port and sockets; again it does nothing."""
    seen = Seen()
    with serve(echo_app(seen), name="faults-relay-stop") as server:
        relay = start_relay(server.port)

        async def talk() -> ConnectionClosed:
            async with connect(relay.ws_url("/echo")) as ws:
                relay.stop()
                relay.stop()
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return closed.value

        closed = asyncio.run(talk())
        assert closed.rcvd is None and not relay.running and not relay.thread.is_alive()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", relay.port)) != 0
        with pytest.raises(RelayUsageError, match=r"start_relay\(server.port\)"):
            relay.freeze()


def test_relays_stop_at_interpreter_exit() -> None:
    """A script that starts a relay and never stops it exits promptly, cleanly and silently."""
    script = "from helpers.faults.relay import start_relay\nstart_relay(9)\nprint('started')\n"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=10, cwd=ROOT, check=False
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "started", "")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"target_port": 0}, UsageError, r"start_relay\(server.port\)"),
        ({"target_port": 70000}, UsageError, "ports are 1-65535"),
        ({"target_port": "8000"}, UsageTypeError, r"whole number \(int\)"),
        ({"target_port": 8000, "host": ""}, UsageError, "host is empty"),
        ({"target_port": 8000, "ready_timeout": 0}, UsageError, "above zero"),
    ],
)
def test_start_relay_refuses_impossible_arguments(
    arguments: dict[str, Any], error: type[Exception], message: str, no_leaks: Snapshot
) -> None:
    """Each impossible argument raises one usage error naming what to pass, and nothing is started."""
    with pytest.raises(error, match=message):
        start_relay(**arguments)


def test_start_relay_refuses_a_server_object_and_freeze_a_wrong_direction(
    scene: tuple[ThreadServer, Relay, Seen],
) -> None:
    """Passing the server itself asks for server.port; freeze/thaw name the three directions; ws_url wants a path."""
    server, relay, _ = scene
    with pytest.raises(UsageTypeError, match=r"start_relay\(server.port\), not a ThreadServer"):
        start_relay(server)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="'both', 'to_server', 'to_client'; got 'up'"):
        relay.freeze("up")
    with pytest.raises(UsageError, match="'both', 'to_server', 'to_client'"):
        relay.thaw("down")
    with pytest.raises(UsageError, match="pass only the path"):
        relay.ws_url("ws://127.0.0.1/echo")
