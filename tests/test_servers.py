"""Tests for helpers.servers: readiness, ports, naming, stopping, failures, and the three ways to run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette

from helpers import servers
from helpers.clients import attempt_sync
from helpers.demo_apps import echo
from helpers.servers import ServerStartError, ServerUsageError, serve, serve_on_loop, serve_process
from helpers.usage import UsageError, UsageTypeError
from tests.support import ROOT, Snapshot, assert_back_to, child_pids, listening_ports

pytestmark = pytest.mark.timeout(60)


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_returns_a_ready_server_on_a_free_loopback_port(no_leaks: Snapshot) -> None:
    """serve() returns only when the server answers, on 127.0.0.1 and a port that was free."""
    with serve(echo, name="ready") as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url("echo") == f"ws://127.0.0.1:{server.port}/echo"
        outcome = attempt_sync(server.ws_url("/"), send=["hi"], receive=1)
        assert outcome.messages == ["hi"]
        assert server.thread.daemon and server.thread.name == "uvicorn-ready"


def test_fifty_start_stop_cycles_leave_nothing_behind() -> None:
    """50 start/stop cycles leave thread count, open fds and listening ports as they were."""
    serve(echo, name="warm-up").stop()  # first use imports lazily-loaded modules and opens their files
    before = Snapshot.take()
    ports = []
    for _ in range(50):
        server = serve(echo, name="cycle")
        ports.append(server.port)
        server.stop()
    assert_back_to(before)
    assert not set(ports) & listening_ports()


def test_stop_is_idempotent_and_closes_the_port(no_leaks: Snapshot) -> None:
    """A second stop() does nothing, and after stop the port refuses connections."""
    server = serve(echo, name="twice")
    server.stop()
    server.stop()
    assert not server.running
    assert port_refuses(server.port)
    assert "twice" not in servers.running_servers()


def test_serving_the_same_name_again_replaces_the_old_server(no_leaks: Snapshot) -> None:
    """Re-serving a name stops the previous server first, so re-running a cell is safe."""
    first = serve(echo, name="same")
    second = serve(echo, name="same", port=first.port)  # even on the very same port
    try:
        assert not first.running
        assert second.running and second.port == first.port
        assert servers.running_servers() == {"same": second.url}
    finally:
        second.stop()


def test_default_name_comes_from_the_app(no_leaks: Snapshot) -> None:
    """Without name=, the app's own name is used, so re-serving the same app replaces it."""
    first = serve(echo)
    second = serve(echo)
    try:
        assert first.name == second.name == "echo"
        assert not first.running and second.running
    finally:
        second.stop()


def test_port_in_use_is_a_clear_error(no_leaks: Snapshot) -> None:
    """Asking for a port that is taken raises ServerStartError naming the port and the fix."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ServerStartError, match=rf"port {port} on 127.0.0.1 is already in use.*leave out port="):
            serve(echo, name="blocked", port=port)


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_import_error_is_a_clear_error(no_leaks: Snapshot, server: str) -> None:
    """An import string that cannot be imported fails fast with the module named, whichever server is chosen."""
    started = time.monotonic()
    with pytest.raises(
        ServerStartError, match=r'failed to start: Error loading ASGI app. Could not import module "no_such_mod"'
    ):
        serve("no_such_mod:app", name="bad-import", server=server)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_lifespan_failure_is_a_clear_error(no_leaks: Snapshot, server: str) -> None:
    """An exception in the app's lifespan startup is reported with its type and message, whichever server runs it."""

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unreachable")
        yield

    with pytest.raises(ServerStartError, match=r"failed to start: RuntimeError: database unreachable"):
        serve(Starlette(lifespan=lifespan), name="bad-lifespan", server=server)


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_startup_that_never_finishes_times_out(no_leaks: Snapshot, server: str) -> None:
    """A lifespan startup that hangs raises within ready_timeout instead of blocking forever, under either server."""

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await asyncio.sleep(3600)
        yield

    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"did not become ready within 0.5 s"):
        serve(Starlette(lifespan=lifespan), name="hangs", ready_timeout=0.5, server=server)
    assert time.monotonic() - started < 3


