"""Evidence for the broadcasting quiz (quizzes/broadcasting.toml).

Each experiment runs real servers and clients, records what it observed, and then settles every option of
its question(s) against that observation with `settle()`: an option's claim predicts what the run would
show if the option were true; a claim whose prediction matches is demonstrated, every other claim is refuted
by the same observation. The fact lines print what was observed, so a reader can see why each wrong option is
wrong. Unless a fact line says otherwise, servers are uvicorn 0.54 with its default `websockets-sansio`
protocol, in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import attempt, collect, connect
from helpers.evidence.core import Evidence, EvidenceError, Trial, experiment
from helpers.evidence.shared import hear_all, listen, masked, recording_warnings, server_errors, warning_lines
from helpers.servers import ServerStartError, ThreadServer
from helpers.slow_clients import SLOW_MESSAGES, slow_client_run, slow_client_scene

__all__ = ["settle"]  # importing the module registers its experiments; `two_process_chat` comes from __getattr__

Prediction = object  # a value the observation must equal, or a callable that tests the observation


def settle(observed: object, predictions: dict[str, Prediction]) -> dict[str, bool]:
    """Each claim's verdict: its prediction checked against what the run observed."""
    return {
        claim: bool(predicted(observed) if callable(predicted) else predicted == observed)
        for claim, predicted in predictions.items()
    }


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll `condition` every 10 ms for up to `timeout` s; whether it became true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# --------------------------------------------------------------------------------------------------
# the broadcaster chat


def _broadcaster_lifespan(url: str) -> Callable[[Any], Any]:
    from broadcaster import Broadcast

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with Broadcast(url) as broadcast:
            app.state.broadcast = broadcast
            yield

    return lifespan


async def _forward(subscriber: Any, websocket: Any) -> None:
    async for event in subscriber:
        await websocket.send_text(event.message)


async def _chat_endpoint(websocket: WebSocket, mistake: str = "", channel: str = "chat") -> None:
    """Subscribe, say "ready", forward every event to the client, publish every text the client sends.

    `mistake` makes one of the changes a quiz option proposes: "wait-for" wraps publish() in
    `asyncio.wait_for(..., 1)`.
    """
    broadcast = websocket.app.state.broadcast
    await websocket.accept()
    async with broadcast.subscribe(channel=channel) as subscriber:
        await websocket.send_text("ready")
        forward = asyncio.create_task(_forward(subscriber, websocket))
        try:
            async for text in websocket.iter_text():
                if mistake == "wait-for":
                    await asyncio.wait_for(broadcast.publish(channel=channel, message=text), 1)
                else:
                    await broadcast.publish(channel=channel, message=text)
        finally:
            forward.cancel()
            await asyncio.gather(forward, return_exceptions=True)


def _broadcaster_app(url: str = "memory://", broadcast: Any = None, mistake: str = "") -> FastAPI:
    """The chat at /chat (channel "chat") and /room/{channel}; connected in its lifespan unless `broadcast` is given."""
    app = FastAPI(lifespan=_broadcaster_lifespan(url)) if broadcast is None else FastAPI()
    if broadcast is not None:
        app.state.broadcast = broadcast

    async def chat(websocket: WebSocket) -> None:
        await _chat_endpoint(websocket, mistake)

    async def room(websocket: WebSocket, channel: str) -> None:
        await _chat_endpoint(websocket, mistake, channel)

    app.add_api_websocket_route("/chat", chat)
    app.add_api_websocket_route("/room/{channel}", room)
    return app


async def _join(url: str) -> ClientConnection:
    """Connect and wait for "ready" (the endpoint has subscribed), so nothing published later is missed."""
    ws = await connect(url)
    ready = await asyncio.wait_for(ws.recv(), 2)
    if ready != "ready":
        raise EvidenceError(f"expected 'ready' from the chat endpoint, got {ready!r}")
    return ws


@experiment("broadcaster chat (memory://): ann and ben subscribed, ann says 'first'; cy subscribes; ben says 'second'")
async def _late_subscriber(trial: Trial) -> Evidence:
    with trial.serve(_broadcaster_app()) as server:
        url = server.ws_url("/chat")
        ann, ben = await _join(url), await _join(url)
        await ann.send("first")
        (ann_first, _), (ben_first, _) = await asyncio.gather(listen(ann), listen(ben))
        cy = await _join(url)
        await ben.send("second")
        heard = await hear_all({"ann": ann, "ben": ben, "cy": cy})
        errors = server_errors(server)
    cy_heard = heard["cy"]
    settled = settle(
        cy_heard,
        {
            "only-later": ["second"],
            "replays-all": ["first", "second"],
            "misses-all": [],
            "retains-latest": lambda got: bool(got) and got[0] == "first",
        },
    )
    lines = (
        f"before cy subscribed: ann heard {ann_first}, ben heard {ben_first}",
        f"after cy subscribed and ben said 'second': ann heard {heard['ann']}, ben heard {heard['ben']}",
        f"cy heard: {cy_heard}: {'no' if 'first' not in cy_heard else 'a'} 'first' (published before she "
        f"subscribed), {'and' if 'second' in cy_heard else 'but no'} 'second' (published after)",
        f"server errors: {errors}",
    )
    return trial.settle(lines, settled, cy=cy_heard)


