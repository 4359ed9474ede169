"""The servers that bench/fanout.py measures: one app per fan-out strategy, and the `websockets` anchor.

Every server speaks the same small protocol on two WebSocket paths:

- `/ws?name=NAME`: a subscriber. It is accepted and kept until the client leaves; it never sends.
- `/control`: the benchmark driver sends one JSON command `{"messages": M, "size": S, "expect": N,
  "rate": R}`. The server waits until N subscribers are registered, then broadcasts M text messages of
  S bytes, R per second (R = 0: as fast as it can, yielding to the event loop once between two messages,
  as a real producer does between events), then answers with a JSON report: how long the producer took
  and, for the queue strategies, who was evicted and how many messages each client lost. A strategy
  that freezes never answers; the driver gives up after its window.

Each message starts with its sequence number and the server's `time.monotonic()` when it was made
(`"000042 12345.678901 xxxx..."`). CLOCK_MONOTONIC is system-wide on Linux, so the driver, in another
process, subtracts it from its own clock to get the delivery latency.

Strategies, as `serve_process()` import strings (with `app_dir` = the repository root):

- `bench.fanout_apps:sequential`: `for ws in clients: await ws.send_text(message)`;
- `bench.fanout_apps:gather`: `await asyncio.gather(*(ws.send_text(message) for ws in clients))` per message;
- `bench.fanout_apps:queue_disconnect` / `bench.fanout_apps:queue_drop_oldest`: `helpers.fanout.FanOut`, a bounded
  queue and a writer task per client, with policy "disconnect" (close 1013) or "drop-oldest";
  `publish()` writes to a client whose writer is idle itself, and only a send that has to wait goes to
  the writer task.
  `FANOUT_MAX_QUEUE` (default 32) sets the queue limit. An evicted client's close frame waits behind the
  backlog already in its socket, so it arrives once the client reads that far.

The anchor is not an ASGI app: `python -m bench.fanout_apps` runs the `websockets` library's own asyncio
server with the same protocol, broadcasting with `websockets.asyncio.server.broadcast()`, which writes
each frame into every connection's buffer at once and never waits. It prints `READY <port>` like
`helpers.process_entry` and exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from helpers.fanout import FanOut, Policy
from helpers.process_entry import on_stdin_eof

HEADER_SIZE = 25  # "000042 12345.678901 " plus room
REGISTER_TIMEOUT = 30.0

Report = dict[str, Any]


def make_message(sequence: int, size: int) -> str:
    """Sequence number and send time, padded with "x" to `size` characters (ASCII, so `size` bytes)."""
    head = f"{sequence:06d} {time.monotonic():.6f} "
    return head + "x" * max(0, size - len(head))


def parse_message(message: str | bytes | bytearray | memoryview) -> tuple[int, float]:
    """(sequence, server time) from the head of a message made by `make_message` (as text or as its bytes)."""
    head = message[:HEADER_SIZE]
    if not isinstance(head, str):
        head = bytes(head).decode()
    sequence, sent, _ = head.split(" ", 2)
    return int(sequence), float(sent)


async def produce(broadcast: Callable[[str], Awaitable[None]], messages: int, size: int, rate: float = 0) -> float:
    """Broadcast `messages` messages; returns the producer's own duration in seconds.

    With `rate` 0 they go back to back (one turn of the event loop between two, whatever the strategy);
    with a rate, message n is due `n / rate` seconds after the first, and a broadcast that runs late
    makes the next ones go out at once until the schedule is caught up.
    """
    began = time.monotonic()
    for sequence in range(messages):
        await broadcast(make_message(sequence, size))
        delay = began + (sequence + 1) / rate - time.monotonic() if rate > 0 else 0.0
        await asyncio.sleep(max(0.0, delay))
    return time.monotonic() - began


async def wait_for_count(count: Callable[[], int], expect: int) -> None:
    deadline = time.monotonic() + REGISTER_TIMEOUT
    while count() < expect:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count()} of {expect} subscribers registered")
        await asyncio.sleep(0.005)


# --------------------------------------------------------------------------------------------------
# Starlette strategies


class Strategy:
    """A set of subscribers and a way to send one message to all of them."""

    name = "strategy"

    def __init__(self) -> None:
        self.clients: set[WebSocket] = set()

    async def subscribe(self, websocket: WebSocket, name: str) -> None:
        self.clients.add(websocket)
        try:
            await websocket.receive()  # a subscriber never sends: this waits for its disconnect
        finally:
            self.clients.discard(websocket)

    def count(self) -> int:
        return len(self.clients)

    async def broadcast(self, message: str) -> None:
        raise NotImplementedError

    def report(self) -> Report:
        return {}


class Sequential(Strategy):
    """Await each client's send in turn: the next client waits for the previous one's socket."""

    name = "sequential"

    async def broadcast(self, message: str) -> None:
        for websocket in list(self.clients):
            try:
                await websocket.send_text(message)
            except Exception:  # the client went away: drop it, carry on with the others
                self.clients.discard(websocket)


class Gather(Strategy):
    """Send to every client concurrently, then wait for all of them before the next message."""

    name = "gather"

    async def broadcast(self, message: str) -> None:
        clients = list(self.clients)
        results = await asyncio.gather(*(ws.send_text(message) for ws in clients), return_exceptions=True)
        for websocket, result in zip(clients, results, strict=True):
            if isinstance(result, Exception):
                self.clients.discard(websocket)


class Queued(Strategy):
    """helpers.fanout.FanOut: a bounded queue and a writer task per client; publish() never waits."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.name = f"queue-{policy}"
        self.hub = FanOut(
            max_queue=int(os.environ.get("FANOUT_MAX_QUEUE", "32")),
            policy=policy,
        )
        self.dropped: dict[str, int] = {}

    async def subscribe(self, websocket: WebSocket, name: str) -> None:
        async with self.hub.connected(websocket, name=name) as member:
            try:
                await websocket.receive()
            finally:
                self.dropped[member.name] = member.dropped

    def count(self) -> int:
        return len(self.hub)

    async def broadcast(self, message: str) -> None:
        self.hub.publish(message)

    def report(self) -> Report:
        dropped = dict(self.dropped)
        dropped.update({m.name: m.dropped for m in self.hub.members.values()})
        return {
            "max_queue": self.hub.max_queue,
            "evicted": list(self.hub.evicted),
            "dropped": {name: n for name, n in dropped.items() if n},
        }


