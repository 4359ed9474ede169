"""Live probes for lesson 13: one behaviour, tried against one running server, as one short table cell.

Each probe is an async function taking a server handle (anything with `.ws_url(path)`, and `.pid` for the
memory probe) and returning the text the matrix shows. Texts hold no ports, PIDs or raw timings: durations
and sizes are put in buckets, so a notebook that prints them is the same on every run. `on_all()` runs one
probe against every server at once; the slow probes (a client waiting for an unanswered handshake, up to
NEVER_CLIENT_TIMEOUT unless the caller passes its own; a flood; a shutdown) are started with
`asyncio.ensure_future(on_all(...))` in one cell and awaited in a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from helpers.clients import CLOSE_TIMEOUT, Outcome, attempt
from helpers.server_matrix.apps import SINK_SECONDS

__all__ = [
    "BOUNDED",
    "FLOOD_BYTES",
    "FLOOD_MESSAGE_BYTES",
    "FLOOD_SECONDS",
    "FLOOD_STALL",
    "NEVER_CLIENT_TIMEOUT",
    "PROBE_TIMEOUT",
    "FloodResult",
    "Handle",
    "bucket_bytes",
    "bucket_seconds",
    "close_before_accept",
    "close_code_text",
    "close_with_code",
    "deflate",
    "flood",
    "forwarded_client",
    "handshake_text",
    "invalid_utf8",
    "never_accepts",
    "on_all",
    "raise_after_accept",
    "return_without_accept",
    "rss_bytes",
    "shutdown",
    "size_limit",
    "spec_version",
    "subprotocol",
    "vanish",
]

T = TypeVar("T")

PROBE_TIMEOUT = 5.0  # no probe but the slow ones waits longer for a server
NEVER_CLIENT_TIMEOUT = 8.0  # the client gives up on an unanswered handshake here, if the server has not
FLOOD_SECONDS = 1.5  # the most a flood lasts
FLOOD_BYTES = 48 * 1024 * 1024  # a flood stops once it has written this much, or
FLOOD_STALL = 0.5  # once one send has waited this long (nobody reads the socket)
FLOOD_MESSAGE_BYTES = 64 * 1024
BOUNDED = 8 * 1024 * 1024  # a server whose memory grew less than this during a flood held on to (almost) none of it
MIB = 1024 * 1024


class Handle(Protocol):
    """What a probe needs of a running server: its address (and its process, for memory)."""

    @property
    def pid(self) -> int: ...

    def ws_url(self, path: str = "/") -> str: ...


def bucket_seconds(seconds: float) -> str:
    """A duration as a coarse, stable bucket: "< 1 s", "1-3 s", "3-7 s", "over 7 s"."""
    for edge, text in ((1, "< 1 s"), (3, "1-3 s"), (7, "3-7 s")):
        if seconds < edge:
            return text
    return "over 7 s"


def bucket_bytes(count: float) -> str:
    """A size as a coarse, stable bucket: "< 8 MiB", "8-64 MiB", "over 64 MiB"."""
    for edge, text in ((8, "< 8 MiB"), (64, "8-64 MiB")):
        if count < edge * MIB:
            return text
    return "over 64 MiB"


def _size(count: int) -> str:
    return f"{count // MIB} MiB" if count % MIB == 0 else f"{count} B"


def handshake_text(outcome: Outcome) -> str:
    """What a client saw of a handshake: "HTTP 403", "open, then closed 1000", "no response (dropped)", ..."""
    if outcome.timed_out:
        return f"client gave up at {outcome.timed_out_after:g} s"
    if outcome.rejected:
        body = outcome.body.strip()
        return f"HTTP {outcome.status}" + (f" {body[:24]!r}" if body else "")
    if outcome.opened:
        return "open, then " + close_code_text(outcome)
    return "dropped, no HTTP response"


def close_code_text(outcome: Outcome) -> str:
    """How an open connection ended: "closed 4003 'room is full'", "dropped (1006)"."""
    if outcome.closed_by == "nobody":
        return "dropped (1006)"
    reason = f" {outcome.close_reason!r}" if outcome.close_reason else ""
    who = "" if outcome.closed_by == "server" else " by the client"
    return f"closed {outcome.close_code}{reason}{who}"


def _connect(handle: Handle, path: str, **options: Any) -> Any:
    """websockets' own client (no proxy, short open and close timeouts), for probes that drive frames by hand."""
    return ws_connect(
        handle.ws_url(path), open_timeout=PROBE_TIMEOUT, close_timeout=CLOSE_TIMEOUT, proxy=None, **options
    )


