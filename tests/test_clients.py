"""Tests for helpers.clients: each kind of outcome a client can see, read from real servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from helpers.clients import (
    Closing,
    HandshakeFailure,
    Outcome,
    attempt,
    attempt_sync,
    collect,
    connect,
    connect_sync,
    describe_close,
    describe_handshake_failure,
    read_close,
    read_handshake_failure,
)
from helpers.demo_apps import echo
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError

pytestmark = pytest.mark.timeout(30)


async def scripted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app whose behaviour is chosen by the request path."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    path = scope["path"]
    if path == "/reject":
        await send({"type": "websocket.close", "code": 4001})
    elif path == "/never":
        await asyncio.sleep(30)
    elif path == "/crash":
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("handler crashed")
    elif path == "/members-only":
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": offered[-1] if offered else None})
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close", "code": 4403, "reason": "members only"})


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with serve(scripted, name="scripted") as handle:
        yield handle


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ThreadServer]:
    with serve(echo, name="echo-clients") as handle:
        yield handle


def test_opened_conversation_reports_messages_and_client_close(echo_server: ThreadServer) -> None:
    """An accepted connection reports HTTP 101, the replies, and the client's own 1000 close."""
    outcome = attempt_sync(echo_server.ws_url("/"), send=["a", b"b"], receive=2)
    assert outcome.opened and outcome.messages == ["a", b"b"]
    assert (outcome.closed_by, outcome.close_code) == ("client", 1000)
    assert str(outcome) == "opened (HTTP 101); received 2 messages: 'a', b'b'; closed by client: 1000"


def test_close_before_accept_is_reported_as_http_403(server: ThreadServer) -> None:
    """A server that closes before accepting is seen as an HTTP 403 rejection, without the close code."""
    outcome = attempt_sync(server.ws_url("/reject"))
    assert outcome.rejected and outcome.status == 403 and outcome.close_code is None
    assert str(outcome).startswith("rejected: HTTP 403")


def test_never_accepting_is_reported_as_a_handshake_timeout(server: ThreadServer) -> None:
    """A server that never answers the handshake gives a timeout after open_timeout, not a hang."""
    outcome = attempt_sync(server.ws_url("/never"), open_timeout=0.3)
    assert outcome.timed_out and outcome.timed_out_after == 0.3
    assert 0.3 <= outcome.elapsed < 2
    assert str(outcome) == "timed out: no handshake response within 0.3 s"


def test_server_close_reports_code_reason_subprotocol_and_messages(server: ThreadServer) -> None:
    """A server-initiated close is reported with its code and reason, after the chosen subprotocol."""
    outcome = attempt_sync(server.ws_url("/members-only"), subprotocols=["chat.v1", "chat.v2"])
    assert outcome.subprotocol == "chat.v2"
    assert (outcome.closed_by, outcome.close_code, outcome.close_reason) == ("server", 4403, "members only")
    assert str(outcome) == (
        "opened (HTTP 101, subprotocol 'chat.v2'); received 1 message: 'hello'; closed by server: 4403 'members only'"
    )


def test_crash_after_accept_is_reported_as_a_dropped_connection(server: ThreadServer) -> None:
    """A handler that raises after accept drops the connection (1006) and the error lands in server.errors."""
    server.log.clear()
    outcome = attempt_sync(server.ws_url("/crash"), send=["x"])
    assert (outcome.closed_by, outcome.close_code) == ("nobody", 1006)
    assert "connection dropped without a close frame (1006)" in str(outcome)
    assert server.errors == ["RuntimeError: handler crashed"]


