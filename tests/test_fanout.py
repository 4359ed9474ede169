"""Tests for helpers.fanout: every healthy client gets every message in order, and slow clients are bounded."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import connect
from helpers.fanout import FanOut, FanOutError, Member, Policy, PublishReport
from helpers.loops import await_on, run_on
from helpers.servers import ThreadServer, serve
from helpers.slow_clients import small_socket
from helpers.usage import UsageError, UsageTypeError

pytestmark = pytest.mark.timeout(60)

BIG = (
    "x" * 256_000
)  # sent uncompressed (compression=None): 60 of them overflow the buffers of a client that never reads
MESSAGES = 60
T = TypeVar("T")


def chat_app(hub: FanOut) -> Starlette:
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.connected(websocket, name=websocket.query_params.get("name")):
            async for text in websocket.iter_text():
                hub.publish(text)

    return Starlette(routes=[WebSocketRoute("/chat", chat)])


async def connect_never_reading(server: ThreadServer) -> ClientConnection:
    """A client named slow that never reads: a library queue of one frame and a small fixed receive buffer."""
    return await connect(
        server.ws_url("/chat?name=slow"), max_size=None, max_queue=1, compression=None, sock=small_socket(server.port)
    )


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
            slow = await connect_never_reading(server)
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

    async def send(self, message: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------------------------------
# publish() writes to idle clients itself; a send that has to wait goes to the client's writer task.


class Valve:
    """Holds one connection's sends until the test lets them through: a transport that is not writable, on cue.

    Shut, every send waits for a credit; `allow(n)` lets n more through in order, `open()` all of them. While
    the valve is open a send passes without suspending, so it behaves as uvicorn's own send to a writable
    connection. Used only on the server's loop.
    """

    def __init__(self) -> None:
        self.credits = math.inf
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.cancelled = 0  # sends that were waiting here when CancelledError reached them

    @property
    def waiting(self) -> int:
        return sum(not waiter.done() for waiter in self.waiters)

    async def wait(self) -> None:
        if self.credits > 0 and not self.waiters:
            self.credits -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def shut(self) -> None:
        self.credits = 0

    def allow(self, n: float) -> None:
        self.credits = n
        while self.credits > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.credits -= 1

    def open(self) -> None:
        self.allow(math.inf)


class Lab:
    """A FanOut served by uvicorn at /member?name=N; each member's `websocket.send` passes through its Valve."""

    def __init__(self, name: str, linger: bool = False, **options: object) -> None:
        self.hub = FanOut(**options)  # type: ignore[arg-type]
        self.valves: dict[str, Valve] = collections.defaultdict(Valve)
        self.gone: set[str] = set()  # members whose client has left, as the server saw it
        self.linger = linger  # keep a member registered after its client left (until the server stops)
        self.server = serve(self.app(), name=name)

    def app(self) -> Callable[..., Awaitable[None]]:
        async def member(websocket: WebSocket) -> None:
            name = websocket.query_params["name"]
            await websocket.accept()
            async with self.hub.connected(websocket, name=name):
                await websocket.receive()  # these clients never send: this is their disconnect
                self.gone.add(name)
                if self.linger:
                    await asyncio.Event().wait()

        inner = Starlette(routes=[WebSocketRoute("/member", member)])

        async def valved(scope: dict[str, Any], receive: Any, send: Any) -> None:
            valve = self.valves[parse_qs(scope.get("query_string", b"").decode()).get("name", [""])[0]]

            async def gated(message: dict[str, Any]) -> None:
                if message["type"] == "websocket.send":
                    await valve.wait()
                await send(message)

            await inner(scope, receive, gated)

        return valved

    async def on_server(self, action: Callable[[], T]) -> T:
        """Run a plain function on the server's loop (where the hub and the valves live) and return its result."""

        async def call() -> T:
            return action()

        return await await_on(self.server.loop, call())

    async def join(self, *names: str) -> dict[str, ClientConnection]:
        clients = {name: await connect(self.server.ws_url(f"/member?name={name}")) for name in names}
        await self.until(lambda: len(self.hub) == len(names), f"{names} never all registered")
        return clients

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(500):
            if await self.on_server(condition):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(what)

    def member(self, name: str) -> Member:
        return next(m for m in self.hub.members.values() if m.name == name)

    def publish(self, message: str | bytes) -> Awaitable[PublishReport]:
        return self.on_server(lambda: self.hub.publish(message))

    def fanout_tasks(self) -> Awaitable[list[str]]:
        return self.on_server(
            lambda: sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("fanout-"))
        )


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab("fanout-lab", max_queue=4)
    with lab.server:
        yield lab


