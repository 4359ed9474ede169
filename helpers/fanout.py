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

`publish()` does the cheap writes itself. Under uvicorn 0.54 (websockets-sansio) a send to a connection
that can take more completes without suspending: its only `await`, for the connection to be writable,
returns at once. So for a client whose writer is idle (nothing queued, no send in flight) `publish()` starts
the send and runs it; if it completes, the message is written and no task or queue took part. If it
suspends (asyncio paused the transport: its buffer passed the high-water mark and has not drained since),
the suspended send is handed to that client's writer task, which finishes it and then sends everything
queued meanwhile, all of it in one wake-up; until the writer is idle again, new messages for that client go
into its queue and the policy applies. Either way `publish()` itself never waits.

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
`publish()` must run on the server's loop (it writes to the connections, wakes writer tasks and may start an
eviction task, none of it thread-safe): from another thread or a notebook cell, hop over, e.g.
`await helpers.loops.await_on(server.loop, coro)` with a coroutine that calls `hub.publish()`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import types
from collections.abc import AsyncIterator, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from starlette.websockets import WebSocket
from websockets.frames import CloseCode

from helpers.usage import UsageTypeError, check_close_code

__all__ = [
    "POLICIES",
    "FanOut",
    "FanOutError",
    "Member",
    "Policy",
    "PublishReport",
    "Send",
    "SendQueue",
    "finish_started",
]

Policy = Literal["disconnect", "drop-oldest"]
POLICIES: tuple[Policy, ...] = ("disconnect", "drop-oldest")

T = TypeVar("T")
Send = Coroutine[Any, Any, None]
_RETURNED = object()  # what next() gives back for a coroutine that returned instead of suspending


class FanOutError(RuntimeError):
    """FanOut used in a way that cannot work; the message says what to do."""