@experiment("broadcaster chat (memory://): ann and ben in channel 'lobby', cy in 'kitchen'; ann says 'hello'")
async def _channel_chat(trial: Trial) -> Evidence:
    with trial.serve(_broadcaster_app()) as server:
        clients = {
            "ann": await _join(server.ws_url("/room/lobby")),
            "ben": await _join(server.ws_url("/room/lobby")),
            "cy": await _join(server.ws_url("/room/kitchen")),
        }
        await clients["ann"].send("hello")
        heard = await hear_all(clients)
        errors = server_errors(server)
    once = ["hello"]
    settled = settle(
        heard,
        {
            "lobby-incl-sender": {"ann": once, "ben": once, "cy": []},
            "others-only": {"ann": [], "ben": once, "cy": []},
            "every-channel": {"ann": once, "ben": once, "cy": once},
            "twice-each": {"ann": once * 2, "ben": once * 2, "cy": []},
        },
    )
    lines = (*(f"{who} heard: {messages}" for who, messages in heard.items()), f"server errors: {errors}")
    return trial.settle(lines, settled, heard=heard)


BLANKS = {  # claim -> the line that fills the blank in the question's code
    "await-get": "event = await subscriber.get()",
    "get-no-await": "event = subscriber.get()",
    "hub-receive": 'event = await hub.receive(channel="lobby")',
    "anext": "event = await anext(subscriber)",
}


async def _fill_blank(claim: str) -> str:
    """Run the question's code with one candidate line; what it printed, or the error it raised."""
    from broadcaster import Broadcast

    async with Broadcast("memory://") as hub, hub.subscribe(channel="lobby") as subscriber:
        await hub.publish(channel="lobby", message="hi")
        event: Any = None
        try:
            if claim == "await-get":
                event = await asyncio.wait_for(subscriber.get(), 1)
            elif claim == "get-no-await":
                event = subscriber.get()
            elif claim == "hub-receive":
                event = await asyncio.wait_for(hub.receive(channel="lobby"), 1)  # type: ignore[attr-defined]
            else:
                event = await asyncio.wait_for(anext(subscriber), 1)  # type: ignore[call-overload]
            return f"printed: {event.channel} {event.message}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            if asyncio.iscoroutine(event):
                event.close()  # the un-awaited get(): closed here, so it cannot warn later


@experiment("the Broadcast('memory://') snippet run with each candidate line for the blank")
async def _broadcast_api(trial: Trial) -> Evidence:
    results = {claim: await _fill_blank(claim) for claim in BLANKS}
    lines = [f"{BLANKS[claim]}  ->  {result}" for claim, result in results.items()]
    found = importlib.util.find_spec("fastapi_broadcast") is not None
    lines.append(f"import fastapi_broadcast: {'available' if found else 'no such module'}")
    verdicts = {claim: result == "printed: lobby hi" for claim, result in results.items()}
    return trial.settle(lines, verdicts, results=results)


# --------------------------------------------------------------------------------------------------
# the ConnectionManager


