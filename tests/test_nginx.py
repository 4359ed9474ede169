"""Tests for helpers.nginx: a private nginx in front of uvicorn that proxies, times out, forwards, and never orphans."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from helpers import nginx
from helpers.clients import attempt_sync, read_close
from helpers.servers import ThreadServer, serve
from helpers.usage import UsageError, UsageTypeError
from tests.support import ROOT, Seen, Snapshot, assert_back_to, child_pids, require_binary

pytestmark = pytest.mark.timeout(60)

BIG = 16_000_000  # more than nginx's proxy buffers hold: nginx spills it to a file in proxy_temp


@pytest.fixture
def nginx_binary() -> str:
    return require_binary("nginx", "apt-get install nginx")


def backend_app(name: str, seen: Seen) -> Any:
    """A Starlette app that says its name (/who), shows the request's headers (/headers), sends BIG bytes (/big) and
    echoes at /ws. Each request it gets is recorded in `seen` as ("scope", (type, headers)), and each WebSocket's end
    as ("disconnect", code)."""

    async def who(request: Request) -> PlainTextResponse:
        return PlainTextResponse(name)

    async def headers(request: Request) -> JSONResponse:
        client = request.client.host if request.client else None
        return JSONResponse({"headers": dict(request.headers), "client": client, "scheme": request.url.scheme})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()  # not iter_text(), which hides the disconnect's code
            if message["type"] == "websocket.disconnect":
                seen.add("disconnect", message["code"])
                return
            text = message.get("text") or ""
            await websocket.send_text(f"{name}: {text}" if text == "who" else text)

    async def big(request: Request) -> Response:
        return Response(b"x" * BIG)

    routes = [Route("/who", who), Route("/headers", headers), Route("/big", big), WebSocketRoute("/ws", echo)]
    inner = Starlette(routes=routes)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            seen.add("scope", (scope["type"], {k.decode(): v.decode() for k, v in scope["headers"]}))
        await inner(scope, receive, send)

    return app


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def backend(seen: Seen) -> Iterator[ThreadServer]:
    with serve(backend_app("a", seen), name="nginx-backend-a") as server:
        yield server


def get(proxy: nginx.Nginx, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a plain HTTP GET through the proxy (http.client: no proxy settings from the environment)."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=3)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_starts_serves_http_and_stop_removes_everything(nginx_binary: str, backend: ThreadServer) -> None:
    """start_nginx() returns a ready proxy on 127.0.0.1 whose GET reaches the app; stop() ends it and its folder."""
    before = Snapshot.take()
    proxy = nginx.start_nginx(backend.port)
    with proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}" and proxy.ws_url("ws") == f"ws://127.0.0.1:{proxy.port}/ws"
        assert get(proxy, "/who") == (200, "a")
        pids = [proxy.pid, *proxy.worker_pids]
        assert len(pids) == 2 and proxy.pid in child_pids() and proxy.running
        folder = proxy.folder
        assert f"server 127.0.0.1:{backend.port};" in proxy.config_text
    assert not proxy.running and not folder.exists()
    assert not any(alive(pid) for pid in pids), "an nginx process outlived stop()"
    assert_back_to(before)  # no child, fd, thread or listening port of ours left
    assert f'"GET /who HTTP/1.1" 200 upstream=127.0.0.1:{backend.port}' in proxy.access_log()  # kept after stop()
    proxy.stop()  # idempotent
    assert nginx.running_nginx() == []


def test_access_log_waits_a_bounded_time_for_the_lines_asked_for(nginx_binary: str, backend: ThreadServer) -> None:
    """access_log(lines=N) returns once N lines are there, or after `timeout` with what there is."""
    with nginx.start_nginx(backend.port) as proxy:
        assert get(proxy, "/who") == (200, "a")
        assert '"GET /who HTTP/1.1" 200' in proxy.access_log(lines=1)
        began = time.monotonic()
        log = proxy.access_log(lines=2, timeout=0.3)  # only one request was made
        waited = time.monotonic() - began
    assert len(log.splitlines()) == 1 and 0.3 <= waited < 3


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"lines": -1}, UsageError, "lines must be at least 0"),
        ({"lines": "1"}, UsageTypeError, "lines must be a whole number"),
        ({"lines": 1, "timeout": 0}, UsageError, "timeout must be above zero"),
    ],
)
def test_access_log_refuses_impossible_arguments(
    nginx_binary: str, backend: ThreadServer, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    """A negative or non-integer line count, or a timeout of zero, is refused with what to pass instead."""
    with nginx.start_nginx(backend.port) as proxy, pytest.raises(error, match=message):
        proxy.access_log(**arguments)  # type: ignore[arg-type]


def test_a_response_too_big_for_the_buffers_arrives_whole(nginx_binary: str, backend: ThreadServer) -> None:
    """A response nginx spills to its temp folder arrives whole (started as root, its `nobody` worker can reach it)."""
    with nginx.start_nginx(backend.port) as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        connection.request("GET", "/big")
        response = connection.getresponse()
        time.sleep(0.3)  # a slow reader: nginx reads the backend faster than this client, so it buffers to disk
        body = response.read()
        connection.close()
    assert (response.status, len(body)) == (200, BIG)
    assert "an upstream response is buffered to a temporary file" in proxy.error_log()


def test_a_websocket_goes_through_with_the_upgrade_headers(
    nginx_binary: str, backend: ThreadServer, seen: Seen
) -> None:
    """With websocket_headers=True the handshake reaches the app as a WebSocket (Upgrade passed on) and echo works."""
    with nginx.start_nginx(backend.port) as proxy:
        outcome = attempt_sync(proxy.ws_url("/ws"), send=["hi"], receive=1)
    assert str(outcome) == "opened (HTTP 101); received 1 message: 'hi'; closed by client: 1000"
    kind, headers = seen.of("scope")[0]
    assert (kind, headers["upgrade"], headers["connection"]) == ("websocket", "websocket", "upgrade")
    assert '"GET /ws HTTP/1.1" 101' in proxy.access_log()


def test_without_the_upgrade_headers_the_app_gets_a_plain_http_request(
    nginx_binary: str, backend: ThreadServer, seen: Seen
) -> None:
    """With websocket_headers=False nginx drops Upgrade: the app gets an HTTP GET (Connection: close) and says 404."""
    with nginx.start_nginx(backend.port, websocket_headers=False) as proxy:
        assert "Upgrade" not in proxy.config_text and "$connection_upgrade" not in proxy.config_text
        outcome = attempt_sync(proxy.ws_url("/ws"), send=["hi"], receive=1)
    assert str(outcome) == "rejected: HTTP 404 'Not Found'"  # Starlette's answer: no HTTP route at /ws
    assert outcome.headers["server"].startswith("nginx/")  # the 404 came through nginx
    kind, headers = seen.of("scope")[0]
    assert kind == "http" and "upgrade" not in headers and headers["connection"] == "close"
    assert "sec-websocket-key" in headers  # the rest of the handshake's headers are passed on


def test_proxy_http_version_1_0_still_upgrades_under_uvicorn(nginx_binary: str, backend: ThreadServer) -> None:
    """With http_version="1.0" (nginx's default) but the Upgrade headers set, uvicorn 0.54 (h11) still upgrades."""
    with nginx.start_nginx(backend.port, http_version="1.0") as proxy:
        assert "proxy_http_version 1.0;" in proxy.config_text
        outcome = attempt_sync(proxy.ws_url("/ws"), send=["hi"], receive=1)
    assert outcome.opened and outcome.messages == ["hi"]


def test_two_upstreams_take_turns(nginx_binary: str, backend: ThreadServer, seen: Seen) -> None:
    """With two upstreams, HTTP requests and WebSocket connections alternate between them (round-robin)."""
    with (
        serve(backend_app("b", seen), name="nginx-backend-b") as other,
        nginx.start_nginx([backend.port, other.port]) as proxy,
    ):
        answers = [get(proxy, "/who")[1] for _ in range(4)]
        replies = [attempt_sync(proxy.ws_url("/ws"), send=["who"], receive=1).messages for _ in range(4)]
        log = proxy.access_log(lines=8)  # a WebSocket's line comes once its connection has ended
    assert answers == ["a", "b", "a", "b"]
    assert replies == [["a: who"], ["b: who"], ["a: who"], ["b: who"]]
    assert log.count(f"upstream=127.0.0.1:{backend.port}") == 4 and log.count(f"upstream=127.0.0.1:{other.port}") == 4


async def idle_then_echo(url: str, idle: float) -> tuple[str, float]:
    """Open `url` without client pings, wait `idle` s: ("nobody 1006", seconds) if it drops, else ("open ECHO", s)."""
    async with connect(url, ping_interval=None, open_timeout=2, close_timeout=1, proxy=None) as ws:
        started = time.monotonic()
        try:
            await asyncio.wait_for(ws.recv(), idle)
        except ConnectionClosed as exc:
            closing = read_close(exc.rcvd, exc.sent, exc.rcvd_then_sent)
            return f"{closing.closed_by} {closing.code}", time.monotonic() - started
        except TimeoutError:
            await ws.send("still there?")
            return f"open {await asyncio.wait_for(ws.recv(), 1)}", time.monotonic() - started
    raise AssertionError("unreachable")


def test_read_timeout_cuts_an_idle_websocket(nginx_binary: str, backend: ThreadServer, seen: Seen) -> None:
    """read_timeout=1 drops a WebSocket the backend says nothing on after about 1 s: no close frame (1006)."""
    with nginx.start_nginx(backend.port, read_timeout=1, error_log_level="info") as proxy:
        assert "proxy_read_timeout 1s;" in proxy.config_text
        what, after = asyncio.run(idle_then_echo(proxy.ws_url("/ws"), 5))
        deadline = time.monotonic() + 2
        while not seen.of("disconnect") and time.monotonic() < deadline:
            time.sleep(0.02)
    assert what == "nobody 1006" and 0.8 < after < 2.0
    # The app behind nginx lost its TCP connection too; uvicorn 0.54 (websockets-sansio) reports a dropped, already
    # accepted connection as 1005 (uvicorn/protocols/websockets/websockets_sansio_impl.py, connection_lost).
    assert seen.of("disconnect") == [1005]
    assert "upstream timed out (110: Connection timed out) while proxying upgraded connection" in proxy.error_log()


def test_server_pings_keep_a_websocket_open_past_the_read_timeout(nginx_binary: str, seen: Seen) -> None:
    """uvicorn pinging every 0.3 s counts as the backend sending, so read_timeout=1 never fires in 2 s of silence."""
    with (
        serve(backend_app("a", seen), name="nginx-backend-pings", ws_ping_interval=0.3) as pinging,
        nginx.start_nginx(pinging.port, read_timeout=1) as proxy,
    ):
        what, after = asyncio.run(idle_then_echo(proxy.ws_url("/ws"), 2))
    assert what == "open still there?" and after >= 2


def test_forwarded_headers_tell_the_app_who_the_client_was(nginx_binary: str, backend: ThreadServer) -> None:
    """forwarded_headers=True appends the client to X-Forwarded-For and sets X-Real-IP, X-Forwarded-Proto and Host."""
    with nginx.start_nginx(backend.port) as proxy:
        status, body = get(proxy, "/headers")
        spoofed = json.loads(get(proxy, "/headers", {"X-Forwarded-For": "203.0.113.7"})[1])
    plain = json.loads(body)
    headers = plain["headers"]
    assert status == 200 and headers["x-forwarded-for"] == "127.0.0.1"
    assert (headers["x-real-ip"], headers["x-forwarded-proto"]) == ("127.0.0.1", "http")
    assert headers["host"] == f"127.0.0.1:{proxy.port}"
    assert spoofed["headers"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"  # nginx appends, it does not replace
    # uvicorn (forwarded_allow_ips="127.0.0.1") takes the rightmost untrusted address in X-Forwarded-For as the
    # client (uvicorn/middleware/proxy_headers.py): here the real client is 127.0.0.1, itself trusted, so the
    # address it made up becomes request.client.
    assert (plain["client"], spoofed["client"]) == ("127.0.0.1", "203.0.113.7")


def test_without_forwarded_headers_the_app_sees_nginx_as_its_client(nginx_binary: str, backend: ThreadServer) -> None:
    """forwarded_headers=False sends no X-Forwarded-* or X-Real-IP, and Host is the upstream's name, "app"."""
    with nginx.start_nginx(backend.port, forwarded_headers=False) as proxy:
        headers = json.loads(get(proxy, "/headers")[1])["headers"]
    assert not {"x-forwarded-for", "x-forwarded-proto", "x-real-ip"} & set(headers)
    assert headers["host"] == "app"


def test_tls_serves_wss_and_the_app_learns_the_scheme(nginx_binary: str, backend: ThreadServer, tmp_path: Path) -> None:
    """With tls=(cert, key) from trustme, wss:// works through nginx and the app's request says https."""
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    for index, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(cert), append=index > 0)
    issued.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    authority.configure_trust(context)

    async def echo_once(url: str) -> str | bytes:
        async with connect(url, ssl=context, open_timeout=2, proxy=None) as ws:
            await ws.send("secret")
            return await ws.recv()

    with nginx.start_nginx(backend.port, tls=(cert, key)) as proxy:
        assert proxy.url.startswith("https://") and proxy.ws_url("/ws").startswith("wss://127.0.0.1:")
        assert asyncio.run(echo_once(proxy.ws_url("/ws"))) == "secret"
        connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=3, context=context)
        connection.request("GET", "/headers")
        answer = json.loads(connection.getresponse().read())
        connection.close()
    assert (answer["scheme"], answer["headers"]["x-forwarded-proto"]) == ("https", "https")


