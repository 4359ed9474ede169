"""Evidence for the broadcasting quiz (quizzes/broadcasting.toml)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers.clients import attempt, connect
from helpers.evidence.core import Evidence, EvidenceError, experiment
from helpers.evidence.shared import hear_all, listen, masked, recording_warnings, server_errors, warning_lines
from helpers.servers import ServerStartError, ThreadServer, serve, serve_process


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


async def _chat_endpoint(websocket: WebSocket, mistake: str = "") -> None:
    """Subscribe, say "ready", forward every event to the client, publish every text the client sends.

    `mistake` makes one of the errors a quiz option blames: "no-await" calls publish() without `await`,
    "subscribe-first" subscribes before accepting.
    """
    broadcast = websocket.app.state.broadcast
    if mistake != "subscribe-first":
        await websocket.accept()
    async with broadcast.subscribe(channel="chat") as subscriber:
        if mistake == "subscribe-first":
            await websocket.accept()
        await websocket.send_text("ready")
        forward = asyncio.create_task(_forward(subscriber, websocket))
        try:
            async for text in websocket.iter_text():
                if mistake == "no-await":
                    broadcast.publish(channel="chat", message=text)  # BUG on purpose: no await
                else:
                    await broadcast.publish(channel="chat", message=text)
        finally:
            forward.cancel()
            await asyncio.gather(forward, return_exceptions=True)


def _broadcaster_app(url: str = "memory://", broadcast: Any = None, mistake: str = "") -> FastAPI:
    app = FastAPI(lifespan=_broadcaster_lifespan(url)) if broadcast is None else FastAPI()
    if broadcast is not None:
        app.state.broadcast = broadcast

    async def chat(websocket: WebSocket) -> None:
        await _chat_endpoint(websocket, mistake)

    app.add_api_websocket_route("/chat", chat)
    return app


async def _join(url: str) -> ClientConnection:
    """Connect and wait for "ready" (the endpoint has subscribed), so nothing published later is missed."""
    ws = await connect(url)
    ready = await asyncio.wait_for(ws.recv(), 2)
    if ready != "ready":
        raise EvidenceError(f"expected 'ready' from the chat endpoint, got {ready!r}")
    return ws


@experiment("three clients on a FastAPI chat that uses broadcaster's Broadcast('memory://'); one sends")
async def _broadcaster_chat(name: str, title: str) -> Evidence:
    with serve(_broadcaster_app(), name=f"evidence-{name}") as server:
        clients = {who: await _join(server.ws_url("/chat")) for who in ("ann", "ben", "cy")}
        await clients["ann"].send("hello from ann")
        heard = await hear_all(clients)
        errors = server_errors(server)
    got = {who for who, messages in heard.items() if messages == ["hello from ann"]}
    shows = set()
    if got == {"ann", "ben", "cy"}:
        shows.add("everyone-including-sender")
    elif got == {"ann"}:
        shows.add("only-sender")
    elif not got:
        shows.add("nobody")
    lines = (*(f"{who} heard: {messages}" for who, messages in heard.items()), f"server errors: {errors}")
    return Evidence(name, title, lines, frozenset(shows))


BROADCAST_URLS = {  # claim prefix -> url, in the order of the question's options
    "no-url": None,
    "mem-url": "mem://",
    "redis-url": "redis://127.0.0.1:6379",
    "memory-url": "memory://",
}


@experiment("Broadcast(...) with each URL, then memory:// serving a real chat")
async def _broadcast_constructor(name: str, title: str) -> Evidence:
    from broadcaster import Broadcast

    shows, lines = set(), []
    for key, url in BROADCAST_URLS.items():
        shown = "Broadcast()" if url is None else f"Broadcast(url={url!r})"
        try:
            broadcast = Broadcast(url=url)
        except (AssertionError, ValueError) as exc:
            lines.append(f"{shown}: {type(exc).__name__}: {exc}")
            continue
        backend = type(broadcast._backend).__name__
        lines.append(f"{shown}: backend {backend}")
        if backend == "MemoryBackend":
            with serve(_broadcaster_app(url), name=f"evidence-{name}") as server:
                ws = await _join(server.ws_url("/chat"))
                await ws.send("round trip")
                heard, _ = await listen(ws)
                await ws.close()
            lines.append(f"    served in a chat, a client's message came back: {heard == ['round trip']}")
            if heard == ["round trip"]:
                shows.add(f"{key}-in-memory")
    found = importlib.util.find_spec("fastapi_broadcast") is not None
    lines.append(f"import fastapi_broadcast: {'available' if found else 'no such module'}")
    return Evidence(name, title, tuple(lines), frozenset(shows))


CROSS_LOOP = "attached to a different loop"
CROSS_LOOP_VARIANTS = (  # (claim, label, url (None: the test Redis), mistake in the endpoint)
    ("fixed", "connected in the server's lifespan", None, ""),
    ("missing-await", "publish() without await, in the lifespan", None, "no-await"),
    ("not-accepted", "subscribed before accept(), in the lifespan", None, "subscribe-first"),
    ("bad-url", "a malformed Redis URL (its port left as 'port'), in the lifespan", "redis://127.0.0.1:port", ""),
)


@dataclass(frozen=True)
class _Run:
    outcome: str
    messages: tuple[str | bytes, ...]
    errors: tuple[str, ...]
    warned: tuple[str, ...]

    @property
    def different_loop(self) -> bool:
        return any(CROSS_LOOP in text for text in (*self.errors, *self.warned))


async def _one_loop_run(name: str, url: str, mistake: str) -> _Run:
    """Serve the broadcaster chat with its lifespan on the server's loop; one client says hello."""
    messages: tuple[str | bytes, ...] = ()
    with recording_warnings() as caught:
        try:
            with serve(_broadcaster_app(url, mistake=mistake), name=f"evidence-{name}") as server:
                seen = await attempt(server.ws_url("/chat"), send=["hello"], receive=2, timeout=0.5)
                outcome, messages = str(seen), tuple(seen.messages)
                errors = tuple(masked(e) for e in dict.fromkeys(server.errors))
        except ServerStartError as exc:
            outcome, errors = "the server did not start", (masked(str(exc).split(": ", 1)[-1]),)
    return _Run(outcome, messages, errors, tuple(warning_lines(caught, RuntimeWarning)))


