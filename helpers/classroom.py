"""A chat server for a whole class: a join code, unique names, limits, and an instructor's controls.

    classroom = start_classroom(code="maple-42")          # loopback only: self-study and tests
    ChatClient(classroom.student_url, name="ada")         # a student (URL has {name} for the widget)
    classroom.participants(); classroom.mute("bob"); classroom.kick("eve", "spam"); classroom.announce("break!")
    classroom.stop()

Students connect to `/chat?code=<join code>&name=<their name>`. The server always accepts the handshake
first, so that a refusal can carry a close code and a reason the student's client can show:

    4401 join code missing   4403 wrong join code      4400 name missing or not allowed
    4409 name already taken  4503 room full            4000 removed by the instructor
    1009 message too big     4429 too many messages    1003 binary message (text only)
    1001 the class is over (the instructor stopped the server)

Messages are broadcast through `helpers.fanout.FanOut` (a bounded queue and a writer task per student),
so one student on a slow connection cannot hold up the room. Each student has a token bucket: `burst`
messages at once, refilled at `rate` per second. A muted student stays connected; their messages are
refused with a note to them only. Messages are flattened to one line, so nobody can fake a line that
looks like it came from the instructor.

Only `host="0.0.0.0"` (or another non-loopback address) makes the server reachable from other
machines, and then `start_classroom` prints the URL to give students and a warning about what that
means. `dry_run=True` prints the same without binding anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import socket
import textwrap
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected
from websockets.frames import CloseCode

from helpers.fanout import FanOut
from helpers.servers import DEFAULT_HOST, ThreadServer, serve

__all__ = [
    "CODE_MISSING",
    "CODE_WRONG",
    "INSTRUCTOR",
    "KICKED",
    "MAX_NAME",
    "NAME_INVALID",
    "NAME_TAKEN",
    "PATH",
    "ROOM_FULL",
    "TOO_MANY",
    "Classroom",
    "ClassroomError",
    "Limits",
    "Participant",
    "ParticipantInfo",
    "Room",
    "TokenBucket",
    "announced_address",
    "classroom_app",
    "exposure_notice",
    "fit_reason",
    "is_loopback",
    "lan_address",
    "name_refusal",
    "new_code",
    "one_line",
    "start_classroom",
]

PATH = "/chat"
INSTRUCTOR = "instructor"

# The room's own close codes (4000-4999 are the application's); standard ones come from CloseCode.
NAME_INVALID = 4400
CODE_MISSING = 4401
CODE_WRONG = 4403
NAME_TAKEN = 4409
ROOM_FULL = 4503
KICKED = 4000
TOO_MANY = 4429

MAX_NAME = 24
_NAME = re.compile(r"[\w .'-]+")
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to read out loud
_LOOPBACK_HOSTS = {"localhost", "::1"}


class ClassroomError(RuntimeError):
    """An instructor call that cannot work as written; the message says what to do."""


def new_code(length: int = 6) -> str:
    """A random join code that is easy to read out loud and type."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(length))


def fit_reason(text: str) -> str:
    """Cut a close reason to the 123 bytes a close frame can carry."""
    data = text.encode()
    if len(data) <= 123:
        return text
    return data[:120].decode(errors="ignore") + "..."


def one_line(text: str) -> str:
    """Collapse line breaks and other control characters into single spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def name_refusal(name: str) -> tuple[int, str] | None:
    """(4400, why) for a display name the room does not allow (already flattened by `one_line`), else None.

    Text only: letters, digits, spaces and _.'- up to MAX_NAME characters, so a name can never carry markup.
    """
    if not name:
        return NAME_INVALID, "name required: add &name=... to the URL"
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        return NAME_INVALID, f"name not allowed: up to {MAX_NAME} letters, digits, spaces or _.'-"
    if name.casefold() == INSTRUCTOR:
        return NAME_INVALID, "the name 'instructor' is reserved: pick another"
    return None


class TokenBucket:
    """`burst` tokens to start with, refilled at `rate` per second; each message takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Spend a token if there is one; False means over the limit."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass
class Participant:
    """A connected student, as the server sees them."""

    name: str
    websocket: WebSocket
    bucket: TokenBucket
    muted: bool = False
    sent: int = 0


@dataclass(frozen=True)
class ParticipantInfo:
    """What the instructor sees of a participant."""

    name: str
    muted: bool
    sent: int

    def __str__(self) -> str:
        return f"{self.name} ({'muted, ' if self.muted else ''}{self.sent} sent)"


