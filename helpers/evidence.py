"""The quizzes' "Show me" experiments: each one runs a real server and real clients and reports what happened.

Every experiment is a small async function registered under a name (the `evidence` field of a quiz question).
`run(name)` executes it on a private event loop in a worker thread, so it works from a notebook cell (whose
thread already runs the kernel's loop), from the quiz widget's background thread and from plain tests alike,
and it waits a bounded time. Servers are served on loopback under names starting with "evidence-" and are
always stopped before the experiment returns.

An experiment returns an `Evidence`: printable fact lines (no ports, timings or addresses) and `shows`, the
set of *claims* the run demonstrated. A quiz option names the claim that would make it true, so tests can
check that the options a run demonstrates are exactly the options the key marks correct: the code, not the
author, decides which answer is right.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers import django_env
from helpers.clients import Outcome, attempt, connect
from helpers.servers import ServerStartError, ThreadServer, serve, serve_process

RUN_TIMEOUT = 20.0


class EvidenceError(RuntimeError):
    """An experiment could not run or took too long; the message says why and what to do."""


@dataclass(frozen=True)
class Evidence:
    """What one experiment demonstrated: fact lines for people and claims for tests."""

    name: str
    title: str
    lines: tuple[str, ...]
    shows: frozenset[str]
    value: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def fact(self) -> str:
        """The printable report: the title, then one fact per line."""
        return "\n".join([f"Show me: {self.title}", *(f"  {line}" for line in self.lines)])

    def __str__(self) -> str:
        return self.fact


Experiment = Callable[[], Awaitable[Evidence]]
EXPERIMENTS: dict[str, tuple[str, Experiment]] = {}


def experiment(title: str) -> Callable[[Callable[[str, str], Awaitable[Evidence]]], Experiment]:
    """Register an async experiment under its function name; it receives (name, title)."""

    def register(fn: Callable[[str, str], Awaitable[Evidence]]) -> Experiment:
        name = fn.__name__.lstrip("_")

        async def bound() -> Evidence:
            return await fn(name, title)

        EXPERIMENTS[name] = (title, bound)
        return bound

    return register


def names() -> list[str]:
    """Every registered experiment name, sorted."""
    return sorted(EXPERIMENTS)


def run(name: str, timeout: float = RUN_TIMEOUT) -> Evidence:
    """Run the experiment `name` on a private loop in a worker thread and return its Evidence.

    Blocks the calling thread for at most `timeout` seconds (the experiments take one or two).
    """
    if name not in EXPERIMENTS:
        raise EvidenceError(f"no experiment named {name!r}; known experiments: {', '.join(names())}")
    _, fn = EXPERIMENTS[name]
    result: list[Evidence] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(fn()))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"evidence-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise EvidenceError(
            f"experiment {name!r} did not finish within {timeout:g} s; run it again, or restart the kernel"
        )
    if failure:
        exc = failure[0]
        if isinstance(exc, EvidenceError):
            raise exc
        raise EvidenceError(f"experiment {name!r} failed: {type(exc).__name__}: {exc}") from exc
    return result[0]


# --------------------------------------------------------------------------------------------------
# shared pieces


@contextlib.contextmanager
def recording_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record (instead of print or raise) warnings from any thread while the block runs.

    `catch_warnings` swaps the process-wide filters, so warnings raised on a server's thread are caught
    too. `gc.collect()` at the end destroys forgotten coroutines still held by a reference cycle.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
        gc.collect()


def _warning_lines(caught: list[warnings.WarningMessage], category: type[Warning]) -> list[str]:
    return sorted({f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, category)})


def _errors(server: ThreadServer) -> str:
    return "; ".join(dict.fromkeys(server.errors)) or "none"


def _django() -> None:
    """Configure Django once (any channel layer set up earlier in this process is kept)."""
    try:
        django_env.current()
    except django_env.DjangoEnvError:
        django_env.setup()


async def _listen(ws: ClientConnection, quiet: float = 0.3, limit: int = 100) -> tuple[list[str | bytes], str]:
    """What `ws` receives until nothing arrives for `quiet` s, and how its connection ended up."""
    heard: list[str | bytes] = []
    try:
        while len(heard) < limit:
            heard.append(await asyncio.wait_for(ws.recv(), quiet))
    except TimeoutError:
        return heard, "open"
    except ConnectionClosed as exc:
        return heard, "dropped (1006)" if exc.rcvd is None else f"closed {exc.rcvd.code}"
    return heard, "open"


def _masked(text: str) -> str:
    """Hide what changes between runs: a task's repr and memory addresses."""
    return re.sub(r"0x[0-9a-f]+", "0x...", re.sub(r"Task <.*> got Future", "Task <...> got Future", text))


