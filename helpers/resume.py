"""Resume a broadcast after a reconnect without losing or repeating a message: sequence numbers and a history.

A client that reconnects has missed whatever was broadcast while it was away. The fix shown here (lesson 15):

- every broadcast message carries a sequence number, 1, 2, 3, ... (`History.append`), on the wire as JSON text
  `{"seq": 12, "text": "hi"}` (`encode`/`decode`);
- the server keeps the last `history_size` messages (`History`, a bounded deque);
- a reconnecting client asks for what it missed with `?since=N`, N being the last number it saw, and gets
  exactly messages N+1, N+2, ... before any live one, or, when the history no longer holds N+1, a refusal: the
  connection is accepted and then closed with `RESUME_REFUSED` (4410, after HTTP 410 Gone) and a reason such as
  "history starts at 57, you last saw 12: reload". Reload means: fetch the state afresh and start a new
  `ResumeState`. The same code answers a client whose N is past the last number (a server restarted with an
  empty history numbers from 1 again, so that client's numbers mean nothing here);
- a client without `?since=` joins as new: no replay. The handshake response's `X-Last-Seq` header tells it the
  last number already published, so that if it drops before its first message it can still resume from there
  (`ResumeState.connected()` reads it);
- the client drops any message whose number is not past the last one it saw (`ResumeState.accept`), which is
  how the overlap below reaches the reader once.

The overlap. `ResumableRoom` starts keeping new messages for a joining client the moment it arrives, before the
handshake completes and before it reads the history, and sends them after the replay; so a message published
while the client joins is never lost. One published after holding started but before the history is read is in
both, and reaches the client twice: replayed, then held. Filtering that on the server would be one line; it is
left to the client, whose rule covers every source of repeats in one place. Why not simply register with the
FanOut first and then replay: FanOut delivers to a member at once, so a live message published while the
history is read (a store that waits, such as Redis; see `ResumableRoom.missed`) would overtake the replay, and
the client's rule would then discard the replayed messages as old: lost, not repeated.

Everything here lives in one process's memory: the history goes when the process does, and several worker
processes would each number their own messages. There are no module-level asyncio objects; the room's parts
bound to a loop are FanOut's, created per connection, so a room survives a server restart (`serve()` again).
`ResumableRoom.publish()` must run on the server's loop, as `FanOut.publish()` must.

Reconnecting. `websockets`' own loop, `async for ws in connect(url)` (websockets 17.4,
websockets/asyncio/client.py, `connect.__aiter__`), opens every connection to the URL the `connect` object holds
(changed only by a redirect): there is no hook to change the query per attempt, so it would ask for the same
`since=` every time. It also retries only failures to open; a connection that closes raises ConnectionClosed in
the loop's body, which must catch it and `continue` to get another. `follow()` therefore makes a fresh
`connect()` per attempt, with the URL from `ResumeState.url_for()`, and keeps websockets' rules otherwise: its
`process_exception` decides which failures to open are worth retrying, and the delays between failed attempts
come from `reconnect_delays` (websockets' `backoff` by default: a random 0-5 s, then 3.1 s growing by 1.618 a
time up to 90 s). A close with RESUME_REFUSED ends it with `ResumeRefused` instead of asking again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.client import backoff, process_exception
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from helpers.clients import connect
from helpers.fanout import FanOut
from helpers.usage import UsageError, UsageTypeError, check_count, check_ws_url

__all__ = [
    "LAST_SEQ_HEADER",
    "RESUME_REFUSED",
    "CannotResume",
    "FrameError",
    "History",
    "HistoryAhead",
    "HistoryTooOld",
    "ResumableRoom",
    "ResumeRefused",
    "ResumeState",
    "decode",
    "encode",
    "follow",
]

RESUME_REFUSED = 4410  # an application close code (3000-4999), after HTTP 410 Gone: "reload"
LAST_SEQ_HEADER = "X-Last-Seq"  # in the handshake response: the last number published when this client joined
# Closes after which asking again cannot help: follow() raises ResumeRefused on these instead of reconnecting.
_FINAL_CODES = (RESUME_REFUSED, CloseCode.POLICY_VIOLATION)
_FRAME_EXAMPLE = '{"seq": 12, "text": "hi"}'


class CannotResume(LookupError):
    """The history cannot say what a client missed; `reason` is what the server sends it as the close reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HistoryTooOld(CannotResume):
    """Some of the messages after `last_seen` are no longer kept: the oldest kept is `oldest`."""

    def __init__(self, last_seen: int, oldest: int) -> None:
        super().__init__(f"history starts at {oldest}, you last saw {last_seen}: reload")
        self.last_seen = last_seen
        self.oldest = oldest