@dataclass
class Limits:
    """Per-student limits: message size in bytes, rate (messages/s) and burst, and the room size."""

    max_message_bytes: int = 1000
    rate: float = 2.0
    burst: int = 8
    max_participants: int = 100
    max_queue: int = 100

    def __post_init__(self) -> None:
        TokenBucket(self.rate, self.burst)  # validates rate and burst
        if self.max_message_bytes < 1 or self.max_participants < 1 or self.max_queue < 1:
            raise ValueError("max_message_bytes, max_participants and max_queue must be at least 1")


@dataclass
class Room:
    """The room's state and rules. Everything here runs on the server's event loop."""

    code: str
    limits: Limits = field(default_factory=Limits)
    transcript: deque[str] = field(default_factory=lambda: deque(maxlen=500))

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("the join code must not be empty")
        self.hub = FanOut(max_queue=self.limits.max_queue, close_reason="too slow: your connection fell behind")
        self.participants: dict[str, Participant] = {}  # casefolded name -> participant

    # ---------------------------------------------------------------------------------------------
    # students

    def _refusal(self, websocket: WebSocket) -> tuple[int, str] | None:
        code = websocket.query_params.get("code", "")
        name = one_line(websocket.query_params.get("name", ""))
        if not code:
            return CODE_MISSING, "join code required: add ?code=... (ask your instructor) to the URL"
        if not hmac.compare_digest(code.encode(), self.code.encode()):
            return CODE_WRONG, "wrong join code: check it with your instructor"
        refusal = name_refusal(name)
        if refusal is not None:
            return refusal
        if name.casefold() in self.participants:
            return NAME_TAKEN, fit_reason(f"the name {name!r} is taken in this room: pick another")
        if len(self.participants) >= self.limits.max_participants:
            return ROOM_FULL, f"the room is full ({self.limits.max_participants} people)"
        return None

    async def handle(self, websocket: WebSocket) -> None:
        """The WebSocket endpoint: admit or refuse, then relay messages until the student leaves."""
        await websocket.accept()  # accept first, so a refusal can say why in the close frame
        refusal = self._refusal(websocket)
        if refusal is not None:
            await websocket.close(*refusal)
            return
        name = one_line(websocket.query_params["name"])
        me = Participant(name, websocket, TokenBucket(self.limits.rate, self.limits.burst))
        self.participants[name.casefold()] = me
        await self.hub.register(websocket, name)
        self.broadcast(f"* {name} joined ({self._count()})")
        leaving = "left"
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                verdict = self._check(me, message)
                if verdict is not None:
                    code, reason, leaving = verdict
                    await self._close(websocket, code, reason)
                    break
        except (WebSocketDisconnect, WebSocketDisconnected):  # closed under us (kicked, evicted): just leave
            pass
        finally:
            await self._leave(me, leaving)

    def _check(self, me: Participant, message: Mapping[str, Any]) -> tuple[int, str, str] | None:
        """Relay one message; return (close code, reason, how the room hears of it) to disconnect instead."""
        text = message.get("text")
        if text is None:
            return CloseCode.UNSUPPORTED_DATA, "text messages only", "was disconnected: sent binary data"
        limit = self.limits.max_message_bytes
        if len(text.encode()) > limit:
            return (
                CloseCode.MESSAGE_TOO_BIG,
                f"message too big: the limit is {limit} bytes",
                "was disconnected: message too big",
            )
        if not me.bucket.take():
            rate, burst = self.limits.rate, self.limits.burst
            reason = f"too many messages: the limit is {rate:g} per second, {burst} at once"
            return TOO_MANY, reason, "was disconnected: too many messages"
        if me.muted:
            self.tell(me, "* not delivered: the instructor has muted you")
            return None
        me.sent += 1
        self.broadcast(f"{me.name}: {one_line(text)}")
        return None

    async def _leave(self, me: Participant, how: str) -> None:
        if self.participants.get(me.name.casefold()) is not me:
            return  # already removed (kicked)
        del self.participants[me.name.casefold()]
        await self.hub.unregister(me.websocket)
        self.broadcast(f"* {me.name} {how} ({self._count()})")

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already closed, or the client is gone
            await asyncio.wait_for(websocket.close(code, fit_reason(reason)), 1.0)

    def _count(self) -> str:
        return f"{len(self.participants)} here"

    # ---------------------------------------------------------------------------------------------
    # sending

    def broadcast(self, text: str) -> None:
        """Send a line to everyone in the room (and keep it in the transcript)."""
        self.transcript.append(text)
        self.hub.publish(text)

    def tell(self, participant: Participant, text: str) -> None:
        """Send a line to one participant only, in order with the room's messages and under the same queue policy."""
        if participant.websocket in self.hub.members:  # not if the hub has evicted them (they are on their way out)
            self.hub.send_to(participant.websocket, text)

    # ---------------------------------------------------------------------------------------------
    # the instructor (coroutines, so that the Classroom handle can run them on the server's loop)

    def _find(self, name: str) -> Participant:
        participant = self.participants.get(name.casefold())
        if participant is None:
            here = ", ".join(p.name for p in self.participants.values()) or "nobody"
            raise ClassroomError(f"no participant named {name!r} (here: {here})")
        return participant

    async def roster(self) -> list[ParticipantInfo]:
        return [ParticipantInfo(p.name, p.muted, p.sent) for p in self.participants.values()]

    async def set_muted(self, name: str, muted: bool) -> None:
        participant = self._find(name)
        if participant.muted == muted:
            return
        participant.muted = muted
        if muted:
            self.tell(participant, "* the instructor has muted you: your messages are not delivered")
        else:
            self.tell(participant, "* the instructor has unmuted you: you can talk again")

    async def kick(self, name: str, reason: str) -> None:
        participant = self._find(name)
        del self.participants[participant.name.casefold()]
        await self.hub.unregister(participant.websocket)
        await self._close(participant.websocket, KICKED, f"removed by the instructor: {reason}")
        self.broadcast(f"* {participant.name} was removed by the instructor ({self._count()})")

    async def announce(self, text: str) -> None:
        self.broadcast(f"[{INSTRUCTOR}] {one_line(text)}")

    async def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "the class is over") -> None:
        """Close every connection (used before stopping the server, so students see why)."""
        everyone = list(self.participants.values())
        self.participants.clear()  # nobody is announced as leaving: everyone is
        await self.hub.aclose()
        for participant in everyone:
            await self._close(participant.websocket, code, reason)