def make_app(strategy: Strategy) -> Starlette:
    """The Starlette app serving /ws (subscribers) and /control (run a broadcast) for `strategy`."""

    async def subscriber(websocket: WebSocket) -> None:
        await websocket.accept()
        await strategy.subscribe(websocket, websocket.query_params.get("name", "client"))

    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        command = json.loads(await websocket.receive_text())
        await wait_for_count(strategy.count, int(command["expect"]))
        seconds = await produce(strategy.broadcast, command["messages"], command["size"], command.get("rate", 0))
        await websocket.send_text(
            json.dumps({"strategy": strategy.name, "producer_seconds": seconds, **strategy.report()})
        )
        await websocket.close()

    return Starlette(routes=[WebSocketRoute("/ws", subscriber), WebSocketRoute("/control", control)])


sequential = make_app(Sequential())
gather = make_app(Gather())
queue_disconnect = make_app(Queued("disconnect"))
queue_drop_oldest = make_app(Queued("drop-oldest"))


# --------------------------------------------------------------------------------------------------
# the anchor: the websockets library's own server and broadcast()


async def websockets_server(host: str, port: int, stop: asyncio.Event) -> None:
    """Serve /ws and /control with `websockets.asyncio.server`, broadcasting with its `broadcast()`."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    subscribers: dict[ServerConnection, str] = {}

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        path = connection.request.path
        if path.startswith("/ws"):
            name = path.partition("name=")[2] or "client"
            subscribers[connection] = name
            try:
                await connection.wait_closed()
            finally:
                subscribers.pop(connection, None)
            return
        command = json.loads(await connection.recv())
        await wait_for_count(lambda: len(subscribers), int(command["expect"]))

        async def send_to_all(message: str) -> None:
            broadcast(subscribers, message)

        seconds = await produce(send_to_all, command["messages"], command["size"], command.get("rate", 0))
        # broadcast() never drops: whatever a client could not take waits in its write buffer.
        buffered = {name: c.transport.get_write_buffer_size() for c, name in subscribers.items()}
        report = {
            "strategy": "websockets.broadcast",
            "producer_seconds": seconds,
            "buffered": {name: size for name, size in buffered.items() if size > 1_000_000},
        }
        await connection.send(json.dumps(report))
        await connection.close()

    async with serve(handler, host, port, compression=None, max_size=None) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"READY {bound}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the websockets anchor server until stdin closes (the parent's way to stop it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout_apps", description="the websockets.broadcast() server"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        on_stdin_eof(lambda: loop.call_soon_threadsafe(stop.set))
        await websockets_server(args.host, args.port, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