@pytest.fixture
def lingering() -> Iterator[Lab]:
    lab = Lab("fanout-lingering", linger=True, max_queue=4)
    with lab.server:
        yield lab


def test_publish_writes_to_idle_clients_itself(lab: Lab) -> None:
    """A client whose writer is idle gets the message written by publish() itself: sent before it returns."""

    async def scenario() -> tuple[PublishReport, list[int], list[str | bytes]]:
        clients = await lab.join("a", "b")

        def publish_and_count() -> tuple[PublishReport, list[int]]:
            report = lab.hub.publish("hello")
            return report, [lab.member(name).sent for name in ("a", "b")]  # no await in between: no task ran

        report, sent = await lab.on_server(publish_and_count)
        received = [await asyncio.wait_for(ws.recv(), 5) for ws in clients.values()]
        for ws in clients.values():
            await ws.close()
        return report, sent, received

    report, sent, received = asyncio.run(scenario())
    assert (report.written, report.queued) == (2, 0)
    assert sent == [1, 1]
    assert received == ["hello", "hello"]


def test_a_send_that_has_to_wait_goes_to_the_writer_and_order_holds(lab: Lab) -> None:
    """A send that suspends is finished by the writer task, later messages queue behind it, and order holds."""

    async def scenario() -> dict[str, Any]:
        clients = await lab.join("slow", "fast")
        await lab.on_server(lab.valves["slow"].shut)
        first = await lab.publish("m0")
        slow_after_first = await lab.on_server(lambda: (lab.member("slow").sent, lab.member("slow").queued))
        later = [await lab.publish(f"m{n}") for n in (1, 2)]
        queued_while_shut = await lab.on_server(lambda: lab.member("slow").queued)
        await lab.on_server(lab.valves["slow"].open)
        slow_got = [await asyncio.wait_for(clients["slow"].recv(), 5) for _ in range(3)]
        await lab.until(lambda: not lab.member("slow").busy, "the slow member's writer never went idle")
        again = await lab.publish("m3")
        slow_got.append(await asyncio.wait_for(clients["slow"].recv(), 5))
        fast_got = [await asyncio.wait_for(clients["fast"].recv(), 5) for _ in range(4)]
        for ws in clients.values():
            await ws.close()
        return {
            "first": (first.written, first.queued),
            "slow_after_first": slow_after_first,
            "later": [(r.written, r.queued) for r in later],
            "queued_while_shut": queued_while_shut,
            "again": (again.written, again.queued),
            "slow_got": slow_got,
            "fast_got": fast_got,
        }

    seen = asyncio.run(scenario())
    assert seen["first"] == (1, 1)  # fast written at once; slow's send waits, handed to its writer
    assert seen["slow_after_first"] == (0, 0)  # not sent yet, and the waiting send is not in the queue
    assert seen["later"] == [(1, 1), (1, 1)]
    assert seen["queued_while_shut"] == 2
    assert seen["again"] == (2, 0)  # once its writer is idle again, publish() writes to it itself
    assert seen["slow_got"] == ["m0", "m1", "m2", "m3"]
    assert seen["fast_got"] == ["m0", "m1", "m2", "m3"]


