"""Evidence for the Django Channels quiz (quizzes/channels.toml).

Every experiment ends in `trial.settle()`: each claim a quiz option makes gets a verdict computed from what the run
observed (an outcome, a server error, a measured bucket), True puts it in `shows` and False in `refutes`. So a
distractor is refuted by an observation, never by default, and the fact lines print the observation that
settled it. The servers are uvicorn 0.54 with its default `websockets-sansio` protocol, on loopback; the pytest
experiment runs pytest in fresh processes instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from helpers import django_env
from helpers.clients import attempt, collect, connect
from helpers.evidence.core import Evidence, Experiment, Trial, experiment
from helpers.evidence.shared import (
    handshake_kind,
    listen,
    recording_warnings,
    server_errors,
    warning_lines,
)
from helpers.loops import await_on
from helpers.servers import ThreadServer

__all__: list[str] = []  # importing the module registers its experiments; run them with evidence.run()

ON = "uvicorn 0.54 (websockets-sansio)"


def _channels_experiment(title: str) -> Callable[[Callable[[Trial], Awaitable[Evidence]]], Experiment]:
    """Register an experiment on Channels consumers: Django is set up first, and its facts name the server used."""
    return experiment(title, setup=django_env.ensure, head=(f"server: {ON}",))


def _routes(routes: Mapping[str, Any]) -> Any:
    """A URLRouter with one Django `path()` per route: a consumer class (served with as_asgi()) or an ASGI app."""
    from channels.routing import URLRouter
    from django.urls import path

    return URLRouter([path(route, app.as_asgi() if hasattr(app, "as_asgi") else app) for route, app in routes.items()])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


async def _raw_handshake(server: ThreadServer, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TCP connection and send a WebSocket upgrade request by hand; no WebSocket library in between."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    return reader, writer


async def _raw_status(reader: asyncio.StreamReader) -> int:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    return int(head.split(b" ", 2)[1])


async def _hang_up(writer: asyncio.StreamWriter) -> None:
    """Close the TCP connection without a WebSocket close frame."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1)


async def _wait(event: threading.Event, seconds: float) -> bool:
    return await asyncio.to_thread(event.wait, seconds)


# -- accept and the handshake


GREETINGS = {
    "send-then-accept": 'await self.send("hi"); await self.accept()',
    "accept-then-unawaited-send": 'await self.accept(); self.send("hi")',
    "accept-then-send": 'await self.accept(); await self.send("hi")',
    "unawaited-accept-then-send": 'self.accept(); await self.send("hi")',
}


