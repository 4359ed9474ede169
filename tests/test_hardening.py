"""Hostile input and churn against the example servers in helpers: defined answers, nobody else harmed.

Property-based (hypothesis): random text and binary frames, invalid UTF-8, broken JSON, oversized messages
and abrupt drops, sent by one client while a witness client stays connected. Every hostile connection
must end in a defined way (echo, or a close code from the server's documented list), the witness must
keep receiving, and nothing may reach the server's log as an unhandled error.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.classroom import Classroom, Limits, start_classroom
from helpers.clients import connect
from helpers.demo_apps import CHAT_MAX_CHARS, echo, fanout_chat
from helpers.fanout import FanOut
from helpers.loops import run_on
from helpers.servers import MAX_MESSAGE_BYTES, ThreadServer, serve

pytestmark = pytest.mark.timeout(180)

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# uvicorn itself logs a client's invalid UTF-8 with a traceback (then closes with 1007, a defined answer).
# That is the server reporting the client's mistake, not an unhandled error of ours; everything else is.
UVICORN_REPORTS_INVALID_UTF8 = "UnicodeDecodeError: 'utf-8' codec can't decode"
INVALID_UTF8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x28\xa1", b"ok\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])


@dataclass(frozen=True)
class Action:
    kind: str  # text, binary, invalid-utf8, oversized, drop
    payload: str | bytes = b""


# Broken or hostile JSON: these servers speak plain text, so JSON must be just text to them (no parse, no crash).
INVALID_JSON = st.sampled_from(['{"type": "chat.message"', "[1, 2", '{"a": NaN}', "\x00{}", '{"a": ' * 200, "null"])

ACTIONS = st.one_of(
    st.builds(Action, st.just("text"), st.text(max_size=300)),
    st.builds(Action, st.just("text"), INVALID_JSON),
    st.builds(Action, st.just("binary"), st.binary(max_size=300)),
    st.builds(Action, st.just("invalid-utf8"), INVALID_UTF8),
    st.builds(Action, st.just("oversized")),
    st.builds(Action, st.just("drop")),
)


async def perform(ws: ClientConnection, action: Action, oversized: int, bad: bool) -> str:
    """Do one hostile action; return how the connection stands: 'open', 'dropped' or 'closed <code>'.

    After a frame the server is expected to refuse (`bad`), wait for its close instead of racing it.
    """
    try:
        if action.kind in ("text", "binary"):
            await ws.send(action.payload)
        elif action.kind == "invalid-utf8":
            assert isinstance(action.payload, bytes)
            await ws.send(action.payload, text=True)  # a text frame whose bytes are not UTF-8
        elif action.kind == "oversized":
            await ws.send("x" * oversized)
        elif action.kind == "drop":
            ws.transport.abort()
            return "dropped"
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else 1006}"
    return await final_state(ws) if bad else "open"


async def final_state(ws: ClientConnection) -> str:
    """Read until the server closes or goes quiet; report the close code the server sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 0.3)
    except TimeoutError:
        return "open"
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else 1006}"


def expected_state(closes: dict[str, str], first_bad: Action | None) -> str:
    """How a hostile connection must end: the close for its first bad frame (a text frame is bad when too long)."""
    if first_bad is None:
        return "open"
    return closes["oversized" if first_bad.kind == "text" else first_bad.kind]


def unhandled(server: ThreadServer) -> list[str]:
    """Server errors other than uvicorn's own report of a client's invalid UTF-8."""
    return [line for line in server.errors if not line.startswith(UVICORN_REPORTS_INVALID_UTF8)]


# ------------------------------------------------------------------------------------------------ echo


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ThreadServer]:
    with serve(echo, name="hardening-echo") as server:
        yield server


ECHO_CLOSES = {"invalid-utf8": "closed 1007", "oversized": "closed 1009", "drop": "dropped"}


@HYPOTHESIS
@given(actions=st.lists(ACTIONS, min_size=1, max_size=4))
def test_echo_survives_hostile_clients(echo_server: ThreadServer, actions: list[Action]) -> None:
    """Echo answers each frame with its echo or a defined close (1007, 1009), and a witness keeps echoing."""
    echo_server.log.clear()
    first_bad = next((a for a in actions if a.kind in ECHO_CLOSES), None)

    async def scenario() -> None:
        async with connect(echo_server.ws_url("/"), compression=None) as witness:
            hostile = await connect(echo_server.ws_url("/"), compression=None, max_size=None)
            state = "open"
            for action in actions:
                state = await perform(hostile, action, oversized=MAX_MESSAGE_BYTES + 1, bad=action.kind in ECHO_CLOSES)
                if state != "open":
                    break
                if action.kind in ("text", "binary"):
                    assert await asyncio.wait_for(hostile.recv(), 2) == action.payload
            await hostile.close()
            assert state == (ECHO_CLOSES[first_bad.kind] if first_bad is not None else "open")
            await witness.send("still there?")
            assert await asyncio.wait_for(witness.recv(), 2) == "still there?"

    asyncio.run(scenario())
    assert unhandled(echo_server) == []


# ------------------------------------------------------------------------------------------------ chat


@pytest.fixture(scope="module")
def chat() -> Iterator[tuple[ThreadServer, FanOut]]:
    hub = FanOut(max_queue=100)
    with serve(fanout_chat(hub), name="hardening-chat") as server:
        yield server, hub


CHAT_CLOSES = {
    "binary": "closed 1003",
    "invalid-utf8": "closed 1007",
    "oversized": "closed 1009",
    "drop": "dropped",
}


