"""Tests for helpers.chat_connection: a chat connection without widgets, against real servers."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from helpers.chat_connection import (
    MAX_RECONNECT_DELAY,
    RECONNECT_DELAY,
    ChatClientError,
    ChatConnection,
    as_text,
    backoff_delay,
    plural,
)
from helpers.fanout import FanOut
from helpers.servers import ThreadServer, free_port, serve
from helpers.usage import UsageError
from tests.support import ROOT, Snapshot

pytestmark = pytest.mark.timeout(30)


REFUSED = "failed: connection refused (is the server running at that address and port?)"


def chat_app() -> Starlette:
    """A FanOut chat at /chat/{name}, plus endpoints that refuse, close, count, send bytes, crash, never answer, and
    answer each new connection with the next step of a script (/scripted)."""
    hub = FanOut()
    connections: dict[str, int] = {}  # /scripted's query -> how many connections it has had

    async def chat(websocket: WebSocket) -> None:
        name = websocket.path_params["name"]
        await websocket.accept()
        async with hub.connected(websocket, name):
            hub.publish(f"* {name} joined")
            async for text in websocket.iter_text():
                hub.publish(f"{name}: {text}")
        hub.publish(f"* {name} left")

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close()  # before accept: HTTP 403

    async def goodbye(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4403, "<b>members</b> only")

    async def count(websocket: WebSocket) -> None:
        await websocket.accept()
        for i in range(int(websocket.query_params["n"])):
            await websocket.send_text(f"m{i}")
        await websocket.receive()  # until the client leaves

    async def silent(websocket: WebSocket) -> None:
        await websocket.receive()  # the connect event; never accepts, returns when the client gives up
        await websocket.receive()

    async def binary(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(b"\x00\x01")
        await websocket.receive()  # until the client leaves

    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text({"not": "text"})  # type: ignore[arg-type]  # AttributeError: no close frame

    async def scripted(websocket: WebSocket) -> None:
        # /scripted?steps=1012:service%20restart,403,open: connection n does step n (after the last, the last again):
        # "403" refuses before accept, "silent" never answers, "open" sends "connection n" and echoes; a close code
        # (with ":reason") accepts, sends "connection n" and closes with it.
        query = websocket.url.query
        number = connections[query] = connections.get(query, 0) + 1
        steps = websocket.query_params["steps"].split(",")
        step = steps[min(number, len(steps)) - 1]
        if step == "403":
            await websocket.close()
            return
        if step == "silent":
            await silent(websocket)
            return
        await websocket.accept()
        await websocket.send_text(f"connection {number}")
        if step == "open":
            async for text in websocket.iter_text():
                await websocket.send_text(f"echo: {text}")
            return
        code, _, reason = step.partition(":")
        await websocket.close(int(code), reason)

    return Starlette(
        routes=[
            WebSocketRoute("/chat/{name}", chat),
            WebSocketRoute("/refuse", refuse),
            WebSocketRoute("/goodbye", goodbye),
            WebSocketRoute("/count", count),
            WebSocketRoute("/silent", silent),
            WebSocketRoute("/binary", binary),
            WebSocketRoute("/crash", crash),
            WebSocketRoute("/scripted", scripted),
        ]
    )


@pytest.fixture
def server(no_leaks: Snapshot) -> Iterator[ThreadServer]:
    with serve(chat_app(), name="test-chat-connection") as running:
        yield running


def statuses(connection: ChatConnection) -> list[str]:
    """Every status line `connection` shows from now on, in order (a list its subscriber appends to)."""
    seen: list[str] = []
    connection.on_change(lambda what: seen.append(connection.status) if what == "status" else None)
    return seen


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.01)


def quick(url: str, name: str = "ada", **options: Any) -> ChatConnection:
    """A ChatConnection that reconnects after 0.01 s, 0.02 s, 0.04 s (the cap), at most 3 times unless told."""
    settings: dict[str, Any] = {"reconnect": True, "reconnect_delay": 0.01, "max_reconnect_delay": 0.04}
    return ChatConnection(url, name, **{**settings, "max_attempts": 3, **options})


@pytest.fixture
def ada(server: ThreadServer) -> Iterator[ChatConnection]:
    connection = ChatConnection(server.ws_url("/chat/{name}"), "ada")
    yield connection
    connection.close()


def test_the_connection_module_does_not_import_ipywidgets() -> None:
    """helpers.chat_connection imports without ipywidgets, so it works where there is no widget front end."""
    code = "import sys, helpers.chat_connection; print('ipywidgets' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr


def test_two_connections_chat_and_the_one_that_leaves_is_announced(server: ThreadServer) -> None:
    """Two connections open, one sends, both receive it; the one that disconnects says 'closed by you: 1000'."""
    ada = ChatConnection(server.ws_url("/chat/{name}"), "ada")
    bob = ChatConnection(server.ws_url("/chat/{name}"), "bob")
    try:
        assert (ada.connect(), bob.connect()) == ("open", "open")
        ada.wait_for(2)
        bob.send("hello")
        assert ada.wait_for(lambda log: log[-1] == "bob: hello") == ["* ada joined", "* bob joined", "bob: hello"]
        assert bob.wait_for(2) == ["* bob joined", "bob: hello"]
        assert bob.disconnect() == "closed by you: 1000"
        assert (bob.state, bob.close_code, bob.close_reason) == ("closed", 1000, "")
        ada.wait_for(lambda log: log[-1] == "* bob left")
        assert ada.transcript() == "* ada joined\n* bob joined\nbob: hello\n* bob left"
    finally:
        ada.close()
        bob.close()


def test_the_url_gets_the_quoted_name_and_the_thread_is_named_after_it(server: ThreadServer) -> None:
    """`{name}` in the URL becomes the URL-quoted name, and the connection's thread is chat-client-<name>."""
    connection = ChatConnection(server.ws_url("/chat/{name}"), "ada lovelace")
    try:
        assert connection.resolved_url() == server.ws_url("/chat/ada%20lovelace")
        assert connection.thread is None
        connection.connect()
        assert connection.wait_for(1) == ["* ada lovelace joined"]
        assert connection.thread is not None and connection.thread.name == "chat-client-ada lovelace"
    finally:
        connection.close()


