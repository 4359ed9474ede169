"""One chat participant's connection, without a view: a websockets client on its own thread, and what it received.

`helpers.widgets.ChatClient` shows a `ChatConnection`; the connection lives here, apart from ipywidgets, so its
thread, its waits and its status lines can be used and tested on their own. A view subscribes with `on_change`.

- Each connection attempt runs on a thread of its own with its own event loop (`_Session`), so a cell that
  blocks or awaits never freezes the chat, and the kernel's loop is never used.
- `{name}` in the URL is replaced by the (URL-quoted) display name when connecting.
- The status line says what happened in words (`open`, `closed by server: 4403 'wrong join code'`,
  `rejected: HTTP 403`, `failed: connection refused ...`), worded by `helpers.clients`, as `Outcome` is.
- Only the last `max_messages` messages are kept; `received` counts them all.
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
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from helpers.clients import (
    CLOSE_TIMEOUT,
    OPEN_TIMEOUT,
    SEND_TIMEOUT,
    WAIT_TIMEOUT,
    FailureKind,
    HandshakeFailure,
    describe_close,
    describe_handshake_failure,
    read_close,
    read_handshake_failure,
)
from helpers.servers import MAX_MESSAGE_BYTES  # what the client accepts from a server: the servers' own limit
from helpers.usage import UsageTypeError, check_count, check_positive, check_text

__all__ = [
    "MAX_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "ChatClientError",
    "ChatConnection",
    "Message",
    "Predicate",
    "State",
    "as_text",
    "plural",
]

State = Literal["idle", "connecting", "open", "closing", "closed", "rejected", "failed"]
Change = Literal["status", "messages"]
Message = str | bytes
Predicate = Callable[[list[Message]], bool]

MAX_MESSAGES = 200

ACTIVE: tuple[State, ...] = ("connecting", "open", "closing")
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


class ChatConnection:  # ~220 lines: the whole API a ChatClient delegates to; the thread's work is in _Session
    """One chat participant's connection: connect, send, wait for messages, disconnect; no widgets."""

    def __init__(
        self,
        url: str = "",
        name: str = "guest",
        *,
        max_messages: int = MAX_MESSAGES,
        open_timeout: float = OPEN_TIMEOUT,
    ) -> None:
        if not isinstance(url, str):
            raise UsageTypeError(f"url must be a str such as server.ws_url('/chat/{{name}}'), not {type(url).__name__}")
        self.name = check_text(name, "name", example="ada")
        self.url = url
        self.max_messages = check_count(max_messages, "max_messages", minimum=1)
        self.open_timeout = check_positive(open_timeout, "open_timeout")
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
        """One word: idle, connecting, open, closing, closed, rejected or failed."""
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
        """The thread of the latest connection attempt (None before the first)."""
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
        session = _Session(self, url, self.open_timeout)
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
            raise ChatClientError(f"{self.name} is not connected ({self._status}): call connect() first")
        return future

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> list[Message]:
        """Wait until `what` holds and return the messages kept.

        `what` is a total number of received messages, or a function that gets the messages (a list) and
        returns True when it has what you want. Raises TimeoutError after `timeout` seconds, or as soon
        as the connection has ended without it.
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
        """Wait until the connection has ended (closed, rejected or failed) and return the status line."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._state not in ACTIVE, timeout):
                raise TimeoutError(f"{self.name} is still {self._state} after {timeout:g} s (status: {self._status})")
            return self._status

    def disconnect(self, code: int = 1000, reason: str = "", *, timeout: float = CLOSE_TIMEOUT + 1.0) -> str:
        """Close the connection (or stop a connection attempt) and wait for its thread; returns the status."""
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

    def _ended(self, ws: ClientConnection) -> None:
        closing = read_close(ws.protocol.close_rcvd, ws.protocol.close_sent, ws.protocol.close_rcvd_then_sent)
        with self._cond:
            self.close_code, self.close_reason = closing.code, closing.reason
        self._set_state("closed", describe_close(closing.closed_by, closing.code, closing.reason, status_line=True))


class _Session:
    """One connection attempt, from the handshake to the close, on a thread of its own with its own event loop."""

    def __init__(self, owner: ChatConnection, url: str, open_timeout: float) -> None:
        self._owner, self._url, self._open_timeout = owner, url, open_timeout
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
        """Close the connection with `code` and `reason`, or cancel the handshake; returns at once."""
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
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            stop_now = self._stop_requested
        if stop_now:
            self._owner._set_state("closed", describe_handshake_failure(_CANCELLED, status_line=True))
            return
        ws = await self._open()
        if ws is not None:
            await self._converse(ws)
            await ws.wait_closed()
            self._owner._ended(ws)

    async def _open(self) -> ClientConnection | None:
        """The open connection, or None once the status line says why there is none."""
        try:
            return await ws_connect(
                self._url,
                open_timeout=self._open_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                proxy=None,  # an HTTP(S)_PROXY in the environment must not reroute a chat
            )
        except BaseException as exc:
            failure = read_handshake_failure(exc, self._open_timeout)
            self._owner._set_state(_STATE_AFTER[failure.kind], describe_handshake_failure(failure, status_line=True))
            self.opened.set()
            if isinstance(exc, asyncio.CancelledError | InvalidHandshake | InvalidURI | OSError | ValueError):
                return None  # described in the status line
            raise

    async def _converse(self, ws: ClientConnection) -> None:
        """Receive until the connection closes, while `_write` sends what `put` queued."""
        outbox: _Outbox = asyncio.Queue()
        with self._lock:
            self._ws, self._outbox = ws, outbox
            stop_now = self._stop_requested
        self._owner._set_state("open", "open")
        self.opened.set()
        writer = asyncio.create_task(self._write(ws, outbox))
        try:
            if stop_now:
                await ws.close()
            async for message in ws:
                self._owner._add(message)
        except ConnectionClosed:
            pass  # described from the close frames once it is closed
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
