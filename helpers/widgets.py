"""Chat clients as widgets: talk through the servers you wrote, from inside the notebook.

`ChatClient` is an ipywidgets box with a URL, a display name, a status line, a message log and an input
box. `ChatPanel` puts several of them side by side, so one message visibly fans out to every client.

This module is only the view. The connection (its thread and event loop, the messages, the waits and the
status lines) is a `helpers.chat_connection.ChatConnection`, which a ChatClient shows and delegates to, so
that it can be used and tested without widgets.

How it behaves:

- Each connection runs on its own thread with its own event loop (the `websockets` asyncio client), so a
  cell that blocks or awaits never freezes the chat, and the kernel's loop is never used.
- `{name}` in the URL is replaced by the (URL-quoted) display name, so one address serves a whole panel:
  `ws://127.0.0.1:8000/chat/{name}` or `ws://.../chat?code=XYZ&name={name}`.
- The status line says what happened in words: `open`, `closed by server: 4403 'wrong join code'`,
  `rejected: HTTP 403`, `failed: connection refused ...`.
- `ChatClient(..., reconnect=True)` reopens a connection lost to a server restart or a network fault, with
  backoff, and says so: `reconnecting in 0.5 s (attempt 1): closed by server: 1012`, then
  `open (reconnected, attempt 1)` (the rules are ChatConnection's, in helpers.chat_connection). While it
  reconnects the status is amber like connecting, and Disconnect stops it.
- Messages are shown as text: HTML in a message is escaped, never rendered. The log keeps only the
  last `max_messages` messages, so a long session cannot grow the notebook.
- The same object has a programmatic API for notebooks and tests: `connect()`, `send(text)`,
  `wait_for(n or predicate)`, `messages`, `status`, `disconnect()`, `close()`. Its `repr` is short and
  deterministic (`ChatClient('ada', open, 3 messages)`), which is what nbval compares.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

from helpers.chat_connection import (
    ACTIVE,
    MAX_MESSAGES,
    MAX_RECONNECT_DELAY,
    RECONNECT_ATTEMPTS,
    RECONNECT_DELAY,
    ChatClientError,
    ChatConnection,
    Message,
    Predicate,
    State,
    as_text,
    plural,
)
from helpers.clients import CLOSE_TIMEOUT, OPEN_TIMEOUT, SEND_TIMEOUT, WAIT_TIMEOUT
from helpers.usage import UsageError, check_names

__all__ = ["ChatClient", "ChatClientError", "ChatPanel"]

_COLOURS: dict[State, str] = {
    "idle": "#666",
    "connecting": "#b36b00",
    "open": "#1a7f37",
    "reconnecting": "#b36b00",  # on its way back, like connecting: not an end (red) yet
    "closing": "#b36b00",
    "closed": "#666",
    "rejected": "#c62828",
    "failed": "#c62828",
}


class _ChatView:
    """The child widgets of one ChatClient: drawn from its connection, and what clicks and Enter do to it."""

    def __init__(self, connection: ChatConnection, log_height: str) -> None:
        self._connection = connection
        self._log_height = log_height
        self.note = ""  # why the last message typed in the box was not sent
        # Layouts and styles are shared between all clients (see _shared): each would be a widget model of its own.
        text_style = _shared(TextStyle, description_width="40px")
        button_style = _shared(widgets.ButtonStyle)
        html_style = _shared(HTMLStyle)
        full, row = _shared(widgets.Layout, width="98%"), _shared(widgets.Layout, width="100%")
        half = _shared(widgets.Layout, width="48%")
        self.header = widgets.HTML(style=html_style, layout=full)  # name, status line, note
        self.url_box = widgets.Text(
            value=connection.url,
            description="URL",
            placeholder="ws://127.0.0.1:8000/chat/{name}",
            style=text_style,
            layout=full,
        )
        self.name_box = widgets.Text(value=connection.name, description="name", style=text_style, layout=full)
        self.connect_button = widgets.Button(description="Connect", style=button_style, layout=half)
        self.disconnect_button = widgets.Button(description="Disconnect", style=button_style, layout=half)
        self.log_html = widgets.HTML(style=html_style, layout=full)
        # continuous_update=False: the value changes (and is sent) on Enter, and when the box loses focus (blur),
        # not on every key press. Text.on_submit (Enter only) is deprecated in ipywidgets 8.1.
        self.input = widgets.Text(
            placeholder="type a message, press Enter",
            continuous_update=False,
            style=text_style,
            layout=_shared(widgets.Layout, width="68%"),
        )
        self.send_button = widgets.Button(
            description="Send", style=button_style, layout=_shared(widgets.Layout, width="28%")
        )
        self.rows = [
            widgets.HBox([self.connect_button, self.disconnect_button], layout=row),
            widgets.HBox([self.input, self.send_button], layout=row),
        ]
        self.parts: list[widgets.Widget] = [
            *(self.header, self.url_box, self.name_box, self.connect_button, self.disconnect_button),
            *(self.log_html, self.input, self.send_button, *self.rows),
        ]
        self._wire()

    def _wire(self) -> None:
        self.connect_button.on_click(lambda _: self.ui_connect())
        self.disconnect_button.on_click(lambda _: self._connection.disconnect(timeout=0.0))
        self.send_button.on_click(lambda _: self.ui_send(self.input.value))
        self.input.observe(lambda change: self.ui_send(change["new"]), names="value")
        self.url_box.observe(lambda change: setattr(self._connection, "url", str(change["new"])), names="value")
        self.name_box.observe(lambda change: self._rename(str(change["new"])), names="value")
        self._connection.on_change(lambda what: self.render_log() if what == "messages" else self.render_status())

    def _rename(self, name: str) -> None:
        self._connection.name = name
        self.render_status()

    # rendering (always escaped: a message is text, never markup)

    def render_status(self) -> None:
        state, status = self._connection.state, self._connection.status
        note = f'<br><span style="color:#c62828">{html.escape(self.note)}</span>' if self.note else ""
        colour = _COLOURS[state]
        self.header.value = (
            f"<b>{html.escape(str(self.name_box.value))}</b> "
            f'<span style="color:{colour}">● {html.escape(status)}</span>{note}'
        )
        active = state in ACTIVE
        self.connect_button.disabled = active
        self.connect_button.description = "Connect" if self._connection.thread is None else "Reconnect"
        self.disconnect_button.disabled = not active
        self.send_button.disabled = state != "open"

    def render_log(self) -> None:
        lines = []
        for message in self._connection.messages:
            text = html.escape(as_text(message))
            style = "color:#666;font-style:italic" if isinstance(message, bytes) or text.startswith("* ") else ""
            lines.append(f'<div style="{style}">{text}</div>' if style else f"<div>{text}</div>")
        # column-reverse keeps the newest line in view without any script.
        self.log_html.value = (
            f'<div style="height:{self._log_height};overflow-y:auto;display:flex;flex-direction:column-reverse;'
            "font-family:monospace;font-size:12px;white-space:pre-wrap;word-break:break-word;"
            f'border:1px solid #eee;padding:2px"><div>{"".join(lines)}</div></div>'
        )

    # buttons and the input box (callbacks never raise: they would only print to the log panel)

    def ui_connect(self) -> None:
        self.note = ""
        with contextlib.suppress(ChatClientError):
            self._connection.connect(wait=False)

    def ui_send(self, text: str) -> None:
        if not text:
            return
        try:
            self._connection.send_nowait(text)
        except ChatClientError as exc:
            self.note = f"not sent: {exc}"
            self.render_status()
            return
        if self.note:
            self.note = ""
            self.render_status()
        self.input.value = ""  # observed again with "", which is ignored


class ChatClient(widgets.VBox):
    """One chat participant shown as a widget: a view of a ChatConnection, which runs on a background thread.

    `reconnect`, `max_attempts`, `reconnect_delay` and `max_reconnect_delay` go to the ChatConnection as they are.
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
        width: str = "330px",
        log_height: str = "180px",
    ) -> None:
        self._connection = ChatConnection(
            url,
            name,
            max_messages=max_messages,
            open_timeout=open_timeout,
            reconnect=reconnect,
            max_attempts=max_attempts,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
        )
        self._closed = False
        self._view = view = _ChatView(self._connection, log_height)
        super().__init__(
            children=[view.header, view.url_box, view.name_box, view.rows[0], view.log_html, view.rows[1]],
            layout=_shared(widgets.Layout, width=width, border="1px solid #ccc", padding="4px", margin="2px"),
        )
        view.render_status()
        view.render_log()

    # ----------------------------------------------------------------------------------------------
    # what the client knows (the connection's, except the URL and name, which the boxes hold)

    @property
    def connection(self) -> ChatConnection:
        """The connection this widget shows."""
        return self._connection

    @property
    def url(self) -> str:
        """The server address; `{name}` in it is replaced by the display name when connecting."""
        return str(self._view.url_box.value)

    @url.setter
    def url(self, value: str) -> None:
        self._view.url_box.value = value

    @property
    def name(self) -> str:
        return str(self._view.name_box.value)

    @name.setter
    def name(self, value: str) -> None:
        self._view.name_box.value = value

    @property
    def max_messages(self) -> int:
        """How many messages the log keeps."""
        return self._connection.max_messages

    @property
    def open_timeout(self) -> float:
        """How long a connection attempt waits for the handshake, in seconds."""
        return self._connection.open_timeout

    @open_timeout.setter
    def open_timeout(self, value: float) -> None:
        self._connection.open_timeout = value

    @property
    def state(self) -> State:
        """One word: idle, connecting, open, reconnecting, closing, closed, rejected or failed."""
        return self._connection.state

    @property
    def status(self) -> str:
        """The status line as text, e.g. "open" or "closed by server: 4403 'wrong join code'"."""
        return self._connection.status

    @property
    def close_code(self) -> int | None:
        """The code of the last close (1006 if the connection dropped), None until one has ended."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str:
        return self._connection.close_reason

    @property
    def messages(self) -> list[Message]:
        """The messages received and still in the log (the last `max_messages`), oldest first."""
        return self._connection.messages

    @property
    def received(self) -> int:
        """How many messages this client has received in total, including those dropped from the log."""
        return self._connection.received

    @property
    def log_html(self) -> str:
        """The HTML the log widget shows (every message escaped), for checking what a browser would render."""
        return str(self._view.log_html.value)

    def transcript(self) -> str:
        """The log as plain text, one message per line."""
        return self._connection.transcript()

    def resolved_url(self) -> str:
        """The URL this client connects to: `url` with `{name}` filled in."""
        return self._connection.resolved_url()

    def __repr__(self) -> str:
        return f"ChatClient({self.name!r}, {self.state}, {plural(len(self.messages), 'message')})"

    # ----------------------------------------------------------------------------------------------
    # programmatic API: the connection's (see ChatConnection), plus the widget's own close, focus and blur

    def connect(self, *, wait: bool = True) -> str:
        """Open the connection on a background thread; with `wait`, return once it is open or has failed.

        Returns the status line. Does nothing if the client is already connecting or open.
        """
        return self._connection.connect(wait=wait)

    def send(self, text: str, *, timeout: float = SEND_TIMEOUT) -> None:
        """Send one text message and wait (at most `timeout` s) until it is written to the connection."""
        self._connection.send(text, timeout=timeout)

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> list[Message]:
        """Wait until `what` (a total number of received messages, or a test of the log) holds; return the log."""
        return self._connection.wait_for(what, timeout)

    def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> str:
        """Wait until the connection has ended (closed, rejected, failed; not while reconnecting); return the status."""
        return self._connection.wait_closed(timeout)

    def disconnect(self, code: int = 1000, reason: str = "", *, timeout: float = CLOSE_TIMEOUT + 1.0) -> str:
        """Close the connection (or stop a connection attempt or a wait to reconnect) and wait for its thread."""
        return self._connection.disconnect(code, reason, timeout=timeout)

    def close(self) -> None:
        """Disconnect, end the thread and remove the widget from the page; the object cannot reconnect after."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        connection = getattr(self, "_connection", None)  # None after a failed __init__ (Widget.__del__ calls close())
        if connection is not None:
            with contextlib.suppress(Exception):  # also runs at interpreter exit
                connection.close()
        view = getattr(self, "_view", None)
        for part in view.parts if view is not None else ():  # not the shared layouts and styles: others use them
            part.close()
        super().close()

    def clear(self) -> None:
        """Empty the log (the total count in `received` is kept)."""
        self._connection.clear()

    def focus(self) -> None:
        """Put the keyboard focus in the message box (DOMWidget.focus would target the whole box)."""
        self._view.input.focus()

    def blur(self) -> None:
        self._view.input.blur()


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
        inner = "; ".join(f"{c.name}: {c.state}, {plural(len(c.messages), 'message')}" for c in self.clients)
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

            def heard(_: list[Message], c: ChatClient = client) -> bool:
                return any(text in as_text(m) for m in c.connection.since(before[c]))

            client.wait_for(heard, timeout)

    def wait_for(self, what: int | Predicate, timeout: float = WAIT_TIMEOUT) -> None:
        """`ChatClient.wait_for` on every client that is connecting or open."""
        for client in self.clients:
            if client.state in ACTIVE:
                client.wait_for(what, timeout)

    def statuses(self) -> dict[str, str]:
        return {c.name: c.status for c in self.clients}

    def transcript(self) -> str:
        """Every client's log as plain text, one block per client."""
        blocks = []
        for c in self.clients:
            lines = [f"  {as_text(m)}" for m in c.messages] or ["  (nothing received)"]
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
    return part
