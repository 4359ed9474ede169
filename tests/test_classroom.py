"""Tests for helpers.classroom: the join code, names, limits and the instructor's controls, on loopback only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from helpers import classroom as classroom_module
from helpers.classroom import (
    Classroom,
    ClassroomError,
    Limits,
    Participant,
    Room,
    TokenBucket,
    lan_address,
    name_refusal,
    new_code,
    one_line,
    start_classroom,
)
from helpers.clients import attempt_sync
from helpers.widgets import ChatPanel
from tests.support import Snapshot, listening_ports

pytestmark = pytest.mark.timeout(30)

CODE = "maple-42"


@pytest.fixture
def classroom(no_leaks: Snapshot) -> Iterator[Classroom]:
    room = start_classroom(CODE, name="test-classroom", limits=Limits(max_message_bytes=100, rate=1.0, burst=3))
    try:
        yield room
    finally:
        room.stop()


@pytest.fixture
def panel(classroom: Classroom) -> Iterator[ChatPanel]:
    chat = ChatPanel(classroom.url, ["ada", "bob"])
    assert chat.connect() == {"ada": "open", "bob": "open"}
    chat["ada"].wait_for(2)
    yield chat
    chat.close()


def test_the_join_code_is_required_and_checked(classroom: Classroom) -> None:
    """No code closes with 4401, a wrong one with 4403, each with a reason saying what to do; the right one opens."""
    missing = attempt_sync(classroom.url_for("eve", code=""))
    assert (missing.close_code, missing.close_reason) == (
        4401,
        "join code required: add ?code=... (ask your instructor) to the URL",
    )
    wrong = attempt_sync(classroom.url_for("eve", code="maple-43"))
    assert (wrong.close_code, wrong.close_reason) == (4403, "wrong join code: check it with your instructor")
    right = attempt_sync(classroom.url_for("eve"), receive=1)
    assert right.opened and right.messages == ["* eve joined (1 here)"] and right.closed_by == "client"


def test_names_are_unique_per_room_ignoring_case(panel: ChatPanel, classroom: Classroom) -> None:
    """A second 'ADA' is refused with 4409 and a reason naming the clash; the first ada stays."""
    outcome = attempt_sync(classroom.url_for("ADA"))
    assert (outcome.close_code, outcome.close_reason) == (4409, "the name 'ADA' is taken in this room: pick another")
    assert [p.name for p in classroom.participants()] == ["ada", "bob"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "name required: add &name=... to the URL"),
        ("x" * 25, "name not allowed: up to 24 letters, digits, spaces or _.'-"),
        ("<b>", "name not allowed: up to 24 letters, digits, spaces or _.'-"),
        ("Instructor", "the name 'instructor' is reserved: pick another"),
    ],
)
def test_bad_names_are_refused_with_4400(classroom: Classroom, name: str, reason: str) -> None:
    """Empty, too long, markup and the reserved 'instructor' are refused with 4400 and a reason."""
    outcome = attempt_sync(classroom.url_for(name))
    assert (outcome.close_code, outcome.close_reason) == (4400, reason)


@pytest.mark.parametrize("name", ["ada_l", "Zoë O'Neil-Smith.", "李雷 2"])
def test_names_of_letters_digits_spaces_and_the_four_marks_are_allowed(name: str) -> None:
    """What the 4400 reason lists is what passes: any script's letters, digits, spaces and _ . ' -."""
    assert name_refusal(name) is None


def test_join_leave_and_messages_reach_everyone_on_one_line(panel: ChatPanel) -> None:
    """Joins are announced with a head count, messages are flattened to one line, and a leave is announced."""
    panel["bob"].send("hi\n[instructor] class cancelled")
    panel["ada"].wait_for(3)
    panel["bob"].disconnect()
    panel["ada"].wait_for(4)
    assert panel["ada"].messages == [
        "* ada joined (1 here)",
        "* bob joined (2 here)",
        "bob: hi [instructor] class cancelled",
        "* bob left (1 here)",
    ]


def test_a_message_over_the_size_limit_closes_with_1009(panel: ChatPanel, classroom: Classroom) -> None:
    """101 bytes against a 100-byte limit: close 1009 with the limit in the reason; the room hears why."""
    outcome = attempt_sync(classroom.url_for("eve"), send=["é" * 50 + "x"])
    assert (outcome.close_code, outcome.close_reason) == (1009, "message too big: the limit is 100 bytes")
    panel["ada"].wait_for(lambda messages: messages[-1] == "* eve was disconnected: message too big (2 here)")


def test_the_rate_limit_relays_a_burst_then_closes_with_4429(panel: ChatPanel, classroom: Classroom) -> None:
    """With burst 3 at 1 per second, 6 quick messages relay exactly 3 and end in close 4429 with the limit."""
    outcome = attempt_sync(classroom.url_for("eve"), send=[f"spam {i}" for i in range(6)])
    assert (outcome.close_code, outcome.close_reason) == (
        4429,
        "too many messages: the limit is 1 per second, 3 at once",
    )
    messages = panel["ada"].wait_for(lambda m: "disconnected" in m[-1])
    assert [m for m in messages if m.startswith("eve:")] == ["eve: spam 0", "eve: spam 1", "eve: spam 2"]


def test_binary_messages_close_with_1003(classroom: Classroom) -> None:
    """The room is text only: a binary frame closes with 1003."""
    outcome = attempt_sync(classroom.url_for("eve"), send=[b"\x00\x01"])
    assert (outcome.close_code, outcome.close_reason) == (1003, "text messages only")


def test_a_muted_student_is_told_and_stays_connected(panel: ChatPanel, classroom: Classroom) -> None:
    """While muted, bob's messages reach nobody and he gets a note; after unmute he is heard again."""
    ada, bob = panel["ada"], panel["bob"]
    classroom.mute("bob")
    bob.send("can you hear me?")
    bob.wait_for(lambda m: m[-1:] == ["* not delivered: the instructor has muted you"])
    assert bob.state == "open" and [p.muted for p in classroom.participants()] == [False, True]
    classroom.unmute("bob")
    bob.send("and now?")
    panel.wait_for(lambda m: m[-1:] == ["bob: and now?"])
    assert "bob: can you hear me?" not in ada.messages
    assert bob.messages[1:] == [
        "* the instructor has muted you: your messages are not delivered",
        "* not delivered: the instructor has muted you",
        "* the instructor has unmuted you: you can talk again",
        "bob: and now?",
    ]