async def on_all(probe: Callable[[Handle], Awaitable[T]], handles: Mapping[str, Handle]) -> dict[str, T]:
    """Run `probe` against every server at the same time; name -> result, in the order of `handles`."""
    results = await asyncio.gather(*(probe(handle) for handle in handles.values()))
    return dict(zip(handles, results, strict=True))


async def close_before_accept(handle: Handle) -> str:
    return handshake_text(await attempt(handle.ws_url("/reject")))


async def return_without_accept(handle: Handle, client_timeout: float = NEVER_CLIENT_TIMEOUT) -> str:
    """What a client sees when the app returns without answering (it waits up to `client_timeout`)."""
    return await never_accepts(handle, client_timeout, path="/return")


async def never_accepts(handle: Handle, client_timeout: float = NEVER_CLIENT_TIMEOUT, path: str = "/never") -> str:
    """Who gives up on an unanswered handshake, and after how long (bucketed)."""
    outcome = await attempt(handle.ws_url(path), open_timeout=client_timeout)
    if outcome.timed_out or outcome.elapsed < 1:
        return handshake_text(outcome)
    return f"server ended it after {bucket_seconds(outcome.elapsed)}: {handshake_text(outcome)}"


async def raise_after_accept(handle: Handle) -> str:
    """How the client's connection ends when the app raises right after accepting (waits up to PROBE_TIMEOUT)."""
    async with _connect(handle, "/raise") as ws:
        return await _closed_code(ws)


async def close_with_code(handle: Handle) -> str:
    return close_code_text(await attempt(handle.ws_url("/close")))


async def subprotocol(handle: Handle) -> str:
    """The subprotocol a client offering chat.v1 then chat.v2 gets from an app that picks the second."""
    outcome = await attempt(handle.ws_url("/subprotocol"), subprotocols=["chat.v1", "chat.v2"])
    return str(outcome.subprotocol) if outcome.opened else handshake_text(outcome)


async def deflate(handle: Handle) -> str:
    """Whether the server accepts the permessage-deflate the client offers (websockets' client offers it)."""
    outcome = await attempt(handle.ws_url("/client"), receive=1)
    extensions = outcome.headers.get("sec-websocket-extensions", "")
    return "on" if "permessage-deflate" in extensions else "off"


async def forwarded_client(handle: Handle) -> str:
    """The host in `scope['client']` when a loopback client claims X-Forwarded-For: 203.0.113.7."""
    outcome = await attempt(handle.ws_url("/client"), receive=1, headers={"X-Forwarded-For": "203.0.113.7"})
    return str(outcome.messages[0]) if outcome.messages else handshake_text(outcome)


async def spec_version(handle: Handle) -> str:
    """The ASGI spec version the server puts in `scope["asgi"]["spec_version"]` ("none" if it leaves it out)."""
    outcome = await attempt(handle.ws_url("/spec"), receive=1)
    return str(outcome.messages[0]) if outcome.messages else handshake_text(outcome)