def _manager_app(cleanup: str = "except") -> tuple[Any, set[Any], list[tuple[str, int, str]]]:
    """A FastAPI ConnectionManager chat and its set; cleanup 'except' (only WebSocketDisconnect) or 'tidy'.

    'tidy' also removes a socket whose send failed, from the set the loop is walking. `left` records each
    WebSocketDisconnect the endpoint caught: (name, code, reason).
    """
    active: set[WebSocket] = set()
    left: list[tuple[str, int, str]] = []
    app = FastAPI()

    async def broadcast(text: str) -> None:
        if cleanup == "tidy":
            for other in active:
                try:
                    await other.send_text(text)
                except WebSocketDisconnect:
                    active.discard(other)
        else:
            for other in list(active):
                await other.send_text(text)

    @app.websocket("/chat/{name}")
    async def chat(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        active.add(websocket)
        await websocket.send_text("welcome")
        try:
            while True:
                text = await websocket.receive_text()
                await broadcast(f"{name}: {text}")
        except WebSocketDisconnect as exc:
            left.append((name, exc.code, exc.reason))
            active.discard(websocket)

    return app, active, left


async def _names(active: set[Any]) -> list[str]:
    return sorted(ws.path_params["name"] for ws in active)


async def _join_manager(server: ThreadServer, names: tuple[str, ...]) -> dict[str, ClientConnection]:
    clients = {}
    for who in names:
        clients[who] = await connect(server.ws_url(f"/chat/{who}"))
        await clients[who].recv()  # "welcome": registered
    return clients


def _left_text(left: list[tuple[str, int, str]]) -> list[str]:
    return [f"{who} ({code}{', ' + repr(reason) if reason else ''})" for who, code, reason in left]


@experiment("a ConnectionManager (except WebSocketDisconnect only): five clients join, four leave four ways")
async def _manager_count(trial: Trial) -> Evidence:
    app, active, left = _manager_app()
    with trial.serve(app) as server:
        clients = await _join_manager(server, ("ann", "ben", "cy", "dee", "eve"))
        await clients["ann"].close()  # normal close: 1000
        await clients["ben"].close(4001, "bye")  # a close code of the app's own
        clients["cy"].transport.abort()  # gone without a close frame (a killed browser, a lost network)
        await clients["dee"].send(b"\x89PNG")  # a binary frame into receive_text()
        await clients["dee"].wait_closed()
        await _until(lambda: len(left) >= 3)
        await asyncio.sleep(0.05)  # anything still on its way is in by now
        room = server.run(_names(active))
        caught = list(left)
        errors = server_errors(server)
        await clients["eve"].close()
    codes = {who: code for who, code, _ in caught}
    room_settled = settle(
        room,
        {
            "ghost-dee": ["dee", "eve"],
            "every-exit-cleans": ["eve"],
            "drop-not-caught": ["cy", "dee", "eve"],
            "crash-cleaned-drop-stays": ["cy", "eve"],
        },
    )
    observed_codes = (codes.get("ann"), codes.get("ben"), codes.get("cy"))
    codes_settled = settle(
        observed_codes,
        {
            "codes-1000-4001-1005": (1000, 4001, 1005),
            "codes-1000-4001-1006": (1000, 4001, 1006),
            "codes-1000-1000-1006": (1000, 1000, 1006),
            "codes-1000-4001-none": (1000, 4001, None),
        },
    )
    settled = room_settled | codes_settled
    lines = (
        "ann closed (1000), ben closed with 4001 'bye', cy's connection was aborted, dee sent a binary frame",
        f"WebSocketDisconnect caught by the endpoint: {_left_text(sorted(caught))}",
        f"still in the set: {room}",
        f"server errors: {errors}",
    )
    return trial.settle(lines, settled, room=room, codes=codes)


@experiment(
    "a ConnectionManager (except WebSocketDisconnect only): mallory sends a binary frame, then alice says hello"
)
async def _ghost_socket(trial: Trial) -> Evidence:
    app, active, left = _manager_app("except")
    with trial.serve(app) as server:
        clients = await _join_manager(server, ("alice", "bob", "mallory"))
        await clients["mallory"].send(b"\x89PNG")
        await clients["mallory"].wait_closed()
        await clients["alice"].send("hello")
        with contextlib.suppress(ConnectionClosed):  # whatever alice gets before her connection ends
            await collect(clients["alice"], [], quiet=1)
        await _until(lambda: bool(left))
        room = server.run(_names(active))
        caught = _left_text(left)
        errors = server_errors(server)
        for ws in clients.values():
            await ws.close()
    settled = settle(
        caught,
        {
            "log-alice-1006": ["alice (1006)"],
            "log-empty": [],
            "log-mallory-1006": ["mallory (1006)"],
            "log-mallory-1011": ["mallory (1011)"],
        },
    )
    lines = (
        f"WebSocketDisconnect caught by the endpoint: {caught}",
        f"still in the set: {room}",
        f"alice's connection: {'closed' if clients['alice'].close_code is not None else 'open'}",
        f"server errors: {errors}",
    )
    return trial.settle(lines, settled, left=caught, room=room)


@dataclass(frozen=True)
class _Tidy:
    room: list[str]
    alice_dropped: bool
    error: str


@experiment("broadcast() discards a socket whose send failed, inside `for other in active`; then alice says hello")
async def _set_changed(trial: Trial) -> Evidence:
    app, active, _ = _manager_app("tidy")
    with trial.serve(app) as server:
        clients = await _join_manager(server, ("alice", "bob", "mallory"))
        await clients["mallory"].send(b"\x89PNG")
        await clients["mallory"].wait_closed()
        before = len(server.errors)  # mallory's KeyError: 'text'
        await clients["alice"].send("hello")
        with contextlib.suppress(ConnectionClosed):
            await collect(clients["alice"], [], quiet=1)
        await _until(lambda: len(server.errors) > before, 1.0)
        room = server.run(_names(active))
        errors = server.errors[before:]
        observed = _Tidy(room, clients["alice"].close_code is not None, "; ".join(errors) or "none")
        for ws in clients.values():
            await ws.close()
    settled = settle(
        observed,
        {
            "set-changed-sender-crashes": _Tidy(
                ["alice", "bob"], True, "RuntimeError: Set changed size during iteration"
            ),
            "tidy-works": lambda o: o.error == "none" and not o.alice_dropped and "mallory" not in o.room,
            "discard-keyerror": lambda o: o.error.startswith("KeyError"),
            "discard-deferred": lambda o: "mallory" in o.room,
        },
    )
    lines = (
        f"after alice's 'hello': still in the set: {observed.room}",
        f"alice's connection: {'dropped' if observed.alice_dropped else 'open'}",
        f"errors raised in alice's handler: {observed.error}",
    )
    return trial.settle(lines, settled, observed=observed)


# --------------------------------------------------------------------------------------------------
# start-up code


@experiment("a FastAPI app with lifespan=... that also registers @app.on_event('startup')")
async def _lifespan_on_event(trial: Trial) -> Evidence:
    ran = {"lifespan": False, "on_event": False}

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        ran["lifespan"] = True
        yield

    app = FastAPI(lifespan=lifespan)
    with recording_warnings() as caught:

        @app.on_event("startup")
        async def startup() -> None:
            ran["on_event"] = True

    try:
        trial.serve(app).stop()  # start-up and shutdown both run
        started = True
    except ServerStartError:
        started = False
    deprecations = sum(issubclass(w.category, DeprecationWarning) for w in caught)
    observed = (started, ran["lifespan"], ran["on_event"])
    settled = settle(
        observed,
        {
            "on-event-skipped": (True, True, False),
            "both-run": (True, True, True),
            "lifespan-skipped": lambda o: o[0] and not o[1],
            "startup-typeerror": lambda o: not o[0],
        },
    )
    lines = (
        f"the server started: {started}",
        f"lifespan ran: {ran['lifespan']}",
        f"@app.on_event('startup') ran: {ran['on_event']}",
        f"warnings when registering it: {deprecations} x DeprecationWarning"
        if deprecations
        else "DeprecationWarnings when registering it: none",
    )
    return trial.settle(lines, settled, ran=dict(ran))


STARTUP_FORMS = {  # claim -> the app the option shows
    "fastapi-on-startup": "FastAPI(on_startup=[connect])",
    "starlette-on-startup": "Starlette(on_startup=[connect])",
    "starlette-lifespan": "Starlette(lifespan=lifespan)",
    "starlette-add-event-handler": 'Starlette() + app.add_event_handler("startup", connect)',
}


@experiment("four ways to register start-up code, each served by uvicorn: does `connect()` run?")
async def _startup_code(trial: Trial) -> Evidence:
    from starlette.applications import Starlette

    ran: list[str] = []
    now = {"form": ""}

    async def connect_hub() -> None:
        ran.append(now["form"])

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await connect_hub()
        yield

    def build(claim: str) -> Any:
        if claim == "fastapi-on-startup":
            return FastAPI(on_startup=[connect_hub])
        if claim == "starlette-on-startup":
            return Starlette(on_startup=[connect_hub])  # type: ignore[call-arg]
        if claim == "starlette-lifespan":
            return Starlette(lifespan=lifespan)
        app = Starlette()
        app.add_event_handler("startup", connect_hub)  # type: ignore[attr-defined]
        return app

    results = {}
    with recording_warnings() as caught:
        for form in STARTUP_FORMS:
            now["form"] = form
            try:
                app = build(form)
            except (TypeError, AttributeError) as exc:
                results[form] = f"{type(exc).__name__}: {exc}"
                continue
            trial.serve(app).stop()
            results[form] = "served; connect() ran" if form in ran else "served; connect() did not run"
    lines = [f"{STARTUP_FORMS[claim]}: {result}" for claim, result in results.items()]
    lines.append(f"warnings: {'; '.join(warning_lines(caught, Warning)) or 'none'}")
    return trial.settle(lines, {claim: claim in ran for claim in STARTUP_FORMS}, results=results)


# --------------------------------------------------------------------------------------------------
# disconnects


@experiment("an endpoint that catches WebSocketDisconnect inside its loop and reads on; the client closes")
async def _receive_after_disconnect(trial: Trial) -> Evidence:
    log: list[str] = []
    ended: list[bool] = []
    app = FastAPI()

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while len(log) < 5:  # a guard for this experiment: a handler that spun would stop here
                try:
                    text = await websocket.receive_text()
                except WebSocketDisconnect as exc:
                    log.append(f"left ({exc.code})")
                    continue
                log.append(f"got {text!r}")
                await websocket.send_text(f"echo: {text}")
        finally:
            ended.append(True)

    with trial.serve(app) as server:
        outcome = await attempt(server.ws_url("/echo"), send=["hi"], receive=1)
        await _until(lambda: bool(ended), 1.0)
        errors = server_errors(server)
    observed = {"log": list(log), "ended": bool(ended), "errors": errors}
    disconnected = 'WebSocketDisconnected: Cannot call "receive" once a disconnect message has been received.'
    settled = settle(
        observed,
        {
            "raises-websocketdisconnected": {"log": ["got 'hi'", "left (1000)"], "ended": True, "errors": disconnected},
            "spins": lambda o: o["log"].count("left (1000)") > 1,
            "waits-forever": lambda o: not o["ended"],
            "returns-empty": lambda o: "got ''" in o["log"],
        },
    )
    lines = (
        f"client saw: {outcome}",
        f"the endpoint's log: {log}",
        f"the handler ended: {bool(ended)}; with the error: {errors}",
    )
    return trial.settle(lines, settled, **observed)


@experiment("three clients connected to a FastAPI endpoint when the uvicorn server is stopped")
async def _server_stop(trial: Trial) -> Evidence:
    codes: list[int] = []
    app = FastAPI()

    @app.websocket("/idle")
    async def idle(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect as exc:
            codes.append(exc.code)

    server = trial.serve(app)
    try:
        clients = [await connect(server.ws_url("/idle")) for _ in range(3)]
        await asyncio.sleep(0.05)
        open_before = sum(ws.close_code is None for ws in clients)
        server.stop()
        for ws in clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), 2)
    finally:
        server.stop()
    received = [ws.protocol.close_rcvd.code if ws.protocol.close_rcvd is not None else None for ws in clients]
    server_first = all(ws.protocol.close_rcvd_then_sent for ws in clients)
    observed = {"clients": received, "endpoints": sorted(codes), "server closed first": server_first}
    settled = settle(
        observed,
        {
            "close-1012": {"clients": [1012] * 3, "endpoints": [1012] * 3, "server closed first": True},
            "close-1001": lambda o: o["clients"] == [1001] * 3,
            "dropped-1006": lambda o: o["clients"] == [None] * 3,
            "waits-for-clients": lambda o: not o["server closed first"],
        },
    )
    lines = (
        f"idle clients still open when server.stop() was called: {open_before}; stop() returned",
        f"close frames the clients received: {received}; the server closed first: {server_first}",
        f"WebSocketDisconnect codes the endpoints caught: {sorted(codes)}",
    )
    return trial.settle(lines, settled, **observed)