def classroom_app(code: str, limits: Limits | None = None) -> Starlette:
    """A Starlette app serving one room at `/chat`; the Room is `app.state.room`."""
    room = Room(code, limits or Limits())

    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            "This is a WebSocket chat server. In your notebook:\n"
            f"    ChatClient('ws://<this address>{PATH}?code=<join code>&name={{name}}', name='<your name>')\n"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await room.hub.aclose()

    app = Starlette(routes=[Route("/", index), WebSocketRoute(PATH, room.handle)], lifespan=lifespan)
    app.state.room = room
    return app


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def lan_address() -> str | None:
    """This computer's address on its local network, found without sending anything.

    Connecting a UDP socket only asks the routing table which interface would be used; no packet
    leaves the machine. Returns None when there is no route (offline) or only loopback.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        address = str(probe.getsockname()[0])
        if not is_loopback(address) and address != "0.0.0.0":
            return address
    return None


def _student_url(address: str, port: int | str, code: str) -> str:
    return f"ws://{address}:{port}{PATH}?code={quote(code, safe='')}&name={{name}}"


def announced_address(host: str, address: str | None = None) -> str:
    """The address students are told to connect to: `address` if given, else `host`, else (listening on every
    interface) this computer's LAN address, else a placeholder for the instructor to fill in."""
    return address or (host if host not in {"0.0.0.0", "::"} else lan_address()) or "<this computer's address>"


def exposure_notice(
    host: str,
    port: int | str,
    code: str,
    address: str | None = None,
    *,
    dry_run: bool,
    also: Sequence[str] = (),
    stop_call: str = "classroom.stop()",
) -> str:
    """What the instructor must know when the server listens beyond loopback: the URL and the risk.

    `also`: more lines for students (another endpoint on the same server), shown before the warning;
    `stop_call`: what the instructor calls to stop the server."""
    shown = announced_address(host, address)
    url = _student_url(shown, port, code)
    where = "ALL network interfaces" if host in {"0.0.0.0", "::"} else f"the interface {host}"
    lines = [
        f"{'DRY RUN: nothing is listening. A real start would listen' if dry_run else 'Listening'} "
        f"on {where} ({host}), port {port}.",
        "Students paste this URL into a ChatClient (the widget fills in {name}):",
        f"    {url}",
        "or run in their own notebook:",
        "    from helpers.widgets import ChatClient",
        f'    ChatClient("{url}", name="<your name>")',
        *also,
        "",
        *textwrap.wrap(
            f"WARNING: listening on {where} means that every device that can reach this computer on port {port} "
            "can connect: everyone on this Wi-Fi or LAN, and the whole internet if the computer has a public "
            "address or a forwarded port. The join code is the only lock, and ws:// sends it unencrypted, so "
            "anyone who can see the network traffic can read it and the chat. Use it only on a network you trust, "
            f"share the code only in the room, and call {stop_call} when the class ends.",
            width=100,
        ),
    ]
    if shown.startswith("<"):
        lines.insert(3, "    (put this computer's LAN address in its place: see `ip addr` or `ipconfig`)")
    return "\n".join(lines)


