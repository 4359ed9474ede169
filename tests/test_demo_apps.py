"""Tests for helpers.demo_apps: the echo app and the FanOut chat room, served by real servers to real clients."""

from __future__ import annotations

import asyncio
import http.client
import time

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import attempt, attempt_sync, connect
from helpers.demo_apps import CHAT_MAX_CHARS, echo, fanout_chat
from helpers.fanout import FanOut
from helpers.servers import ThreadServer, serve, serve_process
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(60)

RECV_TIMEOUT = 2.0


def members(server: ThreadServer, hub: FanOut) -> int:
    """How many connections the hub holds, read on the server's loop."""

    async def count() -> int:
        return len(hub)

    return server.run(count())


def wait_for_members(server: ThreadServer, hub: FanOut, wanted: int, timeout: float = 3.0) -> None:
    """Wait (bounded) until the room holds `wanted` connections: a client counts once its handler registered it."""
    deadline = time.monotonic() + timeout
    while members(server, hub) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert members(server, hub) == wanted


async def recv(ws: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)


# ------------------------------------------------------------------------------------------------ echo


def test_echo_sends_text_and_bytes_straight_back(no_leaks: Snapshot) -> None:
    """The echo app answers each text message with the same text and each binary message with the same bytes."""
    with serve(echo, name="demo-echo") as server:
        outcome = attempt_sync(server.ws_url("/"), send=["hello", b"\x00\xffbytes", "", b""], receive=4)
    assert outcome.opened
    assert outcome.messages == ["hello", b"\x00\xffbytes", "", b""]
    assert (outcome.closed_by, outcome.close_code) == ("client", 1000)


def test_echo_accepts_every_path(no_leaks: Snapshot) -> None:
    """The echo app accepts a WebSocket on any path, not only on /."""
    with serve(echo, name="demo-echo-paths") as server:
        for path in ("/", "/echo", "/any/thing"):
            assert attempt_sync(server.ws_url(path), send=[path], receive=1).messages == [path]


def test_echo_answers_plain_http_with_404(no_leaks: Snapshot) -> None:
    """A plain HTTP request to the echo app gets 404 'websocket only'."""
    with serve(echo, name="demo-echo-http") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            status, body = response.status, response.read()
            content_type = response.getheader("content-type")
        finally:
            connection.close()
    assert (status, body, content_type) == (404, b"websocket only", "text/plain")


def test_echo_completes_lifespan_startup_and_shutdown(no_leaks: Snapshot) -> None:
    """With lifespan='on' the echo app completes startup and shutdown: the server starts, serves, stops cleanly."""
    server = serve(echo, name="demo-echo-lifespan", lifespan="on")
    try:
        assert attempt_sync(server.ws_url("/"), send=["up"], receive=1).messages == ["up"]
    finally:
        server.stop()
    assert not server.running and not server.thread.is_alive()
    assert server.errors == []


def test_echo_is_importable_by_string_for_a_process_server(no_leaks: Snapshot) -> None:
    """'helpers.demo_apps:echo' is an import string serve_process() can serve in a child process."""
    with serve_process("helpers.demo_apps:echo", name="demo-echo-process") as server:
        assert attempt_sync(server.ws_url("/"), send=["from a child"], receive=1).messages == ["from a child"]
    assert server.process.returncode == 0


# ------------------------------------------------------------------------------------------------ chat


def test_chat_broadcasts_every_text_to_everyone_including_the_sender(no_leaks: Snapshot) -> None:
    """A text sent to /chat reaches every connected client, the sender too."""
    app = fanout_chat()
    hub = app.state.hub
    with serve(app, name="demo-chat") as server:

        async def scenario() -> list[str | bytes]:
            async with (
                connect(server.ws_url("/chat")) as alice,
                connect(server.ws_url("/chat")) as bob,
                connect(server.ws_url("/chat")) as carol,
            ):
                await asyncio.to_thread(wait_for_members, server, hub, 3)
                await alice.send("hi all")
                return [await recv(alice), await recv(bob), await recv(carol)]

        assert asyncio.run(scenario()) == ["hi all", "hi all", "hi all"]
        wait_for_members(server, hub, 0)
        assert server.errors == []


def test_chat_closes_a_binary_frame_with_1003_and_the_others_keep_chatting(no_leaks: Snapshot) -> None:
    """A binary frame closes its sender with 1003 and a reason, while the other clients stay connected and chatting."""
    app = fanout_chat()
    hub = app.state.hub
    with serve(app, name="demo-chat-binary") as server:

        async def scenario() -> None:
            async with connect(server.ws_url("/chat")) as alice, connect(server.ws_url("/chat")) as bob:
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                outcome = await attempt(server.ws_url("/chat"), send=[b"\x01\x02"], timeout=RECV_TIMEOUT)
                assert (outcome.closed_by, outcome.close_code) == ("server", 1003)
                assert outcome.close_reason == "this chat accepts text messages only"
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                await bob.send("still here")
                assert [await recv(alice), await recv(bob)] == ["still here", "still here"]

        asyncio.run(scenario())
        assert server.errors == []


