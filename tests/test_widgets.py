"""Tests for helpers.widgets: chat widgets talk through a real server, say what happened, and show text as text."""

from __future__ import annotations

import html
import time
import typing
from collections.abc import Iterator

import pytest

from helpers.chat_connection import State
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError
from helpers.widgets import _COLOURS, ChatClient, ChatClientError, ChatPanel
from tests.support import Snapshot
from tests.test_chat_connection import chat_app, free_port, wait_until  # the same test server as the connection's

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server(no_leaks: Snapshot) -> Iterator[ThreadServer]:
    with serve(chat_app(), name="test-widgets") as running:
        yield running


@pytest.fixture
def panel(server: ThreadServer) -> Iterator[ChatPanel]:
    chat = ChatPanel(server.ws_url("/chat/{name}"), ["ada", "bob", "cy"])
    yield chat
    chat.close()


def test_a_message_fans_out_to_every_client(panel: ChatPanel) -> None:
    """Three clients connect, one speaks, and all three receive the line, each after the joins it saw."""
    assert panel.connect() == {"ada": "open", "bob": "open", "cy": "open"}
    panel.say("bob", "hello")
    assert panel["ada"].messages == ["* ada joined", "* bob joined", "* cy joined", "bob: hello"]
    assert panel["bob"].messages == ["* bob joined", "* cy joined", "bob: hello"]
    assert panel["cy"].messages == ["* cy joined", "bob: hello"]


def test_a_client_that_leaves_is_announced_and_says_who_closed(panel: ChatPanel) -> None:
    """Disconnect closes with 1000 from the client's side, and the others hear that it left."""
    panel.connect()
    assert panel["cy"].disconnect() == "closed by you: 1000"
    assert panel["cy"].state == "closed"
    assert panel["cy"].close_code == 1000
    panel["ada"].wait_for(lambda messages: messages[-1] == "* cy left")


def test_enter_in_the_input_box_and_the_send_button_both_send(panel: ChatPanel) -> None:
    """Setting the input's value (what Enter does with continuous_update=False) sends and clears it; so does Send."""
    ada = panel["ada"]
    ada.connect()
    assert ada._view.input.continuous_update is False
    ada._view.input.value = "typed"
    ada.wait_for(lambda messages: "ada: typed" in messages)
    assert ada._view.input.value == ""
    ada._view.input.value = "clicked"
    ada._view.input.value = ada._view.input.value  # no change: nothing sent until the button is pressed
    ada._view.send_button.click()
    ada.wait_for(lambda messages: "ada: clicked" in messages)
    assert ada.messages.count("ada: typed") == 1


def test_sending_while_not_connected_is_a_clear_error_and_a_note_in_the_widget(server: ThreadServer) -> None:
    """send() before connect() raises ChatClientError saying to connect; Enter in the box shows a note instead."""
    client = ChatClient(server.ws_url("/chat/{name}"), "ada")
    try:
        with pytest.raises(ChatClientError, match=r"ada is not connected \(not connected\): call connect\(\) first"):
            client.send("hi")
        client._view.input.value = "hi"
        assert "not sent" in client._view.header.value
    finally:
        client.close()


def test_rejected_handshake_shows_the_http_status(server: ThreadServer) -> None:
    """A server that closes before accepting shows as 'rejected: HTTP 403' in the status line."""
    client = ChatClient(server.ws_url("/refuse"), "ada")
    try:
        assert client.connect() == "rejected: HTTP 403"
        assert client.state == "rejected"
        assert "rejected: HTTP 403" in client._view.header.value
    finally:
        client.close()


def test_server_close_code_and_reason_are_shown_escaped(server: ThreadServer) -> None:
    """A close after accept shows code and reason; markup in the reason is escaped in the widget."""
    client = ChatClient(server.ws_url("/goodbye"), "ada")
    try:
        client.connect()
        with pytest.raises(TimeoutError, match="the connection ended"):
            client.wait_for(1, timeout=2)
        assert client.status == "closed by server: 4403 '<b>members</b> only'"
        assert (client.close_code, client.close_reason) == (4403, "<b>members</b> only")
        assert "&lt;b&gt;members&lt;/b&gt;" in client._view.header.value
        assert "<b>members" not in client._view.header.value
    finally:
        client.close()


