"""Broadcast to many Starlette/FastAPI WebSockets without letting one slow client hold up the rest.

Awaiting `send` for each client in turn (or `asyncio.gather` over them) ties every message to the
slowest reader: once one client stops reading, its TCP buffers fill, its `send` stops returning (under
uvicorn 0.54's websockets-sansio protocol it waits for the connection to become writable, which for a
client that never reads happens only when the connection is lost), and the whole fan-out stops. `FanOut`
gives every client a bounded queue and its own writer task instead, so `publish()` never waits, and a
client whose queue is full is handled by an explicit policy:

- "disconnect" (default): the slow client is removed and closed with code 1013 ("try again later");
- "drop-oldest": the slow client loses its oldest queued message and stays connected.

Either way its queue holds at most `max_queue` messages (the messages are shared between queues, not
copied). That is not all the memory a slow client ties up: under the queue come the message its writer is
waiting to send, asyncio's transport buffer (its 64 KiB high-water mark plus the last frame written) and the
kernel's send buffer for the socket (on Linux up to the maximum in net.ipv4.tcp_wmem, 4 MiB by default),
which last until the connection ends. An eviction frees the queue at once, not those buffers.

    hub = FanOut(max_queue=100)

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.connected(websocket):
            async for text in websocket.iter_text():
                hub.publish(text)

A module-level hub like this one survives a server restart (a new event loop), which a module-level
`asyncio.Lock` or `asyncio.Queue` does not once something has waited on it. On Python 3.11 none of their
constructors binds to a loop; a Lock or Queue binds to the loop of the first wait it cannot satisfy at once and
keeps it, while the hub's loop-bound parts, each client's queue and writer task, are created in `register()`
on the loop serving that connection and go away with the connection (lesson 08 shows the hub and a Lock
across a restart, lesson 05 a Queue). Create the hub once per app (at module level or in `lifespan`, which
gives every server start a fresh one) and `await hub.aclose()` at shutdown to stop the writer tasks.
`publish()` must run on the server's loop (it uses `asyncio.Queue`s and may start an eviction task, neither
thread-safe): from another thread or a notebook cell, hop over, e.g.
`await helpers.loops.await_on(server.loop, coro)` with a coroutine that calls `hub.publish()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from starlette.websockets import WebSocket

from helpers.usage import UsageTypeError, check_close_code

Policy = Literal["disconnect", "drop-oldest"]
POLICIES: tuple[Policy, ...] = ("disconnect", "drop-oldest")
TRY_AGAIN_LATER = 1013


class FanOutError(RuntimeError):
    """FanOut used in a way that cannot work; the message says what to do."""


@dataclass
class Member:
    """One connected client: its queue, its writer task and what happened to its messages."""

    name: str
    websocket: WebSocket
    queue: asyncio.Queue[str | bytes]
    writer: asyncio.Task[None] | None = None
    sent: int = 0
    dropped: int = 0
    evicted: bool = False
    error: str | None = None

    @property
    def queued(self) -> int:
        return self.queue.qsize()


@dataclass
class PublishReport:
    """What one publish() did: how many clients got it queued, lost an old message, or were evicted."""

    queued: int = 0
    dropped_oldest: int = 0
    evicted: list[str] = field(default_factory=list)


class FanOut:
    """A registry of connected WebSockets with a bounded queue and a writer task each."""

    def __init__(
        self,
        *,
        max_queue: int = 100,
        policy: Policy = "disconnect",
        close_code: int = TRY_AGAIN_LATER,
        close_reason: str = "too slow: send queue full",
    ) -> None:
        if policy not in POLICIES:
            raise FanOutError(f"policy must be one of {POLICIES}, not {policy!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int):
            raise UsageTypeError(f"max_queue must be a whole number of messages (int), not {type(max_queue).__name__}")
        check_close_code(close_code)
        if max_queue < 1:
            raise FanOutError(f"max_queue must be at least 1, not {max_queue}")
        self.max_queue = max_queue
        self.policy: Policy = policy
        self.close_code = close_code
        self.close_reason = close_reason
        self.members: dict[WebSocket, Member] = {}
        self.evicted: list[str] = []
        self._names = itertools.count(1)
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self.members)

    async def register(self, websocket: WebSocket, name: str | None = None) -> Member:
        """Add an accepted WebSocket and start its writer task on the running loop."""
        if websocket in self.members:
            raise FanOutError("this WebSocket is already registered; register each connection once")
        member = Member(name or f"client-{next(self._names)}", websocket, asyncio.Queue(self.max_queue))
        member.writer = asyncio.get_running_loop().create_task(self._write(member), name=f"fanout-{member.name}")
        self.members[websocket] = member
        return member

    async def unregister(self, websocket: WebSocket) -> None:
        """Remove a WebSocket and stop its writer; does nothing if it is already gone."""
        member = self.members.pop(websocket, None)
        if member is not None and member.writer is not None and member.writer is not asyncio.current_task():
            member.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await member.writer

    @contextlib.asynccontextmanager
    async def connected(self, websocket: WebSocket, name: str | None = None) -> AsyncIterator[Member]:
        """Register for the duration of the block and always unregister, however the block ends."""
        member = await self.register(websocket, name)
        try:
            yield member
        finally:
            await self.unregister(websocket)

    def publish(self, message: str | bytes) -> PublishReport:
        """Queue `message` for every client without waiting; apply the policy to clients whose queue is full."""
        if not isinstance(message, str | bytes):
            raise TypeError(
                f"publish() takes str or bytes, not {type(message).__name__}; "
                "encode it first, e.g. publish(json.dumps(data))"
            )
        report = PublishReport()
        for member in list(self.members.values()):
            if not member.queue.full():
                member.queue.put_nowait(message)
                report.queued += 1
            elif self.policy == "drop-oldest":
                member.queue.get_nowait()
                member.dropped += 1
                member.queue.put_nowait(message)
                report.queued += 1
                report.dropped_oldest += 1
            else:
                self._evict(member)
                report.evicted.append(member.name)
        return report

    def _evict(self, member: Member) -> None:
        member.evicted = True
        self.members.pop(member.websocket, None)
        self.evicted.append(member.name)
        if member.writer is not None:
            member.writer.cancel()
        while not member.queue.empty():  # free the backlog now, not when the endpoint returns
            member.queue.get_nowait()
        task = asyncio.get_running_loop().create_task(self._close(member))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, member: Member) -> None:
        # close() waits until the transport can take the close frame, which for a client that never reads
        # may be much later. It is not given up on: under uvicorn 0.54 (websockets-sansio) send()'s only await
        # comes before it writes the frame, so a cancelled close writes nothing and the client would never learn
        # why it was dropped. One small pending task per evicted client, cancelled by aclose().
        with contextlib.suppress(Exception):
            await member.websocket.close(self.close_code, self.close_reason)

    async def _write(self, member: Member) -> None:
        try:
            while True:
                message = await member.queue.get()
                if isinstance(message, bytes):
                    await member.websocket.send_bytes(message)
                else:
                    await member.websocket.send_text(message)
                member.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-send: it leaves, the others carry on
            member.error = f"{type(exc).__name__}: {exc}"
            self.members.pop(member.websocket, None)

    async def aclose(self) -> None:
        """Stop every writer task and every pending eviction close (for a lifespan shutdown)."""
        for websocket in list(self.members):
            await self.unregister(websocket)
        for task in list(self._closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stats(self) -> dict[str, dict[str, int | bool]]:
        """Per client: messages sent, queued now, dropped by drop-oldest."""
        return {m.name: {"sent": m.sent, "queued": m.queued, "dropped": m.dropped} for m in self.members.values()}
