"""Evidence for the production quiz's questions on lessons 13-15 (quizzes/production.toml): servers compared,
testing, dead peers and reconnection.

Each experiment runs real servers (uvicorn 0.54 with websockets-sansio unless a fact line names another) and
real `websockets` clients, and settles every option's claim from what it observed, with the lessons' own helpers:
`helpers.server_matrix` (lesson 13's app and probes), Starlette's TestClient (14), `helpers.faults.relay` and
`helpers.resume` (15).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from helpers.clients import attempt, connect
from helpers.evidence.broadcasting import settle
from helpers.evidence.core import Evidence, Trial, experiment
from helpers.evidence.shared import handshake_kind, recording_warnings
from helpers.faults.relay import start_relay
from helpers.loops import await_on
from helpers.resume import ResumableRoom, ResumeState
from helpers.server_matrix import apps, probes

__all__: list[str] = []  # importing the module registers its experiments

FORGED = "203.0.113.7"  # the address a loopback client claims in X-Forwarded-For (a documentation range)


# --------------------------------------------------------------------------------------------------
# lesson 13: one app on two servers


@experiment("lesson 13's raw app under uvicorn 0.54 (websockets-sansio) and hypercorn 0.18, in threads")
async def _two_servers(trial: Trial) -> Evidence:
    seen: dict[str, dict[str, str]] = {}
    for server in ("uvicorn", "hypercorn"):
        with trial.serve(apps.app, server=server) as served:
            handle = cast(probes.Handle, served)  # these three probes use only ws_url(), not a process's pid
            seen[server] = {
                "raise": await probes.raise_after_accept(handle),
                "client": await probes.forwarded_client(handle),
                "reject": await probes.close_before_accept(handle),
            }
    raised = (seen["uvicorn"]["raise"], seen["hypercorn"]["raise"])
    client = (seen["uvicorn"]["client"], seen["hypercorn"]["client"])
    verdicts = settle(
        raised,
        {
            "raise-drop-vs-1011": ("dropped (1006)", "closed 1011"),
            "raise-both-1011": ("closed 1011", "closed 1011"),
            "raise-both-drop": ("dropped (1006)", "dropped (1006)"),
            "raise-1011-vs-drop": ("closed 1011", "dropped (1006)"),
        },
    )
    verdicts |= {
        "xff-uvicorn-trusts": client[0] == FORGED,
        "xff-hypercorn-trusts": client[1] == FORGED,
        "xff-needs-flag": client == ("127.0.0.1", "127.0.0.1"),
        "reject-403-both": all(s["reject"] == "HTTP 403" for s in seen.values()),
    }
    lines = [
        f"{server}: raises after accept -> {s['raise']}; scope['client'] with X-Forwarded-For: {FORGED} -> "
        f"{s['client']}; close(4001) before accept -> {s['reject']}"
        for server, s in seen.items()
    ]
    return trial.settle(lines, verdicts, seen=seen)


# --------------------------------------------------------------------------------------------------
# lesson 14: what an in-process test sees, and what a real client sees


async def _refusing_room(websocket: WebSocket) -> None:
    if not websocket.path_params["room"].isalnum():
        await websocket.close(code=4003, reason="room names are letters and digits")
        return
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()


def _testclient_refusal(app: Starlette) -> str:
    """What Starlette's TestClient shows a test for a room the app refuses before accept."""
    with TestClient(app) as client:
        try:
            with client.websocket_connect("/chat/no-such-room!") as ws:
                return f"opened, got {ws.receive_text()!r}"
        except WebSocketDisconnect as exc:
            return f"WebSocketDisconnect {exc.code}"


@experiment("a Starlette room closes with 4003 before accept: Starlette's TestClient, then uvicorn 0.54 + websockets")
async def _refusal_in_tests(trial: Trial) -> Evidence:
    app = Starlette(routes=[WebSocketRoute("/chat/{room}", _refusing_room)])
    with recording_warnings():  # TestClient may warn that it found httpx rather than httpx2
        in_process = await asyncio.to_thread(_testclient_refusal, app)
    with trial.serve(app) as server:
        outcome = await attempt(server.ws_url("/chat/no-such-room!"))
    real = handshake_kind(outcome)
    real_text = f"HTTP {outcome.status}" if outcome.rejected else f"{real}, close {outcome.close_code}"
    verdicts = settle(
        (in_process, real_text),
        {
            "tc-4003-real-403": ("WebSocketDisconnect 4003", "HTTP 403"),
            "both-403": lambda seen: "403" in seen[0] and "4003" not in seen[0] and seen[1] == "HTTP 403",
            "both-4003": lambda seen: seen[0] == "WebSocketDisconnect 4003" and "4003" in seen[1],
            "tc-1000": lambda seen: seen[0] == "WebSocketDisconnect 1000",
        },
    )
    lines = (
        f"TestClient: the test caught {in_process}",
        f"websockets client against uvicorn: {real_text}",
    )
    return trial.settle(lines, verdicts, in_process=in_process, real=real_text)