def test_bytes_go_as_binary_frames_and_str_as_text_frames_on_both_paths(lab: Lab) -> None:
    """publish(bytes) arrives as a binary frame and publish(str) as text, written at once or by the writer."""

    async def scenario() -> list[str | bytes]:
        clients = await lab.join("a")
        await lab.publish(b"direct bytes")
        await lab.publish("direct text")
        await lab.on_server(lab.valves["a"].shut)
        await lab.publish(b"handed-over bytes")  # this send waits: the writer finishes it
        await lab.publish("queued text")
        await lab.publish(b"queued bytes")
        await lab.on_server(lab.valves["a"].open)
        got = [await asyncio.wait_for(clients["a"].recv(), 5) for _ in range(5)]
        await clients["a"].close()
        return got

    assert asyncio.run(scenario()) == [
        b"direct bytes",
        "direct text",
        b"handed-over bytes",
        "queued text",
        b"queued bytes",
    ]


def test_a_client_evicted_mid_batch_gets_what_was_sent_then_1013(lab: Lab) -> None:
    """Evicted while its writer is half-way through a batch: the rest is freed, the client sees m0, m1, then 1013."""

    async def scenario() -> dict[str, Any]:
        clients = await lab.join("slow")
        valve = lab.valves["slow"]
        await lab.on_server(valve.shut)
        for n in range(5):  # m0 handed to the writer, m1-m4 fill the queue (max_queue=4)
            await lab.publish(f"m{n}")
        await lab.on_server(lambda: valve.allow(2))  # m0 and m1 go out; m2 waits, m3 and m4 are still queued
        await lab.until(lambda: lab.member("slow").sent == 2 and valve.waiting == 1, "the batch never stopped at m2")
        queued_mid_batch = await lab.on_server(lambda: lab.member("slow").queued)
        await lab.publish("m5")
        await lab.publish("m6")  # the queue is full again: m3-m6
        member = await lab.on_server(lambda: lab.member("slow"))
        report = await lab.publish("m7")
        after = await lab.on_server(
            lambda: (member.evicted, member.queued, member.sent, valve.waiting, valve.cancelled)
        )
        got: list[str | bytes] = []
        ending = "still open"
        try:
            while True:
                got.append(await asyncio.wait_for(clients["slow"].recv(), 5))
        except ConnectionClosed as exc:
            ending = f"closed {exc.rcvd.code if exc.rcvd else 1006}"
        tasks = await lab.fanout_tasks()
        return {
            "queued_mid_batch": queued_mid_batch,
            "evicted": report.evicted,
            "after": after,
            "got": got,
            "ending": ending,
            "tasks": tasks,
        }

    seen = asyncio.run(scenario())
    assert seen["queued_mid_batch"] == 2  # m3 and m4: m2 is the send in flight
    assert seen["evicted"] == ["slow"]
    assert seen["after"] == (True, 0, 2, 0, 1)  # evicted, queue freed, two sent, the waiting send cancelled
    assert seen["got"] == ["m0", "m1"]
    assert seen["ending"] == "closed 1013"
    assert seen["tasks"] == []


def test_a_batch_interrupted_by_the_client_leaving_drops_it(lingering: Lab) -> None:
    """The client leaves while its writer waits mid-batch: the send fails, the member leaves, the rest is freed."""
    lab = lingering

    async def scenario() -> dict[str, Any]:
        clients = await lab.join("leaver", "stayer")
        valve = lab.valves["leaver"]
        await lab.on_server(valve.shut)
        for n in range(3):  # m0 handed to the writer, m1 and m2 queued
            await lab.publish(f"m{n}")
        member = await lab.on_server(lambda: lab.member("leaver"))
        clients["leaver"].transport.abort()
        await lab.until(lambda: "leaver" in lab.gone, "the server never saw the client leave")
        await lab.on_server(valve.open)  # m0's send now reaches uvicorn, which says the client is gone
        await lab.until(lambda: member.error is not None, "the failed send was never noticed")
        after = await lab.on_server(lambda: (member.sent, member.queued, lab.hub.members.get(member.websocket)))
        stayer_got = [await asyncio.wait_for(clients["stayer"].recv(), 5) for _ in range(3)]
        tasks = await lab.fanout_tasks()
        await clients["stayer"].close()
        return {"error": member.error, "after": after, "stayer_got": stayer_got, "tasks": tasks}

    seen = asyncio.run(scenario())
    assert seen["error"].startswith("WebSocketDisconnect")
    assert seen["after"] == (0, 0, None)  # nothing sent, the queue freed, out of the hub
    assert seen["stayer_got"] == ["m0", "m1", "m2"]
    assert seen["tasks"] == ["fanout-stayer"]