# --------------------------------------------------------------------------------------------------
# event loops


CROSS_LOOP = "attached to a different loop"


@dataclass(frozen=True)
class _Run:
    label: str
    outcome: str
    messages: tuple[str | bytes, ...]
    errors: tuple[str, ...]

    @property
    def works(self) -> bool:
        return self.messages == ("ready", "hello") and not self.errors

    @property
    def different_loop(self) -> bool:
        return any(CROSS_LOOP in text for text in self.errors)

    def describe(self) -> list[str]:
        return [f"{self.label}: client saw: {self.outcome}", f"    server errors: {'; '.join(self.errors) or 'none'}"]


async def _talk(server: ThreadServer, label: str) -> _Run:
    seen = await attempt(server.ws_url("/chat"), send=["hello"], receive=2, timeout=0.5)
    errors = tuple(masked(e) for e in dict.fromkeys(server.errors))
    return _Run(label, str(seen), tuple(seen.messages), errors)


LOOP_FREE_TRIES = 5  # a free loop makes the error a race (see below): one run that happens to work proves nothing


async def _connected_in_a_cell(
    trial: Trial, url: str, label: str, *, loop_free: bool = False, mistake: str = ""
) -> _Run:
    """Connect a Broadcast on another loop (the kernel's, in a notebook), publish once there, serve an app using it.

    The other loop then stops (a cell blocked in a synchronous call) unless `loop_free`; a client says hello.
    With the other loop free, the endpoint avoids the error only when that loop has already read Redis's reply into
    the connection's buffer, so the endpoint never has to wait on that loop's future: a race. A free loop therefore
    gets LOOP_FREE_TRIES clients in turn, and the run reports the first that failed (or the last, if all worked).
    """
    from broadcaster import Broadcast

    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, name="evidence-other-loop", daemon=True)
    thread.start()
    try:
        in_cell = Broadcast(url)
        asyncio.run_coroutine_threadsafe(in_cell.connect(), other).result(5)
        asyncio.run_coroutine_threadsafe(in_cell.publish(channel="chat", message="test"), other).result(5)
        if not loop_free:
            other.call_soon_threadsafe(other.stop)
            thread.join(5)
        with trial.serve(_broadcaster_app(broadcast=in_cell, mistake=mistake)) as server:
            for _ in range(LOOP_FREE_TRIES if loop_free else 1):
                run = await _talk(server, label)
                if not run.works:
                    break
        if not loop_free:
            thread = threading.Thread(target=other.run_forever, name="evidence-other-loop", daemon=True)
            thread.start()
        asyncio.run_coroutine_threadsafe(in_cell.disconnect(), other).result(5)
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()
    return run