# --------------------------------------------------------------------------------------------------
# lesson 15: a dead path under server pings, and resuming from a sequence number

PING = 0.3  # uvicorn's ws_ping_interval and ws_ping_timeout in the keepalive experiment, seconds


@experiment(
    f"uvicorn 0.54 (websockets-sansio) pinging every {PING:g} s (pong within {PING:g} s); the path to the client "
    "freezes, later thaws"
)
async def _frozen_path(trial: Trial) -> Evidence:
    left: dict[str, int] = {}
    joined = asyncio.Event()

    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        joined_loop.call_soon_threadsafe(joined.set)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect as gone:
            left["code"] = gone.code

    joined_loop = asyncio.get_running_loop()
    app = Starlette(routes=[WebSocketRoute("/room", room)])
    with trial.serve(app, ws_ping_interval=PING, ws_ping_timeout=PING) as server, start_relay(server.port) as relay:
        ws = await connect(relay.ws_url("/room"), ping_interval=None)
        await asyncio.wait_for(joined.wait(), 2)
        relay.freeze()
        started = time.monotonic()
        while "code" not in left and time.monotonic() - started < 4 * PING + 2:
            await asyncio.sleep(0.02)
        heard = left.get("code")
        relay.thaw()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(2):
                while True:
                    await ws.recv()
        client = (ws.close_code, ws.close_reason)
        ws.transport.abort()
    verdicts = settle(
        (heard, client),
        {
            "app-1005-client-1011": (1005, (1011, "keepalive ping timeout")),
            "app-1011-client-1011": lambda s: s[0] == 1011 and s[1][0] == 1011,
            "both-1006": lambda s: s[0] == 1006 and s[1][0] == 1006,
            "app-never-hears": lambda s: s[0] is None,
        },
    )
    lines = (
        f"the app's disconnect while the path was frozen: {heard if heard is not None else 'none'}",
        f"the client, once the path was back: close {client[0]} {client[1]!r}",
    )
    return trial.settle(lines, verdicts, app=heard, client=client)


async def _read(ws: object, count: int, state: ResumeState) -> list[str | None]:
    async with asyncio.timeout(2):
        return [state.accept(await ws.recv()) for _ in range(count)]  # type: ignore[attr-defined]


@experiment("helpers.resume.ResumableRoom(history_size=4): ivy saw m1, m2; m3-m5 are published while she is away")
async def _resume_since(trial: Trial) -> Evidence:
    news = ResumableRoom(history_size=4, path="/news")

    async def publish(*texts: str) -> None:
        for text in texts:
            news.publish(text)

    with trial.serve(news.app) as server:
        ivy = ResumeState()
        first = await connect(ivy.url_for(server.ws_url("/news")))
        ivy.connected(first.response.headers)
        await await_on(server.loop, publish("m1", "m2"))
        before = await _read(first, 2, ivy)
        first.transport.abort()
        await await_on(server.loop, publish("m3", "m4", "m5"))
        back = await connect(ivy.url_for(server.ws_url("/news")))
        await await_on(server.loop, publish("m6"))
        after = await _read(back, 4, ivy)
        await back.close()
    verdicts = settle(
        after,
        {
            "replays-missed": ["m3", "m4", "m5", "m6"],
            "only-live": lambda got: got[:1] == ["m6"],
            "replays-all-history": lambda got: got[:2] == ["m2", "m3"] or got[:1] == ["m1"],
            "replay-without-live": lambda got: "m6" not in got,
        },
    )
    lines = (
        f"before the cut ivy saw {before}",
        f"reconnected with ?since=2 she got {after}; gaps {ivy.gaps}, duplicates dropped {ivy.duplicates}",
    )
    return trial.settle(lines, verdicts, after=after)


# --------------------------------------------------------------------------------------------------
# lesson 14: an assertion that forgot its await, under two warning filters

FORGOTTEN_AWAIT_CONFTEST = """
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["channels"])
django.setup()
"""

