"""Tests for helpers.resume: numbered messages, a bounded history, and clients that resume without loss or repeats."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode

from helpers.loops import await_on
from helpers.resume import (
    LAST_SEQ_HEADER,
    RESUME_REFUSED,
    FrameError,
    History,
    HistoryAhead,
    HistoryTooOld,
    ResumableRoom,
    ResumeRefused,
    ResumeState,
    decode,
    encode,
    follow,
)
from helpers.servers import ThreadServer, free_port, serve
from helpers.usage import UsageError, UsageTypeError
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(30)

RECEIVE_TIMEOUT = 2.0


def quick_delays() -> Iterator[float]:
    """Reconnect delays for tests: 50 ms each, instead of websockets' 0-5 s first one."""
    return itertools.repeat(0.05)


def client(url: str) -> Any:
    """A websockets client with short timeouts that ignores any proxy in the environment."""
    return connect(url, open_timeout=2, close_timeout=1, proxy=None)


async def publish(server: ThreadServer, room: ResumableRoom, *texts: str) -> list[int]:
    """room.publish() each text on the server's loop, where it must run."""

    async def on_server() -> list[int]:
        return [room.publish(text) for text in texts]

    return await await_on(server.loop, on_server())


async def receive_new(ws: ClientConnection, state: ResumeState, count: int) -> list[str]:
    """The next `count` new texts, duplicates dropped by `state`; each receive waits at most RECEIVE_TIMEOUT."""
    texts: list[str] = []
    while len(texts) < count:
        text = state.accept(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
        if text is not None:
            texts.append(text)
    return texts


async def refusal(url: str) -> tuple[int, str]:
    """The close code and reason a client at `url` gets before any message."""
    async with client(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def until(condition: Any, what: str) -> None:
    """Wait (at most 2 s) until condition() is true."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def room_server(request: pytest.FixtureRequest, no_leaks: Snapshot) -> Iterator[tuple[ResumableRoom, ThreadServer]]:
    """A ResumableRoom keeping 5 messages, served by uvicorn in a thread; no server error, nothing left running."""
    room = ResumableRoom(history_size=5)
    with serve(room.app, name=f"resume-{request.node.name}") as server:
        yield room, server
        assert server.errors == []


# ------------------------------------------------------------------------------------------------
# History


def test_history_numbers_messages_from_one() -> None:
    """append() returns 1, 2, 3 and last_seq follows; an empty history has last_seq 0."""
    history = History(10)
    assert history.last_seq == 0
    assert [history.append(text) for text in "abc"] == [1, 2, 3]
    assert history.last_seq == 3


def test_history_keeps_only_the_last_maxlen() -> None:
    """With maxlen 3, after 5 messages only 3, 4 and 5 are kept and the numbering goes on."""
    history = History(3)
    for text in "abcde":
        history.append(text)
    assert (len(history), history.oldest, history.last_seq) == (3, 3, 5)
    assert history.since(2) == [(3, "c"), (4, "d"), (5, "e")]


def test_since_returns_exactly_the_messages_after_last_seen() -> None:
    """since() from the oldest kept, from the middle and from the newest: exactly the later ones, oldest first."""
    history = History(3)
    for text in "abcde":
        history.append(text)
    assert history.since(2) == [(3, "c"), (4, "d"), (5, "e")]
    assert history.since(4) == [(5, "e")]
    assert history.since(5) == []
    assert History(3).since(0) == []


def test_since_refuses_when_a_missed_message_is_gone() -> None:
    """One missed message no longer kept is enough: HistoryTooOld names the oldest kept and says reload."""
    history = History(3)
    for text in "abcde":
        history.append(text)
    with pytest.raises(HistoryTooOld) as too_old:
        history.since(1)
    assert (too_old.value.oldest, too_old.value.last_seen) == (3, 1)
    assert too_old.value.reason == "history starts at 3, you last saw 1: reload"


def test_since_refuses_a_number_past_the_last() -> None:
    """A last_seen past last_seq (numbers from another history, a restarted server) is HistoryAhead."""
    history = History(3)
    history.append("a")
    with pytest.raises(HistoryAhead, match="the last message is 1, you last saw 7: reload"):
        history.since(7)


def test_history_refuses_arguments_it_cannot_use() -> None:
    """maxlen 0, a negative last_seen and a payload that is not a str each get one clear error."""
    with pytest.raises(UsageError, match="maxlen must be at least 1"):
        History(0)
    with pytest.raises(UsageError, match="last_seen must be at least 0"):
        History(3).since(-1)
    with pytest.raises(UsageTypeError, match=r"payload must be a str, not dict; e.g. json.dumps\(data\)"):
        History(3).append({"a": 1})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# wire format


def test_encode_and_decode_round_trip() -> None:
    """A frame is JSON text with seq and text, and decode() gives back both, quotes and non-ASCII included."""
    frame = encode(12, 'h\u00e9 said "hi"')
    assert frame == '{"seq": 12, "text": "h\u00e9 said \\"hi\\""}'
    assert decode(frame) == (12, 'h\u00e9 said "hi"')


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b'{"seq": 1, "text": "a"}', "resume frames are text, got bytes"),
        ("hello", "frame is not JSON"),
        ("[1, 2]", "must be an object with exactly seq and text"),
        ('{"seq": 1}', "must be an object with exactly seq and text"),
        ('{"seq": 1, "text": "a", "extra": 0}', "must be an object with exactly seq and text"),
        ('{"seq": "1", "text": "a"}', "seq must be a whole number from 1, got '1'"),
        ('{"seq": 0, "text": "a"}', "seq must be a whole number from 1, got 0"),
        ('{"seq": true, "text": "a"}', "seq must be a whole number from 1, got True"),
        ('{"seq": 1, "text": 5}', "text must be a string, got int"),
    ],
)
def test_decode_refuses_bad_frames_saying_what_a_frame_looks_like(frame: str | bytes, error: str) -> None:
    """Each malformed frame raises FrameError naming the problem and showing a good frame."""
    with pytest.raises(FrameError, match=error) as caught:
        decode(frame)
    assert '{"seq": 12, "text": "hi"}' in str(caught.value)


# ------------------------------------------------------------------------------------------------
# the client's side


def test_client_drops_a_message_it_has_already_seen() -> None:
    """A frame whose number is not past last_seen returns None and counts as a duplicate."""
    state = ResumeState()
    assert [state.accept(encode(n, f"m{n}")) for n in (1, 2, 2, 1, 3)] == ["m1", "m2", None, None, "m3"]
    assert (state.last_seen, state.received, state.duplicates, state.gaps) == (3, 3, 2, 0)


def test_client_counts_a_gap_and_the_numbers_it_skipped() -> None:
    """Jumping from 2 to 5 is one gap of 2 missing messages; the text is still delivered."""
    state = ResumeState(last_seen=2)
    assert state.accept(encode(5, "m5")) == "m5"
    assert (state.last_seen, state.gaps, state.missing) == (5, 1, 2)


def test_url_for_asks_for_what_was_missed() -> None:
    """A new client's URL is left alone; a known position becomes ?since=N, replacing any since already there."""
    assert ResumeState().url_for("ws://127.0.0.1:9/room") == "ws://127.0.0.1:9/room"
    assert ResumeState(last_seen=0).url_for("ws://127.0.0.1:9/room") == "ws://127.0.0.1:9/room?since=0"
    assert ResumeState(last_seen=7).url_for("ws://h:9/room?since=1&name=a") == "ws://h:9/room?name=a&since=7"
    with pytest.raises(UsageError, match="base_url 'http://h/room' has http://"):
        ResumeState().url_for("http://h/room")


def test_connected_gives_a_new_client_its_position_only() -> None:
    """The X-Last-Seq header sets last_seen for a client without one, and never moves a known one."""
    new, known, silent = ResumeState(), ResumeState(last_seen=2), ResumeState()
    for state in (new, known):
        state.connected({LAST_SEQ_HEADER: "9"})
    silent.connected({})
    assert [(s.last_seen, s.connections) for s in (new, known, silent)] == [(9, 1), (2, 1), (None, 1)]


# ------------------------------------------------------------------------------------------------
# against a real server


def test_a_reconnecting_client_gets_exactly_what_it_missed_then_live_ones(
    room_server: tuple[ResumableRoom, ThreadServer],
) -> None:
    """A client that leaves after 2 messages and misses 3 gets those 3 in order on ?since=2, then a live one."""
    room, server = room_server
    url = server.ws_url("/room")

    async def scenario() -> tuple[list[str], list[str], list[str], str, ResumeState]:
        state = ResumeState()
        async with client(state.url_for(url)) as ws:
            state.connected(ws.response.headers)
            await publish(server, room, "m1", "m2")
            before = await receive_new(ws, state, 2)
        await publish(server, room, "m3", "m4", "m5")  # while it is away
        resume_url = state.url_for(url)
        async with client(resume_url) as ws:
            state.connected(ws.response.headers)
            missed = await receive_new(ws, state, 3)
            await publish(server, room, "live")
            live = await receive_new(ws, state, 1)
        return before, missed, live, resume_url, state

    before, missed, live, resume_url, state = asyncio.run(scenario())
    assert resume_url.endswith("/room?since=2")
    assert (before, missed, live) == (["m1", "m2"], ["m3", "m4", "m5"], ["live"])
    assert (state.last_seen, state.duplicates, state.gaps) == (6, 0, 0)


def test_a_gap_older_than_the_history_is_refused_with_4410(room_server: tuple[ResumableRoom, ThreadServer]) -> None:
    """With 5 kept out of 8, ?since=2 is closed with 4410 'history starts at 4 ...: reload', ?since=9 likewise."""
    room, server = room_server

    async def scenario() -> list[tuple[int, str]]:
        await publish(server, room, *(f"m{n}" for n in range(1, 9)))
        return [await refusal(server.ws_url(f"/room?since={n}")) for n in (2, 9)]

    assert asyncio.run(scenario()) == [
        (RESUME_REFUSED, "history starts at 4, you last saw 2: reload"),
        (RESUME_REFUSED, "the last message is 8, you last saw 9: reload"),
    ]
    assert RESUME_REFUSED == 4410


def test_a_since_that_is_not_a_number_is_closed_with_1008(room_server: tuple[ResumableRoom, ThreadServer]) -> None:
    """?since=-1 is accepted and closed with 1008 and a reason showing a valid since."""
    _, server = room_server
    code, reason = asyncio.run(refusal(server.ws_url("/room?since=-1")))
    assert code == CloseCode.POLICY_VIOLATION
    assert reason == "since must be the last seq you saw (0 or more), e.g. ?since=12, not '-1'"


class PublishesWhileReading(ResumableRoom):
    """A room whose history read takes a moment, during which another message is published.

    `read_first`: the read's answer is fixed before the message comes (it is only held for the client); otherwise
    after (it is in the answer and held: the overlap the client's dedup handles).
    """

    def __init__(self, *, read_first: bool) -> None:
        super().__init__(history_size=5)
        self.read_first = read_first

    async def missed(self, last_seen: int) -> list[tuple[int, str]]:
        answer = await super().missed(last_seen) if self.read_first else None
        self.publish("during")  # as another client's message would arrive while a store is being read
        await asyncio.sleep(0.05)
        return answer if answer is not None else await super().missed(last_seen)


@pytest.mark.parametrize(("read_first", "duplicates"), [(False, 1), (True, 0)], ids=["in-both", "held-only"])
def test_a_message_published_during_the_replay_arrives_once_in_order(
    read_first: bool, duplicates: int, no_leaks: Snapshot
) -> None:
    """'during' reaches the client once, after the replay and before what follows, whether the read saw it or not."""
    room = PublishesWhileReading(read_first=read_first)
    with serve(room.app, name="resume-during") as server:

        async def scenario() -> tuple[list[str], ResumeState]:
            await publish(server, room, "m1", "m2", "m3")
            state = ResumeState(last_seen=1)
            async with client(state.url_for(server.ws_url("/room"))) as ws:
                texts = await receive_new(ws, state, 3)
                await publish(server, room, "after")
                texts += await receive_new(ws, state, 1)
            return texts, state

        texts, state = asyncio.run(scenario())
        assert server.errors == []
    assert texts == ["m2", "m3", "during", "after"]
    assert (state.duplicates, state.gaps, state.last_seen) == (duplicates, 0, 5)


def test_a_new_client_that_drops_before_its_first_message_still_resumes(
    room_server: tuple[ResumableRoom, ThreadServer],
) -> None:
    """X-Last-Seq gives a new client a position at once, so what is published after it first joined is replayed."""
    room, server = room_server
    url = server.ws_url("/room")

    async def scenario() -> tuple[int | None, list[str]]:
        await publish(server, room, "before it joined")
        state = ResumeState()
        async with client(state.url_for(url)) as ws:
            state.connected(ws.response.headers)
        position = state.last_seen
        await publish(server, room, "m2", "m3")
        async with client(state.url_for(url)) as ws:
            state.connected(ws.response.headers)
            return position, await receive_new(ws, state, 2)

    assert asyncio.run(scenario()) == (1, ["m2", "m3"])


def test_the_room_outlives_a_server_restart(no_leaks: Snapshot) -> None:
    """Served again after a stop, the same room still has its history: a client resumes on the new server."""
    room = ResumableRoom(history_size=5)
    with serve(room.app, name="resume-restart") as server:
        asyncio.run(publish(server, room, "m1", "m2"))
    with serve(room.app, name="resume-restart") as server:

        async def scenario() -> list[str]:
            await publish(server, room, "m3")
            state = ResumeState(last_seen=1)
            async with client(state.url_for(server.ws_url("/room"))) as ws:
                return await receive_new(ws, state, 2)

        assert asyncio.run(scenario()) == ["m2", "m3"]
        assert server.errors == []


async def restart_every_connection(room: ResumableRoom) -> None:
    for websocket in list(room.hub.members):
        await websocket.close(CloseCode.SERVICE_RESTART, "restarting")


def test_follow_reconnects_and_resumes_without_loss_or_repeats(
    room_server: tuple[ResumableRoom, ThreadServer],
) -> None:
    """follow() closed by the server with 1012 after 2 messages reconnects with ?since=2 and returns all 4, once."""
    room, server = room_server

    async def scenario() -> tuple[list[str], ResumeState]:
        state = ResumeState()
        task = asyncio.create_task(follow(server.ws_url("/room"), state, 4, reconnect_delays=quick_delays))
        await until(lambda: state.connections == 1, "follow() connected")
        await publish(server, room, "m1", "m2")
        await until(lambda: state.received == 2, "follow() received 2")
        await await_on(server.loop, restart_every_connection(room))
        await publish(server, room, "m3", "m4")  # before or after it is back: replayed or live, once either way
        return await asyncio.wait_for(task, 3), state

    texts, state = asyncio.run(scenario())
    assert texts == ["m1", "m2", "m3", "m4"]
    assert (state.connections, state.duplicates, state.missing) == (2, 0, 0)


def test_follow_stops_on_a_refusal_instead_of_asking_again(room_server: tuple[ResumableRoom, ThreadServer]) -> None:
    """A state too far behind the history makes follow() raise ResumeRefused(4410) after one connection."""
    room, server = room_server
    state = ResumeState(last_seen=1)

    async def scenario() -> None:
        await publish(server, room, *(f"m{n}" for n in range(1, 9)))
        await asyncio.wait_for(follow(server.ws_url("/room"), state, 1, reconnect_delays=quick_delays), 3)

    with pytest.raises(ResumeRefused) as refused:
        asyncio.run(scenario())
    assert (refused.value.code, refused.value.reason) == (4410, "history starts at 4, you last saw 1: reload")
    assert state.connections == 1


def test_follow_raises_a_rejected_handshake_at_once(room_server: tuple[ResumableRoom, ThreadServer]) -> None:
    """A path with no route is an HTTP 403 under uvicorn, which websockets' process_exception calls fatal."""
    _, server = room_server
    with pytest.raises(InvalidStatus, match="HTTP 403"):
        asyncio.run(asyncio.wait_for(follow(server.ws_url("/nowhere"), ResumeState(), 1), 3))


def test_follow_retries_a_refused_connection_with_the_given_delays(no_leaks: Snapshot) -> None:
    """Nothing listening (connection refused, an OSError) is retried after each delay until the caller gives up."""
    delays: list[float] = []

    def recorded() -> Iterator[float]:
        while True:
            delays.append(0.02)
            yield 0.02

    url = f"ws://127.0.0.1:{free_port()}/room"
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(follow(url, ResumeState(), 1, reconnect_delays=recorded), 0.3))
    assert len(delays) >= 3