def test_run_executes_a_coroutine_on_the_server_loop(no_leaks: Snapshot) -> None:
    """run() executes a coroutine on the server's loop and returns its result."""

    async def where() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    with serve(echo, name="run") as server:
        assert server.run(where()) is server.loop


def test_run_with_a_function_instead_of_a_coroutine_says_what_to_do(no_leaks: Snapshot) -> None:
    """Passing the async function itself (not a call) raises an error showing the right call."""

    async def work() -> None:
        return None

    with serve(echo, name="misuse") as server, pytest.raises(ServerUsageError, match=r"call the async function"):
        server.run(work)  # type: ignore[arg-type]


def test_run_on_a_stopped_server_says_to_serve_again(no_leaks: Snapshot) -> None:
    """run() after stop() raises an error that says the server is stopped."""

    async def nothing() -> None:
        return None

    server = serve(echo, name="gone")
    server.stop()
    with pytest.raises(ServerUsageError, match=r"is stopped"):
        server.run(nothing())


def test_stop_all_stops_every_server(no_leaks: Snapshot) -> None:
    """stop_all() stops every running server and reports their names."""
    a = serve(echo, name="a")
    b = serve(echo, name="b")
    assert sorted(servers.stop_all()) == ["a", "b"]
    assert not a.running and not b.running


def test_connected_clients_get_1012_when_the_server_stops(no_leaks: Snapshot) -> None:
    """A client still connected when the server stops sees close code 1012 (service restart)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    server = serve(echo, name="restart")
    with connect(server.ws_url("/"), open_timeout=2, close_timeout=1) as ws:
        server.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=2)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1012


def test_servers_stop_at_interpreter_exit() -> None:
    """A script that starts a server and never stops it still exits promptly and cleanly."""
    script = "from helpers.servers import serve\nfrom helpers.demo_apps import echo\nserve(echo)\nprint('served')\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"
    assert result.stderr == ""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_serve_on_loop_serves_async_clients_and_keeps_sigint(no_leaks: Snapshot) -> None:
    """A server on the caller's loop answers async clients and leaves the SIGINT handler alone."""
    from helpers.clients import attempt

    handler = signal.getsignal(signal.SIGINT)
    server = await serve_on_loop(echo, name="on-loop")
    try:
        assert signal.getsignal(signal.SIGINT) is handler
        assert server.loop is asyncio.get_running_loop()
        outcome = await attempt(server.ws_url("/"), send=["x"], receive=1)
        assert outcome.messages == ["x"]
    finally:
        await server.stop()
        await server.stop()
    assert not server.running
    assert signal.getsignal(signal.SIGINT) is handler


@pytest.mark.anyio
async def test_serve_on_loop_failure_is_a_clear_error(no_leaks: Snapshot) -> None:
    """An import failure on the caller's loop raises ServerStartError, not a hang."""
    with pytest.raises(ServerStartError, match=r'Could not import module "no_such_mod"'):
        await serve_on_loop("no_such_mod:app", name="bad-on-loop")


def test_serve_process_runs_an_import_string_and_stops_cleanly() -> None:
    """A process server answers on the port it reports and leaves no child process after stop."""
    before = child_pids()
    with serve_process("helpers.demo_apps:echo", name="proc") as server:
        assert server.pid in child_pids()
        assert attempt_sync(server.ws_url("/"), send=["p"], receive=1).messages == ["p"]
    assert server.process.returncode == 0
    assert child_pids() <= before
    assert port_refuses(server.port)


def test_serve_process_import_failure_is_clear_and_leaves_no_process() -> None:
    """A child whose app fails to import is reported with uvicorn's reason and is gone afterwards."""
    before = child_pids()
    with pytest.raises(
        ServerStartError, match=r'exited with code 3 before it was ready: .*Could not import module "nope"'
    ):
        serve_process("nope:app", name="proc-bad")
    assert child_pids() <= before


def test_serve_process_needs_an_import_string() -> None:
    """Passing an app object (or a string without ':') explains that a process needs an import string."""
    with pytest.raises(ServerUsageError, match=r"import string like 'package.module:app'"):
        serve_process("helpers.demo_apps", name="no-colon")


