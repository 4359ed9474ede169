"""Evidence for the Django Channels quiz (quizzes/channels.toml)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.exceptions import ConnectionClosed

from helpers.clients import attempt, connect
from helpers.evidence.core import Evidence, experiment
from helpers.evidence.shared import (
    ensure_django,
    handshake_kind,
    listen,
    recording_warnings,
    server_errors,
    warning_lines,
)
from helpers.servers import serve


@experiment("a consumer whose connect() only awaits self.accept(), and whose receive() echoes")
async def _accept_opens(name: str, title: str) -> Evidence:
    ensure_django()
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
    ensure_django()
    from channels.auth import AuthMiddlewareStack

    with serve(AuthMiddlewareStack(_user_reporter().as_asgi()), name=f"evidence-{name}") as server:
        outcome = await attempt(server.ws_url("/"), receive=1)
        errors = server_errors(server)
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
    ensure_django()
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
    ensure_django()
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
            lines.append(f"    server errors: {server_errors(server)}")
    for warning in warning_lines(caught, RuntimeWarning):
        lines.append(f"warning on the server: {warning}")
    return Evidence(name, title, tuple(lines), frozenset(shows), {"outcomes": outcomes})


@experiment("connect() calls self.accept() without await; the client allows 0.5 s for the handshake")
async def _missing_await_accept(name: str, title: str) -> Evidence:
    ensure_django()
    from channels.generic.websocket import AsyncWebsocketConsumer

    class ForgetsAwait(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.accept()  # BUG on purpose: the forgotten await is the point

    with recording_warnings() as caught, serve(ForgetsAwait.as_asgi(), name=f"evidence-{name}") as server:
        outcome = await attempt(server.ws_url("/"), open_timeout=0.5)
        errors = server.errors
    found = warning_lines(caught, RuntimeWarning)
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
    ensure_django()
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
            (ada_heard, _), (bob_heard, _) = await asyncio.gather(listen(ada), listen(bob))
            async with connect(server.ws_url("/")) as late:
                late_heard, _ = await listen(late)
        errors = server_errors(server)
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
    ensure_django()
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
    refused_kind = handshake_kind(refused)
    if refused.opened and refused.close_code is not None:
        refused_kind = f"close-{refused.close_code}"
    shows = {f"{refused_kind}+{handshake_kind(silent)}"}
    lines = (f"Refuser (await self.close(code=4403)): {refused}", f"Silent (no accept, no close): {silent}")
    return Evidence(name, title, lines, frozenset(shows), {"refuser": refused, "silent": silent})


@experiment("group_send of type 'chat.message' to consumers whose handler is named chat_msg")
async def _missing_group_handler(name: str, title: str) -> Evidence:
    ensure_django()
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
            ada_heard, ada_end = await listen(ada)
            bob_heard, bob_end = await listen(bob)
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
    ensure_django()
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
    ensure_django()
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
    ensure_django()
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