def test_a_stopped_server_and_a_missing_server_are_explained(no_leaks: Snapshot) -> None:
    """Clients see 1012 when their server stops, and 'connection refused' when nothing listens."""
    server = serve(chat_app(), name="test-widgets-stop")
    client = ChatClient(server.ws_url("/chat/{name}"), "ada")
    try:
        client.connect()
        server.stop()
        assert client.wait_closed() == "closed by server: 1012"
        client.url = f"ws://127.0.0.1:{free_port()}/chat/{{name}}"
        assert client.connect().startswith("failed: connection refused")
        client.url = "http://127.0.0.1/chat"
        assert client.connect() == "failed: the URL must start with ws:// or wss://, not 'http://127.0.0.1/chat'"
    finally:
        client.close()
        server.stop()


def test_a_connection_dropped_without_a_close_frame_says_dropped_1006(server: ThreadServer) -> None:
    """A handler that fails after accepting (send_text with a dict) drops the connection: status 'dropped', 1006."""
    client = ChatClient(server.ws_url("/crash"), "ada")
    try:
        assert client.connect() in ("open", "dropped: the connection ended without a close frame (1006)")
        assert client.wait_closed() == "dropped: the connection ended without a close frame (1006)"
        assert (client.state, client.close_code, client.close_reason) == ("closed", 1006, "")
        assert "dropped: the connection ended without a close frame (1006)" in client._view.header.value
        assert any("AttributeError" in error for error in server.errors), server.errors
    finally:
        client.close()


def test_the_connect_and_disconnect_buttons_work_without_blocking(server: ThreadServer) -> None:
    """Clicking Connect returns at once and the client opens; clicking Disconnect returns at once and it closes."""
    client = ChatClient(server.ws_url("/chat/{name}"), "ada")
    try:
        assert not client._view.connect_button.disabled and client._view.disconnect_button.disabled
        started = time.monotonic()
        client._view.connect_button.click()
        assert time.monotonic() - started < 0.5
        assert client.wait_for(lambda messages: "* ada joined" in messages) == ["* ada joined"]
        assert (
            client.status == "open"
            and client._view.connect_button.disabled
            and not client._view.disconnect_button.disabled
        )
        started = time.monotonic()
        client._view.disconnect_button.click()
        assert time.monotonic() - started < 0.5
        assert client.wait_closed() == "closed by you: 1000"
        assert not client._view.connect_button.disabled and client._view.disconnect_button.disabled
        assert client._view.connect_button.description == "Reconnect"
    finally:
        client.close()


def test_the_buttons_never_wait_for_a_handshake_that_does_not_complete(server: ThreadServer) -> None:
    """Against a server that never answers, Connect returns while the client is still connecting, and Disconnect
    returns at once and cancels the attempt."""
    client = ChatClient(server.ws_url("/silent"), "ada", open_timeout=5)
    try:
        started = time.monotonic()
        client._view.connect_button.click()
        assert time.monotonic() - started < 0.5
        assert client.state == "connecting" and client.status == "connecting…"
        started = time.monotonic()
        client._view.disconnect_button.click()
        assert time.monotonic() - started < 0.5
        assert client.wait_closed() == "closed: the connection attempt was cancelled"
    finally:
        client.close()


def test_disconnect_stops_a_handshake_that_never_completes(server: ThreadServer) -> None:
    """Disconnect during the opening handshake cancels it at once and ends the client's thread."""
    client = ChatClient(server.ws_url("/silent"), "ada", open_timeout=5)
    try:
        assert client.connect(wait=False) == "connecting…"
        assert client.disconnect() == "closed: the connection attempt was cancelled"
        assert client.connection.thread is not None and not client.connection.thread.is_alive()
    finally:
        client.close()


def test_the_log_is_bounded_but_the_count_is_not(server: ThreadServer) -> None:
    """With max_messages=5, 12 messages leave the last 5 in the log and in the widget; received counts 12."""
    client = ChatClient(server.ws_url("/count?n=12"), "ada", max_messages=5)
    try:
        client.connect()
        assert client.wait_for(12) == ["m7", "m8", "m9", "m10", "m11"]
        assert client.received == 12
        assert "m6<" not in client.log_html and "m11<" in client.log_html
        assert repr(client) == "ChatClient('ada', open, 5 messages)"
    finally:
        client.close()


