"""Tests for helpers.fanout: every healthy client gets every message in order, and slow clients are bounded."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import connect
from helpers.fanout import FanOut, FanOutError, Policy
from helpers.loops import run_on
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError, UsageTypeError

pytestmark = pytest.mark.timeout(60)

BIG = (
    "x" * 256_000
)  # sent uncompressed (compression=None): 60 of them overflow the buffers of a client that never reads
MESSAGES = 60


def chat_app(hub: FanOut) -> Starlette:
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.connected(websocket, name=websocket.query_params.get("name")):
            async for text in websocket.iter_text():
                hub.publish(text)

    return Starlette(routes=[WebSocketRoute("/chat", chat)])


def small_socket(server: ThreadServer) -> socket.socket:
    """A connected client socket with a small receive buffer (no kernel autotuning to absorb megabytes)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


def hub_server(name: str, **options: object) -> tuple[FanOut, ThreadServer]:
    hub = FanOut(**options)  # type: ignore[arg-type]
    return hub, serve(chat_app(hub), name=name)


@pytest.fixture
def fair() -> Iterator[tuple[FanOut, ThreadServer]]:
    hub, server = hub_server("fanout-fair", max_queue=50)
    with server:
        yield hub, server


async def wait_for_members(server: ThreadServer, hub: FanOut, count: int) -> None:
    for _ in range(200):
        if run_on(server.loop, _count(hub)) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"hub never had {count} members")


async def _count(hub: FanOut) -> int:
    return len(hub)


async def receive_n(ws: ClientConnection, n: int, timeout: float = 5) -> list[str | bytes]:
    return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(n)]


def test_every_client_gets_every_message_once_in_order(fair: tuple[FanOut, ThreadServer]) -> None:
    """3 clients x 20 messages: each client receives all 60, each once, in each sender's order."""
    hub, server = fair

    async def scenario() -> list[list[str | bytes]]:
        clients = [await connect(server.ws_url(f"/chat?name=c{i}")) for i in range(3)]
        await wait_for_members(server, hub, 3)
        for i, ws in enumerate(clients):
            for n in range(20):
                await ws.send(f"c{i}:{n}")
        received = [await receive_n(ws, 60) for ws in clients]
        for ws in clients:
            await ws.close()
        return received

    received = asyncio.run(scenario())
    for messages in received:
        assert sorted(messages) == sorted(f"c{i}:{n}" for i in range(3) for n in range(20))
        for i in range(3):
            mine = [m for m in messages if isinstance(m, str) and m.startswith(f"c{i}:")]
            assert mine == [f"c{i}:{n}" for n in range(20)]


def test_leaving_clients_are_unregistered(fair: tuple[FanOut, ThreadServer]) -> None:
    """Clients that close (cleanly or not) leave the hub empty; no writer task is left behind."""
    hub, server = fair

    async def scenario() -> None:
        clients = [await connect(server.ws_url("/chat")) for _ in range(4)]
        await wait_for_members(server, hub, 4)
        for ws in clients[:2]:
            await ws.close()
        for ws in clients[2:]:
            ws.transport.abort()  # an abrupt drop, no close frame
        await wait_for_members(server, hub, 0)

    asyncio.run(scenario())

    async def fanout_tasks() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("fanout-")]

    assert run_on(server.loop, fanout_tasks()) == []


