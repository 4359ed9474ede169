"""Real `websockets` clients with short timeouts, and a record of what a client saw.

`connect()` / `connect_sync()` are the library's own clients with defaults suited to a notebook
(nothing waits longer than a couple of seconds). `attempt()` / `attempt_sync()` run one whole
conversation (open, send, receive, close) and return an `Outcome` instead of raising, so a lesson
can print the fact ("rejected: HTTP 403") rather than a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection as SyncClientConnection
from websockets.sync.client import connect as _sync_connect

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

OPEN_TIMEOUT = 2.0
RECEIVE_TIMEOUT = 1.0
CLOSE_TIMEOUT = 1.0
QUIET_PERIOD = 0.2

Message = str | bytes
ClosedBy = Literal["server", "client", "nobody"]


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

    def _parts(self) -> list[str]:
        if self.timed_out_after is not None:
            return [f"timed out: no handshake response within {self.timed_out_after:g} s"]
        if self.rejected:
            body = f" {self.body.strip()!r}" if self.body.strip() else ""
            return [f"rejected: HTTP {self.status}{body}"]
        if not self.opened:
            return [f"failed: {self.error}"]
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
        if self.closed_by == "nobody":
            parts.append(f"connection dropped without a close frame ({self.close_code})")
        elif self.closed_by is not None:
            reason = f" {self.close_reason!r}" if self.close_reason else ""
            parts.append(f"closed by {self.closed_by}: {self.close_code}{reason}")
        elif self.error:
            parts.append(self.error)
        return parts

    def __str__(self) -> str:
        return "; ".join(self._parts())


def _record_close(outcome: Outcome, exc: ConnectionClosed) -> None:
    if exc.rcvd is None and exc.sent is None:
        outcome.closed_by = "nobody"
        outcome.close_code = 1006
        return
    frame = exc.rcvd if exc.rcvd is not None else exc.sent
    assert frame is not None
    outcome.close_code = frame.code
    outcome.close_reason = frame.reason
    if exc.rcvd is not None and (exc.sent is None or exc.rcvd_then_sent):
        outcome.closed_by = "server"
    else:
        outcome.closed_by = "client"


def _record_open(outcome: Outcome, connection: ClientConnection | SyncClientConnection) -> None:
    response = connection.response
    assert response is not None
    outcome.status = response.status_code
    outcome.subprotocol = connection.subprotocol
    outcome.headers = {k.lower(): v for k, v in response.headers.raw_items()}


def _record_handshake_failure(outcome: Outcome, exc: BaseException, open_timeout: float) -> None:
    if isinstance(exc, InvalidStatus):
        outcome.status = exc.response.status_code
        outcome.body = exc.response.body.decode(errors="replace") if exc.response.body else ""
        outcome.headers = {k.lower(): v for k, v in exc.response.headers.raw_items()}
    elif isinstance(exc, TimeoutError):
        outcome.timed_out_after = open_timeout
    elif isinstance(exc, ConnectionRefusedError):
        outcome.error = "connection refused (is the server running on that port?)"
    else:
        outcome.error = f"{type(exc).__name__}: {exc}"


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
    result: list[Outcome] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(attempt(url, **kwargs)))
        except BaseException as exc:  # handed to the caller below, not printed from the worker
            failure.append(exc)

    worker = threading.Thread(target=work, name="attempt-sync")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