@experiment(
    "a Broadcast connected and test-published on another event loop, used by a served endpoint; then each proposed fix"
)
async def _cross_loop(trial: Trial) -> Evidence:
    from helpers import redis_server

    if not redis_server.available():
        raise EvidenceError(f"this experiment needs Redis: {redis_server.INSTALL_HINT}")
    with redis_server.private_redis_url() as url:  # started for this run and stopped after it
        wrong = await _connected_in_a_cell(
            trial, url, "redis://, connected on another loop (a cell's), that loop then blocked"
        )
        fixes = {
            "lifespan-fix": None,
            "loop-free": await _connected_in_a_cell(
                trial,
                url,
                f"redis://, connected on the other loop, that loop left free ({LOOP_FREE_TRIES} clients in turn)",
                loop_free=True,
            ),
            "wait-for-publish": await _connected_in_a_cell(
                trial,
                url,
                "redis://, connected on the other loop, publish() in asyncio.wait_for(..., 1)",
                mistake="wait-for",
            ),
            "memory-url": await _connected_in_a_cell(
                trial, "memory://", "memory://, connected on the other loop, then blocked"
            ),
        }
        with trial.serve(_broadcaster_app(url)) as server:
            fixes["lifespan-fix"] = await _talk(server, "redis://, connected in the app's lifespan")
    runs = {claim: run for claim, run in fixes.items() if run is not None}
    lines = wrong.describe()
    for run in runs.values():
        lines += run.describe()
    lines.append("a fix works when the client's 'hello' comes back and the server logs no error")
    verdicts = {claim: wrong.different_loop and run.works for claim, run in runs.items()}
    return trial.settle(lines, verdicts, works={c: r.works for c, r in runs.items()})


