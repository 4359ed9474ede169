"""Pieces the evidence experiments share: warnings capture, listening, outcome names.

Both quizzes' experiments record warnings, listen to clients and name outcomes the same way, so a fact line
reads the same in notebook 10 and notebook 11.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import warnings
from collections.abc import Iterator

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import Outcome, collect
from helpers.servers import ThreadServer

__all__ = [
    "handshake_kind",
    "hear_all",
    "listen",
    "masked",
    "recording_warnings",
    "server_errors",
    "warning_lines",
]


@contextlib.contextmanager
def recording_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record (instead of print or raise) warnings from any thread while the block runs.

    `catch_warnings` swaps the process-wide filters, so warnings raised on a server's thread are caught
    too. `gc.collect()` at the end destroys forgotten coroutines still held by a reference cycle.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
        gc.collect()


def warning_lines(caught: list[warnings.WarningMessage], category: type[Warning]) -> list[str]:
    """The distinct warnings of `category` among `caught`, as "Category: message" lines, sorted."""
    return sorted({f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, category)})


def server_errors(server: ThreadServer) -> str:
    """The server's distinct errors joined by "; ", or "none"."""
    return "; ".join(dict.fromkeys(server.errors)) or "none"


async def listen(ws: ClientConnection, quiet: float = 0.3, limit: int = 100) -> tuple[list[str | bytes], str]:
    """What `ws` receives until nothing arrives for `quiet` s, and how its connection ended up."""
    heard: list[str | bytes] = []
    try:
        await collect(ws, heard, quiet=quiet, limit=limit)
    except ConnectionClosed as exc:
        return heard, "dropped (1006)" if exc.rcvd is None else f"closed {exc.rcvd.code}"
    return heard, "open"


def masked(text: str) -> str:
    """Hide what changes between runs: a task's repr and memory addresses."""
    return re.sub(r"0x[0-9a-f]+", "0x...", re.sub(r"Task <.*> got Future", "Task <...> got Future", text))


async def hear_all(clients: dict[str, ClientConnection]) -> dict[str, list[str | bytes]]:
    """Listen on every client at once, then close them all; who heard what."""
    results = await asyncio.gather(*(listen(ws) for ws in clients.values()))
    for ws in clients.values():
        await ws.close()
    return {who: heard for who, (heard, _) in zip(clients, results, strict=True)}


def handshake_kind(outcome: Outcome) -> str:
    """A short name for how a handshake ended: 'open', '403', '500', 'timeout', 'failed'."""
    if outcome.timed_out:
        return "timeout"
    if outcome.rejected:
        return str(outcome.status)
    return "open" if outcome.opened else "failed"