def test_process_server_dies_with_its_parent(tmp_path: Path) -> None:
    """If the parent is killed outright, its process server exits on its own (no orphan)."""
    script = textwrap.dedent(
        """
        import time
        from helpers.servers import serve_process
        server = serve_process("helpers.demo_apps:echo")
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.05)
        alive = Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split(")")[1][:3]
        if alive:
            os.kill(child, signal.SIGKILL)
        assert not alive, "the child server outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_stop_wakes_the_server_instead_of_waiting_for_its_poll(no_leaks: Snapshot) -> None:
    """stop() of an idle server returns in well under uvicorn's 0.1 s poll + 0.1 s shutdown pause."""
    server = serve(echo, name="quick-stop")
    time.sleep(0.05)  # land mid-poll, where plain uvicorn would wait out the rest of its 0.1 s tick
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 0.18


def test_asyncio_errors_on_the_server_thread_stay_on_the_server(no_leaks: Snapshot) -> None:
    """An unretrieved task exception on a server's loop lands in server.errors, not on stderr."""

    async def fail() -> None:
        raise ValueError("nobody awaited me")

    async def orphan() -> None:
        task = asyncio.get_running_loop().create_task(fail())
        await asyncio.sleep(0.01)
        del task  # dropped unretrieved: asyncio logs it when the task is garbage-collected

    with serve(echo, name="orphans") as server:
        server.run(orphan())
        import gc

        server.run(asyncio.sleep(0.01))
        gc.collect()
        deadline = time.monotonic() + 2
        while not server.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert any("ValueError: nobody awaited me" in line for line in server.errors)


def test_process_server_errors_survive_stop(tmp_path: Path) -> None:
    """A child's handler exception shows in .errors, before and after stop()."""
    (tmp_path / "crashy.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'websocket':\n"
        "        await receive()\n"
        "        await send({'type': 'websocket.accept'})\n"
        "        await receive()\n"
        "        raise RuntimeError('handler crashed in the child')\n"
    )
    server = serve_process("crashy:app", name="crashy", app_dir=tmp_path)
    try:
        assert attempt_sync(server.ws_url("/"), send=["x"]).close_code == 1006
        deadline = time.monotonic() + 3
        while "RuntimeError: handler crashed in the child" not in server.errors and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    assert "RuntimeError: handler crashed in the child" in server.errors


def test_stop_is_bounded_when_a_task_ignores_cancellation(no_leaks: Snapshot) -> None:
    """A task on the server loop that swallows CancelledError cannot make stop() hang."""

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    server = serve(echo, name="stubborn")
    server.submit(stubborn())
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 4
    assert not server.thread.is_alive()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 70000}, "70000 is impossible"),
        ({"port": "8000"}, "port must be a whole number"),
        ({"host": ""}, "host is empty"),
        ({"name": 3}, "name must be a str"),
        ({"log_level": "loud"}, "log_level must be one of"),
        ({"ready_timeout": -1}, "ready_timeout must be above zero"),
    ],
)
def test_serve_refuses_impossible_arguments_before_starting(
    options: dict[str, object], message: str, no_leaks: Snapshot
) -> None:
    """serve() with an impossible port, host, name, log level or timeout raises UsageError and starts nothing."""
    with pytest.raises(UsageError, match=message):
        serve(echo, **options)  # type: ignore[arg-type]


def test_serve_refuses_something_that_is_not_an_app(no_leaks: Snapshot) -> None:
    """serve() given a non-callable (a dict, say) says it needs an ASGI app or an import string."""
    with pytest.raises(UsageTypeError, match="app must be an ASGI app"):
        serve({"not": "an app"})


def test_serve_process_refuses_an_app_object_with_the_reason() -> None:
    """serve_process() given an app object, not a string, says a process needs an import string."""
    with pytest.raises(UsageTypeError, match="needs an import string"):
        serve_process(echo)  # type: ignore[arg-type]


def test_ws_url_refuses_a_whole_url_or_a_non_string(no_leaks: Snapshot) -> None:
    """ws_url() wants a path: a whole URL or a number is refused with an example path."""
    with serve(echo, name="ws-url-checks") as server:
        assert server.ws_url("chat").endswith("/chat")
        with pytest.raises(UsageError, match="pass only the path"):
            server.ws_url(server.ws_url("/chat"))
        with pytest.raises(UsageTypeError, match="path must be a str"):
            server.ws_url(5)  # type: ignore[arg-type]