class HistoryAhead(CannotResume):
    """`last_seen` is past the last number published: it comes from another history (a restarted server, say)."""

    def __init__(self, last_seen: int, last_seq: int) -> None:
        super().__init__(f"the last message is {last_seq}, you last saw {last_seen}: reload")
        self.last_seen = last_seen
        self.last_seq = last_seq


class FrameError(ValueError):
    """A frame that is not a resume message; the message says what one looks like."""


class History:
    """Numbers messages from 1 and keeps the last `maxlen` of them, so that a client can ask what it missed."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = check_count(maxlen, "maxlen", minimum=1)
        self._kept: collections.deque[tuple[int, str]] = collections.deque(maxlen=self.maxlen)
        self.last_seq = 0  # the number of the last message appended; 0 before the first

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def oldest(self) -> int:
        """The number of the oldest message still kept (last_seq + 1 while none is)."""
        return self._kept[0][0] if self._kept else self.last_seq + 1

    def append(self, payload: str) -> int:
        """Keep `payload` as the next message (the oldest goes once `maxlen` are kept) and return its number."""
        if not isinstance(payload, str):
            raise UsageTypeError(f"payload must be a str, not {type(payload).__name__}; e.g. json.dumps(data)")
        self.last_seq += 1
        self._kept.append((self.last_seq, payload))
        return self.last_seq

    def since(self, last_seen: int) -> list[tuple[int, str]]:
        """(seq, payload) of every message after `last_seen`, oldest first ([] if there are none).

        Raises HistoryTooOld when some of them are no longer kept (a partial answer would be a silent gap), and
        HistoryAhead when `last_seen` is past `last_seq`.
        """
        check_count(last_seen, "last_seen")
        if last_seen > self.last_seq:
            raise HistoryAhead(last_seen, self.last_seq)
        if last_seen + 1 < self.oldest:
            raise HistoryTooOld(last_seen, self.oldest)
        wanted = self.last_seq - last_seen  # the newest `wanted` kept messages, read from the new end
        return list(itertools.islice(reversed(self._kept), wanted))[::-1]


def encode(seq: int, text: str) -> str:
    """The frame for message `seq`: JSON text such as {"seq": 12, "text": "hi"}."""
    check_count(seq, "seq", minimum=1)
    if not isinstance(text, str):
        raise UsageTypeError(f"text must be a str, not {type(text).__name__}")
    return json.dumps({"seq": seq, "text": text}, ensure_ascii=False)


def decode(frame: str | bytes) -> tuple[int, str]:
    """(seq, text) from a frame `encode()` made; FrameError saying what is wrong with anything else."""
    if not isinstance(frame, str):
        raise FrameError(f"resume frames are text, got {type(frame).__name__}; one looks like {_FRAME_EXAMPLE}")
    try:
        data = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise FrameError(f"frame is not JSON ({exc.msg}): {frame[:40]!r}; one looks like {_FRAME_EXAMPLE}") from None
    if not isinstance(data, dict) or set(data) != {"seq", "text"}:
        raise FrameError(f"frame must be an object with exactly seq and text, got {frame[:40]!r}: {_FRAME_EXAMPLE}")
    seq, text = data["seq"], data["text"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise FrameError(f"seq must be a whole number from 1, got {seq!r}: {_FRAME_EXAMPLE}")
    if not isinstance(text, str):
        raise FrameError(f"text must be a string, got {type(text).__name__}: {_FRAME_EXAMPLE}")
    return seq, text


def _is_number(value: str) -> bool:
    return value.isascii() and value.isdigit()  # no sign, no spaces, no "1e3", no "²"


def _since(value: str | None) -> int | None:
    """The `?since=` of a request: None when absent (a new client), else the last number the client saw."""
    if value is None:
        return None
    if not _is_number(value):
        raise UsageError(f"since must be the last seq you saw (0 or more), e.g. ?since=12, not {value[:20]!r}")
    return int(value)


class ResumableRoom:
    """A Starlette chat room at `path` whose broadcast can be resumed: `room.app` to serve, `room.publish()` to send.

    Each text a client sends is published to everyone (the sender too) as the next numbered message.
    `history_size` messages are kept for replay; each client's FanOut queue holds a whole replay plus
    `max_queue` live messages (FanOut closes a client that falls further behind with 1013).
    """

    def __init__(self, history_size: int = 100, *, path: str = "/room", max_queue: int = 100) -> None:
        self.history = History(check_count(history_size, "history_size", minimum=1))
        self.hub = FanOut(max_queue=history_size + check_count(max_queue, "max_queue", minimum=1))
        # Joining clients (handshake, history read) and what was published for each since it arrived.
        self._joining: dict[WebSocket, list[str]] = {}
        self.app = Starlette(routes=[WebSocketRoute(path, self.endpoint)], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.hub.aclose()  # the writer tasks go with the server, not with the loop's final clean-up

    def publish(self, text: str) -> int:
        """Number `text`, keep it, and send it to every client, joined or joining; returns its number.

        Call it on the server's loop (from another thread: `server.run(coroutine_that_publishes())`).
        """
        seq = self.history.append(text)
        frame = encode(seq, text)
        for held in self._joining.values():
            held.append(frame)
        self.hub.publish(frame)
        return seq

    async def missed(self, last_seen: int) -> list[tuple[int, str]]:
        """What a client that last saw `last_seen` missed; CannotResume if that cannot be told.

        A coroutine so that a subclass can read a store that waits (a Redis list, a database): messages
        published meanwhile are held for the client all the same. The in-memory History here never waits.
        """
        return self.history.since(last_seen)

    async def endpoint(self, websocket: WebSocket) -> None:
        """Join (replay what `?since=` asks for, then what was held), then relay the client's texts to everyone."""
        try:
            since = _since(websocket.query_params.get("since"))
        except UsageError as exc:
            await websocket.accept()  # first: under uvicorn 0.54 a close before accept is an HTTP 403, reason lost
            await websocket.close(CloseCode.POLICY_VIOLATION, str(exc))
            return
        held = self._joining[websocket] = []  # from here on, publish() keeps every message for this client too
        try:
            headers = [(LAST_SEQ_HEADER.lower().encode(), str(self.history.last_seq).encode())]
            await websocket.accept(headers=headers)
            try:
                replay = [] if since is None else await self.missed(since)
            except CannotResume as exc:
                await websocket.close(RESUME_REFUSED, exc.reason)
                return
            async with self.hub.connected(websocket):
                # FanOut.register() has no await in it, so no publish() ran between the line above and this
                # one: each message so far is in `held` (or in `replay`), every later one goes through the hub,
                # queued behind what is sent here, so the client gets replay, held, live, in that order.
                del self._joining[websocket]
                for frame in [encode(seq, text) for seq, text in replay] + held:
                    if websocket not in self.hub.members:  # a send failed (client gone) or it was evicted
                        return
                    self.hub.send_to(websocket, frame)
                await self._relay(websocket)
        finally:
            self._joining.pop(websocket, None)

    async def _relay(self, websocket: WebSocket) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await websocket.close(CloseCode.UNSUPPORTED_DATA, "this room accepts text messages only")
                return
            self.publish(text)


