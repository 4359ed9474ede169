"""Evidence for the production quiz's questions on lesson 17 (quizzes/production.toml): authentication.

Each experiment serves, under uvicorn 0.54 (websockets-sansio), the token checks lesson 17 teaches: a JWT signed
by PyJWT 2.15 with HS256 (made by `helpers.challenges.production.issue_token`, the lesson's `issue()`), checked in
the endpoint, in the first message, or in a FastAPI dependency, and points real `websockets` clients at them. A
refusal is a close code and a reason from lesson 17's table: 4401 (no valid token), 4408 (no auth message in
time). Every claim is settled from what the clients saw or what uvicorn logged, and the fact lines print that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Query, WebSocketException
from jwt.types import Options
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from helpers.challenges.production import AUTH_AUDIENCE, AUTH_SECRET, auth_message, issue_token
from helpers.clients import Outcome, attempt
from helpers.evidence.core import Evidence, EvidenceError, Trial, experiment

__all__: list[str] = []  # importing the module registers its experiments

UNAUTHORIZED, AUTH_TIMEOUT = 4401, 4408  # lesson 17's codes: no valid token; no auth message in time
AUTH_DEADLINE = 0.5  # seconds from accept to a valid auth message, as in lesson 17's Experiment 3


class _Refused(Exception):
    """Why a connection is turned away: the close code and reason the client will see (lesson 17's `Refused`)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


def _verify(token: str | None) -> dict[str, Any]:
    """The token's claims, as lesson 17's `verify()` checks them; else `_Refused` with 4401 and why."""
    if not token:
        raise _Refused(UNAUTHORIZED, "no token")
    try:
        return jwt.decode(
            token, AUTH_SECRET, algorithms=["HS256"], audience=AUTH_AUDIENCE, options={"require": ["exp", "sub", "aud"]}
        )
    except jwt.InvalidSignatureError:
        raise _Refused(UNAUTHORIZED, "bad signature") from None
    except jwt.InvalidTokenError as exc:
        raise _Refused(UNAUTHORIZED, f"invalid token: {exc}") from None


def _tampered() -> str:
    """ada's token with its payload swapped for bob's: bob's claims under ada's signature."""
    ada, bob = issue_token("ada").split("."), issue_token("bob").split(".")
    return ".".join([ada[0], bob[1], ada[2]])


async def _greet(websocket: WebSocket, user: str) -> None:
    """Accept, say hello, and wait for the client to leave."""
    await websocket.accept()
    await websocket.send_text(f"hello {user}")
    await websocket.receive()


def _seen(outcome: Outcome) -> str:
    """What a client saw, in a form a claim can compare: 'HTTP 403', 'closed 4401 'reason'', 'hello ada'."""
    if outcome.rejected:
        return f"HTTP {outcome.status}"
    if outcome.messages:
        return str(outcome.messages[0])
    if outcome.closed_by == "server":
        return f"closed {outcome.close_code} {outcome.close_reason!r}"
    return str(outcome)


# --------------------------------------------------------------------------------------------------
# Experiment 1: the token in the query string, in uvicorn's log


class _Lines(logging.Handler):
    """Keeps, as "[logger] message", the records about `/feed?token=` handshakes that reach the `uvicorn` logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if '"WebSocket /feed?token=' in message:
            self.lines.append(f"[{record.name}] {message}")


class _RedactTokens(logging.Filter):
    """Replace the value of every token= in a record's arguments, before any handler formats it (lesson 17)."""

    pattern = re.compile(r"(token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.pattern.sub(r"\1<redacted>", a) if isinstance(a, str) else a for a in record.args)
        return True


CONFIGURED_LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn.asgi")  # what a uvicorn Config changes


@contextlib.contextmanager
def _uvicorn_loggers_restored() -> Iterator[None]:
    """Put back what a uvicorn Config changes for the whole process: the levels of its three loggers, and (with
    `access_log=False`) the handlers and propagation of `uvicorn.access`."""
    loggers = [logging.getLogger(name) for name in CONFIGURED_LOGGERS]
    saved = [(logger.level, logger.propagate, list(logger.handlers)) for logger in loggers]
    try:
        yield
    finally:
        for logger, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = handlers


@contextlib.contextmanager
def _attached(logger: str, thing: logging.Handler | logging.Filter | None) -> Iterator[None]:
    """`thing` added to `logger` (as a handler or a filter) while the block runs; None adds nothing."""
    target = logging.getLogger(logger)
    if isinstance(thing, logging.Handler):
        target.addHandler(thing)
    elif thing is not None:
        target.addFilter(thing)
    try:
        yield
    finally:
        if isinstance(thing, logging.Handler):
            target.removeHandler(thing)
        elif thing is not None:
            target.removeFilter(thing)


async def _query_feed(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        user = _verify(websocket.query_params.get("token"))["sub"]
    except _Refused as refused:
        await websocket.close(refused.code, refused.reason)
        return
    await websocket.send_text(f"hello {user}")
    await websocket.receive()


@experiment(
    'uvicorn 0.54 (websockets-sansio) with log_level="info" and access_log=False serves /feed?token=<JWT>; a '
    "handler on the `uvicorn` logger prints, with a token-redacting filter nowhere, on `uvicorn`, on `uvicorn.error`"
)
async def _token_in_log(trial: Trial) -> Evidence:
    token = issue_token("ada")
    app = Starlette(routes=[WebSocketRoute("/feed", _query_feed)])
    printed: dict[str, list[str]] = {}
    clients: dict[str, str] = {}
    lines = _Lines()
    with (
        _uvicorn_loggers_restored(),
        _attached("uvicorn", lines),  # where uvicorn's own LOGGING_CONFIG puts its console handler
        trial.serve(app, log_level="info", access_log=False) as server,
    ):
        for where in ("nowhere", "uvicorn", "uvicorn.error"):
            lines.lines.clear()
            with _attached(where, None if where == "nowhere" else _RedactTokens()):
                outcome = await attempt(server.ws_url(f"/feed?token={token}"), receive=1)
                for _ in range(50):  # the line is written on the server's thread
                    if lines.lines:
                        break
                    await asyncio.sleep(0.01)
            clients[where] = _seen(outcome)
            printed[where] = [line.replace(token, "<ada's token>") for line in lines.lines]
    holds_token = {where: any("<ada's token>" in line for line in got) for where, got in printed.items()}
    verdicts = {
        "line-holds-token": holds_token["nowhere"],
        "access-log-off-silences": not printed["nowhere"],
        "filter-on-parent-redacts": bool(printed["uvicorn"]) and not holds_token["uvicorn"],
        "filter-on-error-redacts": (
            any("token=<redacted>" in line for line in printed["uvicorn.error"])
            and not holds_token["uvicorn.error"]
            and clients["uvicorn.error"] == "hello ada"
        ),
    }
    facts = [
        f"filter {'nowhere' if where == 'nowhere' else 'on ' + where}: client saw {clients[where]!r}; printed: "
        + ("; ".join(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", line) for line in got) or "nothing")
        for where, got in printed.items()
    ]
    return trial.settle(facts, verdicts, printed=printed, clients=clients)


# --------------------------------------------------------------------------------------------------
# Experiment 2: a JWT without exp, decoded four ways

DECODE_VARIANTS: dict[str, Options | None] = {  # the options= of each jwt.decode, or None: no options=
    "plain": None,
    "verify-exp": {"verify_exp": True},
    "require": {"require": ["exp"]},
    "require-no-verify": {"require": ["exp"], "verify_exp": False},
}


async def _decoding_feed(websocket: WebSocket) -> None:
    """Accept, decode ?token= with the path's variant of `jwt.decode` options; greet, or close with 4401 and the
    exception's type and message."""
    await websocket.accept()
    options = DECODE_VARIANTS[websocket.path_params["variant"]]
    token = websocket.query_params.get("token", "")
    try:
        claims = jwt.decode(token, AUTH_SECRET, algorithms=["HS256"], audience=AUTH_AUDIENCE, options=options)
    except jwt.InvalidTokenError as exc:
        await websocket.close(UNAUTHORIZED, f"{type(exc).__name__}: {exc}")
        return
    await websocket.send_text(f"hello {claims['sub']}")
    await websocket.receive()


@experiment("a JWT signed with the server's key but without exp, checked by jwt.decode (PyJWT 2.15) four ways")
async def _jwt_without_exp(trial: Trial) -> Evidence:
    tokens = {
        "without exp": jwt.encode({"sub": "ada", "aud": AUTH_AUDIENCE}, AUTH_SECRET, algorithm="HS256"),
        "fresh": issue_token("ada"),
        "expired 30 s ago": issue_token("ada", lifetime=-30),
    }
    app = Starlette(routes=[WebSocketRoute("/feed/{variant}", _decoding_feed)])
    seen: dict[str, dict[str, str]] = {}
    with trial.serve(app) as server:
        for variant in DECODE_VARIANTS:
            seen[variant] = {
                label: _seen(await attempt(server.ws_url(f"/feed/{variant}?token={token}"), receive=1))
                for label, token in tokens.items()
            }
    missing = "closed 4401 'MissingRequiredClaimError: Token is missing the \"exp\" claim'"
    for variant, said in seen.items():
        if said["fresh"] != "hello ada" or said["without exp"] not in ("hello ada", missing):
            raise EvidenceError(
                f"the {variant} check did not let a fresh token in, or refused for another reason: {said}"
            )
    verdicts = {f"{variant}-refuses": said["without exp"] == missing for variant, said in seen.items()}
    lines = [
        f"jwt.decode(token, key, algorithms=['HS256'], audience=...{'' if o is None else f', options={o!r}'}): "
        + "; ".join(f"{label}: {said}" for label, said in seen[variant].items())
        for variant, o in DECODE_VARIANTS.items()
    ]
    return trial.settle(lines, verdicts, seen=seen)


# --------------------------------------------------------------------------------------------------
# Experiment 3: first-message authentication with a deadline


async def _authenticate(websocket: WebSocket) -> dict[str, Any]:
    """The claims of the token in the first message; `_Refused` if it is late, not an auth message, or bad."""
    try:
        async with asyncio.timeout(AUTH_DEADLINE):
            first = await websocket.receive_text()
    except TimeoutError:
        raise _Refused(AUTH_TIMEOUT, f"no auth message within {AUTH_DEADLINE} s") from None
    try:
        message = json.loads(first)
    except json.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise _Refused(UNAUTHORIZED, "authenticate first")
    return _verify(message.get("token"))


def _first_message_room(handled: list[tuple[str, str]]) -> Starlette:
    """Lesson 17's `room` without the expiry: auth first, within AUTH_DEADLINE; every message acted on is recorded."""

    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            user = (await _authenticate(websocket))["sub"]
        except _Refused as refused:
            await websocket.close(refused.code, refused.reason)
            return
        await websocket.send_text(f"welcome {user}")
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                text = await websocket.receive_text()
                handled.append((user, text))
                await websocket.send_text(f"{user}: {text}")

    return Starlette(routes=[WebSocketRoute("/room", room)])


@experiment(
    f"lesson 17's first-message room ({AUTH_DEADLINE:g} s deadline): ada, a silent client, one that talks first"
)
async def _first_message_deadline(trial: Trial) -> Evidence:
    handled: list[tuple[str, str]] = []
    with trial.serve(_first_message_room(handled), ws_ping_interval=None) as server:
        url = server.ws_url("/room")
        ada, silent, talker = await asyncio.gather(
            attempt(url, send=[auth_message(issue_token("ada")), "hi"], receive=2),
            attempt(url, receive=1, timeout=2),
            attempt(url, send=["delete everything", auth_message(issue_token("ada"))], receive=1, timeout=2),
        )
    silent_closed = silent.closed_by == "server" and silent.close_code == AUTH_TIMEOUT
    verdicts = {
        "silent-4408": silent_closed and silent.elapsed >= AUTH_DEADLINE,
        "silent-1006": silent.close_code == 1006,
        "talker-welcomed": any(str(m).startswith("welcome") for m in talker.messages),
        "talker-4401-unhandled": (
            (talker.close_code, talker.close_reason) == (UNAUTHORIZED, "authenticate first")
            and ("ada", "delete everything") not in handled
        ),
    }
    if handled != [("ada", "hi")]:
        raise EvidenceError(f"the room acted on {handled}, expected only ada's 'hi'")
    lines = (
        f"ada (auth message, then 'hi'): {ada}",
        f"silent (sends nothing, only listens): {silent}",
        f"talks first ('delete everything', then a valid auth message): {talker}",
        f"messages the room acted on: {handled}",
    )
    return trial.settle(lines, verdicts, handled=handled, silent_elapsed=silent.elapsed)


# --------------------------------------------------------------------------------------------------
# FastAPI: a dependency that raises WebSocketException, and one that returns the refusal


async def _token_user(token: Annotated[str | None, Query()] = None) -> str:
    """Lesson 17's `token_user`: the user, or WebSocketException with the refusal's code and reason."""
    try:
        return str(_verify(token)["sub"])
    except _Refused as refused:
        raise WebSocketException(refused.code, refused.reason) from None


async def _token_user_or_refusal(token: Annotated[str | None, Query()] = None) -> str | _Refused:
    """The user, or the refusal itself, for the endpoint to close with after accept."""
    try:
        return str(_verify(token)["sub"])
    except _Refused as refused:
        return refused


async def _raises(websocket: WebSocket, user: Annotated[str, Depends(_token_user)]) -> None:
    await _greet(websocket, user)


async def _accepts_then_closes(
    websocket: WebSocket, user: Annotated[str | _Refused, Depends(_token_user_or_refusal)]
) -> None:
    if isinstance(user, _Refused):
        await websocket.accept()
        await websocket.close(user.code, user.reason)
        return
    await _greet(websocket, user)


def _fastapi_app() -> FastAPI:
    """A FastAPI app with the two endpoints: the dependency raises, or the endpoint accepts and closes."""
    api = FastAPI()
    api.add_api_websocket_route("/raises-websocket-exception", _raises)
    api.add_api_websocket_route("/accepts-then-closes", _accepts_then_closes)
    return api


@experiment(
    "FastAPI 0.165 on uvicorn 0.54 (websockets-sansio): a tampered token meets a dependency that raises "
    "WebSocketException(4401), and one whose endpoint accepts, then closes"
)
async def _fastapi_refusal(trial: Trial) -> Evidence:
    bad = _tampered()
    with trial.serve(_fastapi_app()) as server:
        raised = _seen(await attempt(server.ws_url(f"/raises-websocket-exception?token={bad}"), receive=1))
        closed = _seen(await attempt(server.ws_url(f"/accepts-then-closes?token={bad}"), receive=1))
        good = _seen(await attempt(server.ws_url(f"/accepts-then-closes?token={issue_token('ada')}"), receive=1))
    code_and_reason = "closed 4401 'bad signature'"
    verdicts = {
        "dep-403-accept-4401": (raised, closed) == ("HTTP 403", code_and_reason),
        "both-4401": raised == closed == code_and_reason,
        "dep-500": raised == "HTTP 500",
        "both-403": raised == closed == "HTTP 403",
    }
    lines = (
        f"the dependency raises WebSocketException(4401, 'bad signature'): the client saw {raised}",
        f"the dependency returns the refusal, the endpoint accepts and closes with it: {closed}",
        f"the same endpoint with a good token: {good!r}",
    )
    return trial.settle(lines, verdicts, raised=raised, closed=closed)