def test_html_and_script_in_messages_are_shown_literally(panel: ChatPanel) -> None:
    """A message with <script> and <b> is stored as sent and escaped in the log; names are escaped too."""
    panel.connect()
    evil = "<script>alert('hi')</script><b>bold?</b> & more"
    panel.say("ada", evil)
    bob = panel["bob"]
    assert bob.messages[-1] == f"ada: {evil}"
    assert html.escape(f"ada: {evil}") in bob.log_html
    assert "<script" not in bob.log_html and "<b>bold" not in bob.log_html
    bob.name = "<i>bob</i>"
    assert bob._view.header.value.startswith("<b>&lt;i&gt;bob&lt;/i&gt;</b> ")


def test_reconnect_keeps_the_log_and_opens_a_new_connection(panel: ChatPanel) -> None:
    """After disconnect, connect() opens again (the button now says Reconnect) and the old log stays."""
    ada = panel["ada"]
    ada.connect()
    ada.wait_for(1)
    ada.disconnect()
    assert ada._view.connect_button.description == "Reconnect"
    assert ada.connect() == "open"
    assert ada.wait_for(2) == ["* ada joined", "* ada joined"]


def test_reprs_are_short_and_deterministic(panel: ChatPanel) -> None:
    """The text nbval compares: name, state and message count, nothing that changes between runs."""
    assert repr(panel["ada"]) == "ChatClient('ada', idle, 0 messages)"
    assert repr(panel) == "ChatPanel(ada: idle, 0 messages; bob: idle, 0 messages; cy: idle, 0 messages)"
    panel["cy"].connect()
    panel["cy"].wait_for(1)
    assert repr(panel["cy"]) == "ChatClient('cy', open, 1 message)"
    assert panel["ada"]._repr_mimebundle_()["text/plain"] == "ChatClient('ada', idle, 0 messages)"


def test_wait_closed_times_out_while_the_connection_stays_open(panel: ChatPanel) -> None:
    """wait_closed() returns the status once a connection ends, and raises TimeoutError while it is open."""
    ada = panel["ada"]
    ada.connect()
    with pytest.raises(TimeoutError, match=r"ada is still open after 0\.1 s"):
        ada.wait_closed(0.1)
    ada.disconnect()
    assert ada.wait_closed(0) == "closed by you: 1000"


def test_wait_for_times_out_with_what_it_got(panel: ChatPanel) -> None:
    """wait_for gives up after its timeout and says how many messages arrived and the status."""
    ada = panel["ada"]
    ada.connect()
    with pytest.raises(
        TimeoutError, match=r"ada has received 1 message, not 3 messages, and 0.2 s passed \(status: open\)"
    ):
        ada.wait_for(3, timeout=0.2)


def test_clients_keep_receiving_while_the_calling_thread_only_sleeps(panel: ChatPanel) -> None:
    """Messages arrive on the clients' own threads: a caller that just sleeps still finds them delivered."""
    panel.connect()
    cy = panel["cy"]
    cy.wait_for(1)
    panel["ada"].send("while you sleep")
    deadline = time.monotonic() + 2
    while cy.received < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # never calls into the client
    assert cy.messages[-1] == "ada: while you sleep"


def test_every_state_has_a_colour_and_reconnecting_is_amber_like_connecting() -> None:
    """The status colours cover every State; "reconnecting" is on its way like "connecting", not an end in red."""
    assert set(_COLOURS) == set(typing.get_args(State))
    assert _COLOURS["reconnecting"] == _COLOURS["connecting"] != _COLOURS["failed"]


