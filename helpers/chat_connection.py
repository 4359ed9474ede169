"""One chat participant's connection, without a view: a websockets client on its own thread, and what it received.

`helpers.widgets.ChatClient` shows a `ChatConnection`; the connection lives here, apart from ipywidgets, so its
thread, its waits and its status lines can be used and tested on their own. A view subscribes with `on_change`.

- Each connect() runs on a thread of its own with its own event loop (`_Session`), its reconnections too, so a
  cell that blocks or awaits never freezes the chat, and the kernel's loop is never used.
- `{name}` in the URL is replaced by the (URL-quoted) display name when connecting.
- The status line says what happened in words (`open`, `closed by server: 4403 'wrong join code'`,
  `rejected: HTTP 403`, `failed: connection refused ...`), worded by `helpers.clients`, as `Outcome` is.
- Only the last `max_messages` messages are kept; `received` counts them all.

Reconnecting (opt-in: `reconnect=True`). When an open connection ends the way a restart or a network fault ends
it (the server closes with 1001, 1011, 1012 or 1013, or it drops without a close frame: 1006; `RETRY_CLOSE_CODES`),
or when a later attempt to reopen it fails as websockets' `process_exception` says is worth retrying (refused, timed
out, HTTP 500/502/503/504), the connection waits and tries again on the same thread: `RECONNECT_DELAY` (0.5 s),
doubled after each failed attempt up to `MAX_RECONNECT_DELAY` (4 s), at most `max_attempts` times in a row, then
its status says it gave up. There is no jitter (RFC 6455 7.2.3 suggests a random first delay, against a crowd of
clients reconnecting at once; a notebook's few clients do not need it), so the delays are the same on every run.
A reconnected connection that stays open `STABLE_AFTER` seconds starts the count afresh; one that ends sooner
counts as another attempt, so a server that accepts and closes at once is not retried forever. It never
retries after a normal close (1000), an application's close (4xxx), a refused handshake (HTTP 403, 404, ...),
a first attempt that fails, or your own disconnect(), and disconnect() during a wait cancels it at once.
The messages of every connection go to the same log, and `received` keeps counting.

Why its own loop rather than websockets 17.4's `async for ws in connect(...)` (websockets/asyncio/client.py,
`connect.__aiter__`): that loop retries only connections that fail to open, leaving what an open connection's close
means to the loop's body; and its delays (websockets/client.py, `backoff`) start with a random 0-5 s, then grow
from 3.1 s by 1.618 up to 90 s, without end, told only to its logger; it retries a failed first attempt too, so a
mistyped port would look like a server that is down. A chat window must judge the close code, stop after a few
attempts, wait a deterministic second or two, and say each wait in its status line, so `_Session` runs the loop
itself and asks websockets' `process_exception` only about the failed attempts.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Literal, TypeAlias
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from helpers.clients import (
    CLOSE_TIMEOUT,
    OPEN_TIMEOUT,
    SEND_TIMEOUT,
    WAIT_TIMEOUT,
    Closing,
    FailureKind,
    HandshakeFailure,
    describe_close,
    describe_handshake_failure,
    read_close,
    read_handshake_failure,
)
from helpers.servers import MAX_MESSAGE_BYTES  # what the client accepts from a server: the servers' own limit
from helpers.usage import UsageError, UsageTypeError, check_count, check_positive, check_text

__all__ = [
    "MAX_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_RECONNECT_DELAY",
    "RECONNECT_ATTEMPTS",
    "RECONNECT_DELAY",
    "RECONNECT_FACTOR",
    "RETRY_CLOSE_CODES",
    "STABLE_AFTER",
    "ChatClientError",
    "ChatConnection",
    "Message",
    "Predicate",
    "State",
    "as_text",
    "backoff_delay",
    "plural",
]

# "reconnecting": the connection was lost and is being reopened (waiting before an attempt, or in its handshake).
State = Literal["idle", "connecting", "open", "reconnecting", "closing", "closed", "rejected", "failed"]
Change = Literal["status", "messages"]
Message = str | bytes
Predicate = Callable[[list[Message]], bool]

MAX_MESSAGES = 200

# reconnect=True: the delay before attempt n is RECONNECT_DELAY * RECONNECT_FACTOR ** (n - 1), at most
# MAX_RECONNECT_DELAY (0.5, 1, 2, 4, 4 s), for at most RECONNECT_ATTEMPTS attempts in a row (see backoff_delay).
RECONNECT_DELAY = 0.5
RECONNECT_FACTOR = 2.0
MAX_RECONNECT_DELAY = 4.0
RECONNECT_ATTEMPTS = 5
STABLE_AFTER = 2.0  # a reconnected connection open this long (s) worked: the next loss starts from attempt 1
# The closes a restart or a network fault produces: 1001 going away, 1006 dropped (no close frame), 1011 internal
# error (also websockets' own close after a keepalive ping went unanswered), 1012 service restart, 1013 try again
# later. Not 1000 (a normal close) nor 4000-4999 (the application's answer, which another attempt would repeat).
RETRY_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})

ACTIVE: tuple[State, ...] = ("connecting", "open", "reconnecting", "closing")
_Outbox: TypeAlias = asyncio.Queue[tuple[str, Future[None]]]
_CANCELLED = HandshakeFailure("cancelled")  # disconnect() before the session's loop had started
_STATE_AFTER: dict[FailureKind, State] = {
    "cancelled": "closed",
    "rejected": "rejected",
    "timed out": "failed",
    "refused": "failed",
    "error": "failed",
}


class ChatClientError(RuntimeError):
    """A chat client was asked to do something it cannot do now; the message says what to do."""


def plural(count: int, noun: str) -> str:
    """`1 message`, `2 messages`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def as_text(message: Message) -> str:
    """A message as a line of text; a binary one as its size."""
    if isinstance(message, bytes):
        return f"(binary message, {plural(len(message), 'byte')})"
    return message


