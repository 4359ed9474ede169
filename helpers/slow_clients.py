"""A chat with one client that never reads: the scene both the broadcasting evidence and the slow-client challenge need.

A fan-out that awaits each client's send in turn is only shown wrong by a client whose buffers are full, and
filling them takes care: a small receive buffer, big uncompressed messages, a library queue of one frame, and
a sender paced on its own copies so that reading clients are never the bottleneck. That set-up lives here once,
so `helpers.evidence.broadcasting` and `helpers.challenges` measure the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import connect
from helpers.servers import ThreadServer

__all__ = ["SLOW_MESSAGES", "SLOW_SIZE", "SlowScene", "slow_client_run", "slow_client_scene", "small_socket"]

# 40 messages of 256,000 characters (about 10 MB) are more than any loopback socket's buffers hold (tcp_wmem's
# maximum is a few MB), so a client that never reads stalls whoever waits on its socket.
SLOW_MESSAGES = 40
SLOW_SIZE = 256_000


def small_socket(port: int) -> socket.socket:
    """A connected socket with a small receive buffer, so a client that never reads fills up quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


@dataclass
class SlowScene:
    """Three clients of a chat: `slow` never reads, `sender` sends big messages, `fast` just reads."""

    slow: ClientConnection
    fast: ClientConnection
    sender: ClientConnection

    published: int = 0  # the sender's messages whose own copy came back (so the server has published them)

    @property
    def slow_port(self) -> int:
        """The slow client's own port: the server sees it as the client's address."""
        return int(self.slow.transport.get_extra_info("sockname")[1])

    async def burst(self, window: float = 1.0, count: int = SLOW_MESSAGES, stall: float | None = None) -> int:
        """The sender sends `count` x 256 kB, each after its own copy came back; how many `fast` got within `window`.

        Pacing on the sender's own copies keeps the rate at what reading clients can take, so a server that
        drops messages for slow clients loses none for these two. Each message starts with a 4-digit tag,
        numbered on from the previous burst. With `stall`, the burst also ends once a copy takes longer than that.
        """
        got = 0
        first = self.published

        async def drain() -> None:
            nonlocal got
            while got < count:
                await self.fast.recv()
                got += 1

        async def paced() -> None:
            for n in range(first, first + count):
                tag = f"{n:04d}"
                await self.sender.send(tag + "x" * SLOW_SIZE)
                while str(await asyncio.wait_for(self.sender.recv(), stall))[:4] != tag:
                    pass
                self.published = n + 1

        tasks = [asyncio.create_task(drain()), asyncio.create_task(paced())]
        try:
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(asyncio.gather(*tasks), window)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return got


@asynccontextmanager
async def slow_client_scene(server: ThreadServer, path: str = "/chat") -> AsyncIterator[SlowScene]:
    """Connect the slow client first (so a plain loop over clients meets it first), then fast and sender.

    On exit every connection is aborted: a client that does not read could never finish a close handshake,
    and aborting also unblocks a server stuck sending to it.
    """
    options: dict[str, Any] = {"max_size": None, "compression": None}
    slow = await connect(server.ws_url(path), max_queue=1, sock=small_socket(server.port), **options)
    fast = await connect(server.ws_url(path), **options)
    sender = await connect(server.ws_url(path), **options)
    await asyncio.sleep(0.05)  # let the endpoints register all three
    try:
        yield SlowScene(slow, fast, sender)
    finally:
        for ws in (slow, fast, sender):
            ws.transport.abort()
        await asyncio.sleep(0.01)  # let the aborted transports finish closing their sockets


async def slow_client_run(server: ThreadServer, path: str = "/chat", window: float = 1.0) -> tuple[int, int]:
    """(messages a reading client got within `window`, messages sent) while one client never reads."""
    async with slow_client_scene(server, path) as scene:
        return await scene.burst(window), SLOW_MESSAGES