def test_chat_closes_a_too_long_text_with_1009_and_the_others_keep_chatting(no_leaks: Snapshot) -> None:
    """A text longer than max_chars closes its sender with 1009 naming the limit; exactly max_chars is broadcast."""
    app = fanout_chat(max_chars=10)
    hub = app.state.hub
    with serve(app, name="demo-chat-long") as server:

        async def scenario() -> None:
            async with connect(server.ws_url("/chat")) as alice, connect(server.ws_url("/chat")) as bob:
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                async with connect(server.ws_url("/chat")) as mallory:
                    await asyncio.to_thread(wait_for_members, server, hub, 3)
                    await mallory.send("x" * 10)
                    assert [await recv(alice), await recv(bob), await recv(mallory)] == ["x" * 10] * 3
                    await mallory.send("x" * 11)
                    with pytest.raises(ConnectionClosed) as closed:
                        await recv(mallory)
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                    1009,
                    "message too long: the limit is 10 characters",
                )
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                await alice.send("carry on")
                assert [await recv(alice), await recv(bob)] == ["carry on", "carry on"]

        asyncio.run(scenario())
        assert server.errors == []


def test_chat_default_limit_counts_characters_not_bytes(no_leaks: Snapshot) -> None:
    """By default 4096 characters (CHAT_MAX_CHARS, even multi-byte UTF-8) are broadcast; one more closes with 1009."""
    assert CHAT_MAX_CHARS == 4096
    with serve(fanout_chat(), name="demo-chat-default-limit") as server:
        url = server.ws_url("/chat")
        fits = attempt_sync(url, send=["é" * 4096], receive=1, timeout=RECV_TIMEOUT)
        too_long = attempt_sync(url, send=["é" * 4097], timeout=RECV_TIMEOUT)
    assert fits.messages == ["é" * 4096]
    assert (fits.closed_by, fits.close_code) == ("client", 1000)
    assert (too_long.closed_by, too_long.close_code) == ("server", 1009)
    assert too_long.close_reason == "message too long: the limit is 4096 characters"


def test_chat_sender_leaving_does_not_disconnect_the_others(no_leaks: Snapshot) -> None:
    """A client that sends and then leaves (cleanly or by dropping) is removed; the rest keep hearing each other."""
    app = fanout_chat()
    hub = app.state.hub
    with serve(app, name="demo-chat-leave") as server:

        async def scenario() -> None:
            async with connect(server.ws_url("/chat")) as alice, connect(server.ws_url("/chat")) as bob:
                async with connect(server.ws_url("/chat")) as leaver:
                    await asyncio.to_thread(wait_for_members, server, hub, 3)
                    await leaver.send("bye")
                    assert [await recv(alice), await recv(bob)] == ["bye", "bye"]
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                dropper = await connect(server.ws_url("/chat"))
                await asyncio.to_thread(wait_for_members, server, hub, 3)
                dropper.transport.abort()
                await dropper.wait_closed()
                await asyncio.to_thread(wait_for_members, server, hub, 2)
                await bob.send("just us")
                assert [await recv(alice), await recv(bob)] == ["just us", "just us"]

        asyncio.run(scenario())
        assert server.errors == []


def test_chat_uses_the_hub_it_is_given(no_leaks: Snapshot) -> None:
    """fanout_chat(hub) keeps the given FanOut as app.state.hub, and what that hub publishes reaches the room."""
    hub = FanOut(max_queue=5)
    app = fanout_chat(hub)
    assert app.state.hub is hub
    with serve(app, name="demo-chat-hub") as server:

        async def announce() -> None:
            hub.publish("from the hub")

        async def scenario() -> str | bytes:
            async with connect(server.ws_url("/chat")) as alice:
                await asyncio.to_thread(wait_for_members, server, hub, 1)
                await asyncio.to_thread(server.run, announce())
                return await recv(alice)

        assert asyncio.run(scenario()) == "from the hub"


def test_each_chat_app_gets_its_own_hub_by_default() -> None:
    """Without a hub, every fanout_chat() app makes its own FanOut holding up to 100 queued messages per client."""
    first, second = fanout_chat(), fanout_chat()
    assert isinstance(first.state.hub, FanOut)
    assert first.state.hub is not second.state.hub
    assert first.state.hub.max_queue == 100


def test_chat_lives_at_slash_chat_only(no_leaks: Snapshot) -> None:
    """The chat room answers at /chat; a WebSocket to any other path is rejected in the handshake."""
    with serve(fanout_chat(), name="demo-chat-path") as server:
        elsewhere = attempt_sync(server.ws_url("/"))
        assert elsewhere.rejected
        assert attempt_sync(server.ws_url("/chat"), send=["ok"], receive=1).messages == ["ok"]
