"""Tests for helpers.faults.child_client: connecting, pausing, resuming, killing, stopping, keepalive, bad arguments."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from helpers.faults.child_client import ChildClientError, start_child_client
from helpers.faults.relay import start_relay
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError, UsageTypeError
from tests.support import ROOT, Seen, Snapshot, child_pids

pytestmark = pytest.mark.timeout(30)


def app(seen: Seen, late: float | None = None) -> Starlette:
    """Echo each text as "echo TEXT"; with `late`, also send "late" that many seconds after the first message."""

    async def endpoint(websocket: Any) -> None:
        await websocket.accept()
        seen.add("accept", None)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                seen.add("disconnect", message.get("code"))
                return
            seen.add("text", message["text"])
            await websocket.send_text("echo " + message["text"])
            if late is not None:
                await asyncio.sleep(late)
                await websocket.send_text("late")
                seen.add("sent", "late")

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)])


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def gone(pid: int) -> bool:
    """True when `pid` is no longer a live process (gone, or a zombie awaiting its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


@pytest.fixture
def served() -> Iterator[tuple[ThreadServer, Seen]]:
    """An echo server whose keepalive pings every 0.1 s and drops a client after 0.2 s without a pong."""
    seen = Seen()
    with serve(app(seen), name="faults-child-echo", ws_ping_interval=0.1, ws_ping_timeout=0.2) as server:
        yield server, seen


def test_the_child_connects_sends_its_hello_and_prints_what_it_receives(
    served: tuple[ThreadServer, Seen], no_leaks: Snapshot
) -> None:
    """start_child_client() returns after the handshake and hello; the child prints the reply; stop() closes 1000."""
    server, seen = served
    client = start_child_client(server.ws_url("/ws"), hello="hi")
    try:
        # The app records its accept after accept() returns on the server's loop, which can be after the child
        # has its 101 and has sent the hello: wait for the record rather than expect it at once (CI saw [] here).
        assert wait_until(lambda: seen.of("accept") == [None]) and wait_until(lambda: seen.of("text") == ["hi"])
        assert client.pid in child_pids() and client.running and not client.paused
        assert wait_until(lambda: client.received == ["echo hi"])
        assert repr(client) == f"<ChildClient running to {server.ws_url('/ws')}>"
    finally:
        client.stop()
    assert client.exit_code == 0 and gone(client.pid)
    assert wait_until(lambda: seen.of("disconnect") == [1000])
    assert client.output.splitlines()[0] == "READY" and "CLOSED sent 1000 (OK)" in client.output


def test_a_paused_child_answers_no_ping_so_the_server_drops_it(served: tuple[ThreadServer, Seen]) -> None:
    """Running, the child answers pings for as long as it likes; paused (SIGSTOP), the server drops it within 1 s."""
    server, seen = served
    with start_child_client(server.ws_url("/ws")) as client:
        time.sleep(0.5)  # five pings, each answered
        assert seen.of("disconnect") == []
        client.pause()
        paused_at = time.monotonic()
        assert client.paused and client.running
        assert wait_until(lambda: bool(seen.of("disconnect")), timeout=2.0)
        noticed = time.monotonic() - paused_at
        assert noticed < 1.0 and seen.of("disconnect") == [1005]  # uvicorn's code for a lost connection
        client.resume()
        # Resumed, the child reads the close frame that waited in its socket, and exits.
        assert wait_until(lambda: not client.running)
        assert "CLOSED received 1011 (internal error) keepalive ping timeout" in client.output


def test_a_resumed_child_reads_what_the_server_sent_while_it_was_paused(no_leaks: Snapshot) -> None:
    """A message sent to a paused child is not printed until resume(), then it is; the server's send did not fail."""
    seen = Seen()
    with (
        serve(app(seen, late=0.2), name="faults-child-late") as server,
        start_child_client(server.ws_url("/ws"), hello="go") as client,
    ):
        client.pause()
        assert wait_until(lambda: seen.of("sent") == ["late"])
        time.sleep(0.1)
        while_paused = client.received
        client.resume()
        assert wait_until(lambda: "late" in client.received)
        assert not client.paused and client.running
    assert "late" not in while_paused and client.received[-1] == "late"


def test_kill_makes_the_server_see_a_disconnect_at_once(served: tuple[ThreadServer, Seen], no_leaks: Snapshot) -> None:
    """kill() (SIGKILL) ends the child; the kernel closes its socket, and the app gets a disconnect within 1 s."""
    server, seen = served
    client = start_child_client(server.ws_url("/ws"))
    killed_at = time.monotonic()
    client.kill()
    assert wait_until(lambda: bool(seen.of("disconnect")))
    assert time.monotonic() - killed_at < 1.0 and seen.of("disconnect") == [1005]
    assert client.exit_code == -signal.SIGKILL and gone(client.pid)
    with pytest.raises(ChildClientError, match=r"has exited \(code -9\).*start_child_client\(url\)"):
        client.pause()
    client.stop()
    client.stop()


def test_stop_resumes_a_paused_child_and_leaves_no_process(no_leaks: Snapshot) -> None:
    """stop() of a paused child resumes it, lets it close cleanly and waits for it; again it does nothing."""
    seen = Seen()
    with serve(app(seen), name="faults-child-stop") as server:
        client = start_child_client(server.ws_url("/ws"))
        client.pause()
        started = time.monotonic()
        client.stop()
        took = time.monotonic() - started
        client.stop()
        assert wait_until(lambda: seen.of("disconnect") == [1000])
    assert took < 1.0 and client.exit_code == 0 and gone(client.pid) and not client.paused


def test_the_childs_own_keepalive_drops_a_server_behind_a_frozen_relay(no_leaks: Snapshot) -> None:
    """With ping_interval and ping_timeout, the child closes by itself (1011) once its pings go unanswered."""
    seen = Seen()
    with (
        serve(app(seen), name="faults-child-keepalive") as server,
        start_relay(server.port) as relay,
        start_child_client(relay.ws_url("/ws"), ping_interval=0.1, ping_timeout=0.2) as client,
    ):
        time.sleep(0.3)
        assert client.running
        relay.freeze()
        frozen_at = time.monotonic()
        assert wait_until(lambda: not client.running)
        noticed = time.monotonic() - frozen_at
        # The child's close frame and FIN wait in the frozen relay: a server without pings of its own learns nothing.
        time.sleep(0.1)
        assert seen.of("disconnect") == []
    assert noticed < 2.0 and client.exit_code == 0  # 0.1 + 0.2 s, then 0.5 s (CLOSE_TIMEOUT) for the TCP close
    assert "CLOSED sent 1011 (internal error) keepalive ping timeout; no close frame received" in client.output
    assert seen.of("disconnect") == [1005]  # when the relay stopped and closed its side


def test_a_child_that_cannot_connect_says_why_and_is_gone(no_leaks: Snapshot) -> None:
    """A refused connection raises ChildClientError with the child's reason, and no process is left."""
    seen = Seen()
    with serve(app(seen), name="faults-child-refused") as server:
        url = server.ws_url("/ws")
    with pytest.raises(ChildClientError, match=r"could not connect to .*ConnectionRefusedError"):
        start_child_client(url)


def test_a_paused_child_dies_with_its_parent() -> None:
    """If the parent is killed outright, its child client dies too, even paused (the kernel SIGKILLs it)."""
    script = textwrap.dedent(
        """
        import time
        from helpers.demo_apps import echo
        from helpers.servers import serve
        from helpers.faults.child_client import start_child_client
        client = start_child_client(serve(echo).ws_url("/"))
        client.pause()
        print(client.pid, flush=True)
        time.sleep(30)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        died = wait_until(lambda: gone(child), timeout=5.0)
        if not died:
            os.kill(child, signal.SIGKILL)
        assert died, "the paused child client outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"url": "http://127.0.0.1:8000/ws"}, UsageError, "starts with ws:// or wss://"),
        ({"url": "ws://127.0.0.1:8000/ws", "hello": b"hi"}, UsageTypeError, "hello must be a str"),
        ({"url": "ws://127.0.0.1:8000/ws", "ping_interval": 0}, UsageError, "ping_interval must be above zero"),
        ({"url": "ws://127.0.0.1:8000/ws", "ping_timeout": "1"}, UsageTypeError, "ping_timeout must be a number"),
        ({"url": "ws://127.0.0.1:8000/ws", "ready_timeout": -1}, UsageError, "ready_timeout must be above zero"),
    ],
)
def test_start_child_client_refuses_impossible_arguments(
    arguments: dict[str, Any], error: type[Exception], message: str, no_leaks: Snapshot
) -> None:
    """Each impossible argument raises one usage error naming what to pass, before any process starts."""
    with pytest.raises(error, match=message):
        start_child_client(**arguments)