class Classroom:
    """The instructor's handle: the running server, its room, and the controls (all thread-safe)."""

    def __init__(self, server: ThreadServer, room: Room, host: str, address: str | None) -> None:
        self.server = server
        self.room = room
        self.host = host
        self._address = address

    @property
    def code(self) -> str:
        return self.room.code

    @property
    def url(self) -> str:
        """The URL for clients on this computer, with `{name}` for ChatClient to fill in."""
        return self.server.ws_url(f"{PATH}?code={quote(self.code, safe='')}&name={{name}}")

    @property
    def student_url(self) -> str:
        """The URL to give students: the LAN address when listening beyond loopback, else `url`."""
        if is_loopback(self.host):
            return self.url
        return _student_url(announced_address(self.host, self._address), self.server.port, self.code)

    def url_for(self, name: str, code: str | None = None) -> str:
        """A concrete URL for one student (another `code` to try a wrong one)."""
        code = self.code if code is None else code
        return self.server.ws_url(f"{PATH}?code={quote(code, safe='')}&name={quote(name, safe='')}")

    def participants(self) -> list[ParticipantInfo]:
        """Who is in the room, in the order they joined."""
        return self.server.run(self.room.roster())

    def mute(self, name: str) -> None:
        """The student stays connected; their messages are refused with a note to them."""
        self.server.run(self.room.set_muted(name, True))

    def unmute(self, name: str) -> None:
        self.server.run(self.room.set_muted(name, False))

    def kick(self, name: str, reason: str = "ask your instructor") -> None:
        """Close the student's connection with code 4000 and the reason; the room is told."""
        self.server.run(self.room.kick(name, reason))

    def announce(self, text: str) -> None:
        """Broadcast a line from the instructor to everyone."""
        self.server.run(self.room.announce(text))

    def transcript(self) -> list[str]:
        """Every line the room has been sent (the last 500), as the students saw them."""
        return list(self.room.transcript)

    def stop(self) -> None:
        """Tell everyone the class is over (close 1001), then stop the server. Safe to call twice."""
        if self.server.running:
            with contextlib.suppress(Exception):
                self.server.run(self.room.close_all())
        self.server.stop()

    def __repr__(self) -> str:
        state = "running" if self.server.running else "stopped"
        where = "loopback only" if is_loopback(self.host) else f"listening on {self.host}"
        return f"<Classroom {self.server.name!r} {state}, {where}>"


@overload
def start_classroom(
    code: str | None = ...,
    *,
    host: str = ...,
    port: int = ...,
    name: str = ...,
    limits: Limits | None = ...,
    address: str | None = ...,
    dry_run: Literal[False] = ...,
) -> Classroom: ...


@overload
def start_classroom(
    code: str | None = ...,
    *,
    host: str = ...,
    port: int = ...,
    name: str = ...,
    limits: Limits | None = ...,
    address: str | None = ...,
    dry_run: Literal[True],
) -> None: ...


def start_classroom(
    code: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    name: str = "classroom",
    limits: Limits | None = None,
    address: str | None = None,
    dry_run: bool = False,
) -> Classroom | None:
    """Serve a classroom chat (a random join code unless `code` is given) and return the instructor's handle.

    `host` stays 127.0.0.1 unless you pass another: `host="0.0.0.0"` lets other machines in, and
    then the URL for students and a warning are printed. `address` overrides the address shown to
    students (found from the routing table otherwise). `dry_run=True` prints that notice and binds nothing.
    """
    code = code or new_code()
    limits = limits or Limits()
    if dry_run:
        print(exposure_notice(host, port or "<port>", code, address, dry_run=True))
        return None
    app = classroom_app(code, limits)
    # uvicorn refuses frames far over the limit itself (1009, no reason); the room explains the rest.
    server = serve(app, name=name, host=host, port=port, ws_max_size=max(65536, 4 * limits.max_message_bytes))
    classroom = Classroom(server, app.state.room, host, address)
    if not is_loopback(host):
        print(exposure_notice(host, server.port, code, address, dry_run=False))
    return classroom
