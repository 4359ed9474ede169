"""Evidence for the production quiz's questions on lesson 16 (quizzes/production.toml): proxies, workers and TLS.

Its experiments put a real nginx (helpers.nginx, from PATH) in front of uvicorn 0.54 (websockets-sansio) served
in a thread, and stop it before they return; without nginx they raise EvidenceError with the install command.
Every claim is settled from what the run observed, and the fact lines print that observation. Lesson 17's
experiments (authentication) are in helpers.evidence.production_auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed

from helpers import nginx
from helpers.clients import attempt, connect
from helpers.evidence.core import Evidence, EvidenceError, Trial, experiment
from helpers.servers import ThreadServer, serve

__all__ = ["NEEDS_NGINX"]  # importing the module registers its experiments

UVICORN = "uvicorn 0.54 (websockets-sansio)"
NEEDS_NGINX = frozenset({"proxy_without_upgrade", "quiet_behind_nginx", "forwarded_for_trust", "wss_at_nginx"})


@functools.cache
def _nginx_version() -> str:
    """nginx's version as `nginx -v` names it ("nginx/1.22.1"), asked once, when an experiment first runs."""
    said = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=5).stderr.strip()
    return said.removeprefix("nginx version: ")


def _need_nginx() -> str:
    """The facts' first line, naming the nginx and the server; EvidenceError saying how to install nginx without it."""
    if not nginx.available():
        raise EvidenceError(f"this experiment needs nginx: {nginx.INSTALL_HINT}")
    return f"proxy: {_nginx_version()} in front of {UVICORN}"


@contextlib.contextmanager
def _proxy(upstream: ThreadServer | int, **options: Any) -> Iterator[nginx.Nginx]:
    """A private nginx in front of `upstream` (a server or a port), stopped when the block ends."""
    _need_nginx()
    port = upstream if isinstance(upstream, int) else upstream.port
    with nginx.start_nginx(port, **options) as proxy:
        yield proxy


# --------------------------------------------------------------------------------------------------
# lesson 16's backend: what reached it, and how each WebSocket ended