def test_stop_with_an_open_websocket_waits_the_grace_then_drops_it(nginx_binary: str, backend: ThreadServer) -> None:
    """stop() gives an open WebSocket GRACEFUL_STOP_SECONDS (SIGQUIT), then SIGTERM drops it: the client sees 1006."""
    proxy = nginx.start_nginx(backend.port)

    async def stop_while_open() -> tuple[str, float]:
        async with connect(proxy.ws_url("/ws"), ping_interval=None, open_timeout=2, proxy=None) as ws:
            started = time.monotonic()
            stopping = asyncio.ensure_future(asyncio.to_thread(proxy.stop))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                closing = read_close(exc.rcvd, exc.sent, exc.rcvd_then_sent)
                await stopping
                return f"{closing.closed_by} {closing.code}", time.monotonic() - started
        raise AssertionError("the connection stayed open")

    what, after = asyncio.run(stop_while_open())
    assert what == "nobody 1006" and nginx.GRACEFUL_STOP_SECONDS - 0.1 < after < nginx.GRACEFUL_STOP_SECONDS + 1.5


def test_a_bad_config_raises_nginx_own_words_and_leaves_nothing(
    nginx_binary: str, backend: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directive nginx does not know raises NginxError quoting nginx's [emerg] line; no process or folder is left."""
    before = child_pids()
    folders: list[Path] = []  # the ones this start makes (other xdist workers may be making their own meanwhile)
    make_folder = tempfile.mkdtemp

    def recording_mkdtemp(**kwargs: Any) -> str:
        folders.append(Path(make_folder(**kwargs)))
        return str(folders[-1])

    monkeypatch.setattr(nginx.tempfile, "mkdtemp", recording_mkdtemp)
    with pytest.raises(
        nginx.NginxError, match=r'nginx: \[emerg\] unknown directive "bogus" in .*nginx\.conf:\d+'
    ) as info:
        nginx.start_nginx(backend.port, extra_location="bogus on;")
    assert "of the config reads: 'bogus on;'" in str(info.value) and "bogus on;" in info.value.config_text
    assert child_pids() <= before
    assert len(folders) == 1 and not folders[0].exists()


def test_missing_nginx_explains_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without nginx on PATH, available() is False and start_nginx() names apt-get, brew and conda-forge."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not nginx.available()
    with pytest.raises(nginx.NginxUnavailable, match=r"apt-get install nginx.*brew install nginx.*conda-forge nginx"):
        nginx.start_nginx(8000)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"upstreams": []}, UsageTypeError, "a backend's port or a list of them"),
        ({"upstreams": "8000"}, UsageTypeError, "a backend's port or a list of them"),
        ({"upstreams": [0]}, UsageError, "upstreams.0. is 0; pass the port the backend listens on"),
        ({"upstreams": 8000, "http_version": "2"}, UsageError, "http_version must be one of '1.0', '1.1'"),
        ({"upstreams": 8000, "read_timeout": 0}, UsageError, "read_timeout must be above zero"),
        ({"upstreams": 8000, "websocket_headers": "yes"}, UsageTypeError, "websocket_headers must be True or False"),
        ({"upstreams": 8000, "tls": ("missing.pem", "missing.key")}, UsageError, "tls certificate 'missing.pem' is"),
        ({"upstreams": 8000, "error_log_level": "loud"}, UsageError, "error_log_level must be one of"),
        ({"upstreams": 8000, "ready_timeout": 0}, UsageError, "ready_timeout must be above zero"),
    ],
)
def test_arguments_that_cannot_work_are_refused_first(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Bad arguments raise a UsageError saying what to pass, before anything starts."""
    before = child_pids()
    with pytest.raises(error, match=message):
        nginx.start_nginx(**kwargs)
    assert child_pids() <= before


def test_the_config_text_follows_the_switches() -> None:
    """nginx_config() writes the map form only with WebSocket headers, nginx time units, and `ssl` with TLS."""
    plain = nginx.nginx_config(8080, [8001, 8002], websocket_headers=False, read_timeout=0.3, forwarded_headers=False)
    assert "server 127.0.0.1:8001;\n        server 127.0.0.1:8002;" in plain
    assert "map $http_upgrade" not in plain and "X-Forwarded-For" not in plain
    assert "proxy_read_timeout 300ms;" in plain and "listen 127.0.0.1:8080;" in plain
    full = nginx.nginx_config(8080, [8001], tls=("c.pem", "k.pem"), extra_location="proxy_buffering off;")
    assert "proxy_set_header Connection $connection_upgrade;" in full and "        ''      close;" in full
    assert "listen 127.0.0.1:8080 ssl;" in full and "            proxy_buffering off;\n" in full


def test_starting_under_a_name_replaces_the_one_before(nginx_binary: str, backend: ThreadServer) -> None:
    """A second start_nginx(name=...) stops the first (re-running a cell), and stop_all() stops the rest."""
    first = nginx.start_nginx(backend.port, name="lesson")
    second = nginx.start_nginx(backend.port, name="lesson")
    try:
        assert not first.running and second.running and nginx.running_nginx() == [second]
    finally:
        nginx.stop_all()
    assert not second.running and nginx.running_nginx() == []


def test_nginx_dies_with_its_parent(nginx_binary: str) -> None:
    """If the process that started nginx is killed outright, the master (sent SIGTERM) and its worker exit too."""
    script = textwrap.dedent(
        """
        import time
        from helpers.nginx import start_nginx
        proxy = start_nginx(9)
        print(proxy.folder, proxy.pid, *proxy.worker_pids, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert parent.stdout is not None
        folder, *pid_texts = parent.stdout.readline().split()
        pids = [int(text) for text in pid_texts]
        assert len(pids) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.05)
        left = [pid for pid in pids if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)  # its owner was killed before it could clean up
        assert not left, "nginx outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_an_nginx_started_from_a_short_lived_thread_outlives_it(nginx_binary: str, backend: ThreadServer) -> None:
    """An nginx started by a worker thread that then ends (a quiz's Show me) keeps serving until stop()."""
    started: list[nginx.Nginx] = []
    worker = threading.Thread(target=lambda: started.append(nginx.start_nginx(backend.port)))
    worker.start()
    worker.join(30)
    proxy = started[0]
    try:
        time.sleep(0.3)  # a SIGTERM tied to the ended thread would have arrived by now
        assert proxy.running and get(proxy, "/who") == (200, "a")
    finally:
        proxy.stop()
