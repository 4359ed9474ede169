"""Tests for helpers.chat_connection: a chat connection without widgets, against real servers."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from helpers.chat_connection import ChatClientError, ChatConnection, as_text, plural
from helpers.fanout import FanOut
from helpers.servers import ThreadServer, free_port, serve
from helpers.usage import UsageError
from tests.support import ROOT, Snapshot

pytestmark = pytest.mark.timeout(30)


def chat_app() -> Starlette:
    """A FanOut chat at /chat/{name}, plus endpoints that refuse, close, count, send bytes, crash and never answer."""
    hub = FanOut()

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

    return Starlette(
        routes=[
            WebSocketRoute("/chat/{name}", chat),
            WebSocketRoute("/refuse", refuse),
            WebSocketRoute("/goodbye", goodbye),
            WebSocketRoute("/count", count),
            WebSocketRoute("/silent", silent),
            WebSocketRoute("/binary", binary),
            WebSocketRoute("/crash", crash),
        ]
    )


@pytest.fixture
def server(no_leaks: Snapshot) -> Iterator[ThreadServer]:
    with serve(chat_app(), name="test-chat-connection") as running:
        yield running


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
    ],
)
def test_a_connection_built_wrongly_says_what_to_pass(options: dict[str, object], message: str) -> None:
    """ChatConnection with a non-text URL, an empty name, no room for messages or a negative timeout: UsageError."""
    with pytest.raises(UsageError, match=message):
        ChatConnection(**options)  # type: ignore[arg-type]
