"""Chat clients as widgets: talk through the servers you wrote, from inside the notebook.

`ChatClient` is an ipywidgets box with a URL, a display name, a status line, a message log and an input
box. `ChatPanel` puts several of them side by side, so one message visibly fans out to every client.

How it behaves:

- Each connection runs on its own thread with its own event loop (the `websockets` asyncio client), so a
  cell that blocks or awaits never freezes the chat, and the kernel's loop is never used.
- `{name}` in the URL is replaced by the (URL-quoted) display name, so one address serves a whole panel:
  `ws://127.0.0.1:8000/chat/{name}` or `ws://.../chat?code=XYZ&name={name}`.
- The status line says what happened in words: `open`, `closed by server: 4403 'wrong join code'`,
  `rejected: HTTP 403`, `failed: connection refused ...`.
- Messages are shown as text: HTML in a message is escaped, never rendered. The log keeps only the
  last `max_messages` messages, so a long session cannot grow the notebook.
- The same object has a programmatic API for notebooks and tests: `connect()`, `send(text)`,
  `wait_for(n or predicate)`, `messages`, `status`, `disconnect()`, `close()`. Its `repr` is short and
  deterministic (`ChatClient('ada', open, 3 messages)`), which is what nbval compares.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import html
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from helpers.usage import UsageError, UsageTypeError, check_count, check_names, check_positive, check_text

State = Literal["idle", "connecting", "open", "closing", "closed", "rejected", "failed"]
Message = str | bytes
Predicate = Callable[[list[Message]], bool]

OPEN_TIMEOUT = 2.0
CLOSE_TIMEOUT = 1.0
SEND_TIMEOUT = 2.0
WAIT_TIMEOUT = 2.0
MAX_MESSAGES = 200
MAX_MESSAGE_BYTES = 1 << 20  # what the client accepts from a server in one message

_ACTIVE: tuple[State, ...] = ("connecting", "open", "closing")
_COLOURS: dict[State, str] = {
    "idle": "#666",
    "connecting": "#b36b00",
    "open": "#1a7f37",
    "closing": "#b36b00",
    "closed": "#666",
    "rejected": "#c62828",
    "failed": "#c62828",
}


class ChatClientError(RuntimeError):
    """A ChatClient was asked to do something it cannot do now; the message says what to do."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _handshake_failure(exc: BaseException, open_timeout: float) -> tuple[State, str]:
    """The state and status line for a connection attempt that raised `exc`."""
    if isinstance(exc, asyncio.CancelledError):
        return "closed", "closed: the connection attempt was cancelled"
    if isinstance(exc, InvalidStatus):
        return "rejected", f"rejected: HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "failed", f"failed: no handshake response within {open_timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "failed", "failed: connection refused (is the server running at that address and port?)"
    return "failed", f"failed: {type(exc).__name__}: {exc}"


def _as_text(message: Message) -> str:
    if isinstance(message, bytes):
        return f"(binary message, {_plural(len(message), 'byte')})"
    return message


class ChatClient(widgets.VBox):
    """One chat participant: a websockets client on a background thread, shown as a widget."""

    def __init__(
        self,
        url: str = "",
        name: str = "guest",
        *,
        max_messages: int = MAX_MESSAGES,
        open_timeout: float = OPEN_TIMEOUT,
        width: str = "330px",
        log_height: str = "180px",
    ) -> None:
        if not isinstance(url, str):
            raise UsageTypeError(f"url must be a str such as server.ws_url('/chat/{{name}}'), not {type(url).__name__}")
        check_text(name, "name", example="ada")
        self.max_messages = check_count(max_messages, "max_messages", minimum=1)
        self.open_timeout = check_positive(open_timeout, "open_timeout")
        self._cond = threading.Condition()
        self._messages: deque[Message] = deque(maxlen=max_messages)
        self._received = 0
        self._state: State = "idle"
        self._status = "not connected"
        self.close_code: int | None = None
        self.close_reason = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[tuple[str, Future[None]]] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._stop_requested = False
        self._closed = False
        self._log_height = log_height

        self._note = ""  # why the last message typed in the box was not sent

        # Layouts and styles are shared between all clients (see _shared): each would be a widget model of its own.
        text_style = _shared(TextStyle, description_width="40px")
        button_style = _shared(widgets.ButtonStyle)
        html_style = _shared(HTMLStyle)
        full, row = _shared(widgets.Layout, width="98%"), _shared(widgets.Layout, width="100%")
        half = _shared(widgets.Layout, width="48%")
        self._header = widgets.HTML(style=html_style, layout=full)  # name, status line, note
        self._url_box = widgets.Text(
            value=url, description="URL", placeholder="ws://127.0.0.1:8000/chat/{name}", style=text_style, layout=full
        )
        self._name_box = widgets.Text(value=name, description="name", style=text_style, layout=full)
        self._connect_button = widgets.Button(description="Connect", style=button_style, layout=half)
        self._disconnect_button = widgets.Button(description="Disconnect", style=button_style, layout=half)
        self._log_html = widgets.HTML(style=html_style, layout=full)
        # continuous_update=False: the value changes (and is sent) on Enter, and when the box loses focus (blur),
        # not on every key press. Text.on_submit (Enter only) is deprecated in ipywidgets 8.1.
        self._input = widgets.Text(
            placeholder="type a message, press Enter",
            continuous_update=False,
            style=text_style,
            layout=_shared(widgets.Layout, width="68%"),
        )
        self._send_button = widgets.Button(
            description="Send", style=button_style, layout=_shared(widgets.Layout, width="28%")
        )

        self._connect_button.on_click(lambda _: self._ui_connect())
        self._disconnect_button.on_click(lambda _: self._ui_disconnect())
        self._send_button.on_click(lambda _: self._ui_send(self._input.value))
        self._input.observe(lambda change: self._ui_send(change["new"]), names="value")
        self._name_box.observe(lambda _: self._render_status(), names="value")

        self._rows = [
            widgets.HBox([self._connect_button, self._disconnect_button], layout=row),
            widgets.HBox([self._input, self._send_button], layout=row),
        ]
        self._parts: list[widgets.Widget] = [
            self._header,
            self._url_box,
            self._name_box,
            self._connect_button,
            self._disconnect_button,
            self._log_html,
            self._input,
            self._send_button,
            *self._rows,
        ]
        super().__init__(
            children=[self._header, self._url_box, self._name_box, self._rows[0], self._log_html, self._rows[1]],
            layout=_shared(widgets.Layout, width=width, border="1px solid #ccc", padding="4px", margin="2px"),
        )
        self._render_status()
        self._render_log()
        _live.add(self)

    # ----------------------------------------------------------------------------------------------
    # what the client knows

    @property
    def url(self) -> str:
        """The server address; `{name}` in it is replaced by the display name when connecting."""
        return str(self._url_box.value)

    @url.setter
    def url(self, value: str) -> None:
        self._url_box.value = value

    @property
    def name(self) -> str:
        return str(self._name_box.value)

    @name.setter
    def name(self, value: str) -> None:
        self._name_box.value = value

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
        """The messages received and still in the log (the last `max_messages`), oldest first."""
        with self._cond:
            return list(self._messages)

    @property
    def received(self) -> int:
        """How many messages this client has received in total, including those dropped from the log."""
        return self._received

    @property
    def log_html(self) -> str:
        """The HTML the log widget shows (every message escaped), for checking what a browser would render."""
        return str(self._log_html.value)

    def transcript(self) -> str:
        """The log as plain text, one message per line."""
        return "\n".join(_as_text(m) for m in self.messages)

    def resolved_url(self) -> str:
        """The URL this client connects to: `url` with `{name}` filled in."""
        return self.url.strip().replace("{name}", quote(self.name, safe=""))

    def __repr__(self) -> str:
        return f"ChatClient({self.name!r}, {self._state}, {_plural(len(self._messages), 'message')})"

    # ----------------------------------------------------------------------------------------------
    # programmatic API

    def connect(self, *, wait: bool = True) -> str:
        """Open the connection on a background thread; with `wait`, return once it is open or has failed.

        Returns the status line. Does nothing if the client is already connecting or open.
        """
        if self._closed:
            raise ChatClientError("this ChatClient was closed (close() ends it for good): create a new one")
        with self._cond:
            if self._state in _ACTIVE:
                return self._status
            previous = self._thread
        if previous is not None:
            previous.join(CLOSE_TIMEOUT + 1.0)
        url = self.resolved_url()
        if not url.startswith(("ws://", "wss://")):
            shown = url or "an empty URL"
            self._set_state("failed", f"failed: the URL must start with ws:// or wss://, not {shown!r}")
            return self._status
        opened = threading.Event()
        with self._cond:
            self._stop_requested = False
            self.close_code, self.close_reason = None, ""
        self._set_state("connecting", "connecting…")
        thread = threading.Thread(target=self._run, args=(url, opened), name=f"chat-client-{self.name}", daemon=True)
        self._thread = thread
        thread.start()
        if wait:
            opened.wait(self.open_timeout + CLOSE_TIMEOUT)
        return self._status

    def send(self, text: str, *, timeout: float = SEND_TIMEOUT) -> None:
        """Send one text message and wait (at most `timeout` s) until it is written to the connection."""
        future = self._enqueue(text)
        deadline = time.monotonic() + timeout
        thread = self._thread
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

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> list[Message]:
        """Wait until `what` holds and return the log.

        `what` is a total number of received messages, or a function that gets the log (a list) and
        returns True when it has what you want. Raises TimeoutError after `timeout` seconds, or as soon
        as the connection has ended without it.
        """

        def satisfied() -> bool:
            if isinstance(what, int):
                return self._received >= what
            return bool(what(list(self._messages)))

        with self._cond:
            done = self._cond.wait_for(lambda: satisfied() or self._state not in _ACTIVE, timeout)
            if done and satisfied():
                return list(self._messages)
            wanted = f"{what} messages" if isinstance(what, int) else "the expected message"
            ended = "the connection ended" if self._state not in _ACTIVE else f"{timeout:g} s passed"
            raise TimeoutError(
                f"{self.name} has received {_plural(self._received, 'message')}, not {wanted}, and {ended} "
                f"(status: {self._status})"
            )

    def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> str:
        """Wait until the connection has ended (closed, rejected or failed) and return the status line."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._state not in _ACTIVE, timeout):
                raise TimeoutError(f"{self.name} is still {self._state} after {timeout:g} s (status: {self._status})")
            return self._status

    def disconnect(self, code: int = 1000, reason: str = "", *, timeout: float = CLOSE_TIMEOUT + 1.0) -> str:
        """Close the connection (or stop a connection attempt) and wait for its thread; returns the status."""
        with self._cond:
            self._stop_requested = True
            loop, ws, task, thread = self._loop, self._ws, self._task, self._thread
            if self._state == "open":
                self._state, self._status = "closing", "closing…"
        self._render_status()
        if thread is None or not thread.is_alive():
            return self._status
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in between: the thread is ending anyway
                if ws is not None:
                    loop.call_soon_threadsafe(self._start_close, ws, code, reason)
                elif task is not None:
                    loop.call_soon_threadsafe(task.cancel)
        if threading.current_thread() is not thread:
            thread.join(timeout)
        return self._status

    def close(self) -> None:
        """Disconnect, end the thread and remove the widget from the page; the object cannot reconnect after."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        with contextlib.suppress(Exception):  # also runs at interpreter exit, or after a failed __init__
            self.disconnect()
        _live.discard(self)
        for part in getattr(self, "_parts", ()):  # not the shared layouts and styles: other clients use them
            part.close()
        super().close()

    def clear(self) -> None:
        """Empty the log (the total count in `received` is kept)."""
        with self._cond:
            self._messages.clear()
        self._render_log()

    def focus(self) -> None:
        """Put the keyboard focus in the message box (DOMWidget.focus would target the whole box)."""
        self._input.focus()

    def blur(self) -> None:
        self._input.blur()

    # ----------------------------------------------------------------------------------------------
    # the connection's thread

    def _run(self, url: str, opened: threading.Event) -> None:
        try:
            asyncio.run(self._session(url, opened))
        except BaseException as exc:  # the thread must always leave a status behind
            self._set_state("failed", f"failed: {type(exc).__name__}: {exc}")
        finally:
            with self._cond:
                if self._thread is threading.current_thread():  # not a newer connection's
                    self._loop = self._task = self._ws = self._outbox = None
            opened.set()

    async def _session(self, url: str, opened: threading.Event) -> None:
        with self._cond:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            stop_now = self._stop_requested
        if stop_now:
            self._set_state("closed", "closed: the connection attempt was cancelled")
            return
        try:
            ws = await ws_connect(
                url,
                open_timeout=self.open_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                proxy=None,  # an HTTP(S)_PROXY in the environment must not reroute a chat
            )
        except BaseException as exc:
            self._set_state(*_handshake_failure(exc, self.open_timeout))
            opened.set()
            if isinstance(exc, asyncio.CancelledError | InvalidHandshake | InvalidURI | OSError | ValueError):
                return  # described in the status line
            raise
        outbox: asyncio.Queue[tuple[str, Future[None]]] = asyncio.Queue()
        with self._cond:
            self._ws, self._outbox = ws, outbox
            stop_now = self._stop_requested
        self._set_state("open", "open")
        opened.set()
        writer = asyncio.create_task(self._write(ws, outbox))
        try:
            if stop_now:
                await ws.close()
            async for message in ws:
                self._add(message)
        except ConnectionClosed:
            pass  # described below from the close frames
        except asyncio.CancelledError:
            await ws.close()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            with self._cond:
                self._ws = self._outbox = None
            while not outbox.empty():
                _, future = outbox.get_nowait()
                future.set_exception(ChatClientError(f"{self.name} is no longer connected"))
        await ws.wait_closed()
        self._describe_close(ws)

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[tuple[str, Future[None]]]) -> None:
        while True:
            text, future = await outbox.get()
            if future.cancelled():
                continue
            try:
                await ws.send(text)
            except Exception as exc:
                future.set_exception(ChatClientError(f"{self.name} could not send: {type(exc).__name__}: {exc}"))
            else:
                future.set_result(None)

    def _start_close(self, ws: ClientConnection, code: int, reason: str) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        self._closing = asyncio.ensure_future(ws.close(code, reason))

    def _enqueue(self, text: str) -> Future[None]:
        if not isinstance(text, str):
            raise TypeError(f"send() takes text (str), not {type(text).__name__}")
        with self._cond:
            loop, outbox, state = self._loop, self._outbox, self._state
        if state != "open" or loop is None or outbox is None:
            raise ChatClientError(f"{self.name} is not connected ({self._status}): call connect() first")
        future: Future[None] = Future()
        try:
            loop.call_soon_threadsafe(outbox.put_nowait, (text, future))
        except RuntimeError:  # the loop closed between the check and now
            raise ChatClientError(f"{self.name} is no longer connected ({self._status})") from None
        return future

    def _describe_close(self, ws: ClientConnection) -> None:
        rcvd, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
        if rcvd is None and sent is None:
            self.close_code, self.close_reason = 1006, ""
            self._set_state("closed", "dropped: the connection ended without a close frame (1006)")
            return
        by_server = rcvd is not None and (sent is None or bool(ws.protocol.close_rcvd_then_sent))
        frame = rcvd if by_server else sent
        assert frame is not None
        self.close_code, self.close_reason = frame.code, frame.reason
        reason = f" {frame.reason!r}" if frame.reason else ""
        who = "server" if by_server else "you"
        self._set_state("closed", f"closed by {who}: {frame.code}{reason}")

    def _since(self, count: int) -> list[Message]:
        """Messages received after the first `count` (those still in the log)."""
        with self._cond:
            new = self._received - count
            return list(self._messages)[-new:] if new > 0 else []

    def _add(self, message: Message) -> None:
        with self._cond:
            self._messages.append(message)
            self._received += 1
            self._cond.notify_all()
        self._render_log()

    def _set_state(self, state: State, status: str) -> None:
        with self._cond:
            self._state, self._status = state, status
            self._cond.notify_all()
        self._render_status()

    # ----------------------------------------------------------------------------------------------
    # rendering (always escaped: a message is text, never markup)

    def _render_status(self) -> None:
        colour = _COLOURS[self._state]
        note = f'<br><span style="color:#c62828">{html.escape(self._note)}</span>' if self._note else ""
        self._header.value = (
            f'<b>{html.escape(self.name)}</b> <span style="color:{colour}">● {html.escape(self._status)}</span>{note}'
        )
        active = self._state in _ACTIVE
        self._connect_button.disabled = active
        self._connect_button.description = "Connect" if self._thread is None else "Reconnect"
        self._disconnect_button.disabled = not active
        self._send_button.disabled = self._state != "open"

    def _render_log(self) -> None:
        lines = []
        for message in self.messages:
            text = html.escape(_as_text(message))
            style = "color:#666;font-style:italic" if isinstance(message, bytes) or text.startswith("* ") else ""
            lines.append(f'<div style="{style}">{text}</div>' if style else f"<div>{text}</div>")
        # column-reverse keeps the newest line in view without any script.
        self._log_html.value = (
            f'<div style="height:{self._log_height};overflow-y:auto;display:flex;flex-direction:column-reverse;'
            "font-family:monospace;font-size:12px;white-space:pre-wrap;word-break:break-word;"
            f'border:1px solid #eee;padding:2px"><div>{"".join(lines)}</div></div>'
        )

    # ----------------------------------------------------------------------------------------------
    # buttons and the input box (callbacks never raise: they would only print to the log panel)

    def _ui_connect(self) -> None:
        self._note = ""
        with contextlib.suppress(ChatClientError):
            self.connect(wait=False)

    def _ui_disconnect(self) -> None:
        self.disconnect(timeout=0.0)

    def _ui_send(self, text: str) -> None:
        if not text:
            return
        try:
            self._enqueue(text)
        except ChatClientError as exc:
            self._note = f"not sent: {exc}"
            self._render_status()
            return
        if self._note:
            self._note = ""
            self._render_status()
        self._input.value = ""  # observed again with "", which is ignored