@types.coroutine
def finish_started(coro: Coroutine[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Await `coro`, which was already started elsewhere and is suspended on `pending` (what its step yielded).

    Python 3.11's stand-in for 3.12's eager tasks: `publish()` runs a send's first step itself, and only a send
    that suspends needs a task to finish it. The task awaits this generator, which yields `pending` to it just
    as the coroutine would have, then forwards every resumption, value or exception (cancellation included), to
    the coroutine until it returns. Abandoned (closed) before that, it closes the coroutine.
    """
    try:
        while True:
            try:
                value = yield pending
            except GeneratorExit:
                raise
            except BaseException as exc:  # CancelledError from the task, for one: the coroutine decides
                pending = coro.throw(exc)
            else:
                pending = coro.send(value)
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()  # a no-op once it has returned or raised


class SendQueue(collections.deque[str | bytes]):
    """One client's bounded queue of messages for its writer task, and the writer's wake-up call.

    A deque rather than an `asyncio.Queue`: the writer must also be woken for a send that `publish()` started
    and handed over, which is not a queued message, and `publish()` asks every client's queue whether it is
    empty, which a deque answers (`not queue`) without a call into Python code. Add messages with
    `put_nowait()`, which wakes the writer; the method names are `asyncio.Queue`'s.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self)

    def empty(self) -> bool:
        return not self

    def full(self) -> bool:
        return len(self) >= self.maxsize

    def put_nowait(self, message: str | bytes) -> None:
        """Queue `message` behind the others and wake the writer; asyncio.QueueFull if the queue is full."""
        if self.full():
            raise asyncio.QueueFull
        self.append(message)
        self.wake()

    def get_nowait(self) -> str | bytes:
        """The oldest queued message; asyncio.QueueEmpty if there is none."""
        if not self:
            raise asyncio.QueueEmpty
        return self.popleft()

    def wake(self) -> None:
        """End the writer's `sleep()`, if it is in one."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def sleep(self) -> None:
        """Wait for the next `wake()` (the writer calls this only when it has nothing to do)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


@dataclass
class Member:
    """One connected client: its queue, its writer task and what happened to its messages."""

    name: str
    websocket: WebSocket
    queue: SendQueue
    writer: asyncio.Task[None] | None = None
    sent: int = 0
    dropped: int = 0
    evicted: bool = False
    error: str | None = None
    # A send publish() started that has to wait for the connection, until the writer task takes it over.
    handoff: tuple[Send, Any] | None = field(default=None, repr=False)
    # The writer has a send in flight or messages to send: a new message must queue behind them, in order.
    busy: bool = field(default=False, repr=False)

    @property
    def queued(self) -> int:
        return len(self.queue)


@dataclass
class PublishReport:
    """What one publish() did: how many clients got it written at once or queued, lost an old one, or were evicted.

    `queued` counts the clients whose writer task has it: in the queue, or as a send that waits for the connection.
    """

    written: int = 0
    queued: int = 0
    dropped_oldest: int = 0
    evicted: list[str] = field(default_factory=list)


def _message_key(message: object, method: str) -> str:
    """The ASGI key for `message` ("text" or "bytes"); a TypeError saying what to pass for anything else."""
    if isinstance(message, str):
        return "text"
    if isinstance(message, bytes):
        return "bytes"
    raise TypeError(
        f"{method}() takes str or bytes, not {type(message).__name__}; "
        f"encode it first, e.g. {method}({'websocket, ' if method == 'send_to' else ''}json.dumps(data))"
    )


def _send(websocket: WebSocket, message: str | bytes) -> Send:
    """`websocket.send_text(message)` or `send_bytes(message)`, minus their own coroutine: the ASGI message."""
    key = "text" if isinstance(message, str) else "bytes"
    return websocket.send({"type": "websocket.send", key: message})


class FanOut:
    """A registry of connected WebSockets with a bounded queue and a writer task each."""

    def __init__(
        self,
        *,
        max_queue: int = 100,
        policy: Policy = "disconnect",
        close_code: int = CloseCode.TRY_AGAIN_LATER,
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
        member = Member(name or f"client-{next(self._names)}", websocket, SendQueue(self.max_queue))
        member.writer = asyncio.get_running_loop().create_task(self._write(member), name=f"fanout-{member.name}")
        self.members[websocket] = member
        return member

    async def unregister(self, websocket: WebSocket) -> None:
        """Remove a WebSocket and stop its writer; does nothing if it is already gone."""
        member = self.members.pop(websocket, None)
        if member is not None and member.writer is not asyncio.current_task():
            self._stop_writer(member)
            if member.writer is not None:
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
        """Send `message` to every client without waiting: written at once where it can be, queued elsewhere.

        A client whose writer is idle gets it written by this call (a send that completes without suspending);
        a send that would wait goes to that client's writer task, and while the writer is busy, messages go into
        its queue; when that is full, the policy applies.
        """
        key = _message_key(message, "publish")
        report = PublishReport()
        for member in list(self.members.values()):  # a copy: an eviction or a failed send removes members
            self._deliver(member, message, key, report)
        return report

    def send_to(self, websocket: WebSocket, message: str | bytes) -> PublishReport:
        """Send `message` to one registered client only, exactly as publish() sends it to each (same path, policy).

        In order with everything published to that client: written at once if its writer is idle, else queued
        behind the writer, and when its queue is full the policy applies (the report says what happened).
        """
        key = _message_key(message, "send_to")
        member = self.members.get(websocket)
        if member is None:
            raise FanOutError(
                "send_to() needs a WebSocket registered with this FanOut, and this one is not (never registered, "
                "or it has left or been evicted); register it first (`async with hub.connected(websocket):`), "
                "or check `websocket in hub.members` before sending"
            )
        report = PublishReport()
        self._deliver(member, message, key, report)
        return report

    def _deliver(self, member: Member, message: str | bytes, key: str, report: PublishReport) -> None:
        """publish()'s and send_to()'s work for one client: write now if its writer is idle, else queue (or policy)."""
        if member.busy or member.queue:  # its writer is at work: the message waits its turn, in order
            self._enqueue(member, message, report)
            return
        # The writer is idle: run the send from here, and hand it to the writer only if it has to wait.
        # The ASGI message that send_text()/send_bytes() would send, one coroutine fewer per client.
        send = member.websocket.send({"type": "websocket.send", key: message})
        try:
            # One step of the coroutine. next() with a default tells that it returned without raising the
            # StopIteration that send.send(None) would: measurably cheaper, per client and message.
            pending = next(send.__await__(), _RETURNED)
        except Exception as exc:  # the client went away: it leaves, the others carry on
            self._drop(member, exc)
            return
        if pending is _RETURNED:  # done without suspending: the frame is written, and no task took part
            member.sent += 1
            report.written += 1
        else:
            self._hand_over(member, send, pending)
            report.queued += 1

    def _enqueue(self, member: Member, message: str | bytes, report: PublishReport) -> None:
        """Queue `message` behind the client's writer, applying the policy if its queue is full."""
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

    def _hand_over(self, member: Member, send: Send, pending: Any) -> None:
        """Give a started send that has to wait to the client's writer task, which finishes it.

        Under uvicorn 0.54 (websockets-sansio) a send suspends only while the connection is not writable (asyncio
        paused the transport, whose buffer passed the high-water mark), and before it writes anything.
        """
        member.handoff = (send, pending)
        member.busy = True
        member.queue.wake()

    def _evict(self, member: Member) -> None:
        member.evicted = True
        self.members.pop(member.websocket, None)
        self.evicted.append(member.name)
        self._stop_writer(member)
        member.queue.clear()  # free the backlog now, not when the endpoint returns
        task = asyncio.get_running_loop().create_task(self._close(member))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _drop(self, member: Member, exc: Exception) -> None:
        member.error = f"{type(exc).__name__}: {exc}"
        self.members.pop(member.websocket, None)
        if member.writer is not asyncio.current_task():
            self._stop_writer(member)
        member.queue.clear()  # nobody will send these now

    def _stop_writer(self, member: Member) -> None:
        if member.writer is not None:
            member.writer.cancel()
        if member.handoff is not None:  # started, never taken over: nothing will finish it now
            member.handoff[0].close()
            member.handoff = None

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
                if member.handoff is None and not member.queue:
                    member.busy = False  # publish() may write to this client itself again
                    await member.queue.sleep()
                    continue
                member.busy = True
                if member.handoff is not None:
                    send, pending = member.handoff
                    member.handoff = None
                    await finish_started(send, pending)
                    member.sent += 1
                while member.queue:  # everything queued meanwhile, in one wake-up of this task
                    await _send(member.websocket, member.queue.get_nowait())
                    member.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-send: it leaves, the others carry on
            self._drop(member, exc)

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