class FakeSocket:
    """Stands in for a student's WebSocket: records the texts sent to it, or never finishes a send when stuck."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.texts: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.texts.append(message["text"])

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def test_tell_reaches_one_student_through_the_hub_and_a_full_queue_gets_the_hub_policy() -> None:
    """Room.tell sends through FanOut.send_to: only to that student; a stuck one is evicted once its queue is full."""

    async def scenario() -> dict[str, Any]:
        room = Room(CODE, Limits(max_queue=2))
        sockets = {"ada": FakeSocket(), "bob": FakeSocket(stuck=True)}
        people = {}
        for name, websocket in sockets.items():
            people[name] = Participant(name, websocket, TokenBucket(1.0, 1))  # type: ignore[arg-type]
            await room.hub.register(websocket, name)  # type: ignore[arg-type]
        room.tell(people["ada"], "psst, ada")
        for n in range(4):  # bob's first send waits (handed to his writer), two fill his queue, the fourth is too many
            room.tell(people["bob"], f"bob {n}")
        await asyncio.sleep(0)  # let the eviction's close run
        evicted = list(room.hub.evicted)
        room.tell(people["bob"], "after eviction")  # not in the hub any more: nothing happens, no error
        await room.hub.aclose()
        return {
            "ada": sockets["ada"].texts,
            "bob": sockets["bob"].texts,
            "evicted": evicted,
            "closed": sockets["bob"].closed,
        }

    seen = asyncio.run(scenario())
    assert seen["ada"] == ["psst, ada"]
    assert seen["bob"] == []
    assert seen["evicted"] == ["bob"]
    assert seen["closed"] == (1013, "too slow: your connection fell behind")


def test_kick_closes_with_4000_and_the_reason_and_tells_the_room(panel: ChatPanel, classroom: Classroom) -> None:
    """The kicked student sees code 4000 with the reason; the others are told; the list shrinks."""
    classroom.kick("bob", "spamming")
    assert panel["bob"].wait_closed() == "closed by server: 4000 'removed by the instructor: spamming'"
    panel["ada"].wait_for(lambda m: m[-1:] == ["* bob was removed by the instructor (1 here)"])
    assert [str(p) for p in classroom.participants()] == ["ada (0 sent)"]


def test_announce_reaches_everyone_and_stop_says_the_class_is_over(panel: ChatPanel, classroom: Classroom) -> None:
    """An announcement is a line from [instructor]; stopping closes every student with 1001 and a reason."""
    classroom.announce("5 minutes left")
    panel.wait_for(lambda m: m[-1:] == ["[instructor] 5 minutes left"])
    classroom.stop()
    for client in panel:
        client.wait_closed()
    assert panel.statuses() == {
        "ada": "closed by server: 1001 'the class is over'",
        "bob": "closed by server: 1001 'the class is over'",
    }
    assert classroom.transcript()[-1] == "[instructor] 5 minutes left"


def test_instructor_calls_name_who_is_there_when_the_name_is_unknown(panel: ChatPanel, classroom: Classroom) -> None:
    """Muting or kicking an unknown name raises ClassroomError listing who is in the room."""
    with pytest.raises(ClassroomError, match=r"no participant named 'zoe' \(here: ada, bob\)"):
        classroom.mute("zoe")
    with pytest.raises(ClassroomError, match="no participant named 'zoe'"):
        classroom.kick("zoe")


def test_the_default_is_loopback_and_prints_nothing(no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]) -> None:
    """Without host=, the server listens on 127.0.0.1 only, with a random readable code, and prints nothing."""
    classroom = start_classroom(name="test-classroom-default")
    try:
        assert classroom.server.host == "127.0.0.1"
        assert classroom.student_url == classroom.url
        assert len(classroom.code) == 6 and classroom.code.isalnum()
        assert repr(classroom) == "<Classroom 'test-classroom-default' running, loopback only>"
    finally:
        classroom.stop()
    assert capsys.readouterr().out == ""


def test_a_dry_run_for_all_interfaces_prints_the_url_and_warning_and_binds_nothing(
    no_leaks: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    """dry_run=True with host 0.0.0.0 prints the students' URL and the warning, and opens no port."""
    ports = listening_ports()
    assert start_classroom(CODE, host="0.0.0.0", port=8765, address="192.168.1.23", dry_run=True) is None
    assert listening_ports() == ports
    out = capsys.readouterr().out
    assert out.startswith("DRY RUN: nothing is listening.")
    assert "ws://192.168.1.23:8765/chat?code=maple-42&name={name}" in out
    assert "WARNING: listening on ALL network interfaces" in out
    assert "the whole internet" in out


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    """2 tokens at 1 per second: two pass, the third waits a second, and idle time never stores more than 2."""
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=2, clock=lambda: now[0])
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]
    now[0] = 1.0
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] = 100.0
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]


