"""What the two live quiz widgets share: a connection that reconnects, a view fed from it, a countdown and the waits.

`LiveQuizWidget` is an ipywidgets box around a `helpers.chat_connection.ChatConnection` (with `reconnect=True`:
its own thread and event loop, `{name}` filled into the URL, backoff after a restart or a network fault) and a
`StudentView` or `InstructorView` (`helpers.live_quiz.views`). Each text the connection receives is applied to
the view on the connection's thread, and the widget redraws the parts that changed there (setting widget values
from a background thread works kernel-side); a click never waits for the network.

The countdown is `helpers.quiz.countdown.Countdown` ticking a few times a second, but the time it shows is the
view's `remaining()`: the server's `deadline - now`, counted down on this machine's monotonic clock from when the
question arrived. The local wall clock is never read.

Everything from the server is text: each subclass draws it with `html.escape` only.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets as widgets

from helpers.chat_connection import (
    ACTIVE,
    MAX_RECONNECT_DELAY,
    RECONNECT_ATTEMPTS,
    RECONNECT_DELAY,
    ChatClientError,
    ChatConnection,
    Message,
    State,
)
from helpers.clients import CLOSE_TIMEOUT, OPEN_TIMEOUT, SEND_TIMEOUT, WAIT_TIMEOUT
from helpers.live_quiz import protocol as wire
from helpers.live_quiz.views import InstructorView, LiveQuizUsageError, StudentView
from helpers.quiz.countdown import Countdown
from helpers.usage import UsageTypeError, check_positive

__all__ = ["COLOURS", "KEPT_FRAMES", "LiveQuizWidget", "escape", "status_html"]

V = TypeVar("V", StudentView, InstructorView)

KEPT_FRAMES = 50  # what the connection keeps of the frames (the view holds the state; this is for debugging only)
COLOURS: dict[State, str] = {
    "idle": "#666",
    "connecting": "#b36b00",
    "open": "#1a7f37",
    "reconnecting": "#b36b00",
    "closing": "#b36b00",
    "closed": "#666",
    "rejected": "#c62828",
    "failed": "#c62828",
}


def escape(value: object) -> str:
    """Any value from the server as HTML text: escaped, never markup."""
    return html.escape(str(value))


def status_html(title: str, state: State, status: str, *notes: str | None) -> str:
    """`title` in bold, then the status line in the colour of `state`, then each note (in red) on a line of its own."""
    lines = "".join(f'<br><span style="color:#c62828">{escape(note)}</span>' for note in notes if note)
    return f'<b>{escape(title)}</b> <span style="color:{COLOURS[state]}">● {escape(status)}</span>{lines}'


class LiveQuizWidget(widgets.VBox):
    """The base of StudentQuiz and InstructorQuiz: connection, view, countdown, waits; subclasses draw.

    A subclass sets `self.parts` (every child widget it owns, to close) and implements `render()`, which redraws
    everything from the view (called with the lock held), and may override `received(kind, data)`.
    """

    def __init__(
        self,
        url: str,
        name: str,
        view: StudentView | InstructorView,
        *,
        open_timeout: float = OPEN_TIMEOUT,
        max_attempts: int = RECONNECT_ATTEMPTS,
        reconnect_delay: float = RECONNECT_DELAY,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
        tick: float = 0.25,
    ) -> None:
        self._closed = False
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._state_view = view
        self._seen = 0  # frames of the connection applied so far
        self.kinds: Counter[str] = Counter()  # how many messages of each type were applied
        self.problem: str | None = None  # the last frame that was not a live quiz message, in words
        self.note = ""  # why the last click did nothing
        self._connection = ChatConnection(
            url,
            name,
            max_messages=KEPT_FRAMES,
            open_timeout=open_timeout,
            reconnect=True,
            max_attempts=max_attempts,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
        )
        self.countdown = Countdown(self._tick, self._tick, tick=check_positive(tick, "tick"))
        self.parts: list[widgets.Widget] = []
        super().__init__(layout=widgets.Layout(border="1px solid #ccc", padding="4px", margin="2px"))
        self._connection.on_change(self._on_change)

    # ----------------------------------------------------------------------------------------------
    # what subclasses draw

    def render(self) -> None:
        """Redraw every part from the view (the lock is held)."""
        raise NotImplementedError

    def render_clock(self) -> None:
        """Redraw the countdown only (the lock is held); by default, everything."""
        self.render()

    def owned_parts(self) -> list[widgets.Widget]:
        """Every child widget this widget made (closed with it); `parts` unless a subclass adds those it rebuilds."""
        return self.parts

    def received(self, kind: str, data: dict[str, Any]) -> None:
        """Called (lock held) after the view has applied a message of type `kind`; the widget redraws after."""

    def status_html(self, title: str) -> str:
        """`title` in bold, the connection's status line in its colour, then the last click's note and problem."""
        return status_html(title, self._connection.state, self.status, self.note, self.problem)

    # ----------------------------------------------------------------------------------------------
    # what the connection reports, on its thread

    def _on_change(self, what: str) -> None:
        with self._changed:
            if what == "messages":
                fresh = self._connection.since(self._seen)
                self._seen = self._connection.received
                for message in fresh:
                    self._apply(message)
            with contextlib.suppress(Exception):  # a drawing problem must not end the connection's thread
                self.render()
            self._changed.notify_all()

    def _apply(self, message: Message) -> None:
        """Apply one frame to the view; a frame that is not a quiz message is noted in `problem`, never raised."""
        try:
            if isinstance(message, bytes):
                raise wire.ProtocolError(f"ignored a binary frame of {len(message)} bytes: is this the quiz server?")
            data = wire.read_server_message(message)
            kind = self._state_view.apply(data)
        except (KeyError, TypeError, ValueError) as exc:  # ProtocolError is a ValueError
            unread = f"ignored a message the widget could not read ({type(exc).__name__}: {exc})"
            self.problem = exc.reason if isinstance(exc, wire.ProtocolError) else unread
            return
        self.kinds[kind] += 1
        if kind == wire.QUESTION and self._state_view.open:
            self.countdown.start(self._state_view.remaining() or 0.0)
        elif kind in (wire.WELCOME, wire.QUESTION, wire.TIME_UP, wire.REVEALED) and not self._state_view.open:
            self.countdown.stop()
        self.received(kind, data)

    def _tick(self, generation: int, *_: float) -> None:
        with self._lock:
            if self.countdown.is_current(generation):
                with contextlib.suppress(Exception):
                    self.render_clock()

    # ----------------------------------------------------------------------------------------------
    # programmatic API

    @property
    def connection(self) -> ChatConnection:
        return self._connection

    @property
    def state(self) -> State:
        """One word: idle, connecting, open, reconnecting, closing, closed, rejected or failed."""
        return self._connection.state

    @property
    def status(self) -> str:
        """The connection's status line, e.g. "open" or "reconnecting in 0.5 s (attempt 1): ..."."""
        return self._connection.status

    def connect(self, *, wait: bool = True, timeout: float = WAIT_TIMEOUT) -> str:
        """Connect (on the connection's thread); with `wait`, return once the server's welcome has arrived or it
        failed. Returns the status line."""
        if self._closed:
            raise LiveQuizUsageError("this widget was closed (close() ends it for good): create a new one")
        welcomed = self.kinds[wire.WELCOME]
        self._connection.connect(wait=wait)
        if wait:
            with contextlib.suppress(TimeoutError):
                self._wait(lambda: self.kinds[wire.WELCOME] > welcomed, timeout)
        return self.status

    def wait_for(self, predicate: Callable[[V], bool], timeout: float = WAIT_TIMEOUT) -> V:
        """Wait (at most `timeout` s) until `predicate(view)` holds and return the view.

        The view is this widget's StudentView or InstructorView. Raises TimeoutError after `timeout`, or as soon
        as the connection has ended without it (while it reconnects it has not ended).
        """
        if not callable(predicate):
            raise UsageTypeError(f"wait_for takes a function of the view, such as lambda v: v.open, not {predicate!r}")
        view: Any = self._state_view
        self._wait(lambda: bool(predicate(view)), timeout)
        return view

    def _wait(self, condition: Callable[[], bool], timeout: float) -> None:
        check_positive(timeout, "timeout")
        with self._changed:
            self._changed.wait_for(lambda: condition() or self._connection.state not in ACTIVE, timeout)
            if condition():
                return
            ended = "the connection ended" if self._connection.state not in ACTIVE else f"{timeout:g} s passed"
            raise TimeoutError(f"{self!r}: {ended} before it happened (status: {self.status})")

    def _request(self, text: str, replies: tuple[str, ...], timeout: float) -> str:
        """Send `text` and wait for the next message of one of the types `replies`; returns that type."""
        with self._lock:
            before = {kind: self.kinds[kind] for kind in replies}
        self._send_text(text)
        arrived: list[str] = []

        def replied() -> bool:
            arrived[:] = [kind for kind in replies if self.kinds[kind] > before[kind]]
            return bool(arrived)

        self._wait(replied, timeout)
        return arrived[0]

    def _send_text(self, text: str, *, wait: bool = True) -> None:
        try:
            if wait:
                self._connection.send(text, timeout=SEND_TIMEOUT)
            else:
                self._connection.send_nowait(text)
        except ChatClientError:
            raise LiveQuizUsageError(f"not connected ({self.status}): call connect() first") from None

    def click(self, text: str) -> None:
        """What a button sends: queued at once (the kernel never waits); if it cannot be sent, the note says why."""
        try:
            self._send_text(text, wait=False)
            self.note = ""
        except LiveQuizUsageError as exc:
            self.note = str(exc)
        with self._lock:
            self.render()

    def disconnect(self, *, timeout: float = CLOSE_TIMEOUT + 1.0) -> str:
        """Close the connection (it does not reconnect after this), stop the countdown; returns the status line."""
        status = self._connection.disconnect(timeout=timeout)
        self.countdown.stop(wait=True)
        return status

    def close(self) -> None:
        """Disconnect, end every thread and remove the widget from the page; it cannot reconnect after."""
        if getattr(self, "_closed", True):  # True also after a failed __init__ (Widget.__del__ calls close())
            return
        self._closed = True
        with contextlib.suppress(Exception):  # also runs at interpreter exit
            self._connection.close()
        self.countdown.stop(wait=True)
        for part in self.owned_parts():
            part.close()
        super().close()