async def _next_item_run(server: ThreadServer, queue: asyncio.Queue[str], item: str) -> str:
    """Ask the endpoint for the next item; once it says it is waiting, drop `item` into `queue` on its loop."""
    async with connect(server.ws_url("/next")) as ws:
        await ws.send("next?")
        if await asyncio.wait_for(ws.recv(), 2) != "waiting":
            raise EvidenceError("the inbox endpoint did not say 'waiting'")
        server.call_soon(queue.put_nowait, item)
        try:
            return masked(str(await asyncio.wait_for(ws.recv(), 1)))
        except TimeoutError:
            return "no reply within 1 s"


@experiment("a module-level asyncio.Queue used by an endpoint, across a server restart; then one made in the lifespan")
async def _module_queue(trial: Trial) -> Evidence:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    inbox: asyncio.Queue[str] = asyncio.Queue()  # "module level": made once, with the app

    async def next_item(websocket: Any) -> None:
        queue = websocket.app.state.inbox if hasattr(websocket.app.state, "inbox") else inbox
        await websocket.accept()
        async for _ in websocket.iter_text():
            await websocket.send_text("waiting")
            try:
                reply = f"got {await queue.get()}"
            except RuntimeError as exc:
                reply = f"RuntimeError: {exc}"
            await websocket.send_text(reply)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        app.state.inbox = asyncio.Queue()  # one per server start, on that server's loop
        yield

    module_app = Starlette(routes=[WebSocketRoute("/next", next_item)])
    fixed_app = Starlette(routes=[WebSocketRoute("/next", next_item)], lifespan=lifespan)
    replies: dict[str, list[str]] = {"module-level queue": [], "queue made in the lifespan": []}
    for label, app in (("module-level queue", module_app), ("queue made in the lifespan", fixed_app)):
        for number in (1, 2):  # the second time round, a restart
            with trial.serve(app) as server:
                queue = app.state.inbox if app is fixed_app else inbox  # the lifespan made a new one
                replies[label].append(await _next_item_run(server, queue, f"item {number}"))
    first, second = replies["module-level queue"]
    fixed = replies["queue made in the lifespan"]
    observed = (first, second, fixed)
    settled = settle(
        observed,
        {
            "bound-to-first-loop": lambda o: (
                o[0] == "got item 1"
                and "bound to a different event loop" in o[1]
                and o[2] == ["got item 1", "got item 2"]
            ),
            "shared-works": lambda o: o[1] == "got item 2",
            "waits-forever": lambda o: o[1] == "no reply within 1 s",
            "restart-fails": lambda o: o[1] is None,  # the second server replied, so it started
        },
    )
    lines = (
        f"module-level queue, server #1: {first}",
        f"module-level queue, server #2 (after a restart): {second}",
        f"queue made in the lifespan, servers #1 and #2: {fixed}",
    )
    return trial.settle(lines, settled, replies=replies)


# --------------------------------------------------------------------------------------------------
# processes


def __getattr__(attribute: str) -> Any:
    """`helpers.evidence.broadcasting:two_process_chat`, built on first use, for serve_process() children."""
    if attribute == "two_process_chat":
        return _broadcaster_app(os.environ.get("EVIDENCE_BROADCAST_URL", "memory://"))
    raise AttributeError(f"module 'helpers.evidence.broadcasting' has no attribute {attribute!r}")