def test_subscribers_hear_of_status_and_message_changes(ada: ChatConnection) -> None:
    """on_change callbacks get "status" for each state change and "messages" for each message and clear()."""
    heard: list[tuple[str, object]] = []
    ada.on_change(lambda what: heard.append((what, ada.status if what == "status" else ada.messages)))
    ada.connect()
    ada.wait_for(1)
    ada.disconnect()
    assert heard[:3] == [("status", "connecting…"), ("status", "open"), ("messages", ["* ada joined"])]
    assert heard[-1] == ("status", "closed by you: 1000")
    ada.clear()
    assert heard[-1] == ("messages", []) and ada.received == 1


def test_a_rejection_a_server_close_and_a_drop_are_described(server: ThreadServer) -> None:
    """HTTP 403 before accept, a 4403 close with a reason, and a handler crash (1006) each get their status line."""
    refused = ChatConnection(server.ws_url("/refuse"), "ada")
    goodbye = ChatConnection(server.ws_url("/goodbye"), "ada")
    crash = ChatConnection(server.ws_url("/crash"), "ada")
    try:
        assert (refused.connect(), refused.state) == ("rejected: HTTP 403", "rejected")
        goodbye.connect()
        assert goodbye.wait_closed() == "closed by server: 4403 '<b>members</b> only'"
        assert (goodbye.close_code, goodbye.close_reason) == (4403, "<b>members</b> only")
        crash.connect()
        assert crash.wait_closed() == "dropped: the connection ended without a close frame (1006)"
        assert (crash.state, crash.close_code, crash.close_reason) == ("closed", 1006, "")
    finally:
        for connection in (refused, goodbye, crash):
            connection.close()