@experiment(
    "a Broadcast('redis://') connected on another event loop (busy meanwhile), used by an endpoint; "
    "then the fix, and each other option's mistake alone"
)
async def _cross_loop(name: str, title: str) -> Evidence:
    from broadcaster import Broadcast

    from helpers import redis_server

    if not redis_server.available():
        raise EvidenceError(f"this experiment needs Redis: {redis_server.INSTALL_HINT}")
    url = redis_server.redis_url()
    # `other` stands in for the kernel's loop: a cell connects the Broadcast there, then blocks (is busy)
    # while the client talks to the server, as a cell waiting for a synchronous client does.
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, name="evidence-other-loop", daemon=True)
    thread.start()
    try:
        in_other = Broadcast(url)
        asyncio.run_coroutine_threadsafe(in_other.connect(), other).result(5)
        asyncio.run_coroutine_threadsafe(in_other.publish(channel="chat", message="test"), other).result(5)
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        with serve(_broadcaster_app(broadcast=in_other), name=f"evidence-{name}") as server:
            wrong = await attempt(server.ws_url("/chat"), send=["hello"], receive=2, timeout=0.5)
            wrong_errors = [masked(e) for e in dict.fromkeys(server.errors)]
        thread = threading.Thread(target=other.run_forever, name="evidence-other-loop", daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(in_other.disconnect(), other).result(5)
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()
    lines = [
        f"connected on the other loop: client saw: {wrong}",
        f"    server errors: {'; '.join(wrong_errors) or 'none'}",
    ]
    # The fix, and every other option tried for real: the same chat connected in the server's lifespan (one
    # loop), once as it should be and once with only the mistake that option blames. An option is
    # demonstrated when its run shows the question's error.
    runs = {}
    for claim, label, variant_url, mistake in CROSS_LOOP_VARIANTS:
        runs[claim] = run = await _one_loop_run(name, url if variant_url is None else variant_url, mistake)
        lines.append(f"{label}: client saw: {run.outcome}")
        lines.append(f"    server errors: {'; '.join(run.errors) or 'none'}")
        if run.warned:
            lines.append(f"    warnings: {'; '.join(run.warned)}")
    fixed = runs["fixed"]
    shows = {claim for claim, run in runs.items() if claim != "fixed" and run.different_loop}
    if any(CROSS_LOOP in e for e in wrong_errors) and fixed.messages == ("ready", "hello") and not fixed.errors:
        shows.add("connected-on-other-loop")
    return Evidence(name, title, tuple(lines), frozenset(shows))


def _manager_app(cleanup: str = "except") -> tuple[Any, set[Any]]:
    """A FastAPI ConnectionManager chat; cleanup 'except' (only WebSocketDisconnect) or 'finally'."""
    active: set[WebSocket] = set()
    app = FastAPI()

    @app.websocket("/chat/{name}")
    async def chat(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        active.add(websocket)
        await websocket.send_text("welcome")
        if cleanup == "finally":
            try:
                while True:
                    text = await websocket.receive_text()
                    for other in list(active):
                        await other.send_text(f"{name}: {text}")
            finally:
                active.discard(websocket)
        else:
            try:
                while True:
                    text = await websocket.receive_text()
                    for other in list(active):
                        await other.send_text(f"{name}: {text}")
            except WebSocketDisconnect:
                active.discard(websocket)

    return app, active


async def _names(active: set[Any]) -> list[str]:
    return sorted(ws.path_params["name"] for ws in active)


@experiment("a ConnectionManager set: three clients connect, then one closes normally")
async def _manager_count(name: str, title: str) -> Evidence:
    app, active = _manager_app()
    with serve(app, name=f"evidence-{name}") as server:
        clients = {}
        for who in ("ann", "ben", "cy"):
            clients[who] = await connect(server.ws_url(f"/chat/{who}"))
            await clients[who].recv()
        after_join = len(server.run(_names(active)))
        await clients["cy"].close()
        room: list[str] = []
        for _ in range(100):  # the endpoint handles the disconnect on the server's loop
            room = server.run(_names(active))
            if len(room) < 3:
                break
            await asyncio.sleep(0.01)
        for ws in clients.values():
            await ws.close()
    shows = {f"count-{len(room)}"}
    lines = (f"after three joined: {after_join} sockets in the set", f"after cy closed: {len(room)}: {room}")
    return Evidence(name, title, lines, frozenset(shows))


@experiment("only WebSocketDisconnect is caught; mallory sends a binary frame, then alice says hello")
async def _ghost_socket(name: str, title: str) -> Evidence:
    app, active = _manager_app("except")
    with serve(app, name=f"evidence-{name}") as server:
        clients = {}
        for who in ("alice", "bob", "mallory"):
            clients[who] = await connect(server.ws_url(f"/chat/{who}"))
            await clients[who].recv()
        await clients["mallory"].send(b"\x89PNG")
        await clients["mallory"].wait_closed()
        await clients["alice"].send("hello")
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:  # whatever alice gets before her connection ends
                await asyncio.wait_for(clients["alice"].recv(), 1)
        room = server.run(_names(active))
        errors = list(dict.fromkeys(server.errors))
        for ws in clients.values():
            await ws.close()
    shows = set()
    if room == ["bob", "mallory"]:
        shows.add("ghost-stays-sender-removed")
    if room == ["alice", "bob"]:
        shows.add("cleaned-up")
    if room == ["alice", "bob", "mallory"]:
        shows.add("nothing-changes")
    if not room:
        shows.add("everyone-dropped")
    lines = (
        "mallory's binary frame, then alice's 'hello':",
        f"    still in the set: {room}",
        f"    alice's connection: {'closed' if clients['alice'].close_code is not None else 'open'}",
        f"    server errors: {'; '.join(errors) or 'none'}",
    )
    return Evidence(name, title, lines, frozenset(shows))


@experiment("a Broadcast hub: two clients subscribed, one publishes, then a third subscribes late")
async def _broadcast_role(name: str, title: str) -> Evidence:
    with serve(_broadcaster_app(), name=f"evidence-{name}") as server:
        ann, ben = await _join(server.ws_url("/chat")), await _join(server.ws_url("/chat"))
        await ann.send("first")
        (ann_heard, _), (ben_heard, _) = await asyncio.gather(listen(ann), listen(ben))
        late = await _join(server.ws_url("/chat"))
        late_heard, _ = await listen(late)
        for ws in (ann, ben, late):
            await ws.close()
    shows = set()
    if ann_heard == ben_heard == ["first"]:
        shows.add("hub-forwards")
    if late_heard:
        shows.add("stores-history")
    lines = (
        f"ann (publisher) heard: {ann_heard}",
        f"ben (subscriber) heard: {ben_heard}",
        f"a late subscriber heard: {late_heard or 'nothing (no history is kept)'}",
    )
    return Evidence(name, title, lines, frozenset(shows))


SLOW_MESSAGES = 40
SLOW_SIZE = 256_000


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


def _queued_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from helpers.fanout import FanOut

    hub = FanOut(max_queue=8)

    async def chat(websocket: Any) -> None:
        await websocket.accept()
        async with hub.connected(websocket):
            async for text in websocket.iter_text():
                hub.publish(text)

    return Starlette(routes=[WebSocketRoute("/chat", chat)])


def small_socket(port: int) -> socket.socket:
    """A connected socket with a small receive buffer, so a client that never reads fills up quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


@dataclass
class SlowScene:
    """Three clients of a chat: `slow` never reads, `sender` sends big messages, `fast` just reads."""

    slow: ClientConnection
    fast: ClientConnection
    sender: ClientConnection

    published: int = 0  # the sender's messages whose own copy came back (so the server has published them)

    async def burst(self, window: float = 1.0, count: int = SLOW_MESSAGES, stall: float | None = None) -> int:
        """The sender sends `count` x 256 kB, each after its own copy came back; how many `fast` got within `window`.

        Pacing on the sender's own copies keeps the rate at what reading clients can take, so a server that
        drops messages for slow clients loses none for these two. Each message starts with a 4-digit tag,
        numbered on from the previous burst. With `stall`, the burst also ends once a copy takes longer than that.
        """
        got = 0
        first = self.published

        async def drain() -> None:
            nonlocal got
            while got < count:
                await self.fast.recv()
                got += 1

        async def paced() -> None:
            for n in range(first, first + count):
                tag = f"{n:04d}"
                await self.sender.send(tag + "x" * SLOW_SIZE)
                while str(await asyncio.wait_for(self.sender.recv(), stall))[:4] != tag:
                    pass
                self.published = n + 1

        tasks = [asyncio.create_task(drain()), asyncio.create_task(paced())]
        try:
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(asyncio.gather(*tasks), window)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return got


@asynccontextmanager
async def slow_client_scene(server: ThreadServer, path: str = "/chat") -> AsyncIterator[SlowScene]:
    """Connect the slow client first (so a plain loop over clients meets it first), then fast and sender.

    On exit every connection is aborted: a client that does not read could never finish a close handshake,
    and aborting also unblocks a server stuck sending to it.
    """
    options: dict[str, Any] = {"max_size": None, "compression": None}
    slow = await connect(server.ws_url(path), max_queue=1, sock=small_socket(server.port), **options)
    fast = await connect(server.ws_url(path), **options)
    sender = await connect(server.ws_url(path), **options)
    await asyncio.sleep(0.05)  # let the endpoints register all three
    try:
        yield SlowScene(slow, fast, sender)
    finally:
        for ws in (slow, fast, sender):
            ws.transport.abort()
        await asyncio.sleep(0.01)  # let the aborted transports finish closing their sockets


async def slow_client_run(server: ThreadServer, path: str = "/chat", window: float = 1.0) -> tuple[int, int]:
    """(messages a reading client got within `window`, messages sent) while one client never reads."""
    async with slow_client_scene(server, path) as scene:
        return await scene.burst(window), SLOW_MESSAGES


@experiment("one client never reads; 40 x 256 kB are broadcast; does a reading client get them all within 1 s?")
async def _slow_client(name: str, title: str) -> Evidence:
    with serve(_sequential_app(), name=f"evidence-{name}") as server:
        sequential, total = await slow_client_run(server)
    with serve(_queued_app(), name=f"evidence-{name}") as server:
        queued, _ = await slow_client_run(server)
    shows = set()
    if sequential < total and queued == total:
        shows.add("sequential-stalls-queues-fix")
    if sequential == total:
        shows.add("sequential-keeps-up")

    def share(got: int) -> str:
        return f"all {total}" if got == total else f"fewer than {total}: it stalled behind the slow client"

    lines = (
        f"await send_text() for each client in turn: the reading client got {share(sequential)}",
        f"a bounded queue + writer task per client (helpers.fanout): it got {share(queued)}",
    )
    return Evidence(name, title, lines, frozenset(shows))


def __getattr__(attribute: str) -> Any:
    """`helpers.evidence.broadcasting:two_process_chat`, built on first use, for serve_process() children."""
    if attribute == "two_process_chat":
        return _broadcaster_app(os.environ.get("EVIDENCE_BROADCAST_URL", "memory://"))
    raise AttributeError(f"module 'helpers.evidence.broadcasting' has no attribute {attribute!r}")


@experiment("the same broadcaster chat with memory:// in two server processes, A and B")
async def _memory_two_processes(name: str, title: str) -> Evidence:
    servers = {
        place: serve_process("helpers.evidence.broadcasting:two_process_chat", name=f"evidence-{name}-{place}")
        for place in ("A", "B")
    }
    try:
        clients = {
            "ann (on A)": await _join(servers["A"].ws_url("/chat")),
            "ben (on A)": await _join(servers["A"].ws_url("/chat")),
            "cy (on B)": await _join(servers["B"].ws_url("/chat")),
        }
        await clients["ann (on A)"].send("hello from ann")
        heard = await hear_all(clients)
    finally:
        for server in servers.values():
            server.stop()
    shows = set()
    if heard["ben (on A)"] == ["hello from ann"] and not heard["cy (on B)"]:
        shows.add("same-process-only")
    if heard["cy (on B)"]:
        shows.add("all-processes")
    if heard["ann (on A)"] and not heard["ben (on A)"]:
        shows.add("only-sender")
    if not any(heard.values()):
        shows.add("nobody")
    lines = tuple(f"{who} heard: {messages or 'nothing'}" for who, messages in heard.items())
    return Evidence(name, title, lines, frozenset(shows))


@experiment("a FastAPI app with lifespan=... that also registers @app.on_event('startup')")
async def _lifespan_on_event(name: str, title: str) -> Evidence:
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
        serve(app, name=f"evidence-{name}").stop()  # start-up and shutdown both run
        started = True
    except ServerStartError:
        started = False
    deprecations = warning_lines(caught, DeprecationWarning)
    shows = set()
    if ran == {"lifespan": True, "on_event": False}:
        shows.add("on-event-skipped")
    if ran == {"lifespan": True, "on_event": True}:
        shows.add("both-run")
    if started and not ran["lifespan"]:
        shows.add("lifespan-skipped")
    if not started:
        shows.add("startup-typeerror")
    try:
        from starlette.applications import Starlette

        Starlette(on_startup=[startup])  # type: ignore[call-arg]
        starlette_line = "Starlette(on_startup=[...]): accepted"
    except TypeError as exc:
        starlette_line = f"Starlette(on_startup=[...]): TypeError: {exc}"
    lines = (
        f"lifespan ran: {ran['lifespan']}",
        f"@app.on_event('startup') ran: {ran['on_event']}",
        f"warnings when registering it: {len(caught)} x DeprecationWarning" if deprecations else "warnings: none",
        starlette_line,
    )
    return Evidence(name, title, lines, frozenset(shows))