@experiment("the same broadcaster chat with memory:// in two server processes, A and B")
async def _memory_two_processes(trial: Trial) -> Evidence:
    servers = {}
    heard: dict[str, list[str | bytes]] = {}
    errors = "the servers did not start"
    try:
        for place in ("A", "B"):
            servers[place] = trial.serve_process("helpers.evidence.broadcasting:two_process_chat", place)
        clients = {
            "ann (on A)": await _join(servers["A"].ws_url("/chat")),
            "ben (on A)": await _join(servers["A"].ws_url("/chat")),
            "cy (on B)": await _join(servers["B"].ws_url("/chat")),
        }
        await clients["ann (on A)"].send("hello from ann")
        heard = await hear_all(clients)
        errors = "; ".join(e for server in servers.values() for e in server.errors) or "none"
    except ServerStartError:
        pass
    finally:
        for server in servers.values():
            server.stop()
    started = len(servers) == 2 and bool(heard)
    hello = ["hello from ann"]
    observed = (started, heard.get("ann (on A)"), heard.get("ben (on A)"), heard.get("cy (on B)"))
    settled = settle(
        observed,
        {
            "same-process-only": (True, hello, hello, []),
            "all-processes": (True, hello, hello, hello),
            "ben-only": (True, [], hello, []),
            "refuses-two-processes": lambda o: not o[0],
        },
    )
    lines = [f"both processes started and served: {started}"]
    lines += [f"{who} heard: {messages or 'nothing'}" for who, messages in heard.items()]
    lines.append(f"errors the two servers logged: {errors}")
    return trial.settle(lines, settled, heard=heard)


# --------------------------------------------------------------------------------------------------
# slow clients

KEEPALIVE = {"ws_ping_interval": 0.5, "ws_ping_timeout": 1.0}  # uvicorn's options: a ping every 0.5 s, 1 s to answer