def test_a_stopped_server_a_missing_server_and_a_wrong_scheme_are_explained(no_leaks: Snapshot) -> None:
    """1012 when the server stops; 'connection refused' with the address hint when nothing listens; ws:// needed."""
    server = serve(chat_app(), name="test-chat-connection-stop")
    connection = ChatConnection(server.ws_url("/chat/{name}"), "ada")
    try:
        connection.connect()
        server.stop()
        assert connection.wait_closed() == "closed by server: 1012"
        connection.url = f"ws://127.0.0.1:{free_port()}/chat/{{name}}"
        assert connection.connect() == ("failed: connection refused (is the server running at that address and port?)")
        assert connection.state == "failed"
        connection.url = ""
        assert connection.connect() == "failed: the URL must start with ws:// or wss://, not 'an empty URL'"
    finally:
        connection.close()
        server.stop()


def test_a_handshake_that_never_completes_times_out_or_is_cancelled(server: ThreadServer) -> None:
    """Against a server that never answers: 'failed: no handshake response within 0.3 s', or cancelled by disconnect."""
    slow = ChatConnection(server.ws_url("/silent"), "ada", open_timeout=0.3)
    waiting = ChatConnection(server.ws_url("/silent"), "bob", open_timeout=5)
    try:
        assert slow.connect() == "failed: no handshake response within 0.3 s"
        assert waiting.connect(wait=False) == "connecting…"
        assert waiting.disconnect() == "closed: the connection attempt was cancelled"
        assert waiting.thread is not None and not waiting.thread.is_alive()
    finally:
        slow.close()
        waiting.close()


def test_only_the_last_max_messages_are_kept_but_all_are_counted(server: ThreadServer) -> None:
    """With max_messages=5, 12 messages leave the last 5; received and since() count from all 12."""
    connection = ChatConnection(server.ws_url("/count?n=12"), "ada", max_messages=5)
    try:
        connection.connect()
        assert connection.wait_for(12) == ["m7", "m8", "m9", "m10", "m11"]
        assert connection.received == 12
        assert connection.since(10) == ["m10", "m11"] and connection.since(12) == []
    finally:
        connection.close()


def test_waits_time_out_saying_what_they_got(ada: ChatConnection) -> None:
    """wait_for and wait_closed raise TimeoutError with the count and status; wait_closed returns once it ended."""
    ada.connect()
    with pytest.raises(TimeoutError, match=r"ada has received 1 message, not 3 messages, and 0.2 s passed"):
        ada.wait_for(3, timeout=0.2)
    with pytest.raises(TimeoutError, match=r"ada is still open after 0\.1 s \(status: open\)"):
        ada.wait_closed(0.1)
    ada.disconnect()
    assert ada.wait_closed(0) == "closed by you: 1000"
    with pytest.raises(TimeoutError, match=r"not the expected message, and the connection ended"):
        ada.wait_for(lambda log: False, timeout=2)


def test_messages_arrive_on_the_connections_thread(ada: ChatConnection) -> None:
    """A message lands, and subscribers hear of it, on the connection's thread while the caller only waits."""
    arrived = threading.Event()
    on_threads: list[str] = []

    def heard(what: str) -> None:
        if what == "messages":
            on_threads.append(threading.current_thread().name)
            arrived.set()

    ada.on_change(heard)
    ada.connect()
    assert arrived.wait(2) and ada.messages == ["* ada joined"]
    assert on_threads == ["chat-client-ada"]


def test_sending_needs_an_open_connection_and_text(ada: ChatConnection) -> None:
    """send() before connect() says to connect; send_nowait() of bytes is a TypeError; after close, no reconnect."""
    with pytest.raises(ChatClientError, match=r"ada is not connected \(not connected\): call connect\(\) first"):
        ada.send("hi")
    with pytest.raises(TypeError, match=r"send\(\) takes text \(str\), not bytes"):
        ada.send_nowait(b"hi")  # type: ignore[arg-type]
    ada.connect()
    ada.send_nowait("queued").result(2)
    ada.wait_for(lambda log: "ada: queued" in log)
    thread = ada.thread
    ada.close()
    assert thread is not None and not thread.is_alive()
    with pytest.raises(ChatClientError, match="create a new one"):
        ada.connect()
    ada.close()  # twice is fine