def backoff_delay(attempt: int, first: float = RECONNECT_DELAY, cap: float = MAX_RECONNECT_DELAY) -> float:
    """Seconds to wait before reconnection attempt `attempt` (from 1): `first`, doubling each time, at most `cap`."""
    check_count(attempt, "attempt", minimum=1)
    return min(first * RECONNECT_FACTOR ** (attempt - 1), cap)


def _worth_retrying(exc: BaseException) -> bool:
    """Whether a failed attempt to reopen a connection may succeed later, as websockets' own reconnect loop judges."""
    return isinstance(exc, Exception) and process_exception(exc) is None


class ChatConnection:  # ~245 lines: the whole API a ChatClient delegates to; the thread's work is in _Session
    """One chat participant's connection: connect, send, wait for messages, disconnect; no widgets.

    With `reconnect=True` it reopens a connection lost to a restart or a network fault (see the module docstring),
    waiting `reconnect_delay` s, doubled after each failed attempt up to `max_reconnect_delay`, at most
    `max_attempts` times in a row. These take effect at the next connect().
    """

    def __init__(
        self,
        url: str = "",
        name: str = "guest",
        *,
        max_messages: int = MAX_MESSAGES,
        open_timeout: float = OPEN_TIMEOUT,
        reconnect: bool = False,
        max_attempts: int = RECONNECT_ATTEMPTS,
        reconnect_delay: float = RECONNECT_DELAY,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
    ) -> None:
        if not isinstance(url, str):
            raise UsageTypeError(f"url must be a str such as server.ws_url('/chat/{{name}}'), not {type(url).__name__}")
        if not isinstance(reconnect, bool):
            raise UsageTypeError(f"reconnect must be True or False, not {type(reconnect).__name__}")
        self.name = check_text(name, "name", example="ada")
        self.url = url
        self.max_messages = check_count(max_messages, "max_messages", minimum=1)
        self.open_timeout = check_positive(open_timeout, "open_timeout")
        self.reconnect = reconnect
        self.max_attempts = check_count(max_attempts, "max_attempts", minimum=1)
        self.reconnect_delay = check_positive(reconnect_delay, "reconnect_delay")
        self.max_reconnect_delay = check_positive(max_reconnect_delay, "max_reconnect_delay")
        if self.reconnect_delay > self.max_reconnect_delay:
            raise UsageError(
                f"reconnect_delay ({reconnect_delay:g} s) is above max_reconnect_delay ({max_reconnect_delay:g} s), "
                "which caps every delay: raise max_reconnect_delay too, or lower reconnect_delay"
            )
        self.close_code: int | None = None
        self.close_reason = ""
        self._cond = threading.Condition()
        self._messages: deque[Message] = deque(maxlen=max_messages)
        self._received = 0
        self._state: State = "idle"
        self._status = "not connected"
        self._session: _Session | None = None
        self._closed = False
        self._subscribers: list[Callable[[Change], None]] = []
        _live.add(self)

    # ----------------------------------------------------------------------------------------------
    # what the connection knows

    @property
    def state(self) -> State:
        """One word: idle, connecting, open, reconnecting, closing, closed, rejected or failed."""
        return self._state

    @property
    def status(self) -> str:
        """The status line as text, e.g. "open" or "closed by server: 4403 'wrong join code'"."""
        return self._status

    @property
    def messages(self) -> list[Message]:
        """The messages received and still kept (the last `max_messages`), oldest first."""
        with self._cond:
            return list(self._messages)

    @property
    def received(self) -> int:
        """How many messages this connection has received in total, including those no longer kept."""
        return self._received

    @property
    def thread(self) -> threading.Thread | None:
        """The thread of the latest connect() (None before the first); its reconnections run on it too."""
        session = self._session
        return session.thread if session is not None else None

    def resolved_url(self) -> str:
        """The URL this client connects to: `url` with `{name}` filled in."""
        return self.url.strip().replace("{name}", quote(self.name, safe=""))

    def transcript(self) -> str:
        """The messages as plain text, one per line."""
        return "\n".join(as_text(m) for m in self.messages)

    def since(self, count: int) -> list[Message]:
        """Messages received after the first `count` (those still kept)."""
        with self._cond:
            new = self._received - count
            return list(self._messages)[-new:] if new > 0 else []

    def on_change(self, callback: Callable[[Change], None]) -> None:
        """Call `callback("status")` or `callback("messages")` after each change, on the thread that made it."""
        self._subscribers.append(callback)

    # ----------------------------------------------------------------------------------------------
    # what it does

    def connect(self, *, wait: bool = True) -> str:
        """Open the connection on a background thread; with `wait`, return once it is open or has failed.

        Returns the status line. Does nothing if the client is already connecting or open.
        """
        if self._closed:
            raise ChatClientError("this ChatClient was closed (close() ends it for good): create a new one")
        with self._cond:
            if self._state in ACTIVE:
                return self._status
            previous = self._session
        if previous is not None:
            previous.thread.join(CLOSE_TIMEOUT + 1.0)
        url = self.resolved_url()
        if not url.startswith(("ws://", "wss://")):
            shown = url or "an empty URL"
            self._set_state("failed", f"failed: the URL must start with ws:// or wss://, not {shown!r}")
            return self._status
        with self._cond:
            self.close_code, self.close_reason = None, ""
        self._set_state("connecting", "connecting…")
        session = _Session(self, url)
        self._session = session  # after "connecting…" is shown: a view says Connect until then, then Reconnect
        session.thread.start()
        if wait:
            session.opened.wait(self.open_timeout + CLOSE_TIMEOUT)
        return self._status

    def send(self, text: str, *, timeout: float = SEND_TIMEOUT) -> None:
        """Send one text message and wait (at most `timeout` s) until it is written to the connection."""
        future = self.send_nowait(text)
        deadline = time.monotonic() + timeout
        thread = self.thread
        while True:
            try:
                future.result(0.05)
                return
            except TimeoutError:
                if thread is None or not thread.is_alive():
                    future.cancel()
                    raise ChatClientError(f"{self.name} could not send: {self._status}") from None
                if time.monotonic() > deadline:
                    future.cancel()
                    raise ChatClientError(f"{self.name} could not send within {timeout:g} s ({self._status})") from None

    def send_nowait(self, text: str) -> Future[None]:
        """Queue one text message; the future is done once it is written to the connection."""
        if not isinstance(text, str):
            raise TypeError(f"send() takes text (str), not {type(text).__name__}")
        with self._cond:
            session, state = self._session, self._state
        future = session.put(text) if session is not None and state == "open" else None
        if future is None:
            todo = "wait until it is open again" if state == "reconnecting" else "call connect() first"
            raise ChatClientError(f"{self.name} is not connected ({self._status}): {todo}")
        return future

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> list[Message]:
        """Wait until `what` holds and return the messages kept.

        `what` is a total number of received messages, or a function that gets the messages (a list) and
        returns True when it has what you want. Raises TimeoutError after `timeout` seconds, or as soon
        as the connection has ended without it (while it is reconnecting it has not ended).
        """

        def satisfied() -> bool:
            if isinstance(what, int):
                return self._received >= what
            return bool(what(list(self._messages)))

        with self._cond:
            done = self._cond.wait_for(lambda: satisfied() or self._state not in ACTIVE, timeout)
            if done and satisfied():
                return list(self._messages)
            wanted = f"{what} messages" if isinstance(what, int) else "the expected message"
            ended = "the connection ended" if self._state not in ACTIVE else f"{timeout:g} s passed"
            raise TimeoutError(
                f"{self.name} has received {plural(self._received, 'message')}, not {wanted}, and {ended} "
                f"(status: {self._status})"
            )

    def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> str:
        """Wait until the connection has ended (closed, rejected or failed) and return the status line.

        With `reconnect=True` that is once it no longer reconnects: a close it retries is not the end.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._state not in ACTIVE, timeout):
                raise TimeoutError(f"{self.name} is still {self._state} after {timeout:g} s (status: {self._status})")
            return self._status

    def disconnect(self, code: int = 1000, reason: str = "", *, timeout: float = CLOSE_TIMEOUT + 1.0) -> str:
        """Close the connection (or stop a connection attempt or a wait to reconnect) and wait for its thread.

        Returns the status line. It never reconnects after this.
        """
        with self._cond:
            session = self._session
            if self._state == "open":
                self._state, self._status = "closing", "closing…"
        self._notify("status")
        if session is None or not session.thread.is_alive():
            return self._status
        session.stop(code, reason)
        if threading.current_thread() is not session.thread:
            session.thread.join(timeout)
        return self._status

    def close(self) -> None:
        """Disconnect and end the thread for good: the connection cannot reconnect after."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # also runs at interpreter exit
            self.disconnect()
        _live.discard(self)

    def clear(self) -> None:
        """Forget the messages kept (the total count in `received` is kept)."""
        with self._cond:
            self._messages.clear()
        self._notify("messages")

    # ----------------------------------------------------------------------------------------------
    # what a session reports, from its thread

    def _notify(self, what: Change) -> None:
        for callback in list(self._subscribers):
            callback(what)

    def _set_state(self, state: State, status: str) -> None:
        with self._cond:
            self._state, self._status = state, status
            self._cond.notify_all()
        self._notify("status")

    def _add(self, message: Message) -> None:
        with self._cond:
            self._messages.append(message)
            self._received += 1
            self._cond.notify_all()
        self._notify("messages")

    def _ended(self, ws: ClientConnection) -> Closing:
        """Keep how `ws` closed as `close_code` and `close_reason`; the session words the status line."""
        closing = read_close(ws.protocol.close_rcvd, ws.protocol.close_sent, ws.protocol.close_rcvd_then_sent)
        with self._cond:
            self.close_code, self.close_reason = closing.code, closing.reason
        return closing