def test_a_send_that_fails_at_once_drops_only_that_client(lingering: Lab) -> None:
    """A send that fails inside publish() drops that member and stops its writer; the others still get it."""
    lab = lingering

    async def scenario() -> dict[str, Any]:
        clients = await lab.join("leaver", "stayer")
        member = await lab.on_server(lambda: lab.member("leaver"))
        clients["leaver"].transport.abort()
        await lab.until(lambda: "leaver" in lab.gone, "the server never saw the client leave")
        report = await lab.publish("hello")
        in_hub = await lab.on_server(lambda: member.websocket in lab.hub.members)
        await asyncio.sleep(0.05)  # let the cancelled writer finish
        tasks = await lab.fanout_tasks()
        stayer_got = await asyncio.wait_for(clients["stayer"].recv(), 5)
        await clients["stayer"].close()
        return {
            "report": (report.written, report.queued),
            "error": member.error,
            "in_hub": in_hub,
            "tasks": tasks,
            "stayer_got": stayer_got,
        }

    seen = asyncio.run(scenario())
    assert seen["report"] == (1, 0)
    assert seen["error"].startswith("WebSocketDisconnect")
    assert seen["in_hub"] is False
    assert seen["tasks"] == ["fanout-stayer"]
    assert seen["stayer_got"] == "hello"


def test_unregister_cancels_a_send_the_writer_took_over(lab: Lab) -> None:
    """The endpoint ends while the writer waits on a handed-over send: the cancellation reaches that send."""

    async def scenario() -> dict[str, Any]:
        clients = await lab.join("a")
        valve = lab.valves["a"]
        await lab.on_server(valve.shut)
        await lab.publish("m0")
        await lab.publish("m1")
        await lab.until(lambda: valve.waiting == 1, "the writer never took the send over")
        member = await lab.on_server(lambda: lab.member("a"))
        await clients["a"].close()
        await lab.until(lambda: len(lab.hub) == 0, "the member never left")
        after = await lab.on_server(
            lambda: (valve.waiting, valve.cancelled, member.writer is not None and member.writer.done())
        )
        return {"after": after, "sent": member.sent, "tasks": await lab.fanout_tasks()}

    seen = asyncio.run(scenario())
    assert seen["after"] == (0, 1, True)  # CancelledError reached the suspended send, which stopped waiting
    assert seen["sent"] == 0
    assert seen["tasks"] == []


def test_unregister_closes_a_send_the_writer_never_took(lab: Lab) -> None:
    """A send handed over and abandoned in the same step, before the writer ran, is closed rather than left pending."""

    async def scenario() -> tuple[object, ...]:
        clients = await lab.join("a")
        valve = lab.valves["a"]
        await lab.on_server(valve.shut)

        async def publish_then_unregister() -> tuple[object, ...]:
            member = lab.member("a")
            report = lab.hub.publish("m0")
            handed = member.handoff
            await lab.hub.unregister(member.websocket)
            assert handed is not None
            return report.queued, handed[0].cr_frame is None, valve.waiting, valve.cancelled, member.handoff

        seen = await await_on(lab.server.loop, publish_then_unregister())
        await clients["a"].close()
        return seen

    queued, closed, waiting, cancelled, handoff = asyncio.run(scenario())
    assert queued == 1
    assert closed is True  # the coroutine was closed: it will never run again
    assert (waiting, cancelled) == (0, 0)  # closed, not cancelled: nothing was waiting for it to finish
    assert handoff is None