def test_binary_messages_are_kept_as_bytes_and_shown_as_their_size(server: ThreadServer) -> None:
    """A binary message stays bytes in `messages`; as_text() and transcript() show its size instead."""
    connection = ChatConnection(server.ws_url("/binary"), "ada")
    try:
        connection.connect()
        assert connection.wait_for(1) == [b"\x00\x01"]
        assert connection.transcript() == "(binary message, 2 bytes)" == as_text(b"\x00\x01")
    finally:
        connection.close()
    assert as_text("hi") == "hi"
    assert (plural(1, "byte"), plural(0, "message")) == ("1 byte", "0 messages")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": 8000}, "url must be a str"),
        ({"name": ""}, "name is empty"),
        ({"max_messages": 0}, "max_messages must be at least 1"),
        ({"open_timeout": -1}, "open_timeout must be above zero"),
        ({"reconnect": "yes"}, "reconnect must be True or False, not str"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"reconnect_delay": 0}, "reconnect_delay must be above zero"),
        ({"max_reconnect_delay": -1}, "max_reconnect_delay must be above zero"),
        ({"reconnect_delay": 5}, r"reconnect_delay \(5 s\) is above max_reconnect_delay \(4 s\).*raise max_reconnect"),
    ],
)
def test_a_connection_built_wrongly_says_what_to_pass(options: dict[str, object], message: str) -> None:
    """ChatConnection with a non-text URL, an empty name, no room for messages, a bad timeout or retry: UsageError."""
    with pytest.raises(UsageError, match=message):
        ChatConnection(**options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# reconnect=True


def test_backoff_starts_at_half_a_second_doubles_and_stops_at_the_cap() -> None:
    """backoff_delay: 0.5, 1, 2, 4, 4 s by default, and `first` doubling up to `cap` when given."""
    assert (RECONNECT_DELAY, MAX_RECONNECT_DELAY) == (0.5, 4.0)
    assert [backoff_delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [backoff_delay(n, 0.01, 0.04) for n in range(1, 5)] == [0.01, 0.02, 0.04, 0.04]
    with pytest.raises(UsageError, match="attempt must be at least 1"):
        backoff_delay(0)


def test_after_a_server_restart_on_the_same_port_it_reconnects_and_keeps_one_log(no_leaks: Snapshot) -> None:
    """uvicorn's stop() closes with 1012; the connection retries (refused while down), reopens once the server is
    served again on its port, says "open (reconnected, attempt n)", and old and new messages share one log."""
    server = serve(chat_app(), name="test-chat-connection-restart")
    restarted: ThreadServer | None = None
    ada = quick(server.ws_url("/chat/{name}"), reconnect_delay=0.1, max_reconnect_delay=0.2, max_attempts=30)
    seen = statuses(ada)
    try:
        assert ada.connect() == "open"
        thread = ada.thread
        ada.send("before")
        ada.wait_for(2)
        server.stop()
        wait_until(lambda: REFUSED in ada.status)  # the server stays down until an attempt has been refused
        assert seen[1:5] == [
            "open",
            "reconnecting in 0.1 s (attempt 1): closed by server: 1012",
            "reconnecting… (attempt 1)",
            f"reconnecting in 0.2 s (attempt 2): {REFUSED}",
        ]
        assert ada.state == "reconnecting" and ada.close_code == 1012
        restarted = serve(chat_app(), name="test-chat-connection-restart", port=server.port)
        ada.wait_for(3)  # the new server's "* ada joined"
        assert re.fullmatch(r"open \(reconnected, attempt \d+\)", ada.status), ada.status
        ada.send("after")
        assert ada.wait_for(4) == ["* ada joined", "ada: before", "* ada joined", "ada: after"]
        assert (ada.received, ada.state, ada.thread) == (4, "open", thread)
    finally:
        ada.close()
        server.stop()
        if restarted is not None:
            restarted.stop()


def test_each_restart_close_is_retried_with_doubling_delays_until_one_stays_open(server: ThreadServer) -> None:
    """1012 with a reason, 1013, 1011 and 1001 are each retried after 0.01, 0.02, 0.04, 0.04 s; the fifth stays."""
    steps = "1012:service%20restart,1013,1011,1001,open"
    ada = quick(server.ws_url(f"/scripted?steps={steps}"), max_attempts=5)
    seen = statuses(ada)
    try:
        ada.connect()
        assert ada.wait_for(5) == [f"connection {n}" for n in range(1, 6)]
        ada.send("still here")
        ada.wait_for(6)
        assert seen == [
            "connecting…",
            "open",
            "reconnecting in 0.01 s (attempt 1): closed by server: 1012 'service restart'",
            "reconnecting… (attempt 1)",
            "open (reconnected, attempt 1)",
            "reconnecting in 0.02 s (attempt 2): closed by server: 1013",
            "reconnecting… (attempt 2)",
            "open (reconnected, attempt 2)",
            "reconnecting in 0.04 s (attempt 3): closed by server: 1011",
            "reconnecting… (attempt 3)",
            "open (reconnected, attempt 3)",
            "reconnecting in 0.04 s (attempt 4): closed by server: 1001",
            "reconnecting… (attempt 4)",
            "open (reconnected, attempt 4)",
        ]
        assert (ada.messages[-1], ada.received) == ("echo: still here", 6)
    finally:
        ada.close()


def test_it_gives_up_after_max_attempts_when_nothing_listens_any_more(no_leaks: Snapshot) -> None:
    """Once the server is gone for good, three refused attempts (0.01, 0.02, 0.04 s apart) end in "gave up"."""
    server = serve(chat_app(), name="test-chat-connection-gone")
    ada = quick(server.ws_url("/chat/{name}"))
    seen = statuses(ada)
    try:
        ada.connect()
        server.stop()
        assert ada.wait_closed(5) == f"gave up reconnecting after 3 attempts: {REFUSED}"
        assert ada.state == "failed"
        assert [line.split(" (")[0] for line in seen if line.startswith("reconnecting in")] == [
            "reconnecting in 0.01 s",
            "reconnecting in 0.02 s",
            "reconnecting in 0.04 s",
        ]
    finally:
        ada.close()
        server.stop()


def test_a_server_that_drops_every_connection_at_once_is_not_retried_for_ever(server: ThreadServer) -> None:
    """1006 is retried, but a reconnection that ends within STABLE_AFTER counts on: gave up after max_attempts."""
    ada = quick(server.ws_url("/crash"), max_attempts=2)
    seen = statuses(ada)
    try:
        ada.connect()
        dropped = "dropped: the connection ended without a close frame (1006)"
        assert ada.wait_closed(5) == f"gave up reconnecting after 2 attempts: {dropped}"
        assert (ada.state, ada.close_code) == ("closed", 1006)
        assert [line for line in seen if line.startswith(("open", "reconnecting in"))] == [
            "open",
            f"reconnecting in 0.01 s (attempt 1): {dropped}",
            "open (reconnected, attempt 1)",
            f"reconnecting in 0.02 s (attempt 2): {dropped}",
            "open (reconnected, attempt 2)",
        ]
    finally:
        ada.close()


def test_no_retry_after_a_normal_close_an_application_close_a_refusal_or_your_own_close(server: ThreadServer) -> None:
    """1000 and 4403 from the server, an HTTP 403 on reattempt, a refused first attempt, and disconnect(1001) end it."""
    normal = quick(server.ws_url("/scripted?steps=1000,open"))
    application = quick(server.ws_url("/goodbye"))
    then_refused = quick(server.ws_url("/scripted?steps=1012,403"))
    first_refused = quick(server.ws_url("/refuse"))
    nowhere = quick(f"ws://127.0.0.1:{free_port()}/chat/{{name}}")
    mine = quick(server.ws_url("/chat/{name}"))
    connections = (normal, application, then_refused, first_refused, nowhere, mine)
    try:
        normal.connect()
        assert normal.wait_closed() == "closed by server: 1000"
        application.connect()
        assert application.wait_closed() == "closed by server: 4403 '<b>members</b> only'"
        seen = statuses(then_refused)
        then_refused.connect()
        assert then_refused.wait_closed() == "rejected: HTTP 403"
        assert seen[-3:] == [
            "reconnecting in 0.01 s (attempt 1): closed by server: 1012",
            "reconnecting… (attempt 1)",
            "rejected: HTTP 403",
        ]
        assert first_refused.connect() == "rejected: HTTP 403"
        assert nowhere.connect() == REFUSED
        mine.connect()
        assert mine.disconnect(1001) == "closed by you: 1001"
        for connection in connections:  # nothing left retrying: every thread has ended
            assert connection.thread is not None
            connection.thread.join(1)
            assert not connection.thread.is_alive() and connection.state in ("closed", "rejected", "failed")
    finally:
        for connection in connections:
            connection.close()


def test_disconnect_or_close_during_a_wait_or_a_reattempt_stops_reconnecting_at_once(no_leaks: Snapshot) -> None:
    """With 30 s to wait, disconnect() and close() return at once and say so; sending meanwhile says to wait; a
    disconnect during a reattempt's handshake cancels it."""
    server = serve(chat_app(), name="test-chat-connection-cancel")
    slow = {"reconnect_delay": 30, "max_reconnect_delay": 30}
    waiting = [quick(server.ws_url("/chat/{name}"), name, **slow) for name in ("ada", "bob")]
    handshaking = quick(server.ws_url("/scripted?steps=1012,silent"), "cy", open_timeout=10)
    try:
        for connection in waiting:
            connection.connect()
        handshaking.connect()
        wait_until(lambda: handshaking.status == "reconnecting… (attempt 1)")
        assert handshaking.disconnect() == "closed: the connection attempt was cancelled"
        server.stop()
        ada, bob = waiting
        wait_until(lambda: ada.state == bob.state == "reconnecting")
        assert ada.status == "reconnecting in 30 s (attempt 1): closed by server: 1012"
        with pytest.raises(
            ChatClientError, match=r"ada is not connected \(reconnecting in 30 s .*wait until it is open"
        ):
            ada.send("hi")
        started = time.monotonic()
        assert ada.disconnect() == "closed: reconnecting was cancelled (closed by server: 1012)"
        bob.close()
        assert time.monotonic() - started < 1.0
        assert bob.status == "closed: reconnecting was cancelled (closed by server: 1012)"
        assert all(c.thread is not None and not c.thread.is_alive() for c in (ada, bob, handshaking))
    finally:
        for connection in (*waiting, handshaking):
            connection.close()
        server.stop()


def test_without_reconnect_a_restart_close_ends_the_connection_as_before(server: ThreadServer) -> None:
    """reconnect defaults to False: a 1012 close is the end, with the same three status lines as ever."""
    ada = ChatConnection(server.ws_url("/scripted?steps=1012:service%20restart,open"), "ada")
    seen = statuses(ada)
    try:
        assert ada.reconnect is False
        ada.connect()
        assert ada.wait_closed() == "closed by server: 1012 'service restart'"
        assert ada.thread is not None
        ada.thread.join(1)
        assert not ada.thread.is_alive()
        assert seen == ["connecting…", "open", "closed by server: 1012 'service restart'"]
        assert ada.messages == ["connection 1"]
    finally:
        ada.close()