class ChatPanel(widgets.HBox):
    """Several ChatClients side by side, all pointed at one URL (with `{name}` filled in per client)."""

    def __init__(self, url: str, names: Sequence[str], **client_options: Any) -> None:
        names = check_names(names, "names")
        if len(set(names)) != len(names):
            raise UsageError(f"names must be different from each other, got {list(names)}")
        self.clients = [ChatClient(url, name, **client_options) for name in names]
        super().__init__(children=self.clients, layout=_shared(widgets.Layout, flex_flow="row wrap"))

    def __getitem__(self, name: str) -> ChatClient:
        for client in self.clients:
            if client.name == name:
                return client
        raise KeyError(f"no client named {name!r} in this panel; it has {[c.name for c in self.clients]}")

    def __iter__(self) -> Iterator[ChatClient]:
        return iter(self.clients)

    def __len__(self) -> int:
        return len(self.clients)

    def __repr__(self) -> str:
        inner = "; ".join(f"{c.name}: {c.state}, {_plural(len(c.messages), 'message')}" for c in self.clients)
        return f"ChatPanel({inner})"

    def connect(self) -> dict[str, str]:
        """Connect every client, one after the other (each waits until open); returns name -> status."""
        return {client.name: client.connect() for client in self.clients}

    def say(self, name: str, text: str, *, timeout: float = WAIT_TIMEOUT) -> None:
        """Send `text` from client `name`, then wait until every open client has received a message containing it."""
        listeners = [c for c in self.clients if c.state == "open"]
        before = {c: c.received for c in listeners}
        self[name].send(text, timeout=timeout)
        for client in listeners:
            client.wait_for(lambda _, c=client: any(text in _as_text(m) for m in c._since(before[c])), timeout)

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> None:
        """`ChatClient.wait_for` on every client that is connecting or open."""
        for client in self.clients:
            if client.state in _ACTIVE:
                client.wait_for(what, timeout)

    def statuses(self) -> dict[str, str]:
        return {c.name: c.status for c in self.clients}

    def transcript(self) -> str:
        """Every client's log as plain text, one block per client."""
        blocks = []
        for c in self.clients:
            lines = [f"  {_as_text(m)}" for m in c.messages] or ["  (nothing received)"]
            blocks.append("\n".join([f"{c.name} ({c.status}):", *lines]))
        return "\n".join(blocks)

    def disconnect(self) -> dict[str, str]:
        """Disconnect every client; returns name -> status."""
        return {client.name: client.disconnect() for client in self.clients}

    def close(self) -> None:
        """Close every client (connections, threads and widgets), then the panel itself."""
        for client in getattr(self, "clients", ()):  # Widget.__del__ calls close() even after a failed __init__
            client.close()
        super().close()


_live: weakref.WeakSet[ChatClient] = weakref.WeakSet()
_shared_parts: dict[tuple[type[widgets.Widget], tuple[tuple[str, str], ...]], widgets.Widget] = {}
W = TypeVar("W", bound=widgets.Widget)


def _shared(kind: type[W], **traits: str) -> W:
    """One Layout/Style instance per distinct set of traits, for every client in the kernel.

    Every widget otherwise gets its own layout and style models, which the kernel sends to the browser
    and a saved notebook stores: three quarters of a client's models would be empty layouts.
    A shared part that was closed (Widget.close_all) is replaced by a fresh one.
    """
    key = (kind, tuple(sorted(traits.items())))
    part = _shared_parts.get(key)
    if part is None or part.comm is None:
        part = kind(**traits)
        _shared_parts[key] = part
    return part  # type: ignore[return-value]


@atexit.register
def _disconnect_all() -> None:
    """At interpreter exit, end every connection still open (their threads are daemons, but close politely)."""
    for client in list(_live):
        with contextlib.suppress(Exception):
            client.disconnect(timeout=CLOSE_TIMEOUT)