@HYPOTHESIS
@given(actions=st.lists(ACTIONS, min_size=1, max_size=4))
def test_chat_survives_hostile_clients(chat: tuple[ThreadServer, FanOut], actions: list[Action]) -> None:
    """A hostile chat client gets the documented close code for its first bad frame; the room keeps working."""
    server, _ = chat
    server.log.clear()

    def is_bad(action: Action) -> bool:
        return action.kind != "text" or len(action.payload) > CHAT_MAX_CHARS

    first_bad = next((a for a in actions if is_bad(a)), None)

    async def scenario() -> None:
        async with connect(server.ws_url("/chat"), compression=None) as witness:
            hostile = await connect(server.ws_url("/chat"), compression=None, max_size=None)
            state = "open"
            for action in actions:
                state = await perform(hostile, action, oversized=CHAT_MAX_CHARS + 1, bad=is_bad(action))
                if state != "open":
                    break
            await hostile.close()
            expected = expected_state(CHAT_CLOSES, first_bad)
            assert state == expected, (state, expected)
            # The room still works for everyone else: the witness hears a newcomer's message.
            async with connect(server.ws_url("/chat"), compression=None) as newcomer:
                await newcomer.send("hello room")
                heard = [await asyncio.wait_for(witness.recv(), 2)]
                while heard[-1] != "hello room":
                    heard.append(await asyncio.wait_for(witness.recv(), 2))

    asyncio.run(scenario())
    assert unhandled(server) == []


# ------------------------------------------------------------------------------------------------ churn


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_churn_leaves_an_empty_registry_and_no_tasks(chat: tuple[ThreadServer, FanOut]) -> None:
    """500 connect/disconnect cycles (clean and abrupt) during a broadcast: registry empty, no task, memory back."""
    server, hub = chat
    server.log.clear()

    async def members() -> int:
        return len(hub)

    async def fanout_tasks() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("fanout-"))

    async def scenario() -> int:
        async with connect(server.ws_url("/chat"), compression=None) as listener:
            stop = asyncio.Event()

            async def broadcaster() -> int:
                sent = 0
                async with connect(server.ws_url("/chat"), compression=None) as speaker:
                    while not stop.is_set():
                        await speaker.send(f"tick {sent}")
                        sent += 1
                        await asyncio.sleep(0.005)
                return sent

            async def drain() -> None:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(listener.recv(), 0.5)
                    except TimeoutError:
                        continue

            speaking = asyncio.create_task(broadcaster())
            draining = asyncio.create_task(drain())
            for cycle in range(500):
                ws = await connect(server.ws_url("/chat"), compression=None)
                if cycle % 2:
                    await ws.close()
                else:
                    ws.transport.abort()
            stop.set()
            sent = await speaking
            await draining
            return sent

    threads_before = threading.active_count()
    asyncio.run(scenario())  # warm-up: first-use allocations are not a leak
    baseline = rss_kib()
    sent = asyncio.run(scenario())
    assert sent > 0
    for _ in range(100):
        if run_on(server.loop, members()) == 0:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert run_on(server.loop, members()) == 0
    assert run_on(server.loop, fanout_tasks()) == 0
    assert threading.active_count() <= threads_before
    assert rss_kib() - baseline < 10_000, "memory grew by more than 10 MB over 500 cycles"
    assert server.errors == []


# ------------------------------------------------------------------------------------------------ classroom

CLASSROOM_CLOSES = {
    "binary": "closed 1003",
    "invalid-utf8": "closed 1007",
    "oversized": "closed 1009",
    "drop": "dropped",
}


@pytest.fixture(scope="module")
def classroom() -> Iterator[Classroom]:
    # A generous rate so the property is about bad frames; the rate limit has its own tests.
    room = start_classroom("HARDEN", name="hardening-classroom", limits=Limits(rate=1000.0, burst=1000))
    try:
        yield room
    finally:
        room.stop()


@HYPOTHESIS
@given(actions=st.lists(ACTIONS, min_size=1, max_size=4))
def test_classroom_survives_hostile_students(classroom: Classroom, actions: list[Action]) -> None:
    """A hostile student gets the documented close for its first bad frame; another student still hears the room."""
    classroom.server.log.clear()
    limit = Limits().max_message_bytes

    def is_bad(action: Action) -> bool:
        return action.kind != "text" or len(str(action.payload).encode()) > limit

    first_bad = next((a for a in actions if is_bad(a)), None)

    async def scenario() -> None:
        async with connect(classroom.url_for("witness"), compression=None) as witness:
            hostile = await connect(classroom.url_for("mallory"), compression=None, max_size=None)
            state = "open"
            for action in actions:
                state = await perform(hostile, action, oversized=limit + 1, bad=is_bad(action))
                if state != "open":
                    break
            await hostile.close()
            expected = expected_state(CLASSROOM_CLOSES, first_bad)
            assert state == expected, (state, expected)
            async with connect(classroom.url_for("newcomer"), compression=None) as newcomer:
                await newcomer.send("hello class")
                heard = [await asyncio.wait_for(witness.recv(), 2)]
                while "hello class" not in str(heard[-1]):
                    heard.append(await asyncio.wait_for(witness.recv(), 2))
        deadline = asyncio.get_running_loop().time() + 2
        while classroom.participants() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)  # everyone has left: the roster must empty (names are reusable)

    asyncio.run(scenario())
    assert classroom.participants() == []
    assert unhandled(classroom.server) == []