def _with_protocols(inner: Any) -> tuple[Any, dict[int, Any]]:
    """Wrap an ASGI app to note uvicorn's protocol object for each WebSocket, by the client's port.

    uvicorn hands the app its protocol's bound `send`, so `send.__self__` is the connection's protocol: the
    experiment reads its state (close frame queued? transport closing? bytes still unflushed?) from it.
    """
    protocols: dict[int, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("client"):
            protocols[scope["client"][1]] = getattr(send, "__self__", None)
        await inner(scope, receive, send)

    return app, protocols


def _sequential_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    clients: list[Any] = []

    async def chat(websocket: Any) -> None:
        await websocket.accept()
        clients.append(websocket)
        try:
            async for text in websocket.iter_text():
                for other in list(clients):
                    await other.send_text(text)
        finally:
            clients.remove(websocket)

    return Starlette(routes=[WebSocketRoute("/chat", chat)])


def _queued_app(**options: Any) -> tuple[Any, Any]:
    """A FanOut chat (helpers.fanout) whose members are named by their client's port; (app, hub)."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from helpers.fanout import FanOut

    hub = FanOut(**{"max_queue": 8, **options})

    async def chat(websocket: Any) -> None:
        await websocket.accept()
        async with hub.connected(websocket, name=str(websocket.client.port)):
            async for text in websocket.iter_text():
                hub.publish(text)

    return Starlette(routes=[WebSocketRoute("/chat", chat)]), hub


@dataclass(frozen=True)
class _Stuck:
    got: int  # messages the reading client got in the first burst
    errors: str  # errors the server logged while the client was stuck
    keepalive_close: tuple[int, str] | None  # the close frame uvicorn's keepalive queued for the stuck client
    transport_closing: bool
    unflushed: int  # bytes still in the stuck connection's transport buffer
    writable: bool  # uvicorn's flag that send() awaits
    got_after: int  # messages the reading client got in a second burst, after the keepalive gave up
    queued_got: int  # the same first burst through a FanOut


async def _protocol_state(protocol: Any) -> tuple[tuple[int, str] | None, bool, int, bool]:
    close = protocol.conn.close_sent if protocol.close_sent else None
    frame = (int(close.code), close.reason) if close is not None else None
    transport = protocol.transport
    return frame, transport.is_closing(), transport.get_write_buffer_size(), protocol.writable.is_set()


@experiment(
    "one client never reads; 40 x 256 kB are broadcast by `await send_text()` for each client in turn "
    "(uvicorn keepalive: ping every 0.5 s, 1 s to answer), then through a FanOut"
)
async def _slow_client(trial: Trial) -> Evidence:
    app, protocols = _with_protocols(_sequential_app())
    with trial.serve(app, **KEEPALIVE) as server:
        async with slow_client_scene(server) as scene:
            got = await scene.burst(1.0)
            protocol = protocols.get(scene.slow_port)
            if protocol is None:
                raise EvidenceError("could not find uvicorn's protocol object for the slow client")

            def gave_up() -> bool:
                return bool(protocol.close_sent)

            await _until(gave_up, 3.0)  # uvicorn's keepalive: ping at 0.5 s, gives up 1 s later
            frame, closing, unflushed, writable = server.run(_protocol_state(protocol))
            got_after = await scene.burst(0.5, count=5)
            errors = server_errors(server)
    queued_app, _ = _queued_app()
    with trial.serve(queued_app) as server:
        queued_got, total = await slow_client_run(server)
    observed = _Stuck(got, errors, frame, closing, unflushed, writable, got_after, queued_got)
    keepalive_gave_up = frame == (1011, "keepalive ping timeout") and closing
    settled = settle(
        observed,
        {
            "stall-keepalive-cannot-flush": lambda o: (
                o.got < total
                and keepalive_gave_up
                and o.unflushed > 0
                and not o.writable
                and o.got_after == 0
                and o.queued_got == total
            ),
            "send-never-waits": lambda o: o.got == total,
            "keepalive-unblocks": lambda o: keepalive_gave_up and o.got_after > 0,
            "send-raises": lambda o: o.errors != "none",
        },
    )

    def share(count: int, of: int) -> str:
        return f"all {of}" if count == of else f"fewer than {of}"

    lines = (
        f"await send_text() for each client in turn: the reading client got {share(got, total)} within 1 s",
        f"the stuck connection's uvicorn protocol: {type(protocol).__name__}",
        f"its keepalive then queued a close frame: {frame}; the transport is closing: {closing}; bytes still "
        f"waiting to be flushed: {'some' if unflushed else 'none'}; writable (what send() waits for): {writable}",
        f"5 more messages after that: the reading client got {got_after}",
        f"errors the server logged meanwhile: {errors}",
        f"a bounded queue + writer task per client (helpers.fanout.FanOut): it got {share(queued_got, total)}",
    )
    return trial.settle(lines, settled, observed=observed)


@dataclass(frozen=True)
class _Policy:
    readers_got: int
    slow_member: bool  # still registered in the hub
    evicted: bool
    dropped: int
    queued: int
    read_at_last: int = 0  # messages the slow client found once it read
    ending: str = ""  # how its connection stood after that


async def _drain(ws: ClientConnection, quiet: float = 0.5) -> tuple[int, str]:
    """Let a client that never read read now: how many messages were waiting, and how its connection ended."""
    received: list[str | bytes] = []
    try:
        await collect(ws, received, quiet=quiet)
    except ConnectionClosed as exc:
        return (
            len(received),
            "dropped without a close frame" if exc.rcvd is None else f"closed by the server: {exc.rcvd.code}",
        )
    return len(received), "still open"


async def _policy_run(trial: Trial, policy: str) -> _Policy:
    app, hub = _queued_app(policy=policy)
    with trial.serve(app) as server:
        async with slow_client_scene(server) as scene:
            got = await scene.burst(1.5)
            slow = str(scene.slow_port)

            async def look() -> _Policy:
                stats = hub.stats().get(slow)
                return _Policy(
                    got,
                    stats is not None,
                    slow in hub.evicted,
                    int(stats["dropped"]) if stats else 0,
                    int(stats["queued"]) if stats else 0,
                )

            seen = server.run(look())
            read, ending = await _drain(scene.slow)
            return dataclasses.replace(seen, read_at_last=read, ending=ending)


@experiment("FanOut(max_queue=8) with one client that never reads; 40 x 256 kB broadcast; each policy")
async def _queue_policy(trial: Trial) -> Evidence:
    dropping = await _policy_run(trial, "drop-oldest")
    evicting = await _policy_run(trial, "disconnect")
    settled = settle(
        dropping,
        {
            "stays-loses-oldest": lambda o: (
                o.readers_got == SLOW_MESSAGES
                and o.slow_member
                and not o.evicted
                and o.dropped > 0
                and o.queued <= 8
                and o.ending == "still open"
            ),
            "closed-1013": lambda o: o.evicted or o.ending.startswith("closed"),
            "queue-grows": lambda o: o.queued > 8 or o.dropped == 0,
            "publish-waits": lambda o: o.readers_got < SLOW_MESSAGES,
        },
    )

    def describe(label: str, run: _Policy) -> tuple[str, ...]:
        queue = (
            f"still registered in the hub; evicted: {run.evicted}; messages dropped from its queue: "
            f"{'some' if run.dropped else 'none'}; its queue held at most 8: {run.queued <= 8}"
            if run.slow_member
            else f"no longer in the hub; evicted: {run.evicted}"
        )
        return (
            f"{label}: the readers got {run.readers_got} of {SLOW_MESSAGES}",
            f"    the slow client: {queue}",
            f"    reading at last, it found {'some' if run.read_at_last else 'no'} messages; then its connection: "
            f"{run.ending}",
        )

    lines = (*describe('policy="drop-oldest"', dropping), *describe('policy="disconnect"', evicting))
    return trial.settle(lines, settled, dropping=dropping, evicting=evicting)