class ResumeRefused(Exception):
    """The server will not resume this client (close `code`, `reason`): reload, then follow with a new ResumeState."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"the server refused to resume: {code} {reason}")
        self.code = code
        self.reason = reason


@dataclass
class ResumeState:
    """A client's side of resuming: the last number it saw, and what its dedup rule did.

    `last_seen` is None until the client knows a position (its first connection's X-Last-Seq header, or its first
    message). `gaps` counts the times a number was skipped, `missing` the numbers skipped in all: messages lost.
    """

    last_seen: int | None = None
    received: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0
    connections: int = 0

    def url_for(self, base_url: str) -> str:
        """`base_url` asking for what this client missed (`?since=last_seen`), or unchanged for a new client."""
        parts = urlsplit(check_ws_url(base_url, "base_url"))
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "since"]
        if self.last_seen is not None:
            query.append(("since", str(self.last_seen)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def connected(self, headers: Mapping[str, str]) -> None:
        """Call with each handshake response's headers (`ws.response.headers`): a new client takes its position."""
        self.connections += 1
        value = headers.get(LAST_SEQ_HEADER)
        if self.last_seen is None and value is not None and _is_number(value):
            self.last_seen = int(value)

    def accept(self, frame: str | bytes) -> str | None:
        """The text of a new message, or None for one already seen (number not past `last_seen`): a duplicate."""
        seq, text = decode(frame)
        if self.last_seen is not None:
            if seq <= self.last_seen:
                self.duplicates += 1
                return None
            if seq > self.last_seen + 1:
                self.gaps += 1
                self.missing += seq - self.last_seen - 1
        self.last_seen = seq
        self.received += 1
        return text