def test_connection_refused_is_a_failure_not_an_exception() -> None:
    """Nothing listening on the port gives a 'connection refused' outcome."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = attempt_sync(f"ws://127.0.0.1:{port}/")
    assert not outcome.opened and outcome.error is not None
    assert str(outcome) == "failed: connection refused (is the server running on that port?)"


def test_waiting_for_more_messages_than_arrive_is_reported(echo_server: ThreadServer) -> None:
    """Asking for more replies than come ends after the timeout and says how many arrived."""
    outcome = attempt_sync(echo_server.ws_url("/"), send=["only one"], receive=2, timeout=0.2)
    assert outcome.messages == ["only one"]
    assert outcome.error == "got 1 of 2 messages within 0.2 s"
    assert str(outcome) == (
        "opened (HTTP 101); received 1 message: 'only one'; got 1 of 2 messages within 0.2 s; closed by client: 1000"
    )


def test_attempt_works_on_a_running_loop(echo_server: ThreadServer) -> None:
    """attempt() (async) and attempt_sync() (from inside a running loop) both work."""

    async def both() -> tuple[Outcome, Outcome]:
        return (
            await attempt(echo_server.ws_url("/"), send=["x"], receive=1),
            attempt_sync(echo_server.ws_url("/"), send=["y"], receive=1),
        )

    first, second = asyncio.run(both())
    assert first.messages == ["x"] and second.messages == ["y"]


def test_connect_wrappers_use_short_timeouts(echo_server: ThreadServer) -> None:
    """connect() and connect_sync() are the websockets clients with short timeouts."""

    async def use_async() -> str | bytes:
        async with connect(echo_server.ws_url("/")) as ws:
            await ws.send("async")
            return await ws.recv()

    assert asyncio.run(use_async()) == "async"
    with connect_sync(echo_server.ws_url("/")) as ws:
        ws.send("sync")
        assert ws.recv(timeout=2) == "sync"


def test_extra_headers_gets_a_helpful_type_error() -> None:
    """The pre-14 keyword extra_headers= is refused with the new name in the message."""
    with pytest.raises(TypeError, match="additional_headers"):
        connect("ws://127.0.0.1:1/", extra_headers={"a": "b"})


def test_clients_ignore_proxy_settings(echo_server: ThreadServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP(S)_PROXY in the environment does not reroute the lessons' loopback clients."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert attempt_sync(echo_server.ws_url("/"), send=["direct"], receive=1).messages == ["direct"]
    with connect_sync(echo_server.ws_url("/")) as ws:
        ws.send("sync")
        assert ws.recv(timeout=2) == "sync"


def test_collect_waits_for_the_expected_count_then_counts_extras(echo_server: ThreadServer) -> None:
    """collect() gets every expected message and, within the quiet period after them, any extra ones too."""

    async def scenario() -> list[Any]:
        received: list[Any] = []
        async with connect(echo_server.ws_url("/")) as ws:
            for n in range(4):
                await ws.send(f"m{n}")
            await collect(ws, received, expect=2, quiet=0.3)
        return received

    assert asyncio.run(scenario()) == ["m0", "m1", "m2", "m3"]


def test_collect_gives_up_at_its_deadline_when_fewer_arrive(echo_server: ThreadServer) -> None:
    """With fewer messages than expected, collect() returns what came once `deadline` has passed, not later."""

    async def scenario() -> tuple[list[Any], float]:
        received: list[Any] = []
        async with connect(echo_server.ws_url("/")) as ws:
            await ws.send("only one")
            started = time.monotonic()
            await collect(ws, received, expect=3, deadline=0.3, quiet=0.1)
            return received, time.monotonic() - started

    received, took = asyncio.run(scenario())
    assert received == ["only one"] and 0.25 < took < 1.0


def test_collect_keeps_what_arrived_before_the_server_closed(server: ThreadServer) -> None:
    """A close raises ConnectionClosed (with the server's code) and the list keeps the messages before it."""

    async def scenario() -> tuple[list[Any], int | None]:
        received: list[Any] = []
        async with connect(server.ws_url("/members-only")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await collect(ws, received, expect=2, deadline=2)
        return received, closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(scenario()) == (["hello"], 4403)


def test_collect_stops_at_its_limit_without_waiting_for_quiet(echo_server: ThreadServer) -> None:
    """With `limit`, collect() returns as soon as the list holds that many messages, leaving the rest unread."""

    async def scenario() -> tuple[list[Any], float, Any]:
        received: list[Any] = []
        async with connect(echo_server.ws_url("/")) as ws:
            for n in range(4):
                await ws.send(f"m{n}")
            await collect(ws, received, expect=4, deadline=2)
            for n in range(4, 8):
                await ws.send(f"m{n}")
            started = time.monotonic()
            await collect(ws, received, quiet=5, limit=6)
            took = time.monotonic() - started
            return received, took, await asyncio.wait_for(ws.recv(), 1)

    received, took, next_one = asyncio.run(scenario())
    assert received == [f"m{n}" for n in range(6)]
    assert took < 2 and next_one == "m6"


def test_collect_without_a_limit_reads_until_quiet(echo_server: ThreadServer) -> None:
    """Without `limit` (the default), collect() reads every message until the quiet period passes."""

    async def scenario() -> list[Any]:
        received: list[Any] = []
        async with connect(echo_server.ws_url("/")) as ws:
            for n in range(150):
                await ws.send(f"m{n}")
            await collect(ws, received, expect=1, quiet=0.5)  # one awaited, the other 149 read as extras
        return received

    assert asyncio.run(scenario()) == [f"m{n}" for n in range(150)]


def test_collect_refuses_a_limit_that_is_not_a_whole_number() -> None:
    """collect(limit=-1) and collect(limit=1.5) raise a usage error before reading anything."""

    async def run(limit: Any) -> None:
        await collect(None, [], limit=limit)  # type: ignore[arg-type]

    with pytest.raises(UsageError, match="limit must be at least 0"):
        asyncio.run(run(-1))
    with pytest.raises(UsageError, match="limit must be a whole number"):
        asyncio.run(run(1.5))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ws://127.0.0.1:99999/x", "impossible port"),
        ("http://127.0.0.1:8000/x", "starts with ws:// or wss://"),
        (None, "must be a str"),
    ],
)
def test_attempt_sync_with_a_bad_url_raises_one_clear_error(url: object, message: str) -> None:
    """attempt_sync() refuses a malformed URL in the caller's thread with UsageError, not an IndexError."""
    with pytest.raises(UsageError, match=message):
        attempt_sync(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"send": "hello"}, r"write send=\['hello'\]"),
        ({"send": [{"a": 1}]}, r"json.dumps"),
        ({"receive": -1}, "receive must be at least 0"),
        ({"subprotocols": "chat.v1"}, r"write subprotocols=\['chat.v1'\]"),
        ({"headers": {"Origin": None}}, "dict of str to str"),
        ({"open_timeout": 0}, "open_timeout must be above zero"),
        ({"close_code": 1006}, "cannot be sent in a close frame"),
    ],
)
def test_attempt_refuses_arguments_that_cannot_work_before_connecting(options: dict[str, Any], message: str) -> None:
    """Each impossible argument to attempt() raises UsageError saying what to pass, and nothing connects."""
    with pytest.raises(UsageError, match=message):
        asyncio.run(attempt("ws://127.0.0.1:1/never-dialled", **options))