@_channels_experiment("four connect() bodies that try to greet the client with 'hi', one per path")
async def _accept_opens(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Greeter(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            variant = self.scope["url_route"]["kwargs"]["variant"]
            if variant == "send-then-accept":
                await self.send("hi")
                await self.accept()
            elif variant == "accept-then-unawaited-send":
                await self.accept()
                self.send("hi")  # BUG on purpose: the forgotten await is the point
            elif variant == "accept-then-send":
                await self.accept()
                await self.send("hi")
            else:
                self.accept()  # BUG on purpose: the forgotten await is the point
                await self.send("hi")

    app = _routes({"<str:variant>/": Greeter})
    lines: list[str] = []
    verdicts: dict[str, bool] = {}
    outcomes = {}
    with recording_warnings() as caught, trial.serve(app) as server:
        for variant, code in GREETINGS.items():
            server.log.clear()
            outcome = await attempt(server.ws_url(f"/{variant}/"), receive=1, timeout=0.5, open_timeout=1)
            outcomes[variant] = outcome
            verdicts[f"{variant}-greets"] = outcome.messages == ["hi"]
            lines += [code, f"    client saw: {outcome}", f"    server errors: {server_errors(server)}"]
    lines += [f"warning on the server: {w}" for w in warning_lines(caught, RuntimeWarning)]
    return trial.settle(lines, verdicts, outcomes=outcomes)


@_channels_experiment("after accept, the consumer closes with 4003 'room is full'; a websockets client and a raw one")
async def _close_after_accept(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    codes: list[int] = []
    ran = threading.Event()

    class Full(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            await self.close(code=4003, reason="room is full")

        async def disconnect(self, code: int) -> None:
            codes.append(code)
            ran.set()

    with trial.serve(Full.as_asgi()) as server:
        client = await attempt(server.ws_url("/"))
        await _wait(ran, 1)
        client_codes = list(codes)
        codes.clear()
        ran.clear()
        reader, writer = await _raw_handshake(server, "/")
        try:
            status = await _raw_status(reader)
            frame = await asyncio.wait_for(reader.readexactly(2), 1)  # the server's close frame; never answered
            ran_unanswered = await _wait(ran, 0.5)
        finally:
            await _hang_up(writer)
        raw_codes = list(codes)
        errors = server_errors(server)
    close_frame = frame[0] == 0x88
    verdicts = {
        "code-reason-disconnect-unanswered": (
            client.closed_by == "server"
            and (client.close_code, client.close_reason) == (4003, "room is full")
            and client_codes == [4003]
            and ran_unanswered
            and raw_codes == [4003]
        ),
        "http-403": client.status == 403,
        "disconnect-waits-for-answer": close_frame and not ran_unanswered,
        "reason-dropped": client.opened and client.close_reason == "",
    }
    lines = (
        f"websockets client saw: {client}",
        f"    the consumer's disconnect() got: {client_codes}",
        f"raw client: HTTP {status}, then a close frame: {_yes(close_frame)}; it never answers the close",
        f"    disconnect() ran within 0.5 s all the same: {_yes(ran_unanswered)}, with code {raw_codes}",
        f"server errors: {errors}",
    )
    return trial.settle(lines, verdicts, client=client, client_codes=client_codes, raw=raw_codes)


@_channels_experiment("a client's TCP connection is cut without a close frame: before accept, and after it")
async def _vanishing_client(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    codes: dict[str, list[int]] = {"/undecided/": [], "/open/": []}
    ended = {key: threading.Event() for key in codes}

    class Recorder(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            if self.scope["path"] == "/open/":
                await self.accept()  # on any other path the handshake stays pending: no accept, no close

        async def disconnect(self, code: int) -> None:
            codes[self.scope["path"]].append(code)
            ended[self.scope["path"]].set()

    statuses: dict[str, int | None] = {}
    with trial.serve(Recorder.as_asgi()) as server:
        for key in codes:
            reader, writer = await _raw_handshake(server, key)
            try:
                statuses[key] = await _raw_status(reader) if key == "/open/" else None
                await asyncio.sleep(0.2)  # connect() has run by now
            finally:
                await _hang_up(writer)
            await _wait(ended[key], 1)
        errors = server_errors(server)
    before, after = codes["/undecided/"], codes["/open/"]
    verdicts = {
        "1006+1006": before == [1006] and after == [1006],
        "1006+1005": before == [1006] and after == [1005],
        "1000+1000": before == [1000] and after == [1000],
        "not-called": not before and not after,
    }
    lines = (
        f"cut while connect() had not accepted: disconnect() got {before or 'no call'}",
        f"cut after HTTP {statuses['/open/']} (open): disconnect() got {after or 'no call'}",
        f"server errors: {errors}",
    )
    return trial.settle(lines, verdicts, before=before, after=after)


SUBPROTOCOL_CLIENTS = {
    "X offers ['chat.v2', 'chat.v1']": ("/pick/", ["chat.v2", "chat.v1"]),
    "Y offers ['chat.v3']": ("/pick/", ["chat.v3"]),
    "Y offers ['chat.v3'], server names chat.v1 anyway": ("/insist/", ["chat.v3"]),
}


@_channels_experiment("a consumer that knows only chat.v1 picks from scope['subprotocols']; three clients")
async def _subprotocol_choice(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    known = ["chat.v1"]

    class Picker(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            offered = self.scope["subprotocols"]
            chosen = next((p for p in offered if p in known), None)
            await self.accept(subprotocol=chosen)
            await self.send(f"speaking {chosen}")

    class Insister(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept(subprotocol="chat.v1")  # whatever the client offered
            await self.send("speaking chat.v1")

    app = _routes({"pick/": Picker, "insist/": Insister})
    seen = {}
    with trial.serve(app) as server:
        for label, (url_path, offer) in SUBPROTOCOL_CLIENTS.items():
            seen[label] = await attempt(server.ws_url(url_path), subprotocols=offer, receive=1, open_timeout=1)
    x, y, forced = seen.values()
    verdicts = {
        "client-first-wins": x.subprotocol == "chat.v2",
        "first-known-and-none": x.subprotocol == "chat.v1" and y.opened and y.subprotocol is None,
        "no-match-refused": y.rejected,
        "client-takes-any": forced.opened,
    }
    lines = [f"{label}: {outcome}" for label, outcome in seen.items()]
    return trial.settle(lines, verdicts, outcomes=seen)


# -- scope and users


@_channels_experiment("a client without a session cookie, consumer wrapped in AuthMiddlewareStack")
async def _anonymous_user(trial: Trial) -> Evidence:
    from channels.auth import AuthMiddlewareStack
    from channels.generic.websocket import AsyncWebsocketConsumer
    from django.contrib.auth.models import AnonymousUser

    seen: dict[str, Any] = {}

    class Probe(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            user = self.scope["user"]
            seen.update(
                {
                    "user is None": user is None,
                    "not user.is_authenticated": not user.is_authenticated,
                    "type(user) is AnonymousUser": type(user) is AnonymousUser,
                    "isinstance(user, AnonymousUser)": isinstance(user, AnonymousUser),
                    "type": type(user).__name__,
                    "class": user.__class__.__name__,
                    "str": str(user),
                }
            )
            await self.accept()
            await self.send(f"str(user)={user}")

    with trial.serve(AuthMiddlewareStack(Probe.as_asgi())) as server:
        outcome = await attempt(server.ws_url("/"), receive=1)
        errors = server_errors(server)
    expressions = ["user is None", "not user.is_authenticated", "type(user) is AnonymousUser"]
    expressions.append("isinstance(user, AnonymousUser)")
    verdicts = {
        "is-none": seen.get("user is None") is True,
        "not-authenticated": seen.get("not user.is_authenticated") is True,
        "type-is-anonymous": seen.get("type(user) is AnonymousUser") is True,
        "isinstance-anonymous": seen.get("isinstance(user, AnonymousUser)") is True,
    }
    lines = [
        f"client saw: {outcome}",
        f"type(user): {seen.get('type')} | user.__class__: {seen.get('class')} | str(user): {seen.get('str')}",
        *(f"{expression}: {seen.get(expression)}" for expression in expressions),
        f"server errors: {errors}",
    ]
    return trial.settle(lines, verdicts, outcome=outcome, seen=seen)


@_channels_experiment(
    "scope['user'] read before accept, after accept, and scope['path'] read first: no AuthMiddlewareStack"
)
async def _user_without_middleware(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Careless(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            name = self.scope["user"].username
            await self.accept()
            await self.send(f"hello {name}")

    class AfterAccept(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            name = self.scope["user"].username
            await self.send(f"hello {name}")

    class PathFirst(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            where = self.scope["path"]
            await self.accept()
            await self.send(f"you are at {where}")

    app = _routes({"careless/": Careless, "after/": AfterAccept, "path/": PathFirst})
    outcomes, errors = {}, {}
    with trial.serve(app) as server:
        for key in ("careless", "after", "path"):
            server.log.clear()
            outcomes[key] = await attempt(server.ws_url(f"/{key}/"), receive=1, timeout=0.5)
            errors[key] = list(server.errors)
    careless = outcomes["careless"]
    verdicts = {
        "none-attribute-error": any(e.startswith("AttributeError") for e in errors["careless"]),
        "keyerror-before-accept": careless.status == 500 and errors["careless"] == ["KeyError: 'user'"],
        "sync-only": any("SynchronousOnlyOperation" in e for e in errors["careless"]),
        "scope-before-accept-forbidden": not outcomes["path"].opened and bool(outcomes["after"].messages),
    }
    lines = (
        f"scope['user'] before accept: client saw: {careless}",
        f"    server errors: {'; '.join(errors['careless']) or 'none'}",
        f"scope['user'] after accept:  client saw: {outcomes['after']}",
        f"    server errors: {'; '.join(errors['after']) or 'none'}",
        f"scope['path'] before accept: client saw: {outcomes['path']}",
    )
    return trial.settle(lines, verdicts, outcomes=outcomes, errors=errors)


@_channels_experiment("Refuser closes before accepting; Silent returns from connect() without accepting or closing")
async def _refuse_vs_silence(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Refuser(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.close(code=4403)

    class Silent(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            return

    app = _routes({"refuser/": Refuser, "silent/": Silent})
    with trial.serve(app) as server:
        refused = await attempt(server.ws_url("/refuser/"), open_timeout=0.5)
        silent = await attempt(server.ws_url("/silent/"), open_timeout=0.5)
    refused_kind = handshake_kind(refused)
    if refused.opened and refused.close_code is not None:
        refused_kind = f"close-{refused.close_code}"
    seen = f"{refused_kind}+{handshake_kind(silent)}"
    verdicts = {claim: seen == claim for claim in ("403+403", "403+timeout", "close-4403+403", "timeout+timeout")}
    lines = (f"Refuser (await self.close(code=4403)): {refused}", f"Silent (no accept, no close): {silent}")
    return trial.settle(lines, verdicts, refuser=refused, silent=silent)


WHICH_403 = {
    "close-before-accept": "await self.close() before accept",
    "origin-validator": "AllowedHostsOriginValidator, client sends no Origin header",
    "accept-without-await": "self.accept() without await",
    "user-without-middleware": "scope['user'] read without AuthMiddlewareStack",
}


@_channels_experiment("four consumers, one Python client each (no Origin header, no cookie)")
async def _which_403(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.security.websocket import AllowedHostsOriginValidator

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

    app = _routes(
        {
            "close-before-accept/": CloseFirst,
            "origin-validator/": AllowedHostsOriginValidator(Fine.as_asgi()),
            "accept-without-await/": NoAwait,
            "user-without-middleware/": NeedsUser,
        }
    )
    verdicts: dict[str, bool] = {}
    lines, outcomes = [], {}
    with recording_warnings(), trial.serve(app) as server:
        for key, label in WHICH_403.items():
            outcome = await attempt(server.ws_url(f"/{key}/"), open_timeout=0.5)
            outcomes[key] = outcome
            verdicts[f"{key}-403"] = outcome.status == 403
            lines.append(f"{label}: {outcome}")
    return trial.settle(lines, verdicts, outcomes=outcomes)


# -- sending


PAYLOAD = {"type": "chat.message", "text": "Hello"}
SEND_VARIANTS = {
    "async-send-json": "AsyncWebsocketConsumer:     await self.send_json(payload)",
    "sync-send-json": "JsonWebsocketConsumer (sync): self.send_json(payload)",
    "send-dumps": "AsyncWebsocketConsumer:     await self.send(json.dumps(payload))",
    "json-consumer-send-dict": "AsyncJsonWebsocketConsumer: await self.send(payload)",
}


@_channels_experiment("four consumers try to send a dict as one JSON text frame, each on its own path")
async def _json_send(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer, JsonWebsocketConsumer

    class AsyncPlain(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            await self.send_json(dict(PAYLOAD))  # the mistake on trial: AsyncWebsocketConsumer has no send_json

    class SyncJson(JsonWebsocketConsumer):
        def connect(self) -> None:
            self.accept()
            self.send_json(dict(PAYLOAD))

    class AsyncDumps(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            await self.send(json.dumps(PAYLOAD))

    class AsyncJsonDict(AsyncJsonWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            await self.send(dict(PAYLOAD))  # the mistake on trial: send() takes text, not a dict

    consumers = {
        "async-send-json": AsyncPlain,
        "sync-send-json": SyncJson,
        "send-dumps": AsyncDumps,
        "json-consumer-send-dict": AsyncJsonDict,
    }
    app = _routes({f"{key}/": consumer for key, consumer in consumers.items()})
    expected = json.dumps(PAYLOAD)
    verdicts: dict[str, bool] = {}
    lines, outcomes = [], {}
    with trial.serve(app) as server:
        for key, code in SEND_VARIANTS.items():
            server.log.clear()
            outcome = await attempt(server.ws_url(f"/{key}/"), receive=1, timeout=0.5)
            outcomes[key] = outcome
            verdicts[key] = outcome.messages == [expected]
            lines += [code, f"    client saw: {outcome}", f"    server errors: {server_errors(server)}"]
    return trial.settle(lines, verdicts, outcomes=outcomes)


@_channels_experiment("an AsyncJsonWebsocketConsumer is sent a JSON text, then a text that is not JSON")
async def _non_json(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncJsonWebsocketConsumer

    contents: list[Any] = []
    disconnects: list[int] = []

    class JsonEcho(AsyncJsonWebsocketConsumer):
        async def receive_json(self, content: Any, **kwargs: Any) -> None:
            contents.append(content)
            await self.send_json({"got": content})

        async def disconnect(self, code: int) -> None:
            disconnects.append(code)

    with trial.serve(JsonEcho.as_asgi()) as server:
        good = await attempt(server.ws_url("/"), send=['{"n": 1}'], receive=1, timeout=0.5)
        await asyncio.sleep(0.1)  # the consumer's disconnect() for the good client
        good_disconnects = list(disconnects)
        disconnects.clear()
        server.log.clear()
        bad = await attempt(server.ws_url("/"), send=["hello, not JSON"], receive=1, timeout=0.5)
        await asyncio.sleep(0.1)
        errors = list(server.errors)
    decode_error = any(e.startswith("JSONDecodeError") for e in errors)
    verdicts = {
        "raw-string": "hello, not JSON" in contents,
        "close-1007": bad.close_code == 1007,
        "decode-error-dropped": (
            decode_error and bad.closed_by == "nobody" and contents == [{"n": 1}] and not disconnects
        ),
        "skipped-stays-open": bad.closed_by == "client" and not errors,
    }
    lines = (
        f"'{{\"n\": 1}}':         client saw: {good}; disconnect() got {good_disconnects}",
        f"'hello, not JSON': client saw: {bad}",
        f"    server errors: {'; '.join(errors) or 'none'}",
        f"    receive_json() was called with: {contents}",
        f"    disconnect() calls for that connection: {disconnects or 'none'}",
    )
    return trial.settle(lines, verdicts, good=good, bad=bad, errors=errors)


# -- forgotten awaits


@_channels_experiment("connect() calls self.accept() without await; the client allows 0.5 s for the handshake")
async def _missing_await_accept(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class ForgetsAwait(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.accept()  # BUG on purpose: the forgotten await is the point

    with recording_warnings() as caught, trial.serve(ForgetsAwait.as_asgi()) as server:
        outcome = await attempt(server.ws_url("/"), open_timeout=0.5)
        errors = list(server.errors)
    found = warning_lines(caught, RuntimeWarning)
    never_awaited = any("was never awaited" in w for w in found)
    verdicts = {
        "timeout-and-warning": outcome.timed_out and never_awaited and not errors,
        "runtimeerror-500": outcome.status == 500 and any("RuntimeError" in e for e in errors),
        "opens-anyway": outcome.opened,
        "returned-without-handshake-500": outcome.status == 500
        and any("returned without completing handshake" in e for e in errors),
    }
    lines = (
        f"client saw: {outcome}",
        f"exceptions and errors uvicorn logged: {'; '.join(errors) or 'none'}",
        f"warnings on the server: {'; '.join(found) or 'none'}",
    )
    return trial.settle(lines, verdicts, outcome=outcome, warnings=found, errors=errors)


FORGOT_TEST = '''\
async def accept():
    """Stands in for AsyncWebsocketConsumer.accept."""


def test_connect():
    accept()  # forgot the await
'''
PYTEST_RUNS = {  # claim -> (command-line options, the [pytest] settings file)
    "plain-fails": ([], ""),
    "runtimewarning-fails": (["-W", "error::RuntimeWarning"], ""),
    "unraisable-fails": (["-W", "error::pytest.PytestUnraisableExceptionWarning"], ""),
    "both-fail": (["-W", "error::RuntimeWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning"], ""),
    "error-fails": (["-W", "error"], ""),
    "ini-error-fails": ([], "filterwarnings = error\n"),
}


@experiment("one test that forgets an await, run by pytest six times with different warning filters")
async def _warnings_as_errors(trial: Trial) -> Evidence:
    import pytest

    verdicts: dict[str, bool] = {}
    lines = [f"pytest {pytest.__version__}, plugins from other packages switched off, a fresh process each time"]
    results = {}
    env = {"PATH": os.environ.get("PATH", ""), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "test_forgot.py").write_text(FORGOT_TEST)
        for claim, (options, settings) in PYTEST_RUNS.items():
            # pytest.ini makes this folder the rootdir, so no project's settings apply; only `settings` does
            (Path(folder) / "pytest.ini").write_text(f"[pytest]\n{settings}")
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "test_forgot.py"]
            run = await asyncio.to_thread(
                subprocess.run, command, cwd=folder, env=env, capture_output=True, text=True, timeout=15
            )
            failed = run.returncode == 1 and "1 failed" in run.stdout
            results[claim] = "failed" if failed else "passed"
            verdicts[claim] = failed
            if "PytestUnraisableExceptionWarning" in run.stdout:
                report = "as a PytestUnraisableExceptionWarning"
            elif "RuntimeWarning: coroutine" in run.stdout:
                report = "as the RuntimeWarning itself"
            else:
                report = "not at all"
            shown = " ".join(["pytest", *options])
            lines.append(f"{shown}, pytest.ini: {settings.strip() or 'empty'}")
            lines.append(
                f"    the test {'FAILED' if failed else 'passed'}; pytest reported the forgotten await {report}"
            )
    return trial.settle(lines, verdicts, result=results)


# -- groups and the channel layer


@_channels_experiment(
    "ada sends 'hello' to a room with bob; each consumer's chat_message() names itself; cy joins later"
)
async def _channel_layer_role(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Room(AsyncWebsocketConsumer):
        group = "evidence-room"

        async def connect(self) -> None:
            self.who = self.scope["query_string"].decode().removeprefix("who=")
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=f"to {self.who}: {event['text']}")

    with trial.serve(Room.as_asgi()) as server:
        async with connect(server.ws_url("/?who=ada")) as ada, connect(server.ws_url("/?who=bob")) as bob:
            await ada.send("hello")
            (ada_heard, _), (bob_heard, _) = await asyncio.gather(listen(ada), listen(bob))
            async with connect(server.ws_url("/?who=cy")) as late:
                late_heard, _ = await listen(late)
        errors = server_errors(server)
    verdicts = {
        "layer-writes-sockets": "hello" in bob_heard,
        "consumers-deliver-no-history": (
            ada_heard == ["to ada: hello"] and bob_heard == ["to bob: hello"] and late_heard == []
        ),
        "keeps-history": bool(late_heard),
        "skips-sender": not ada_heard and bool(bob_heard),
    }
    lines = (
        f"ada (the sender) heard: {ada_heard}",
        f"bob (same group, another consumer) heard: {bob_heard}",
        f"cy, who joined after the line was sent, heard: {late_heard or 'nothing'}",
        f"server errors: {errors}",
    )
    return trial.settle(lines, verdicts)


ORDER_NAMES = ("ada", "bob", "cy")
ORDER_LINES = 3


@_channels_experiment("ada, bob and cy in one room take turns sending 3 numbered lines each")
async def _group_order(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Room(AsyncWebsocketConsumer):
        group = "evidence-order"

        async def connect(self) -> None:
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    total = len(ORDER_NAMES) * ORDER_LINES
    heard: dict[str, list[str | bytes]] = {who: [] for who in ORDER_NAMES}
    with trial.serve(Room.as_asgi()) as server:
        clients = {who: await connect(server.ws_url("/")) for who in ORDER_NAMES}
        try:
            for number in range(1, ORDER_LINES + 1):
                for who, ws in clients.items():
                    await ws.send(f"{who}#{number}")
            await asyncio.gather(*(collect(ws, heard[who], expect=total, quiet=0.3) for who, ws in clients.items()))
        finally:
            for ws in clients.values():
                await ws.close()
        errors = server_errors(server)

    def numbers(lines: list[str | bytes], sender: str) -> list[int]:
        return [int(str(line).split("#")[1]) for line in lines if str(line).startswith(f"{sender}#")]

    in_order = list(range(1, ORDER_LINES + 1))
    everyone = {who: {sender: numbers(heard[who], sender) for sender in ORDER_NAMES} for who in ORDER_NAMES}
    deliveries = {line: sum(line in got for got in heard.values()) for got in heard.values() for line in got}
    verdicts = {
        "all-in-sender-order": all(all(got == in_order for got in by.values()) for by in everyone.values()),
        "first-three-only": all(len(got) == ORDER_LINES for got in heard.values()),
        "one-member-each": bool(deliveries) and all(count == 1 for count in deliveries.values()),
        "sender-twice": any(len(by[who]) > len(set(by[who])) for who, by in everyone.items()),
    }
    lines = [f"{who} heard {len(heard[who])} lines; numbers by sender: {everyone[who]}" for who in ORDER_NAMES] + [
        f"clients that received each line: {sorted(set(deliveries.values()))}",
        f"server errors: {errors}",
    ]
    return trial.settle(lines, verdicts, heard=heard)


@_channels_experiment("group_send of type 'chat.message' to consumers whose handler is named chat_msg")
async def _missing_group_handler(trial: Trial) -> Evidence:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.layers import get_channel_layer

    members: list[str] = []
    disconnects: list[int] = []

    class Typo(AsyncWebsocketConsumer):
        group = "evidence-typo"

        async def connect(self) -> None:
            members.append(self.channel_name)
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            disconnects.append(code)
            await self.channel_layer.group_discard(self.group, self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

        async def chat_msg(self, event: dict[str, Any]) -> None:  # the type "chat.message" looks for chat_message
            await self.send(text_data=event["text"])

    layer = get_channel_layer()
    with trial.serve(Typo.as_asgi()) as server:
        async with connect(server.ws_url("/")) as ada, connect(server.ws_url("/")) as bob:
            await ada.send("hello")
            (ada_heard, ada_end), (bob_heard, bob_end) = await asyncio.gather(listen(ada), listen(bob))
        errors = list(server.errors)
    left = [channel for channel in members if channel in getattr(layer, "groups", {}).get(Typo.group, {})]
    for channel in members:  # disconnect() never ran: take the dead mailboxes out of the group ourselves
        await layer.group_discard(Typo.group, channel)
    no_handler = [e for e in errors if e.startswith("ValueError: No handler for message type chat.message")]
    verdicts = {
        "valueerror-all-dropped": ada_end == bob_end == "dropped (1006)" and len(no_handler) == 2,
        "silently-ignored": ada_end == bob_end == "open" and not errors,
        "delivered-anyway": bool(ada_heard or bob_heard),
        "only-sender-affected": ada_end != bob_end,
    }
    lines = (
        f"ada (sender) heard {ada_heard} -> {ada_end}",
        f"bob (did nothing) heard {bob_heard} -> {bob_end}",
        f"server errors: {'; '.join(dict.fromkeys(errors)) or 'none'} (x{len(no_handler)})",
        f"disconnect() calls: {disconnects or 'none'}; mailboxes still listed in the group afterwards: {len(left)}",
    )
    return trial.settle(lines, verdicts)


# -- blocking and threads


WORK_SECONDS = 0.6


def _bucket(seconds: float) -> str:
    if seconds > WORK_SECONDS / 2:
        return "over 0.3 s"
    return "under 0.15 s" if seconds < WORK_SECONDS / 4 else "between 0.15 and 0.3 s (busy machine?)"


@_channels_experiment("client A's message makes its consumer wait 0.6 s; client B sends 'ping' meanwhile")
async def _blocking_call(trial: Trial) -> Evidence:
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
            elif self.scope["path"] == "/to_thread":
                await asyncio.to_thread(time.sleep, WORK_SECONDS)  # blocks a worker thread instead
            else:
                await asyncio.sleep(WORK_SECONDS)
            await self.send(text_data="done")

    latency: dict[str, float] = {}
    endings: dict[str, str] = {}
    with trial.serve(Worker.as_asgi()) as server:
        for path in ("/time.sleep", "/asyncio.sleep", "/to_thread"):
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
        errors = list(server.errors)
    blocked, free, threaded = latency["/time.sleep"], latency["/asyncio.sleep"], latency["/to_thread"]
    verdicts = {
        "others-wait": blocked > WORK_SECONDS / 2 and free < WORK_SECONDS / 4 and threaded < WORK_SECONDS / 4,
        "others-unaffected": blocked < WORK_SECONDS / 4,
        "others-closed": "closed" in endings.values(),
        "raises": any("SynchronousOnlyOperation" in e for e in errors),
    }
    lines = (
        f"time.sleep(0.6) in A's receive(): B's echo came back {_bucket(blocked)} ({endings['/time.sleep']})",
        f"await asyncio.sleep(0.6) instead:  B's echo came back {_bucket(free)} ({endings['/asyncio.sleep']})",
        f"await asyncio.to_thread(time.sleep, 0.6): B's echo came back {_bucket(threaded)} ({endings['/to_thread']})",
        f"server errors: {'; '.join(errors) or 'none'}",
    )
    return trial.settle(lines, verdicts)


def _sync_queue_app() -> Any:
    """/sync/ sleeps 0.6 s in a sync receive(); /async/ echoes; /async-no-cleanup/ echoes without Channels' dispatch."""
    from channels.consumer import get_handler_name
    from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

    class SlowSync(WebsocketConsumer):
        def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            self.send(text_data="started")
            time.sleep(WORK_SECONDS)  # runs on asgiref's shared sync thread, not on the event loop
            self.send(text_data="done")

    class AsyncEcho(AsyncWebsocketConsumer):
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=text_data)

    class EchoWithoutCleanup(AsyncEcho):
        async def dispatch(self, message: dict[str, Any]) -> None:
            # Channels' own dispatch() first awaits aclose_old_connections() (a sync_to_async call); this one does not
            handler = getattr(self, get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)

    return _routes({"sync/": SlowSync, "async/": AsyncEcho, "async-no-cleanup/": EchoWithoutCleanup})


async def _echo_time(ws: Any) -> tuple[float, str]:
    """How long a "ping" took to come back, and whether it did ("echo") or the connection closed."""
    started = time.perf_counter()
    await ws.send("ping")
    try:
        await asyncio.wait_for(ws.recv(), 2)
        return time.perf_counter() - started, "echo"
    except ConnectionClosed:
        return time.perf_counter() - started, "closed"


@_channels_experiment(
    "a sync consumer sleeps 0.6 s in receive(); two async consumers on the same server echo meanwhile"
)
async def _sync_thread_queue(trial: Trial) -> Evidence:
    with trial.serve(_sync_queue_app()) as server:
        async with (
            connect(server.ws_url("/sync/")) as slow,
            connect(server.ws_url("/async/")) as plain,
            connect(server.ws_url("/async-no-cleanup/")) as bare,
        ):
            baseline, _ = await _echo_time(plain)
            await slow.send("work")
            await slow.recv()  # "started": the sync handler is now asleep on the shared thread
            loop_started = time.perf_counter()
            await await_on(server.loop, asyncio.sleep(0))
            loop_answer = time.perf_counter() - loop_started
            (plain_wait, plain_end), (bare_wait, bare_end) = await asyncio.gather(_echo_time(plain), _echo_time(bare))
            await asyncio.wait_for(slow.recv(), 2)  # "done"
        errors = server_errors(server)
    fast, slow_limit = WORK_SECONDS / 4, WORK_SECONDS / 2
    verdicts = {
        "async-unaffected": plain_wait < fast,
        "waits-for-shared-thread": (
            baseline < fast and plain_wait > slow_limit and bare_wait < fast and loop_answer < fast
        ),
        "sync-blocks-loop": loop_answer > slow_limit,
        "async-closed": "closed" in (plain_end, bare_end),
    }
    lines = (
        f"async echo, nothing else busy: {_bucket(baseline)}",
        "while the sync consumer sleeps 0.6 s:",
        f"    the server's event loop ran a callback: {_bucket(loop_answer)}",
        f"    async echo (Channels' dispatch):         {_bucket(plain_wait)} ({plain_end})",
        f"    async echo, dispatch without aclose_old_connections(): {_bucket(bare_wait)} ({bare_end})",
        f"server errors: {errors}",
    )
    return trial.settle(lines, verdicts)


def _orm_app(tidied: threading.Event) -> Any:
    """Consumers that count users with the ORM: /direct/, /unsafe/ (the same, then closes the connection and sets
    `tidied`) and /wrapped/ (in database_sync_to_async)."""
    from channels.db import database_sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
    from django.contrib.auth.models import User
    from django.db import connection

    def count_users() -> str:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        return f"{User.objects.count()} users (query on the event loop's thread: {on_loop})"

    class Direct(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=count_users())

    class Wrapped(Direct):
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=await database_sync_to_async(count_users)())

    class DirectThenTidy(Direct):
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            try:
                await super().receive(text_data, bytes_data)
            finally:
                connection.close()  # a query on the loop's thread opened a connection there; do not leave it open
                tidied.set()

    return _routes({"direct/": Direct, "unsafe/": DirectThenTidy, "wrapped/": Wrapped})


@_channels_experiment(
    "an async consumer that counts users with the ORM: directly, with DJANGO_ALLOW_ASYNC_UNSAFE, wrapped"
)
async def _sync_orm(trial: Trial) -> Evidence:
    tidied = threading.Event()
    with trial.serve(_orm_app(tidied)) as server:
        direct = await attempt(server.ws_url("/direct/"), send=["count"], receive=1)
        direct_errors = list(server.errors)
        server.log.clear()
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        try:
            unsafe = await attempt(server.ws_url("/unsafe/"), send=["count"], receive=1)
            await _wait(tidied, 1)  # connection.close() is checked too: keep the variable until it has run
        finally:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        unsafe_errors = list(server.errors)
        server.log.clear()
        wrapped = await attempt(server.ws_url("/wrapped/"), send=["count"], receive=1)
        wrapped_errors = list(server.errors)
    sync_only = any(e.startswith("SynchronousOnlyOperation") for e in direct_errors)
    verdicts = {
        "sync-only-dropped-wrapper-fixes": (
            sync_only
            and direct.closed_by == "nobody"
            and any("event loop's thread: False" in str(m) for m in wrapped.messages)
            and not wrapped_errors
        ),
        "direct-answers": bool(direct.messages),
        "hangs": direct.opened and not direct.messages and direct.closed_by != "nobody",
        "unsafe-env-moves-query": any("event loop's thread: False" in str(m) for m in unsafe.messages),
    }
    lines = (
        f"direct ORM call:             client saw: {direct}",
        f"    server errors: {'; '.join(direct_errors) or 'none'}",
        f"the same, DJANGO_ALLOW_ASYNC_UNSAFE=true: client saw: {unsafe}",
        f"    server errors: {'; '.join(unsafe_errors) or 'none'}",
        f"database_sync_to_async:      client saw: {wrapped}",
        f"    server errors: {'; '.join(wrapped_errors) or 'none'}",
    )
    return trial.settle(lines, verdicts)