async def _hear_all(clients: dict[str, ClientConnection]) -> dict[str, list[str | bytes]]:
    """Listen on every client at once, then close them all; who heard what."""
    results = await asyncio.gather(*(_listen(ws) for ws in clients.values()))
    for ws in clients.values():
        await ws.close()
    return {who: heard for who, (heard, _) in zip(clients, results, strict=True)}


def _kind(outcome: Outcome) -> str:
    """A short name for how a handshake ended: 'open', '403', '500', 'timeout', 'failed'."""
    if outcome.timed_out:
        return "timeout"
    if outcome.rejected:
        return str(outcome.status)
    return "open" if outcome.opened else "failed"


# --------------------------------------------------------------------------------------------------
# Django Channels


@experiment("a consumer whose connect() only awaits self.accept(), and whose receive() echoes")
async def _accept_opens(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.layers import get_channel_layer

    channels: list[str] = []

    class AcceptOnly(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            channels.append(self.channel_name)
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=text_data)

    with serve(AcceptOnly.as_asgi(), name=f"evidence-{name}") as server:
        quiet = await attempt(server.ws_url("/"))
        echo = await attempt(server.ws_url("/"), send=["ping"], receive=1)
    groups = getattr(get_channel_layer(), "groups", {})  # the in-memory layer's own record of groups
    joined = sorted(group for group, members in groups.items() if set(members) & set(channels))
    shows = set()
    if quiet.opened and not quiet.messages and echo.messages == ["ping"]:
        shows.add("handshake-then-talk")
    if quiet.messages:
        shows.add("sends-first-message")
    if joined:
        shows.add("joins-group")
    lines = (
        f"client that only listens saw: {quiet}",
        f"client that sends 'ping' saw: {echo}",
        f"groups the consumer joined: {joined or 'none'}",
    )
    return Evidence(name, title, lines, frozenset(shows), {"quiet": quiet, "echo": echo})


def _user_reporter() -> type:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class WhoAmI(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            user = self.scope["user"]  # read before accept: a KeyError here fails the handshake
            await self.accept()
            await self.send(
                f"wrapper={type(user).__name__} class={user.__class__.__name__} "
                f"is_authenticated={user.is_authenticated} username={user.username!r}"
            )

    return WhoAmI


@experiment("a client without a session cookie, consumer wrapped in AuthMiddlewareStack")
async def _anonymous_user(name: str, title: str) -> Evidence:
    _django()
    from channels.auth import AuthMiddlewareStack

    with serve(AuthMiddlewareStack(_user_reporter().as_asgi()), name=f"evidence-{name}") as server:
        outcome = await attempt(server.ws_url("/"), receive=1)
        errors = _errors(server)
    said = str(outcome.messages[0]) if outcome.messages else ""
    shows = set()
    if "class=AnonymousUser" in said and "is_authenticated=False" in said:
        shows.add("anonymous-user")
    if "class=NoneType" in said:
        shows.add("none")
    if outcome.status == 500:
        shows.add("http-500")
    if "class=User " in said:
        shows.add("some-user")
    lines = (f"client saw: {outcome}", f"server errors: {errors}")
    return Evidence(name, title, lines, frozenset(shows), {"outcome": outcome})


@experiment("a consumer that reads scope['user'] in connect(), served WITHOUT AuthMiddlewareStack")
async def _user_without_middleware(name: str, title: str) -> Evidence:
    _django()
    with serve(_user_reporter().as_asgi(), name=f"evidence-{name}") as server:
        outcome = await attempt(server.ws_url("/"), receive=1)
        errors = server.errors
    shows = set()
    if outcome.status == 500 and "KeyError: 'user'" in errors:
        shows.add("keyerror-500")
    if outcome.opened and any("AnonymousUser" in str(m) for m in outcome.messages):
        shows.add("anonymous-user")
    if outcome.opened and any("NoneType" in str(m) for m in outcome.messages):
        shows.add("none")
    if outcome.timed_out:
        shows.add("timeout")
    lines = (f"client saw: {outcome}", f"server errors: {'; '.join(errors) or 'none'}")
    return Evidence(name, title, lines, frozenset(shows), {"outcome": outcome, "errors": errors})


PAYLOAD = {"type": "chat.message", "text": "Hello"}
SEND_VARIANTS = {
    "json-dumps": "await self.send(text_data=json.dumps(payload))",
    "dict": "await self.send(text_data=payload)",
    "send-json": "await self.send_json(payload)",
    "no-await": "self.send(text_data=json.dumps(payload))",
}


@experiment("four ways to send a dict from an AsyncWebsocketConsumer, each on its own path")
async def _json_send(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import URLRouter
    from django.urls import path

    class Sender(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            payload = dict(PAYLOAD)
            variant = self.scope["url_route"]["kwargs"]["variant"]
            if variant == "json-dumps":
                await self.send(text_data=json.dumps(payload))
            elif variant == "dict":
                await self.send(text_data=payload)  # type: ignore[arg-type]
            elif variant == "send-json":
                await self.send_json(payload)  # type: ignore[attr-defined]
            else:
                self.send(text_data=json.dumps(payload))  # BUG on purpose: the forgotten await is the point

    app = URLRouter([path("<str:variant>/", Sender.as_asgi())])
    expected = json.dumps(PAYLOAD)
    shows, lines, outcomes = set(), [], {}
    with recording_warnings() as caught, serve(app, name=f"evidence-{name}") as server:
        for variant, code in SEND_VARIANTS.items():
            server.log.clear()
            outcome = await attempt(server.ws_url(f"/{variant}/"), receive=1, timeout=0.5)
            outcomes[variant] = outcome
            if outcome.messages == [expected]:
                shows.add(f"{variant}-delivers")
            lines.append(f"{code}")
            lines.append(f"    client saw: {outcome}")
            lines.append(f"    server errors: {_errors(server)}")
    for warning in _warning_lines(caught, RuntimeWarning):
        lines.append(f"warning on the server: {warning}")
    return Evidence(name, title, tuple(lines), frozenset(shows), {"outcomes": outcomes})


@experiment("connect() calls self.accept() without await; the client allows 0.5 s for the handshake")
async def _missing_await_accept(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer

    class ForgetsAwait(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.accept()  # BUG on purpose: the forgotten await is the point

    with recording_warnings() as caught, serve(ForgetsAwait.as_asgi(), name=f"evidence-{name}") as server:
        outcome = await attempt(server.ws_url("/"), open_timeout=0.5)
        errors = server.errors
    found = _warning_lines(caught, RuntimeWarning)
    never_awaited = any("was never awaited" in w for w in found)
    shows = set()
    if outcome.timed_out and never_awaited and not errors:
        shows.add("timeout-and-warning")
    if outcome.status == 500 and any("RuntimeError" in e for e in errors):
        shows.add("runtimeerror-500")
    if outcome.opened:
        shows.add("opens-anyway")
    lines = (
        f"client saw: {outcome}",
        f"exceptions on the server: {'; '.join(errors) or 'none'}",
        f"warnings on the server: {'; '.join(found) or 'none'}",
    )
    return Evidence(name, title, lines, frozenset(shows), {"outcome": outcome, "warnings": found})


@experiment("two consumers in one group; one client sends; then a third client joins late")
async def _channel_layer_role(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Room(AsyncWebsocketConsumer):
        group = "evidence-room"

        async def connect(self) -> None:
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    with serve(Room.as_asgi(), name=f"evidence-{name}") as server:
        async with connect(server.ws_url("/")) as ada, connect(server.ws_url("/")) as bob:
            await ada.send("hello from ada")
            (ada_heard, _), (bob_heard, _) = await asyncio.gather(_listen(ada), _listen(bob))
            async with connect(server.ws_url("/")) as late:
                late_heard, _ = await _listen(late)
        errors = _errors(server)
    shows = set()
    if bob_heard == ["hello from ada"] and ada_heard == ["hello from ada"]:
        shows.add("relays-between-consumers")
    if late_heard:
        shows.add("stores-history")
    lines = (
        f"ada (the sender) heard: {ada_heard}",
        f"bob (same group, different consumer instance) heard: {bob_heard}",
        f"a client that joined afterwards heard: {late_heard or 'nothing'}",
        f"server errors: {errors}",
    )
    return Evidence(name, title, lines, frozenset(shows))


@experiment("Refuser closes before accepting; Silent returns from connect() without accepting or closing")
async def _refuse_vs_silence(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import URLRouter
    from django.urls import path

    class Refuser(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.close(code=4403)

    class Silent(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            return

    app = URLRouter([path("refuser/", Refuser.as_asgi()), path("silent/", Silent.as_asgi())])
    with serve(app, name=f"evidence-{name}") as server:
        refused = await attempt(server.ws_url("/refuser/"), open_timeout=0.5)
        silent = await attempt(server.ws_url("/silent/"), open_timeout=0.5)
    refused_kind = _kind(refused)
    if refused.opened and refused.close_code is not None:
        refused_kind = f"close-{refused.close_code}"
    shows = {f"{refused_kind}+{_kind(silent)}"}
    lines = (f"Refuser (await self.close(code=4403)): {refused}", f"Silent (no accept, no close): {silent}")
    return Evidence(name, title, lines, frozenset(shows), {"refuser": refused, "silent": silent})


@experiment("group_send of type 'chat.message' to consumers whose handler is named chat_msg")
async def _missing_group_handler(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer

    members: list[str] = []

    class Typo(AsyncWebsocketConsumer):
        group = "evidence-typo"

        async def connect(self) -> None:
            members.append(self.channel_name)
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

        async def chat_msg(self, event: dict[str, Any]) -> None:  # the type "chat.message" looks for chat_message
            await self.send(text_data=event["text"])

    with serve(Typo.as_asgi(), name=f"evidence-{name}") as server:
        async with connect(server.ws_url("/")) as ada, connect(server.ws_url("/")) as bob:
            await ada.send("hello")
            ada_heard, ada_end = await _listen(ada)
            bob_heard, bob_end = await _listen(bob)
        errors = server.errors
    from channels.layers import get_channel_layer

    for channel in members:  # disconnect() never ran: take the dead mailboxes out of the group ourselves
        await get_channel_layer().group_discard(Typo.group, channel)
    no_handler = [e for e in errors if e.startswith("ValueError: No handler for message type chat.message")]
    shows = set()
    if ada_end == bob_end == "dropped (1006)" and len(no_handler) == 2:
        shows.add("valueerror-all-dropped")
    if ada_end == bob_end == "open" and not errors:
        shows.add("silently-ignored")
    if ada_heard or bob_heard:
        shows.add("delivered-anyway")
    if ada_end != bob_end:
        shows.add("only-sender-affected")
    lines = (
        f"ada (sender) heard {ada_heard} -> {ada_end}",
        f"bob (did nothing) heard {bob_heard} -> {bob_end}",
        f"server errors: {'; '.join(dict.fromkeys(errors)) or 'none'} (x{len(no_handler)})",
    )
    return Evidence(name, title, lines, frozenset(shows))


WORK_SECONDS = 0.6


@experiment("client A's message makes its consumer wait 0.6 s; client B sends 'ping' meanwhile")
async def _blocking_call(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Worker(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            if text_data != "work":
                await self.send(text_data=text_data)
                return
            await self.send(text_data="started")
            if self.scope["path"] == "/time.sleep":
                time.sleep(WORK_SECONDS)  # blocks the event loop's thread
            else:
                await asyncio.sleep(WORK_SECONDS)
            await self.send(text_data="done")

    latency: dict[str, float] = {}
    endings: dict[str, str] = {}
    with serve(Worker.as_asgi(), name=f"evidence-{name}") as server:
        for path in ("/time.sleep", "/asyncio.sleep"):
            async with connect(server.ws_url(path)) as a, connect(server.ws_url(path)) as b:
                await b.send("warm-up")
                await b.recv()
                await a.send("work")
                await a.recv()  # "started"
                sent = time.perf_counter()
                await b.send("ping")
                try:
                    await asyncio.wait_for(b.recv(), 2)
                    endings[path] = "echo"
                except ConnectionClosed:
                    endings[path] = "closed"
                latency[path] = time.perf_counter() - sent
                await asyncio.wait_for(a.recv(), 2)  # "done"
        errors = server.errors
    blocked, free = latency["/time.sleep"], latency["/asyncio.sleep"]
    shows = set()
    if blocked > WORK_SECONDS / 2 and free < WORK_SECONDS / 4:
        shows.add("others-wait")
    if blocked < WORK_SECONDS / 4:
        shows.add("others-unaffected")
    if "closed" in endings.values():
        shows.add("others-closed")
    if any("SynchronousOnlyOperation" in e for e in errors):
        shows.add("raises")

    def bucket(seconds: float) -> str:
        return "over 0.3 s (it waited for A's sleep)" if seconds > WORK_SECONDS / 2 else "under 0.15 s"

    lines = (
        f"time.sleep(0.6) in A's receive(): B's echo came back {bucket(blocked)}",
        f"await asyncio.sleep(0.6) instead:  B's echo came back {bucket(free)}",
        f"server errors: {'; '.join(errors) or 'none'}",
    )
    return Evidence(name, title, lines, frozenset(shows))


WHICH_403 = {
    "close-before-accept": "await self.close() before accept",
    "origin-validator": "AllowedHostsOriginValidator, client sends no Origin header",
    "accept-without-await": "self.accept() without await",
    "user-without-middleware": "scope['user'] read without AuthMiddlewareStack",
}


@experiment("four consumers, one Python client each (no Origin header, no cookie)")
async def _which_403(name: str, title: str) -> Evidence:
    _django()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from django.urls import path

    class CloseFirst(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.close()

    class Fine(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

    class NoAwait(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.accept()  # BUG on purpose: the forgotten await is the point

    class NeedsUser(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.user = self.scope["user"]
            await self.accept()

    app = URLRouter(
        [
            path("close-before-accept/", CloseFirst.as_asgi()),
            path("origin-validator/", AllowedHostsOriginValidator(Fine.as_asgi())),
            path("accept-without-await/", NoAwait.as_asgi()),
            path("user-without-middleware/", NeedsUser.as_asgi()),
        ]
    )
    shows, lines = set(), []
    with recording_warnings(), serve(app, name=f"evidence-{name}") as server:
        for key, label in WHICH_403.items():
            outcome = await attempt(server.ws_url(f"/{key}/"), open_timeout=0.5)
            if outcome.status == 403:
                shows.add(f"{key}-403")
            lines.append(f"{label}: {outcome}")
    return Evidence(name, title, tuple(lines), frozenset(shows))


@experiment("an async consumer that counts users with the ORM, directly and via database_sync_to_async")
async def _sync_orm(name: str, title: str) -> Evidence:
    _django()
    from channels.db import database_sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import URLRouter
    from django.contrib.auth.models import User
    from django.urls import path

    def count_users() -> str:
        return f"{User.objects.count()} users"

    class Direct(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=count_users())

    class Wrapped(Direct):
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=await database_sync_to_async(count_users)())

    app = URLRouter([path("direct/", Direct.as_asgi()), path("wrapped/", Wrapped.as_asgi())])
    with serve(app, name=f"evidence-{name}") as server:
        direct = await attempt(server.ws_url("/direct/"), send=["count"], receive=1)
        direct_errors = server.errors
        server.log.clear()
        wrapped = await attempt(server.ws_url("/wrapped/"), send=["count"], receive=1)
        wrapped_errors = server.errors
    shows = set()
    sync_only = any(e.startswith("SynchronousOnlyOperation") for e in direct_errors)
    if sync_only and direct.close_code == 1006 and wrapped.messages and not wrapped_errors:
        shows.add("sync-only-dropped-wrapper-fixes")
    if direct.messages:
        shows.add("direct-answers")
    if direct.timed_out or (not direct.messages and not direct_errors):
        shows.add("hangs")
    lines = (
        f"direct ORM call:           client saw: {direct}",
        f"    server errors: {'; '.join(direct_errors) or 'none'}",
        f"database_sync_to_async:    client saw: {wrapped}",
        f"    server errors: {'; '.join(wrapped_errors) or 'none'}",
    )
    return Evidence(name, title, lines, frozenset(shows))


# --------------------------------------------------------------------------------------------------
# FastAPI / Starlette broadcasting


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
        heard = await _hear_all(clients)
        errors = _errors(server)
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
                heard, _ = await _listen(ws)
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
                errors = tuple(_masked(e) for e in dict.fromkeys(server.errors))
        except ServerStartError as exc:
            outcome, errors = "the server did not start", (_masked(str(exc).split(": ", 1)[-1]),)
    return _Run(outcome, messages, errors, tuple(_warning_lines(caught, RuntimeWarning)))


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
            wrong_errors = [_masked(e) for e in dict.fromkeys(server.errors)]
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
        (ann_heard, _), (ben_heard, _) = await asyncio.gather(_listen(ann), _listen(ben))
        late = await _join(server.ws_url("/chat"))
        late_heard, _ = await _listen(late)
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
    """`helpers.evidence:two_process_chat`, built on first use, for serve_process() children."""
    if attribute == "two_process_chat":
        return _broadcaster_app(os.environ.get("EVIDENCE_BROADCAST_URL", "memory://"))
    raise AttributeError(f"module 'helpers.evidence' has no attribute {attribute!r}")


@experiment("the same broadcaster chat with memory:// in two server processes, A and B")
async def _memory_two_processes(name: str, title: str) -> Evidence:
    servers = {
        place: serve_process("helpers.evidence:two_process_chat", name=f"evidence-{name}-{place}")
        for place in ("A", "B")
    }
    try:
        clients = {
            "ann (on A)": await _join(servers["A"].ws_url("/chat")),
            "ben (on A)": await _join(servers["A"].ws_url("/chat")),
            "cy (on B)": await _join(servers["B"].ws_url("/chat")),
        }
        await clients["ann (on A)"].send("hello from ann")
        heard = await _hear_all(clients)
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
    deprecations = _warning_lines(caught, DeprecationWarning)
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