def test_attempt_sync_hands_an_error_inside_the_worker_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in attempt_sync()'s worker thread reaches the caller as itself."""

    async def broken(url: str, **kwargs: Any) -> Outcome:
        raise LookupError("boom")

    monkeypatch.setattr("helpers.clients.attempt", broken)
    with pytest.raises(LookupError, match="boom"):
        attempt_sync("ws://127.0.0.1:1/")


def test_connect_and_collect_refuse_bad_values() -> None:
    """connect() and connect_sync() refuse a non-ws URL and a zero timeout; collect() a negative count."""
    with pytest.raises(UsageError, match="ws:// or wss://"):
        connect("https://127.0.0.1/")
    with pytest.raises(UsageError, match="open_timeout must be above zero"):
        connect_sync("ws://127.0.0.1:1/", open_timeout=0)

    async def run() -> None:
        await collect(None, [], expect=-2)  # type: ignore[arg-type]

    with pytest.raises(UsageError, match="expect must be at least 0"):
        asyncio.run(run())


def test_read_close_says_who_closed_from_the_frames() -> None:
    """The server closed if its frame came first; the client if it sent first or alone; nobody (1006) without frames."""
    server_frame, client_frame = Close(4403, "members only"), Close(1000, "")
    assert read_close(server_frame, None, None) == Closing("server", 4403, "members only")
    assert read_close(server_frame, client_frame, True) == Closing("server", 4403, "members only")
    assert read_close(server_frame, client_frame, False) == Closing("client", 4403, "members only")
    assert read_close(None, client_frame, None) == Closing("client", 1000, "")
    assert read_close(None, None, None) == Closing("nobody", 1006, "")