def test_a_real_transport_that_fills_up_hands_the_send_to_the_writer() -> None:
    """Under uvicorn a send to a never-reading client suspends only once its buffers are full; nothing is lost."""
    hub, server = hub_server("fanout-real-wait", max_queue=MESSAGES)
    with server:

        async def scenario() -> tuple[list[tuple[int, int]], list[int], list[str], PublishReport]:
            slow = await connect_never_reading(server)
            reader = await connect(server.ws_url("/chat?name=reader"), max_size=None, compression=None)
            await wait_for_members(server, hub, 2)
            reports, slow_queued = [], []
            for n in range(MESSAGES):
                report = await await_on(server.loop, _publish(hub, f"{n:04d}" + BIG))
                reports.append((report.written, report.queued))
                slow_queued.append(await await_on(server.loop, _queued(hub, "slow")))
                assert (await asyncio.wait_for(reader.recv(), 10))[:4] == f"{n:04d}"  # the reader keeps up
            got = [(await asyncio.wait_for(slow.recv(), 10))[:4] for _ in range(MESSAGES)]
            for _ in range(200):
                if not await await_on(server.loop, _busy(hub, "slow")):
                    break
                await asyncio.sleep(0.01)
            last = await await_on(server.loop, _publish(hub, "last"))
            for ws in (slow, reader):
                await ws.close()
            return reports, slow_queued, got, last

        reports, slow_queued, got, last = asyncio.run(scenario())
    first_wait = reports.index((1, 1))  # the first publish whose send to the slow client had to wait
    assert first_wait > 0 and set(reports[:first_wait]) == {(2, 0)}  # until then both were written at once
    assert set(reports[first_wait:]) == {(1, 1)}
    assert slow_queued[first_wait:] == list(range(MESSAGES - first_wait))  # the waiting send is not in the queue
    assert got == [f"{n:04d}" for n in range(MESSAGES)]
    assert (last.written, last.queued) == (2, 0)


async def _publish(hub: FanOut, message: str) -> PublishReport:
    return hub.publish(message)


async def _queued(hub: FanOut, name: str) -> int:
    return next(m.queued for m in hub.members.values() if m.name == name)


async def _busy(hub: FanOut, name: str) -> bool:
    return next(m.busy for m in hub.members.values() if m.name == name)


# --------------------------------------------------------------------------------------------------
# send_to(): one message to one client, on publish()'s path and under its policy.


def test_send_to_writes_at_once_to_an_idle_client_and_to_nobody_else(lab: Lab) -> None:
    """send_to() an idle client writes the message before it returns, and the other clients do not get it."""

    async def scenario() -> tuple[PublishReport, list[int], list[str | bytes]]:
        clients = await lab.join("a", "b")

        def send_and_count() -> tuple[PublishReport, list[int]]:
            report = lab.hub.send_to(lab.member("a").websocket, "just a")
            return report, [lab.member(name).sent for name in ("a", "b")]  # no await in between: no task ran

        report, sent = await lab.on_server(send_and_count)
        await lab.publish("everyone")
        received = [await asyncio.wait_for(ws.recv(), 5) for ws in (clients["a"], clients["a"], clients["b"])]
        for ws in clients.values():
            await ws.close()
        return report, sent, received

    report, sent, received = asyncio.run(scenario())
    assert (report.written, report.queued, report.evicted) == (1, 0, [])
    assert sent == [1, 0]
    assert received == ["just a", "everyone", "everyone"]  # b's first message is the published one