def slow_client_scenario(
    policy: Policy, read_delay: float = 0.0
) -> tuple[FanOut, list[int], str, dict[str, int | bool]]:
    """One client never reads while 60 big messages are published; returns what the others and the hub saw."""
    hub, server = hub_server(f"fanout-{policy}", max_queue=4, policy=policy)
    with server:

        async def scenario() -> tuple[list[int], str, dict[str, int | bool]]:
            slow = await connect(
                server.ws_url("/chat?name=slow"),
                max_size=None,
                max_queue=1,
                compression=None,
                sock=small_socket(server),
            )
            healthy = [
                await connect(server.ws_url(f"/chat?name=h{i}"), max_size=None, compression=None) for i in range(2)
            ]
            sender = await connect(server.ws_url("/chat?name=sender"), max_size=None, compression=None)
            await wait_for_members(server, hub, 4)
            counts = [0, 0]

            async def drain(i: int, ws: ClientConnection) -> None:
                while counts[i] < MESSAGES:
                    await asyncio.wait_for(ws.recv(), 10)
                    counts[i] += 1

            readers = [asyncio.create_task(drain(i, ws)) for i, ws in enumerate(healthy)]
            # The sender waits for its own copy before the next message: a pace healthy readers keep up with.
            for n in range(MESSAGES):
                await sender.send(f"{n:04d}" + BIG)
                assert (await asyncio.wait_for(sender.recv(), 10))[:4] == f"{n:04d}"
            await asyncio.wait_for(asyncio.gather(*readers), 20)
            slow_stats = run_on(server.loop, _stats(hub, "slow"))
            # Now let the slow client read what reached it, to see how it ended.
            await asyncio.sleep(read_delay)
            ending = "still open"
            try:
                while True:
                    await asyncio.wait_for(slow.recv(), 0.5)
            except ConnectionClosed as exc:
                ending = f"closed {exc.rcvd.code if exc.rcvd else 1006}"
            except TimeoutError:
                pass
            for ws in [slow, sender, *healthy]:
                await ws.close()
            return counts, ending, slow_stats

        counts, ending, slow_stats = asyncio.run(scenario())
    return hub, counts, ending, slow_stats


async def _stats(hub: FanOut, name: str) -> dict[str, int | bool]:
    for member in hub.members.values():
        if member.name == name:
            return {"queued": member.queued, "dropped": member.dropped, "evicted": member.evicted}
    return {"evicted": name in hub.evicted}


def test_an_evicted_client_that_reads_late_still_learns_why() -> None:
    """The 1013 close is not given up on: a slow client that starts reading 2 s after eviction still gets it."""
    _, counts, ending, _ = slow_client_scenario("disconnect", read_delay=2.0)
    assert counts == [MESSAGES, MESSAGES]
    assert ending == "closed 1013"


def test_eviction_frees_the_queue_at_once() -> None:
    """An evicted member's backlog is emptied when it is evicted, not when its endpoint returns."""

    async def scenario() -> tuple[int, bool]:
        hub = FanOut(max_queue=2)
        member = await hub.register(StuckSocket(), name="stuck")  # type: ignore[arg-type]
        for n in range(5):
            hub.publish(f"m{n}")
        await asyncio.sleep(0)
        queued, evicted = member.queued, member.evicted
        await hub.aclose()
        return queued, evicted

    assert asyncio.run(scenario()) == (0, True)


class StuckSocket:
    """Stands in for a WebSocket whose sends never complete (a client that never reads)."""

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        await asyncio.Event().wait()


def test_disconnect_policy_evicts_the_slow_client_and_spares_the_rest() -> None:
    """With policy 'disconnect', a client that never reads is evicted and closed with 1013; others get all 60."""
    hub, counts, ending, slow_stats = slow_client_scenario("disconnect")
    assert counts == [MESSAGES, MESSAGES]
    assert hub.evicted == ["slow"] and slow_stats == {"evicted": True}
    assert ending == "closed 1013"


def test_drop_oldest_policy_keeps_the_slow_queue_bounded() -> None:
    """With policy 'drop-oldest', the slow client stays but its queue never exceeds max_queue and it loses messages."""
    hub, counts, _, slow_stats = slow_client_scenario("drop-oldest")
    assert counts == [MESSAGES, MESSAGES]
    assert hub.evicted == []
    assert slow_stats["queued"] <= 4
    assert slow_stats["dropped"] > 0


def test_publish_refuses_objects_with_a_hint() -> None:
    """publish(dict) raises TypeError telling you to encode it first."""
    with pytest.raises(TypeError, match=r"publish\(\) takes str or bytes, not dict.*json.dumps"):
        FanOut().publish({"a": 1})  # type: ignore[arg-type]


def test_bad_settings_are_refused() -> None:
    """An unknown policy, a zero or non-integer queue, or a reserved close code is refused with what to pass."""
    with pytest.raises(FanOutError, match=r"policy must be one of"):
        FanOut(policy="block")  # type: ignore[arg-type]
    with pytest.raises(FanOutError, match=r"max_queue must be at least 1"):
        FanOut(max_queue=0)
    with pytest.raises(UsageTypeError, match=r"max_queue must be a whole number of messages"):
        FanOut(max_queue="100")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"close_code 1006 cannot be sent in a close frame"):
        FanOut(close_code=1006)
