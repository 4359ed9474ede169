"""Tests for helpers.slow_clients: the scene stalls a naive fan-out, spares a queued one, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from helpers.clients import collect, connect
from helpers.fanout import FanOut
from helpers.servers import ThreadServer, serve
from helpers.slow_clients import SLOW_MESSAGES, SLOW_SIZE, slow_client_run, slow_client_scene, small_socket
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(60)


def sequential_app() -> Starlette:
    """A chat that awaits send_text() for each client in turn: one client that never reads stalls it."""
    clients: list[Any] = []

    async def chat(websocket: Any) -> None:
        await websocket.accept()
        clients.append(websocket)
        try:
            async for text in websocket.iter_text():
                for other in list(clients):
                    await other.send_text(text)
        finally:
            clients.remove(websocket)

    return Starlette(routes=[WebSocketRoute("/chat", chat)])


def queued_app() -> tuple[Starlette, FanOut]:
    """A FanOut chat whose members are named by their client's port, so a test can find the slow one."""
    hub = FanOut(max_queue=8, policy="drop-oldest")

    async def chat(websocket: Any) -> None:
        await websocket.accept()
        async with hub.connected(websocket, name=str(websocket.client.port)):
            async for text in websocket.iter_text():
                hub.publish(text)

    return Starlette(routes=[WebSocketRoute("/chat", chat)]), hub


@pytest.fixture
def queued() -> Iterator[tuple[ThreadServer, FanOut]]:
    """A queued (FanOut) chat served for one test."""
    app, hub = queued_app()
    with serve(app, name="slow-clients-queued") as server:
        yield server, hub


def test_small_socket_is_connected_non_blocking_and_has_a_small_receive_buffer() -> None:
    """small_socket() returns a non-blocking socket connected to the port, with a receive buffer of about 64 KiB."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = small_socket(listener.getsockname()[1])
        try:
            peer, _ = listener.accept()
            peer.close()
            assert sock.getpeername() == listener.getsockname()
            assert sock.getblocking() is False
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 2 * 65536  # Linux doubles what was set
        finally:
            sock.close()


def test_a_queued_fan_out_delivers_every_burst_message_to_the_reading_client(
    queued: tuple[ThreadServer, FanOut], no_leaks: Snapshot
) -> None:
    """Through a FanOut, the reading client gets all SLOW_MESSAGES, all of them published, while one never reads."""
    server, hub = queued

    async def scene_run() -> tuple[int, int, int, bool, int]:
        async with slow_client_scene(server) as scene:
            got = await scene.burst(5.0)
            slow = str(scene.slow_port)
            registered = server.run(_members(hub))
            return got, scene.published, len(registered), slow in registered, scene.slow_port

    got, published, members, slow_is_member, port = asyncio.run(scene_run())
    assert got == published == SLOW_MESSAGES
    assert members == 3 and slow_is_member and port > 0


async def _members(hub: FanOut) -> set[str]:
    """The names of the hub's members, read on the server's loop."""
    return set(hub.stats())


def test_bursts_number_their_messages_on_and_carry_a_tag(queued: tuple[ThreadServer, FanOut]) -> None:
    """A second burst continues the count of published messages; every message is a 4-digit tag and SLOW_SIZE x's."""
    server, _ = queued

    async def two_bursts() -> tuple[int, int, list[str | bytes]]:
        async with slow_client_scene(server) as scene:
            await scene.burst(5.0, count=2)
            first = scene.published
            async with connect(server.ws_url("/chat"), max_size=None, compression=None) as watcher:
                await asyncio.sleep(0.05)  # let the endpoint register it
                await scene.burst(5.0, count=3)
                seen: list[str | bytes] = []
                await collect(watcher, seen, expect=3)
            return first, scene.published, seen

    first, total, seen = asyncio.run(two_bursts())
    assert (first, total) == (2, 5)
    assert seen == [f"{n:04d}" + "x" * SLOW_SIZE for n in (2, 3, 4)]


def test_a_sequential_fan_out_is_stalled_by_the_client_that_never_reads(no_leaks: Snapshot) -> None:
    """Awaiting each client's send in turn, the reading client gets fewer than SLOW_MESSAGES within the window."""
    with serve(sequential_app(), name="slow-clients-sequential") as server:
        got, sent = asyncio.run(slow_client_run(server, window=1.0))
    assert sent == SLOW_MESSAGES
    assert got < SLOW_MESSAGES


def test_a_burst_with_stall_ends_once_a_copy_stops_coming_back() -> None:
    """With `stall`, a burst against a stalled fan-out returns before its window instead of waiting it out."""

    async def stalled(server: ThreadServer) -> tuple[int, float]:
        async with slow_client_scene(server) as scene:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await scene.burst(10.0, stall=0.3)
            return scene.published, loop.time() - started

    with serve(sequential_app(), name="slow-clients-stall") as server:
        published, took = asyncio.run(stalled(server))
    assert published < SLOW_MESSAGES
    assert took < 5.0


def test_leaving_the_scene_aborts_all_three_connections(queued: tuple[ThreadServer, FanOut]) -> None:
    """On exit the slow, fast and sender clients are all closed, even though the slow one never read."""
    server, _ = queued

    async def leave() -> list[Any]:
        async with slow_client_scene(server) as scene:
            await scene.burst(5.0, count=1)
            clients = [scene.slow, scene.fast, scene.sender]
        return [ws.transport.is_closing() for ws in clients]

    assert asyncio.run(leave()) == [True, True, True]
