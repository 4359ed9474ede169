"""What the live quiz's server tests share: a `websockets` client that keeps every frame it received.

Every receive has a timeout, and waiting for a message is a bounded loop over received frames, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["RECEIVE_TIMEOUT", "QuizClient", "client", "closed_with"]

RECEIVE_TIMEOUT = 3.0


class QuizClient:
    """One connection to the quiz server, with every JSON frame it received in order (`frames`)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []
        self.texts: list[str] = []

    async def next(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        text = await asyncio.wait_for(self.connection.recv(), timeout)
        assert isinstance(text, str), f"the server sent a binary frame: {text!r}"
        self.texts.append(text)
        frame: dict[str, Any] = json.loads(text)
        self.frames.append(frame)
        return frame

    async def until(
        self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = RECEIVE_TIMEOUT
    ) -> dict[str, Any]:
        """Receive until a frame of type `kind` for which `where` holds (bounded by `timeout` in all)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind and where(frame):
                return frame

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def answer(self, question: str, *letters: str) -> dict[str, Any]:
        """Send an answer and return the server's reply to it (answered, refused or error)."""
        await self.send({"type": "answer", "question": question, "answer": list(letters)})
        return await self.reply()

    async def reply(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The next answered, refused or error frame (others received on the way are kept in `frames`)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] in {"answered", "refused", "error"}:
                return frame

    async def closed(self, timeout: float = RECEIVE_TIMEOUT) -> tuple[int | None, str]:
        """Read (and keep) frames until the server closes; the close code and reason."""
        try:
            while True:
                await self.next(timeout)
        except ConnectionClosed as exc:
            received = exc.rcvd
            return (None, "") if received is None else (received.code, received.reason)


@asynccontextmanager
async def client(url: str) -> AsyncIterator[QuizClient]:
    """A connected QuizClient, closed at the end of the block."""
    async with connect(url, open_timeout=RECEIVE_TIMEOUT, close_timeout=1) as connection:
        yield QuizClient(connection)


async def closed_with(url: str, send: list[str | bytes] | None = None) -> tuple[int | None, str]:
    """Connect, send `send`, and return how the server closed the connection."""
    async with client(url) as quiz_client:
        for message in send or []:
            try:
                await quiz_client.send(message)
            except ConnectionClosed:
                break
        return await quiz_client.closed()