def test_send_to_queues_behind_a_busy_writer_in_order(lab: Lab) -> None:
    """While the client's writer is busy, send_to() queues behind what was published before it, in order."""

    async def scenario() -> tuple[list[tuple[int, int]], list[str | bytes]]:
        clients = await lab.join("a")
        await lab.on_server(lab.valves["a"].shut)
        first = await lab.publish("m0")  # this send waits: handed to the writer
        told = await lab.on_server(lambda: lab.hub.send_to(lab.member("a").websocket, "private"))
        last = await lab.publish("m2")
        await lab.on_server(lab.valves["a"].open)
        got = [await asyncio.wait_for(clients["a"].recv(), 5) for _ in range(3)]
        await clients["a"].close()
        return [(r.written, r.queued) for r in (first, told, last)], got

    reports, got = asyncio.run(scenario())
    assert reports == [(0, 1), (0, 1), (0, 1)]
    assert got == ["m0", "private", "m2"]


def test_send_to_a_full_queue_evicts_under_the_disconnect_policy(lab: Lab) -> None:
    """With policy 'disconnect', send_to() a client whose queue is full evicts it, as publish() would."""

    async def scenario() -> tuple[list[str], list[str], bool, bool]:
        await lab.join("slow")
        await lab.on_server(lab.valves["slow"].shut)
        for n in range(5):  # m0 handed to the writer, m1-m4 fill the queue (max_queue=4)
            await lab.publish(f"m{n}")
        member = await lab.on_server(lambda: lab.member("slow"))
        report = await lab.on_server(lambda: lab.hub.send_to(member.websocket, "one too many"))
        registered = await lab.on_server(lambda: member.websocket in lab.hub.members)
        return report.evicted, lab.hub.evicted, member.evicted, registered

    evicted, hub_evicted, member_evicted, registered = asyncio.run(scenario())
    assert evicted == ["slow"] and hub_evicted == ["slow"]
    assert member_evicted and not registered


def test_send_to_a_full_queue_drops_the_oldest_under_the_drop_oldest_policy() -> None:
    """With policy 'drop-oldest', send_to() a full queue drops its oldest message and keeps the client."""
    lab = Lab("fanout-lab-drop-oldest", policy="drop-oldest", max_queue=2)

    async def scenario() -> tuple[PublishReport, int, list[str | bytes]]:
        clients = await lab.join("a")
        await lab.on_server(lab.valves["a"].shut)
        for n in range(3):  # m0 handed to the writer, m1 and m2 fill the queue (max_queue=2)
            await lab.publish(f"m{n}")
        report = await lab.on_server(lambda: lab.hub.send_to(lab.member("a").websocket, "private"))
        dropped = await lab.on_server(lambda: lab.member("a").dropped)
        await lab.on_server(lab.valves["a"].open)
        got = [await asyncio.wait_for(clients["a"].recv(), 5) for _ in range(3)]
        await clients["a"].close()
        return report, dropped, got

    with lab.server:
        report, dropped, got = asyncio.run(scenario())
    assert (report.queued, report.dropped_oldest, report.evicted) == (1, 1, [])
    assert dropped == 1
    assert got == ["m0", "m2", "private"]  # m1, the oldest queued, was dropped


def test_send_to_refuses_a_websocket_that_is_not_registered() -> None:
    """send_to() a WebSocket the hub does not know raises FanOutError saying to register it first."""
    stranger: Any = StuckSocket()
    with pytest.raises(FanOutError, match=r"needs a WebSocket registered with this FanOut.*hub\.connected"):
        FanOut().send_to(stranger, "hello")


def test_send_to_refuses_objects_with_a_hint() -> None:
    """send_to(websocket, dict) raises TypeError telling you to encode it first."""
    stranger: Any = StuckSocket()
    with pytest.raises(TypeError, match=r"send_to\(\) takes str or bytes, not dict.*json.dumps"):
        FanOut().send_to(stranger, {"a": 1})  # type: ignore[arg-type]