FORGOTTEN_AWAIT_TEST = """
import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator


class Greeter(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send("hello")  # so a test that expects silence should fail


@pytest.mark.asyncio
async def test_silence_forgot_await():
    cat = WebsocketCommunicator(Greeter.as_asgi(), "/")
    assert (await cat.connect())[0]
    assert cat.receive_nothing()  # no await
    await cat.disconnect()
"""


def _forgotten_await_runs() -> dict[str, str]:
    """The test's outcome under `-W error::RuntimeWarning` and under `-W error` (as filterwarnings), each run
    by the pytest command in a child process."""
    from helpers.pytest_runs.project import Project

    outcomes = {}
    with Project(prefix="evidence-forgotten-await-") as project:
        project.write("conftest.py", FORGOTTEN_AWAIT_CONFTEST)
        project.write("test_trap.py", FORGOTTEN_AWAIT_TEST)
        for rule in ("error::RuntimeWarning", "error"):
            done = project.pytest(
                "-q",
                "--disable-plugin-autoload",
                "-p",
                "pytest_asyncio.plugin",
                "-o",
                "asyncio_default_fixture_loop_scope=function",
                "-o",
                f"filterwarnings={rule}",
                "test_trap.py",
                timeout=15,
            )
            outcome = done.run["test_trap.py::test_silence_forgot_await"]
            kind = "PytestUnraisableExceptionWarning" if "PytestUnraisableExceptionWarning" in outcome.message else ""
            outcomes[rule] = f"{outcome.outcome} ({kind})" if kind else outcome.outcome
    return outcomes


@experiment("`assert cat.receive_nothing()` without await (Channels 4.3.2), a message waiting; pytest 9.2 twice")
async def _forgotten_await(trial: Trial) -> Evidence:
    outcomes = await asyncio.to_thread(_forgotten_await_runs)
    lenient, strict = outcomes["error::RuntimeWarning"], outcomes["error"]
    verdicts = {
        "passes-runtimewarning-filter": lenient == "passed",
        "fails-error-filter": strict == "failed (PytestUnraisableExceptionWarning)",
        "fails-runtimewarning-filter": lenient.startswith("failed"),
        "passes-both": lenient == strict == "passed",
    }
    lines = [f"-o filterwarnings={rule}: the test {outcome}" for rule, outcome in outcomes.items()]
    return trial.settle(lines, verdicts, outcomes=outcomes)


# --------------------------------------------------------------------------------------------------
# lesson 15: which client arguments make the client itself find a dead path

CLIENT_KEEPALIVE = {  # claim -> the keyword arguments a quiz option passes to websockets' connect()
    "interval-and-timeout": {"ping_interval": PING, "ping_timeout": PING},
    "interval-only": {"ping_interval": PING},
    "open-close-timeouts": {"open_timeout": PING, "close_timeout": PING},
    "keepalive-keyword": {"keepalive": PING},
}
CLIENT_WATCH = 1.5  # seconds after the freeze in which a client must have given up


@experiment(
    f"four websockets clients through one relay to uvicorn 0.54 without server pings; the path freezes for "
    f"{CLIENT_WATCH:g} s"
)
async def _client_keepalive(trial: Trial) -> Evidence:
    app = Starlette(routes=[WebSocketRoute("/room", _quiet_room)])
    seen: dict[str, str] = {}
    clients = {}
    with trial.serve(app, ws_ping_interval=None) as server, start_relay(server.port) as relay:
        for claim, options in CLIENT_KEEPALIVE.items():
            try:
                clients[claim] = await connect(relay.ws_url("/room"), **options)
            except TypeError as exc:
                seen[claim] = f"TypeError: {exc}"
        relay.freeze()
        await asyncio.sleep(CLIENT_WATCH)
        for claim, ws in clients.items():
            sent = ws.protocol.close_sent
            seen[claim] = "still open" if sent is None else f"sent close {sent.code} {sent.reason!r}"
            ws.transport.abort()
    verdicts = {claim: seen[claim] == "sent close 1011 'keepalive ping timeout'" for claim in CLIENT_KEEPALIVE}
    lines = [f"connect(url, {_arguments(CLIENT_KEEPALIVE[claim])}): {seen[claim]}" for claim in CLIENT_KEEPALIVE]
    return trial.settle(lines, verdicts, seen=seen)


async def _quiet_room(websocket: WebSocket) -> None:
    """Accept and read until the connection ends; it never pings and never sends."""
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


def _arguments(options: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in options.items())
