"""Real `websockets` clients with short timeouts, and a record of what a client saw.

`connect()` / `connect_sync()` are the library's own clients with defaults suited to a notebook
(nothing waits longer than a couple of seconds). `attempt()` / `attempt_sync()` run one whole
conversation (open, send, receive, close) and return an `Outcome` instead of raising, so a lesson
can print the fact ("rejected: HTTP 403") rather than a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Close
from websockets.sync.client import ClientConnection as SyncClientConnection
from websockets.sync.client import connect as _sync_connect

from helpers.loops import run_on_private_loop
from helpers.usage import (
    UsageTypeError,
    check_close_code,
    check_count,
    check_headers,
    check_messages,
    check_names,
    check_positive,
    check_ws_url,
)

__all__ = [
    "ATTEMPT_SYNC_LIMIT",
    "CLOSE_TIMEOUT",
    "OPEN_TIMEOUT",
    "QUIET_PERIOD",
    "RECEIVE_TIMEOUT",
    "SEND_TIMEOUT",
    "WAIT_TIMEOUT",
    "ClosedBy",
    "Closing",
    "FailureKind",
    "HandshakeFailure",
    "Message",
    "Outcome",
    "attempt",
    "attempt_sync",
    "collect",
    "connect",
    "connect_sync",
    "describe_close",
    "describe_handshake_failure",
    "read_close",
    "read_handshake_failure",
]

OPEN_TIMEOUT = 2.0
RECEIVE_TIMEOUT = 1.0
CLOSE_TIMEOUT = 1.0
QUIET_PERIOD = 0.2
SEND_TIMEOUT = 2.0  # helpers.widgets' chat clients: until a message is written to the connection
WAIT_TIMEOUT = 2.0  # helpers.widgets' chat clients: wait_for() and wait_closed()
ATTEMPT_SYNC_LIMIT = 60.0  # attempt_sync(): the most it waits for attempt(), which bounds itself well within it

Message = str | bytes
ClosedBy = Literal["server", "client", "nobody"]
FailureKind = Literal["cancelled", "rejected", "timed out", "refused", "error"]


def _client_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "extra_headers" in kwargs:
        raise UsageTypeError("websockets 14+ calls it additional_headers=, not extra_headers=")
    for option in ("open_timeout", "close_timeout"):
        if kwargs.get(option) is not None:
            check_positive(kwargs[option], option)
    # proxy=None: the lessons only talk to loopback; an HTTP(S)_PROXY in the environment must not reroute them.
    options: dict[str, Any] = {"open_timeout": OPEN_TIMEOUT, "close_timeout": CLOSE_TIMEOUT, "proxy": None}
    options.update(kwargs)
    return options


def connect(url: str, **kwargs: Any) -> Any:
    """`websockets.asyncio.client.connect` with a 2 s open timeout and 1 s close timeout.

    Use it as the library's: `async with connect(url) as ws: ...`.
    """
    return _async_connect(check_ws_url(url), **_client_options(kwargs))


def connect_sync(url: str, **kwargs: Any) -> SyncClientConnection:
    """`websockets.sync.client.connect` with short timeouts; use it in a `with` block."""
    return _sync_connect(check_ws_url(url), **_client_options(kwargs))


def _show(message: Message, width: int = 60) -> str:
    text = repr(message)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Outcome:
    """What one client saw, from handshake to close."""

    url: str
    status: int | None = None
    subprotocol: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    timed_out_after: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    closed_by: ClosedBy | None = None
    messages: list[Message] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0

    @property
    def opened(self) -> bool:
        return self.status == 101

    @property
    def rejected(self) -> bool:
        return self.status is not None and self.status != 101

    @property
    def timed_out(self) -> bool:
        return self.timed_out_after is not None

    def _handshake_failure(self) -> HandshakeFailure:
        if self.timed_out_after is not None:
            return HandshakeFailure("timed out", timeout=self.timed_out_after)
        if self.rejected:
            return HandshakeFailure("rejected", status=self.status, body=self.body)
        return HandshakeFailure("error", error=str(self.error))

    def _parts(self) -> list[str]:
        if self.timed_out_after is not None or not self.opened:
            return [describe_handshake_failure(self._handshake_failure())]
        opened = "opened (HTTP 101"
        opened += f", subprotocol {self.subprotocol!r})" if self.subprotocol else ")"
        parts = [opened]
        if self.messages:
            shown = ", ".join(_show(m) for m in self.messages[:5])
            more = f" (+{len(self.messages) - 5} more)" if len(self.messages) > 5 else ""
            noun = "message" if len(self.messages) == 1 else "messages"
            parts.append(f"received {len(self.messages)} {noun}: {shown}{more}")
        if self.error and self.closed_by is not None:
            parts.append(self.error)  # fewer replies than asked for, before the client closed
        if self.closed_by is not None:
            parts.append(describe_close(self.closed_by, self.close_code, self.close_reason))
        elif self.error:
            parts.append(self.error)
        return parts

    def __str__(self) -> str:
        return "; ".join(self._parts())


# How a connection ended and why a handshake failed, read once here for `Outcome` and for the chat clients of
# helpers.widgets (helpers.chat_connection). `status_line=True` words it as a chat window's status line.


@dataclass(frozen=True)
class Closing:
    """How a connection ended: who closed it ("nobody" when it dropped), with which code and reason."""

    closed_by: ClosedBy
    code: int
    reason: str = ""


def read_close(rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None) -> Closing:
    """Who closed a connection and how, from the close frames it received and sent (websockets' names for them).

    With neither frame the connection dropped (1006). The server closed it if its frame came first. The code and
    reason are those of the frame received when there is one (RFC 6455's close code), else of the one sent.
    """
    if rcvd is None and sent is None:
        return Closing("nobody", 1006)
    frame = rcvd if rcvd is not None else sent
    assert frame is not None
    by_server = rcvd is not None and (sent is None or bool(rcvd_then_sent))
    return Closing("server" if by_server else "client", frame.code, frame.reason)


def describe_close(closed_by: ClosedBy, code: int | None, reason: str = "", *, status_line: bool = False) -> str:
    """The close in words: "closed by server: 4403 'members only'", or that the connection dropped.

    With `status_line` it speaks to the person at a chat window: "closed by you: 1000", and
    "dropped: the connection ended without a close frame (1006)".
    """
    if closed_by == "nobody":
        if status_line:
            return f"dropped: the connection ended without a close frame ({code})"
        return f"connection dropped without a close frame ({code})"
    who = "you" if status_line and closed_by == "client" else closed_by
    shown = f" {reason!r}" if reason else ""
    return f"closed by {who}: {code}{shown}"


@dataclass(frozen=True)
class HandshakeFailure:
    """Why an opening handshake did not end in HTTP 101, read from the exception the client raised."""

    kind: FailureKind
    status: int | None = None  # a rejection's HTTP status, with its body and headers
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 0.0  # how long the client waited, for "timed out"
    error: str = ""  # "Type: message", for "error"


def read_handshake_failure(exc: BaseException, open_timeout: float) -> HandshakeFailure:
    """What the exception from an opening handshake that was given `open_timeout` seconds means."""
    if isinstance(exc, asyncio.CancelledError):
        return HandshakeFailure("cancelled")
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode(errors="replace") if response.body else ""
        headers = {k.lower(): v for k, v in response.headers.raw_items()}
        return HandshakeFailure("rejected", status=response.status_code, body=body, headers=headers)
    if isinstance(exc, TimeoutError):
        return HandshakeFailure("timed out", timeout=open_timeout)
    if isinstance(exc, ConnectionRefusedError):
        return HandshakeFailure("refused")
    return HandshakeFailure("error", error=f"{type(exc).__name__}: {exc}")


def _failed_because(failure: HandshakeFailure, *, status_line: bool = False) -> str:
    """What follows "failed: " for a refused connection or another error."""
    if failure.kind == "refused":
        where = "at that address and port" if status_line else "on that port"
        return f"connection refused (is the server running {where}?)"
    return failure.error


def describe_handshake_failure(failure: HandshakeFailure, *, status_line: bool = False) -> str:
    """The failure in words: "rejected: HTTP 403 'body'", "timed out: no handshake response within 2 s", ...

    With `status_line` it is a chat window's status line: it starts with the window's state (closed, rejected or
    failed), leaves the response body out, and asks about the address a person typed as well as the port.
    """
    if failure.kind == "cancelled":
        return "closed: the connection attempt was cancelled"
    if failure.kind == "rejected":
        body = failure.body.strip()
        shown = f" {body!r}" if body and not status_line else ""
        return f"rejected: HTTP {failure.status}{shown}"
    if failure.kind == "timed out":
        said = "failed" if status_line else "timed out"
        return f"{said}: no handshake response within {failure.timeout:g} s"
    return f"failed: {_failed_because(failure, status_line=status_line)}"


def _record_close(outcome: Outcome, exc: ConnectionClosed) -> None:
    closing = read_close(exc.rcvd, exc.sent, exc.rcvd_then_sent)
    outcome.closed_by, outcome.close_code, outcome.close_reason = closing.closed_by, closing.code, closing.reason


def _record_open(outcome: Outcome, connection: ClientConnection | SyncClientConnection) -> None:
    response = connection.response
    assert response is not None
    outcome.status = response.status_code
    outcome.subprotocol = connection.subprotocol
    outcome.headers = {k.lower(): v for k, v in response.headers.raw_items()}


def _record_handshake_failure(outcome: Outcome, exc: BaseException, open_timeout: float) -> None:
    failure = read_handshake_failure(exc, open_timeout)
    outcome.status, outcome.body, outcome.headers = failure.status, failure.body, failure.headers
    if failure.kind == "timed out":
        outcome.timed_out_after = failure.timeout
    elif failure.kind != "rejected":
        outcome.error = _failed_because(failure)


async def collect(
    ws: ClientConnection,
    into: list[Message],
    *,
    expect: int = 0,
    deadline: float = 5.0,
    quiet: float = QUIET_PERIOD,
    limit: int | None = None,
) -> None:
    """Append what `ws` receives to `into`: up to `deadline` s in all for the first `expect` messages, then until
    nothing more arrives for `quiet` s, so extras are counted too.

    Waiting for a count, not for the first quiet gap, keeps exact counts exact on a busy machine. It returns when
    the wait ends, or once `into` holds `limit` messages (a guard against a server that never falls quiet); a
    closed connection raises `ConnectionClosed`, and `into` keeps what arrived before it.
    """
    check_count(expect, "expect")
    check_positive(deadline, "deadline")
    check_positive(quiet, "quiet")
    if limit is not None:
        check_count(limit, "limit")
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    with contextlib.suppress(TimeoutError):
        while limit is None or len(into) < limit:
            wait = max(give_up - loop.time(), 0) if len(into) < expect else quiet
            into.append(await asyncio.wait_for(ws.recv(), wait))


_HANDSHAKE_ERRORS = (InvalidHandshake, TimeoutError, OSError)


async def attempt(
    url: str,
    *,
    send: Sequence[Message] = (),
    receive: int | None = None,
    subprotocols: Sequence[str] | None = None,
    headers: dict[str, str] | None = None,
    open_timeout: float = OPEN_TIMEOUT,
    timeout: float = RECEIVE_TIMEOUT,
    quiet: float = QUIET_PERIOD,
    close_code: int = 1000,
) -> Outcome:
    """Open `url`, send each of `send`, collect replies, close, and report what happened.

    With `receive=N` it waits (up to `timeout` each) for N messages; without it, it collects until the
    server closes or nothing arrives for `quiet` seconds. If the connection is still open at the end,
    the client closes it with `close_code`. Arguments that cannot work (an http:// URL, a lone string for
    `send`, a negative timeout) raise `helpers.usage.UsageError` before anything connects.
    """
    check_ws_url(url)
    send = check_messages(send)
    if receive is not None:
        check_count(receive, "receive")
    if subprotocols is not None:
        subprotocols = check_names(subprotocols, "subprotocols")
    if headers is not None:
        headers = check_headers(headers)
    for value, argument in ((open_timeout, "open_timeout"), (timeout, "timeout"), (quiet, "quiet")):
        check_positive(value, argument)
    check_close_code(close_code)
    outcome = Outcome(url)
    started = time.monotonic()
    try:
        ws = await _async_connect(
            url,
            subprotocols=list(subprotocols) if subprotocols else None,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=open_timeout,
            close_timeout=CLOSE_TIMEOUT,
            proxy=None,
        )
    except _HANDSHAKE_ERRORS as exc:
        _record_handshake_failure(outcome, exc, open_timeout)
        outcome.elapsed = time.monotonic() - started
        return outcome
    _record_open(outcome, ws)
    try:
        for message in send:
            await ws.send(message)
        wanted = receive
        while wanted is None or len(outcome.messages) < wanted:
            wait = timeout if wanted is not None else quiet
            try:
                outcome.messages.append(await asyncio.wait_for(ws.recv(), wait))
            except TimeoutError:
                if wanted is not None:
                    outcome.error = f"got {len(outcome.messages)} of {wanted} messages within {timeout:g} s"
                break
        await ws.close(close_code)
        await ws.wait_closed()
        raise ConnectionClosed(ws.protocol.close_rcvd, ws.protocol.close_sent, ws.protocol.close_rcvd_then_sent)
    except ConnectionClosed as exc:
        _record_close(outcome, exc)
    finally:
        await ws.close()
    outcome.elapsed = time.monotonic() - started
    return outcome


def attempt_sync(url: str, **kwargs: Any) -> Outcome:
    """`attempt()` for code that cannot await: blocks the calling thread until the conversation ends.

    It runs `attempt()` on a private event loop in a worker thread, so it works inside a cell whose
    thread already runs a loop, and, like any blocking call there, it stops that loop meanwhile.
    """
    check_ws_url(url)
    return run_on_private_loop(attempt(url, **kwargs), timeout=ATTEMPT_SYNC_LIMIT, name="attempt-sync")