class _Backend:
    """A Starlette app that records what reaches it: /echo echoes, /sink never sends, /whoami reports the scope.

    `arrived` holds (scope type, HTTP version, Upgrade header) of every request; `left` the code of each
    `websocket.disconnect` per path.
    """

    def __init__(self) -> None:
        self.arrived: list[tuple[str, str, str]] = []
        self.left: dict[str, list[int]] = {}
        routes = [WebSocketRoute(path, self._endpoint) for path in ("/echo", "/sink", "/whoami")]
        self.inner = Starlette(routes=routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            upgrade = dict(scope["headers"]).get(b"upgrade", b"-").decode()
            self.arrived.append((scope["type"], scope["http_version"], upgrade))
        await self.inner(scope, receive, send)

    async def _endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        path = websocket.url.path
        if path == "/whoami":
            host = websocket.client.host if websocket.client else "-"
            await websocket.send_text(json.dumps({"client": host, "scheme": websocket.scope["scheme"]}))
        while True:
            message = await websocket.receive()  # not iter_text(): it hides the disconnect's code
            if message["type"] == "websocket.disconnect":
                self.left.setdefault(path, []).append(message["code"])
                return
            if path == "/echo":
                await websocket.send_text(message.get("text") or "")


# --------------------------------------------------------------------------------------------------
# Upgrade and Connection


@experiment("a websockets client opens ws://nginx/echo through a location with only proxy_pass (HTTP/1.0 upstream)")
async def _proxy_without_upgrade(trial: Trial) -> Evidence:
    head = _need_nginx()
    backend = _Backend()
    with trial.serve(backend, ws_ping_interval=None) as server:
        with _proxy(server, websocket_headers=False, http_version="1.0", forwarded_headers=False) as bare:
            bare_seen = await attempt(bare.ws_url("/echo"), send=["hello"], receive=1)
            bare_arrived = list(backend.arrived)
        backend.arrived.clear()
        with _proxy(server, forwarded_headers=False) as fixed:
            fixed_seen = await attempt(fixed.ws_url("/echo"), send=["hello"], receive=1)
            fixed_arrived = list(backend.arrived)
    plain_get = bare_arrived == [("http", "1.0", "-")]
    verdicts = {
        "nginx-502": bare_seen.status == 502,
        "plain-get-404": plain_get and bare_seen.status == 404,
        "opens-no-messages": bare_seen.opened and not bare_seen.messages,
        "nginx-426-itself": bare_seen.status == 426 and not bare_arrived,
    }
    lines = (
        head,
        f"without the headers: client saw: {bare_seen}",
        f"  the app got (type, HTTP version, Upgrade): {bare_arrived}",
        f"with `proxy_set_header Upgrade/Connection` and HTTP/1.1: client saw: {fixed_seen}",
        f"  the app got: {fixed_arrived}",
    )
    return trial.settle(lines, verdicts, status=bare_seen.status, arrived=bare_arrived)


# --------------------------------------------------------------------------------------------------
# proxy_read_timeout on a quiet WebSocket

READ_TIMEOUT = 0.6  # seconds of proxy_read_timeout; nginx's default is 60
TRAFFIC_EVERY = 0.15  # the busy clients' ping or message interval: four per timeout, so load cannot starve them
WATCHED_FOR = 3 * READ_TIMEOUT  # how long the clients are watched


async def _keep_sending(ws: Any) -> None:
    """Send a message every TRAFFIC_EVERY s until cancelled or closed."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.send("still here")
            await asyncio.sleep(TRAFFIC_EVERY)


@experiment(
    f"proxy_read_timeout {READ_TIMEOUT:g} s, no server pings: a listening client, a pinging one, and one that sends "
    "to an endpoint that never answers"
)
async def _quiet_behind_nginx(trial: Trial) -> Evidence:
    head = _need_nginx()
    backend = _Backend()
    with trial.serve(backend, ws_ping_interval=None) as server, _proxy(server, read_timeout=READ_TIMEOUT) as proxy:
        listener = await connect(proxy.ws_url("/echo"), ping_interval=None)
        pinger = await connect(proxy.ws_url("/sink"), ping_interval=TRAFFIC_EVERY, ping_timeout=2 * READ_TIMEOUT)
        talker = await connect(proxy.ws_url("/sink"), ping_interval=None)
        sending = asyncio.create_task(_keep_sending(talker))
        watched_until = asyncio.get_running_loop().time() + WATCHED_FOR
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(watched_until):
                await listener.wait_closed()
        await asyncio.sleep(max(0.0, watched_until - asyncio.get_running_loop().time()))  # the others are watched too
        states = {"listener": listener.state.name, "pinger": pinger.state.name, "talker": talker.state.name}
        listener_code = listener.close_code
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        for ws in (pinger, talker):
            await ws.close()
        for _ in range(100):  # the app hears of the cut a moment after the client
            if backend.left.get("/echo"):
                break
            await asyncio.sleep(0.01)
        app_codes = backend.left.get("/echo", [])
    cut = states["listener"] == "CLOSED"
    verdicts = {
        "cut-1006-1005": cut and listener_code == 1006 and app_codes == [1005],
        "close-frame-1001": cut and listener_code == 1001,
        "upgraded-exempt": not cut,
        "client-pings-keep": states["pinger"] == "OPEN",
        "backend-traffic-only": states["talker"] == "CLOSED",
    }
    lines = (
        head,
        f"within {WATCHED_FOR:g} s the listening client was {'cut' if cut else 'not cut'}: client close code "
        f"{listener_code}, the app's websocket.disconnect codes {app_codes}",
        f"after {WATCHED_FOR:g} s, the client pinging every {TRAFFIC_EVERY:g} s: {states['pinger']}",
        f"after {WATCHED_FOR:g} s, the client sending a message every {TRAFFIC_EVERY:g} s to an endpoint that never "
        f"sends: {states['talker']}",
    )
    return trial.settle(lines, verdicts, states=states, codes=app_codes)


# --------------------------------------------------------------------------------------------------
# X-Forwarded-For, proxy_headers and forwarded_allow_ips

CLIENT_HOST = "127.0.0.2"  # the client's source address: all of 127.0.0.0/8 is loopback on Linux, nginx uses .1
FORGED = "203.0.113.7"  # what the client writes into its own X-Forwarded-For (TEST-NET-3, RFC 5737)


async def _scope_client(url: str, source: str = CLIENT_HOST) -> str:
    """scope["client"][0] as /whoami reported it to a client from `source` that sends a forged X-Forwarded-For."""
    async with connect(url, additional_headers={"X-Forwarded-For": FORGED}, local_addr=(source, 0)) as ws:
        return str(json.loads(await asyncio.wait_for(ws.recv(), 2))["client"])


@experiment(
    f"a client on {CLIENT_HOST} sends X-Forwarded-For: {FORGED}; what /whoami reads in scope['client'] in each setup"
)
async def _forwarded_for_trust(trial: Trial) -> Evidence:
    head = _need_nginx()
    backend = _Backend()
    seen: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        default = stack.enter_context(serve(backend, name=f"{trial.server_name}-defaults"))
        everyone = stack.enter_context(serve(backend, name=f"{trial.server_name}-all", forwarded_allow_ips="*"))
        no_headers = stack.enter_context(serve(backend, name=f"{trial.server_name}-off", proxy_headers=False))
        setups = {
            "defaults-behind-nginx": stack.enter_context(_proxy(default)),
            "trust-everyone": stack.enter_context(_proxy(everyone)),
            "no-forwarding-lines": stack.enter_context(_proxy(default, forwarded_headers=False)),
            "proxy-headers-off": stack.enter_context(_proxy(no_headers)),
        }
        for claim, proxy in setups.items():
            seen[claim] = await _scope_client(proxy.ws_url("/whoami"))
        seen["direct-from-loopback"] = await _scope_client(default.ws_url("/whoami"), source="127.0.0.1")
    labels = {
        "defaults-behind-nginx": "nginx with the forwarding lines, uvicorn's defaults",
        "trust-everyone": 'the same nginx, uvicorn with forwarded_allow_ips="*"',
        "no-forwarding-lines": "nginx without the forwarding lines, uvicorn's defaults",
        "proxy-headers-off": "nginx with the forwarding lines, uvicorn with proxy_headers=False",
        "direct-from-loopback": "no nginx: straight to uvicorn (defaults) from 127.0.0.1",
    }
    lines = [head, *(f"{labels[claim]}: scope client {host}" for claim, host in seen.items())]
    return trial.settle(lines, {claim: host == FORGED for claim, host in seen.items()}, seen=seen)


# --------------------------------------------------------------------------------------------------
# wss:// terminated at nginx, with a private CA made by trustme


@contextlib.contextmanager
def _certificate_files(ca: Any) -> Iterator[tuple[Path, Path]]:
    """(cert.pem with its chain, key.pem) for 127.0.0.1 and localhost, signed by `ca`, in a folder removed after."""
    folder = Path(tempfile.mkdtemp(prefix="evidence-tls-"))
    try:
        certificate = ca.issue_cert("127.0.0.1", "localhost")
        for number, pem in enumerate(certificate.cert_chain_pems):
            pem.write_to_path(folder / "cert.pem", append=number > 0)
        certificate.private_key_pem.write_to_path(folder / "key.pem")
        yield folder / "cert.pem", folder / "key.pem"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _tls_attempt(url: str, context: ssl.SSLContext) -> str:
    """What a client with `context` saw at `url`: the scheme /whoami reported, or the error's type and reason."""
    try:
        async with connect(url, ssl=context) as ws:
            return "opened, the app saw scheme " + repr(json.loads(await asyncio.wait_for(ws.recv(), 2))["scheme"])
    except ssl.SSLCertVerificationError as exc:
        return f"{type(exc).__name__}: {exc.reason}: {exc.verify_message}"
    except ssl.SSLError as exc:
        return f"{type(exc).__name__}: {exc.reason}"


def _title(page: str) -> str:
    """The <title> of an HTML page nginx answered with, or "" when there is none."""
    match = re.search(r"<title>(.*?)</title>", page)
    return match[1] if match else ""


@experiment("nginx terminates TLS with a certificate from a trustme CA and proxies plain ws:// to uvicorn's /whoami")
async def _wss_at_nginx(trial: Trial) -> Evidence:
    import trustme

    head = _need_nginx()
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with (
        _certificate_files(ca) as tls,
        trial.serve(_Backend()) as server,
        _proxy(server, tls=tls) as proxy,
    ):
        seen = {
            "trusting": await _tls_attempt(proxy.ws_url("/whoami"), trusting),
            "system": await _tls_attempt(proxy.ws_url("/whoami"), ssl.create_default_context()),
        }
        plain = await attempt(proxy.ws_url("/whoami").replace("wss://", "ws://", 1))
    verdicts = {
        "app-sees-ws": seen["trusting"] == "opened, the app saw scheme 'ws'",
        "app-sees-wss": seen["trusting"] == "opened, the app saw scheme 'wss'",
        "system-cas-verify": seen["system"].startswith("opened"),
        "plain-gets-400": plain.status == 400,
    }
    lines = (
        head,
        f"a client trusting the CA: {seen['trusting']}",
        f"a client with ssl.create_default_context() only (the system's CAs): {seen['system']}",
        f"a client speaking plain ws:// to the TLS port: HTTP {plain.status}, page title {_title(plain.body)!r}",
    )
    return trial.settle(lines, verdicts, seen=seen, plain_status=plain.status)