async def follow(
    base_url: str,
    state: ResumeState,
    count: int,
    *,
    reconnect_delays: Callable[[], Iterator[float]] = backoff,
    **connect_options: object,
) -> list[str]:
    """Receive the next `count` new texts from a ResumableRoom at `base_url`, reconnecting and resuming as needed.

    Each attempt is a fresh `helpers.clients.connect(state.url_for(base_url))` (see the module docstring for why
    not websockets' `async for` loop). A failure to open is retried or raised as websockets' `process_exception`
    says (in 17.4: OSError and TimeoutError retried, an InvalidMessage caused by EOFError retried, an HTTP 500,
    502, 503 or 504 retried; anything else, a 403 or 404 for one, raised), after the next of `reconnect_delays()`.
    A connection that delivered a message and then closed is reconnected at once, and the delays start afresh
    (as websockets' loop resets its backoff after a connection that opened); one that closed before delivering
    anything is treated as a failed attempt, so a server that accepts and hangs up at once is not hammered. A
    close with RESUME_REFUSED or 1008 (a `since` the server cannot use) raises ResumeRefused: asking again would
    get the same answer. Nothing here gives up on its own: bound it (`async with asyncio.timeout(5):`).
    """
    check_count(count, "count", minimum=1)
    texts: list[str] = []
    delays: Iterator[float] | None = None
    while len(texts) < count:
        try:
            ws = await connect(state.url_for(base_url), **connect_options)
        except Exception as exc:
            verdict = process_exception(exc)
            if verdict is exc:
                raise
            if verdict is not None:
                raise verdict from exc
            delays = delays if delays is not None else reconnect_delays()
            await asyncio.sleep(next(delays))
            continue
        delivered = False
        async with ws:
            state.connected(ws.response.headers)
            try:
                while len(texts) < count:
                    text = state.accept(await ws.recv())
                    delivered = True
                    if text is not None:
                        texts.append(text)
            except ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code in _FINAL_CODES:
                    raise ResumeRefused(closed.rcvd.code, closed.rcvd.reason) from None
        if delivered:
            delays = None  # this connection worked: the next failure starts the delays afresh
        elif len(texts) < count:  # opened, then closed before a message: no faster than a failed attempt
            delays = delays if delays is not None else reconnect_delays()
            await asyncio.sleep(next(delays))
    return texts