def test_describe_close_words_it_for_an_outcome_and_for_a_chat_status_line() -> None:
    """The same close reads "closed by client" in an Outcome and "closed by you" in a chat window; drops differ too."""
    assert describe_close("server", 4403, "members only") == "closed by server: 4403 'members only'"
    assert describe_close("server", 4403, "members only", status_line=True) == "closed by server: 4403 'members only'"
    assert describe_close("client", 1000) == "closed by client: 1000"
    assert describe_close("client", 1000, status_line=True) == "closed by you: 1000"
    assert describe_close("nobody", 1006) == "connection dropped without a close frame (1006)"
    assert describe_close("nobody", 1006, status_line=True) == (
        "dropped: the connection ended without a close frame (1006)"
    )


def test_read_handshake_failure_sorts_the_exceptions() -> None:
    """An HTTP rejection keeps status, body and headers; timeouts, refusals, cancels and other errors get a kind."""
    response = Response(403, "Forbidden", Headers({"X-Why": "members"}), b"members only\n")
    rejected = read_handshake_failure(InvalidStatus(response), 2.0)
    assert (rejected.kind, rejected.status, rejected.body, rejected.headers) == (
        "rejected",
        403,
        "members only\n",
        {"x-why": "members"},
    )
    assert read_handshake_failure(TimeoutError(), 0.3) == HandshakeFailure("timed out", timeout=0.3)
    assert read_handshake_failure(ConnectionRefusedError(), 2.0) == HandshakeFailure("refused")
    assert read_handshake_failure(asyncio.CancelledError(), 2.0) == HandshakeFailure("cancelled")
    assert read_handshake_failure(OSError("no route"), 2.0) == HandshakeFailure("error", error="OSError: no route")


@pytest.mark.parametrize(
    ("failure", "in_outcome", "in_status_line"),
    [
        (
            HandshakeFailure("rejected", status=403, body=" members only\n"),
            "rejected: HTTP 403 'members only'",
            "rejected: HTTP 403",
        ),
        (
            HandshakeFailure("timed out", timeout=0.3),
            "timed out: no handshake response within 0.3 s",
            "failed: no handshake response within 0.3 s",
        ),
        (
            HandshakeFailure("refused"),
            "failed: connection refused (is the server running on that port?)",
            "failed: connection refused (is the server running at that address and port?)",
        ),
        (
            HandshakeFailure("cancelled"),
            "closed: the connection attempt was cancelled",
            "closed: the connection attempt was cancelled",
        ),
        (
            HandshakeFailure("error", error="OSError: no route"),
            "failed: OSError: no route",
            "failed: OSError: no route",
        ),
    ],
)
def test_describe_handshake_failure_words_it_for_an_outcome_and_for_a_chat_status_line(
    failure: HandshakeFailure, in_outcome: str, in_status_line: str
) -> None:
    """Each kind of failed handshake has its Outcome wording and its chat status-line wording."""
    assert describe_handshake_failure(failure) == in_outcome
    assert describe_handshake_failure(failure, status_line=True) == in_status_line