async def _closed_code(ws: ClientConnection) -> str:
    """Wait (bounded) for the server to end `ws`; its close code, or "dropped (1006)"."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code}" if exc.rcvd is not None else "dropped (1006)"
    except TimeoutError:
        return f"still open after {PROBE_TIMEOUT:g} s"


async def size_limit(handle: Handle, limit: int) -> str:
    """A message of exactly `limit` bytes, then one of `limit` + 1, on one connection: which pass."""
    ws = await _connect(handle, "/size", max_size=None, compression=None)
    try:
        try:
            await ws.send(bytes(limit))
            exact = await asyncio.wait_for(ws.recv(), PROBE_TIMEOUT) == f"{limit} bytes"
        except ConnectionClosed as exc:
            return f"{_size(limit)} refused: closed {exc.rcvd.code if exc.rcvd else 1006}"
        # The server refuses the frame from its header and stops reading, so the rest of it may never go out:
        # send in the background and watch for the server's close frame instead of waiting for the send.
        sender = asyncio.ensure_future(ws.send(bytes(limit + 1)))
        over = await _close_seen(ws)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await sender
    finally:
        ws.transport.abort()
    return f"{_size(limit)} {'passes' if exact else 'fails'}; +1 B: {over}"


async def _close_seen(ws: ClientConnection) -> str:
    """The close frame the server sent ("closed 1009"), or "dropped (1006)" if the connection ended without one;
    read as soon as it arrives, without waiting for the closing handshake to finish (bounded by PROBE_TIMEOUT)."""
    deadline = time.monotonic() + PROBE_TIMEOUT
    while time.monotonic() < deadline:
        if ws.protocol.close_rcvd is not None:
            return f"closed {ws.protocol.close_rcvd.code}"
        if ws.transport.is_closing():
            return "dropped (1006)"
        await asyncio.sleep(0.01)
    return f"still open after {PROBE_TIMEOUT:g} s"


async def invalid_utf8(handle: Handle) -> str:
    """The close a server sends for a text frame that is not UTF-8."""
    async with _connect(handle, "/size") as ws:
        await ws.send(b"caf\xe9", text=True)  # Latin-1 bytes in a text frame
        return await _closed_code(ws)


async def vanish(handle: Handle) -> str:
    """The code in the app's `websocket.disconnect` after the client's TCP connection is aborted."""
    key = uuid.uuid4().hex
    ws = await _connect(handle, f"/vanish?key={key}")
    ws.transport.abort()  # no close frame: the socket closes at once (a FIN; a reset with unread data), as a crash does
    report = await attempt(handle.ws_url(f"/report?key={key}"), receive=1, timeout=PROBE_TIMEOUT)
    return str(report.messages[0]) if report.messages else handshake_text(report)


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid` (VmRSS in /proc/PID/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


class FloodResult:
    """How much a client wrote into an app that never reads, and how much the server's memory grew."""

    def __init__(self, sent: int, growth: int) -> None:
        self.sent = sent
        self.growth = growth

    @property
    def verdict(self) -> str:
        """ "bounded (< 8 MiB)", or "grew with the flood" when the server held at least half of what was written.

        Relative to what the client managed to write, so a busy machine (a slower flood) gives the same answer.
        """
        if self.growth < BOUNDED:
            return "bounded (< 8 MiB)"
        return "grew with the flood" if self.growth >= self.sent / 2 else "grew, less than the flood"

    def __str__(self) -> str:
        return f"RSS +{bucket_bytes(self.growth)} (client wrote {bucket_bytes(self.sent)})"


async def flood(handle: Handle, seconds: float = FLOOD_SECONDS, size: int = FLOOD_MESSAGE_BYTES) -> FloodResult:
    """Send `size`-byte messages to /sink until FLOOD_BYTES are written, a send stalls for FLOOD_STALL s or `seconds`
    pass; the server's RSS growth meanwhile."""
    before = rss_bytes(handle.pid)
    sent = 0
    message = bytes(size)
    ws = await _connect(handle, "/sink", compression=None)
    opened = time.monotonic()
    deadline = opened + seconds
    try:
        while sent < FLOOD_BYTES and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.send(message), min(left, FLOOD_STALL))  # blocks once nobody drains the socket
            sent += size
    except (TimeoutError, ConnectionClosed):
        pass
    growth = rss_bytes(handle.pid) - before
    ws.transport.abort()
    # The app sleeps through the flood and cannot see the abort: wait until it is done, so that no handler is
    # still running when a later probe (the shutdown, above all) meets this server.
    await asyncio.sleep(max(0.0, opened + SINK_SECONDS - time.monotonic()) + 0.2)
    return FloodResult(sent, max(growth, 0))


async def shutdown(handle: Any, stop: Callable[[], None]) -> str:
    """Connect to /hold, call `stop` (which only signals the server), and report how the client is closed and
    how soon after the signal (bucketed: "at once" is under 1 s). The process's own exit is waited for (bounded)
    but not timed: interpreter teardown is what a busy machine slows, not the server's choice."""
    ws = await _connect(handle, "/hold")
    began = time.monotonic()
    stop()
    seen = await _close_seen(ws)
    elapsed = time.monotonic() - began
    when = "at once" if elapsed < 1 else f"after {bucket_seconds(elapsed)}"
    ws.transport.abort()
    process = handle.process
    while process.poll() is None and time.monotonic() - began < 2 * PROBE_TIMEOUT:
        await asyncio.sleep(0.05)
    still = "" if process.poll() is not None else "; still running after 10 s"
    return f"{seen} {when}{still}"