def test_a_reconnecting_client_shows_the_wait_and_its_disconnect_button_stops_it(no_leaks: Snapshot) -> None:
    """After its server stops, the header shows the wait in amber, Connect and Send are off, and Disconnect returns at
    once and ends the wait."""
    server = serve(chat_app(), name="test-widgets-reconnect")
    url = server.ws_url("/chat/{name}")
    client = ChatClient(url, "ada", reconnect=True, reconnect_delay=30, max_reconnect_delay=30)
    try:
        client.connect()
        server.stop()
        wait_until(lambda: client.state == "reconnecting")
        view = client._view
        waiting = "reconnecting in 30 s (attempt 1): closed by server: 1012"
        assert f'<span style="color:#b36b00">● {waiting}</span>' in view.header.value
        assert view.connect_button.disabled and view.send_button.disabled and not view.disconnect_button.disabled
        assert repr(client) == "ChatClient('ada', reconnecting, 1 message)"
        started = time.monotonic()
        view.disconnect_button.click()
        assert time.monotonic() - started < 0.5
        assert client.wait_closed() == "closed: reconnecting was cancelled (closed by server: 1012)"
        assert not view.connect_button.disabled and view.disconnect_button.disabled
    finally:
        client.close()
        server.stop()


def test_a_chat_client_and_a_panel_pass_reconnect_on_and_show_the_reconnection(server: ThreadServer) -> None:
    """reconnect= and the delays reach the ChatConnection, from a ChatClient or a ChatPanel; once back the header
    says "open (reconnected, attempt 1)" in green, and the log holds both connections' messages."""
    url = server.ws_url("/scripted?steps=1012,open")
    client = ChatClient(url, "ada", reconnect=True, max_attempts=2, reconnect_delay=0.01, max_reconnect_delay=0.1)
    panel = ChatPanel(url, ["bob"], reconnect=True)
    try:
        connection = client.connection
        assert (connection.reconnect, connection.max_attempts, connection.reconnect_delay) == (True, 2, 0.01)
        assert connection.max_reconnect_delay == 0.1 and panel["bob"].connection.reconnect is True
        client.connect()
        assert client.wait_for(2) == ["connection 1", "connection 2"]
        assert client.status == "open (reconnected, attempt 1)"
        assert '<span style="color:#1a7f37">● open (reconnected, attempt 1)</span>' in client._view.header.value
        assert "connection 1<" in client.log_html and "connection 2<" in client.log_html
    finally:
        client.close()
        panel.close()


def test_clients_share_layout_and_style_models(panel: ChatPanel) -> None:
    """Layouts and styles are shared between clients, so each client adds only its own dozen widget models."""
    ada, bob = panel["ada"], panel["bob"]
    assert ada._view.url_box.layout is bob._view.url_box.layout
    assert ada._view.connect_button.style is bob._view.send_button.style
    assert len(ada._view.parts) == 10


def test_close_ends_threads_and_widgets_and_cannot_reconnect(server: ThreadServer) -> None:
    """close() disconnects, ends the thread, closes every child widget, and a later connect() says why it cannot."""
    client = ChatClient(server.ws_url("/chat/{name}"), "ada")
    client.connect()
    thread = client.connection.thread
    client.close()
    assert thread is not None and not thread.is_alive()
    assert client.comm is None and all(part.comm is None for part in client._view.parts)
    with pytest.raises(ChatClientError, match="create a new one"):
        client.connect()
    client.close()  # twice is fine


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": 8000}, "url must be a str"),
        ({"name": ""}, "name is empty"),
        ({"max_messages": 0}, "max_messages must be at least 1"),
        ({"open_timeout": -1}, "open_timeout must be above zero"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"reconnect_delay": 5}, "reconnect_delay .* is above max_reconnect_delay"),
    ],
)
def test_a_chat_client_built_wrongly_says_what_to_pass(options: dict[str, object], message: str) -> None:
    """ChatClient with a non-text URL, an empty name, no room for messages, a bad timeout or retry: UsageError."""
    with pytest.raises(UsageError, match=message):
        ChatClient(**options)  # type: ignore[arg-type]


def test_a_chat_panel_needs_a_list_of_different_names() -> None:
    """ChatPanel refuses one name given as a str, and the same name twice."""
    with pytest.raises(UsageError, match=r"write names=\['ada'\]"):
        ChatPanel("ws://127.0.0.1:1/chat/{name}", "ada")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="must be different"):
        ChatPanel("ws://127.0.0.1:1/chat/{name}", ["ada", "ada"])