def test_small_pieces() -> None:
    """Codes avoid look-alike characters and one_line flattens control characters."""
    code = new_code()
    assert len(code) == 6 and not set(code) & set("0o1li")
    assert one_line("a\nb\r\n\tc\x00d") == "a b c d"
    with pytest.raises(ValueError, match="rate must be > 0"):
        Limits(rate=0)


class FakeProbe:
    """Stands in for the UDP socket lan_address() asks the routing table with: it reports a chosen address."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.connected_to: tuple[str, int] | None = None

    def __call__(self, family: int, kind: int) -> FakeProbe:
        return self

    def __enter__(self) -> FakeProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def connect(self, target: tuple[str, int]) -> None:
        if self.address is None:
            raise OSError("Network is unreachable")
        self.connected_to = target

    def getsockname(self) -> tuple[str, int]:
        assert self.address is not None
        return (self.address, 40000)


@pytest.mark.parametrize(
    ("routed", "expected"),
    [("192.168.1.23", "192.168.1.23"), ("127.0.1.1", None), ("127.0.0.1", None), ("0.0.0.0", None), (None, None)],
)
def test_lan_address_filters_loopback_and_no_route(
    monkeypatch: pytest.MonkeyPatch, routed: str | None, expected: str | None
) -> None:
    """lan_address() returns the routed interface address, but None for loopback, 0.0.0.0 or no route at all."""
    probe = FakeProbe(routed)
    fake_socket_module = SimpleNamespace(socket=probe, AF_INET=socket.AF_INET, SOCK_DGRAM=socket.SOCK_DGRAM)
    monkeypatch.setattr(classroom_module, "socket", fake_socket_module)  # only lan_address() sees the fake
    assert lan_address() == expected
    if routed is not None:
        assert probe.connected_to is not None and not probe.connected_to[0].startswith("127.")