class _Session:
    """One connect(): the connection attempt, the conversation and, with reconnect, the attempts to reopen it, all
    on a thread of its own with its own event loop."""

    def __init__(self, owner: ChatConnection, url: str) -> None:
        self._owner, self._url, self._open_timeout = owner, url, owner.open_timeout
        # What connect() was given, so that changing the owner's attributes meanwhile cannot change a running loop.
        self._reconnect, self._max_attempts = owner.reconnect, owner.max_attempts
        self._delays = (owner.reconnect_delay, owner.max_reconnect_delay)
        self._lock = threading.Lock()  # the fields below are set on the session's thread, read on the caller's
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._outbox: _Outbox | None = None
        self._stop_requested = False
        self._closing: asyncio.Future[None] | None = None
        self.opened = threading.Event()  # set once the connection is open or the attempt has ended
        self.thread = threading.Thread(target=self._run, name=f"chat-client-{owner.name}", daemon=True)

    def put(self, text: str) -> Future[None] | None:
        """Hand `text` to the writer; None if the connection is not (or no longer) open."""
        with self._lock:
            loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            return None
        future: Future[None] = Future()
        try:
            loop.call_soon_threadsafe(outbox.put_nowait, (text, future))
        except RuntimeError:  # the loop closed between the check and now
            raise ChatClientError(f"{self._owner.name} is no longer connected ({self._owner.status})") from None
        return future

    def stop(self, code: int, reason: str) -> None:
        """Close the connection with `code` and `reason`, or cancel the handshake or the wait; returns at once."""
        with self._lock:
            self._stop_requested = True
            loop, ws, task = self._loop, self._ws, self._task
        if loop is None:
            return  # the session sees _stop_requested when it starts
        with contextlib.suppress(RuntimeError):  # the loop closed in between: the thread is ending anyway
            if ws is not None:
                loop.call_soon_threadsafe(self._start_close, ws, code, reason)
            elif task is not None:
                loop.call_soon_threadsafe(task.cancel)

    def _start_close(self, ws: ClientConnection, code: int, reason: str) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        self._closing = asyncio.ensure_future(ws.close(code, reason))

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the thread must always leave a status behind
            self._owner._set_state("failed", f"failed: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._loop = self._task = self._ws = self._outbox = None
            self.opened.set()

    async def _main(self) -> None:
        """Open and converse; with reconnect, again after each loss worth retrying. The last status says how it ends."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop, self._task = loop, asyncio.current_task()
            stop_now = self._stop_requested
        if stop_now:
            self._owner._set_state("closed", describe_handshake_failure(_CANCELLED, status_line=True))
            return
        attempt = 0  # attempts to reopen since the connection last worked
        opened_once = False
        while True:
            opened = await self._open()
            if isinstance(opened, ClientConnection):
                opened_once, opened_at = True, loop.time()
                await self._converse(opened, f"open (reconnected, attempt {attempt})" if attempt else "open")
                closing = self._owner._ended(opened)
                state: State = "closed"
                status = describe_close(closing.closed_by, closing.code, closing.reason, status_line=True)
                retry = closing.code in RETRY_CLOSE_CODES
                if loop.time() - opened_at >= STABLE_AFTER:
                    attempt = 0
            else:
                failure = read_handshake_failure(opened, self._open_timeout)
                state, status = _STATE_AFTER[failure.kind], describe_handshake_failure(failure, status_line=True)
                retry = opened_once and _worth_retrying(opened)  # never the first attempt: the URL may be wrong
            with self._lock:
                retry = retry and self._reconnect and not self._stop_requested
            if retry and attempt >= self._max_attempts:
                status, retry = f"gave up reconnecting after {plural(attempt, 'attempt')}: {status}", False
            if not retry:
                self._owner._set_state(state, status)
                self.opened.set()
                return
            attempt += 1
            if not await self._wait_to_reconnect(attempt, status):
                return

    async def _wait_to_reconnect(self, attempt: int, why: str) -> bool:
        """Wait before attempt `attempt`, saying so in the status line; False if disconnect() cancelled the wait."""
        delay = backoff_delay(attempt, *self._delays)
        self._owner._set_state("reconnecting", f"reconnecting in {delay:g} s (attempt {attempt}): {why}")
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:  # disconnect() or close(): stop() cancels this task when no connection is open
            self._owner._set_state("closed", f"closed: reconnecting was cancelled ({why})")
            return False
        self._owner._set_state("reconnecting", f"reconnecting… (attempt {attempt})")
        return True

    async def _open(self) -> ClientConnection | BaseException:
        """The open connection, or the exception that says why there is none (any other exception propagates)."""
        try:
            return await ws_connect(
                self._url,
                open_timeout=self._open_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                proxy=None,  # an HTTP(S)_PROXY in the environment must not reroute a chat
            )
        except (asyncio.CancelledError, InvalidHandshake, InvalidURI, OSError, ValueError) as exc:
            return exc  # worded in the status line, or retried

    async def _converse(self, ws: ClientConnection, status: str) -> None:
        """Say `status` (open), then receive until the connection has closed, while `_write` sends what `put` queued."""
        outbox: _Outbox = asyncio.Queue()
        with self._lock:
            self._ws, self._outbox = ws, outbox
            stop_now = self._stop_requested
        self._owner._set_state("open", status)
        self.opened.set()
        writer = asyncio.create_task(self._write(ws, outbox))
        try:
            if stop_now:
                await ws.close()
            with contextlib.suppress(ConnectionClosed):  # described from the close frames once it is closed
                async for message in ws:
                    self._owner._add(message)
            await ws.wait_closed()  # still as self._ws: a stop() meanwhile closes it rather than cancelling this task
        except asyncio.CancelledError:
            await ws.close()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            with self._lock:
                self._ws = self._outbox = None
            while not outbox.empty():
                _, future = outbox.get_nowait()
                with contextlib.suppress(InvalidStateError):  # send() gave up on it and cancelled it
                    future.set_exception(ChatClientError(f"{self._owner.name} is no longer connected"))

    async def _write(self, ws: ClientConnection, outbox: _Outbox) -> None:
        while True:
            text, future = await outbox.get()
            if future.cancelled():
                continue
            try:
                await ws.send(text)
            except Exception as exc:
                future.set_exception(ChatClientError(f"{self._owner.name} could not send: {type(exc).__name__}: {exc}"))
            else:
                future.set_result(None)


_live: weakref.WeakSet[ChatConnection] = weakref.WeakSet()


@atexit.register
def _disconnect_all() -> None:
    """At interpreter exit, end every connection still open (their threads are daemons, but close politely)."""
    for connection in list(_live):
        with contextlib.suppress(Exception):
            connection.disconnect(timeout=CLOSE_TIMEOUT)
