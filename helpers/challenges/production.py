"""Part 2's coding challenges (notebook 19_challenges_production.ipynb): production fixes, checked by live clients.

Five checkers on a `Registry` of their own (the mechanism is `helpers.challenges.core`), one per lesson:

    check("dead-client", room_app, members, SERVER_OPTIONS)   # lesson 15: a client frozen with SIGSTOP
    check("resume-chat", resume_app)                          # lesson 15: replay after ?since=N
    check("nginx-location", LOCATION)                         # lesson 16: a real nginx with your block
    check("auth-deadline", auth_app)                          # lesson 17: first-message token, 2 s deadline
    check("missing-test", test_chat)                          # lesson 14: your test, run by a real pytest

Each serves the learner's code with uvicorn 0.54 (websockets-sansio) on loopback, runs real clients (a child
process that is paused, a real nginx, a child `pytest`), stops everything it started, and fills the checklist.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import re
import textwrap
import time
from collections.abc import Callable
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from helpers import nginx
from helpers.challenges.core import (
    CHECK_TIMEOUT,
    ChallengeError,
    Registry,
    Report,
    connect_or_none,
    json_or_none,
    listen,
    serve_for,
    started_for,
)
from helpers.challenges.production_chat import BUGS
from helpers.clients import Outcome, attempt, connect, describe_handshake_failure, read_handshake_failure
from helpers.faults.child_client import start_child_client
from helpers.pytest_runs.project import Project

__all__ = [
    "AUTH_AUDIENCE",
    "AUTH_DEADLINE",
    "AUTH_SECRET",
    "CHALLENGES",
    "CHECK_TIMEOUT",
    "FORGED_CLIENT",
    "FREEZE_BOUND",
    "QUIET_SECONDS",
    "REGISTRY",
    "TEST_IMPORTS",
    "TEST_TIMEOUT",
    "auth_message",
    "challenge",
    "check",
    "issue_token",
    "load",
    "load_file",
    "path",
    "source",
    "wrong_solutions",
]

REGISTRY = Registry()
CHALLENGES = REGISTRY.challenges
challenge = REGISTRY.challenge
check = REGISTRY.check
path = REGISTRY.path
source = REGISTRY.source
load = REGISTRY.load
load_file = REGISTRY.load_file
wrong_solutions = REGISTRY.wrong_solutions

FREEZE_BOUND = 2.0  # dead-client: seconds from the SIGSTOP to the frozen client leaving `members`
QUIET_SECONDS = 2.0  # nginx-location: how long the quiet connection must stay open (nginx's default timeout: 60 s)
CLIENT_ADDRESS = "127.0.0.2"  # nginx-location: the client's own loopback address, so it differs from nginx's
FORGED_CLIENT = "203.0.113.7"  # nginx-location: what a lying client puts in its own X-Forwarded-For
AUTH_SECRET = "notebook-19-signing-key-for-loopback-only"  # 41 bytes: PyJWT warns below 32 for HS256
AUTH_AUDIENCE = "ws-lab"
AUTH_DEADLINE = 2.0  # auth-deadline: seconds from accept to a valid auth message
AUTH_SLACK = 0.5  # auth-deadline: what the check allows on top, for the handshake and a busy machine
TEST_TIMEOUT = 1.0  # missing-test: pytest-timeout's limit per test run (a TestClient receive has no timeout)
# missing-test: the learner's test function is written below these lines, so it can use them without imports.
TEST_IMPORTS = (
    "import asyncio\n\nimport pytest\nfrom starlette.testclient import TestClient\n"
    "from starlette.websockets import WebSocketDisconnect\n\nfrom helpers.servers import serve\n"
)


async def _seconds_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until condition() holds (polled every 10 ms), or None if it did not within `timeout`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started <= timeout:
        if condition():
            return loop.time() - started
        await asyncio.sleep(0.01)
    return None


# --------------------------------------------------------------------------------------------------
# 1. dead client (lesson 15)


def _options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise ChallengeError(
            "SERVER_OPTIONS must be a dict of uvicorn options for serve(), such as {'ws_ping_interval': 20.0}"
        )
    return options


async def _closes_normally(url: str, members: dict[str, Any]) -> bool:
    """bea joins, closes with 1000, and must be out of `members` within 0.5 s."""
    bea = await connect_or_none(f"{url}?name=bea", ping_interval=None)
    if bea is None or await _seconds_until(lambda: "bea" in members, 1.0) is None:
        return False
    await bea.close()
    return await _seconds_until(lambda: "bea" not in members, 0.5) is not None


@challenge(1, "Forget a frozen client within 2 s", ["room_app", "members", "SERVER_OPTIONS"], starter_fails=[2])
async def _dead_client(report: Report, app: Any, members: Any, options: Any) -> None:
    if not isinstance(members, dict):
        raise ChallengeError("members must be the dict the room keeps, name -> WebSocket")
    with serve_for(app, "dead-client", **_options(options)) as server:
        url = server.ws_url("/room")
        cat = started_for("dead-client", await asyncio.to_thread(start_child_client, f"{url}?name=cat"))
        try:
            ann = await connect_or_none(f"{url}?name=ann", ping_interval=None)  # it answers pings, sends none
            joined = await _seconds_until(lambda: {"ann", "cat"} <= set(members), 1.0) is not None
            report.add(
                "two clients join: members holds ann and cat",
                joined and ann is not None,
                "accept, then `members[websocket.query_params['name']] = websocket`",
                f"members: {sorted(members)}",
            )
            if not joined or ann is None:
                return
            cat.pause()  # SIGSTOP: its socket stays open, nothing in it runs, not even a pong
            gone = await _seconds_until(lambda: "cat" not in members, FREEZE_BOUND)
            report.add(
                f"cat's process is frozen (SIGSTOP): cat is out of members within {FREEZE_BOUND:g} s",
                gone is not None,
                "nothing arrives from a frozen peer, so only a question it cannot answer finds it: uvicorn's pings "
                "(SERVER_OPTIONS = {'ws_ping_interval': 0.5, 'ws_ping_timeout': 0.5} find it within 1 s; uvicorn's "
                "defaults, 20 s and 20 s, within 40 s); and remove the member in `finally:`, however it left",
                f"cat was still in members {FREEZE_BOUND:g} s after the freeze",
            )
            await asyncio.sleep(0.2)
            report.add(
                "ann, whose client answers pings, is still connected and in members",
                ann.close_code is None and "ann" in members,
                "only a peer that does not answer may go: a client that sends nothing is not dead (browsers "
                "and these clients answer pings but send no messages of their own)",
                f"ann's connection was closed ({ann.close_code})" if ann.close_code else "ann left members",
            )
            await ann.close()
            report.add(
                "a client that closes normally (1000) leaves members",
                await _closes_normally(url, members),
                "remove the member in `finally:` around the receive loop",
                "bea was still in members 0.5 s after her close",
            )
        finally:
            await asyncio.to_thread(cat.stop)  # resumed first: no stopped process is left behind


# --------------------------------------------------------------------------------------------------
# 2. resume from a sequence number (lesson 15)


def _frames(messages: list[str | bytes], base: int = 0) -> list[tuple[int, str]] | None:
    """(seq - base, text) of each `{"seq": n, "text": ...}` message; None if any message is not one."""
    frames = []
    for message in messages:
        data = json_or_none(message)
        if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or not isinstance(data.get("text"), str):
            return None
        frames.append((data["seq"] - base, data["text"]))
    return frames


def _numbers(frames: list[tuple[int, str]] | None) -> str:
    return "messages that are not {'seq': n, 'text': ...}" if frames is None else str([n for n, _ in frames])


async def _numbered_pair(report: Report, ann: ClientConnection, bob: ClientConnection) -> int | None:
    """ann sends m1 and m2; both must get them numbered one after the other. The number before m1, or None."""
    await ann.send("m1")
    await ann.send("m2")
    (ann_heard, _), (bob_heard, _) = await asyncio.gather(listen(ann), listen(bob))
    ann_frames, bob_frames = _frames(ann_heard), _frames(bob_heard)
    numbered = (
        bob_frames is not None
        and [text for _, text in bob_frames] == ["m1", "m2"]
        and bob_frames[1][0] == bob_frames[0][0] + 1
        and ann_frames == bob_frames
    )
    report.add(
        'each message reaches every client, the sender too, as {"seq": n, "text": ...}, numbered one after another',
        numbered,
        "keep a counter; for each text, `seq += 1`, keep (seq, text) in a history, and send every client "
        'json.dumps({"seq": seq, "text": text})',
        f"ann received {ann_heard}; bob received {bob_heard}",
    )
    return bob_frames[0][0] - 1 if numbered and bob_frames else None


@challenge(2, "Resume from a sequence number", ["resume_app"], starter_fails=[2])
async def _resume_chat(report: Report, app: Any) -> None:
    with serve_for(app, "resume-chat", ws_ping_interval=None) as server:
        url = server.ws_url("/chat")
        ann, bob = await connect_or_none(url), await connect_or_none(url)
        if ann is None or bob is None:
            report.add("two clients can connect to /chat", False, "accept every WebSocket at /chat")
            return
        base = await _numbered_pair(report, ann, bob)  # on a fresh server 0; a re-run's server numbers on
        if base is None:
            await asyncio.gather(ann.close(), bob.close())
            return
        await ann.close()  # ann has seen 2; while she is away 3, 4 and 5 are sent
        for text in ("m3", "m4", "m5"):
            await bob.send(text)
        await listen(bob)
        back = await connect_or_none(f"{url}?since={base + 2}")
        replayed = _frames((await listen(back))[0], base) if back is not None else []
        numbers = _numbers(replayed)
        report.add(
            "ann, back with ?since=2, gets what she missed: 3, 4 and 5, in order",
            replayed is not None and [frame for frame in replayed if frame[0] > 2] == [(3, "m3"), (4, "m4"), (5, "m5")],
            "on connect, read `since` from websocket.query_params and first send every kept message whose seq "
            "is greater than it, oldest first",
            f"after reconnecting she got {numbers} (numbers counted from the check's first message)",
        )
        report.add(
            "...and nothing she had already: no 1 or 2, no number twice",
            replayed is not None and all(n > 2 for n, _ in replayed) and len({n for n, _ in replayed}) == len(replayed),
            "`since` is the last number she saw: replay seq > since, not >=, and not the whole history",
            f"after reconnecting she got {numbers}",
        )
        await bob.send("m6")
        live = _frames((await listen(back))[0], base) if back is not None else []
        report.add(
            "then new messages reach her live: 6",
            live == [(6, "m6")],
            "after the replay, add her to the clients that every new message is sent to",
            f"she got {_numbers(live)}",
        )
        carol = await connect_or_none(url)
        fresh, _ = await listen(carol) if carol is not None else ([], False)
        report.add(
            "a client that connects without ?since= gets no replay",
            carol is not None and fresh == [],
            "replay only when the client asks with ?since=N; a new client starts with what comes next",
            f"a new client got {_numbers(_frames(fresh, base))} before anything new was sent",
        )
        for ws in (back, bob, carol):
            if ws is not None:
                await ws.close()


# --------------------------------------------------------------------------------------------------
# 3. the nginx location block (lesson 16)


async def _whoami(websocket: WebSocket) -> None:
    """Say who the app thinks the client is and which Host it asked for, then echo."""
    await websocket.accept()
    client = websocket.client.host if websocket.client else None
    await websocket.send_text(json.dumps({"client": client, "host": websocket.headers.get("host", "")}))
    with contextlib.suppress(WebSocketDisconnect):
        async for text in websocket.iter_text():
            await websocket.send_text(text)


async def _through(url: str, forged: bool = False, quiet: float = 0.0) -> tuple[dict[str, Any] | None, str]:
    """Connect from CLIENT_ADDRESS, read /whoami's answer, stay quiet `quiet` s, then check an echo.

    Returns (what the app saw, or None when it did not get through; what the client saw, in words)."""
    headers = {"X-Forwarded-For": FORGED_CLIENT} if forged else None
    try:
        ws = await connect(url, additional_headers=headers, local_addr=(CLIENT_ADDRESS, 0), ping_interval=None)
    except (InvalidHandshake, TimeoutError, OSError) as exc:
        return None, describe_handshake_failure(read_handshake_failure(exc, 2.0))
    try:
        async with asyncio.timeout(quiet + 2.0):
            seen = json.loads(await ws.recv())
            await asyncio.sleep(quiet)
            await ws.send("still here")
            echoed = await ws.recv()
    except ConnectionClosed:
        return None, f"the connection was closed ({ws.close_code}) before {quiet:g} s of quiet had passed"
    except TimeoutError:
        return None, "no answer came through within 2 s"
    finally:
        await ws.close()
    return (seen, "") if echoed == "still here" else (None, f"the echo came back as {echoed!r}")


def _host(seen: dict[str, Any] | None) -> str:
    return re.sub(r":\d+$", ":<port>", str(seen["host"])) if seen else ""


@challenge(3, "The nginx location block", ["LOCATION"], starter_fails=[1])
async def _nginx_location(report: Report, block: Any) -> None:
    if not isinstance(block, str):
        raise ChallengeError("LOCATION must be the text of your block, a str: 'location / { ... }'")
    if not nginx.available():
        raise ChallengeError(nginx.INSTALL_HINT)
    app = Starlette(routes=[WebSocketRoute("/whoami", _whoami)])
    with serve_for(app, "nginx-location", ws_ping_interval=None) as backend:  # no pings: a quiet link stays quiet
        try:
            proxy = await asyncio.to_thread(
                nginx.start_nginx, backend.port, location_block=block, name="challenge-nginx-location"
            )
        except nginx.NginxError as exc:
            raise ChallengeError(f"nginx refused the block: {exc}") from None
        started_for("nginx-location", proxy)
        with proxy:
            url = proxy.ws_url("/whoami")
            (plain, said), (forged, _), (quiet, quiet_said) = await asyncio.gather(
                _through(url), _through(url, forged=True), _through(url, quiet=QUIET_SECONDS)
            )
    report.add(
        "a WebSocket gets through nginx to the app and back",
        plain is not None,
        "nginx does not pass the hop-by-hop headers on: `proxy_set_header Upgrade $http_upgrade;` and "
        '`proxy_set_header Connection $connection_upgrade;` (or "upgrade"), with `proxy_http_version 1.1;`',
        said,
    )
    through = None if plain is None else True
    unchecked = "no WebSocket got through"
    real = plain is not None and forged is not None and plain["client"] == forged["client"] == CLIENT_ADDRESS
    report.add(
        f"the app sees the real client ({CLIENT_ADDRESS}), also when it sends a forged X-Forwarded-For",
        through and real,
        "`proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`: nginx appends the address it saw, and "
        "uvicorn takes the rightmost one it does not trust; without the line the client's own header goes through",
        unchecked
        if plain is None
        else f"the app saw {plain['client']}, and {forged['client'] if forged else '?'} with the forged header",
    )
    report.add(
        "the app sees the Host the client asked for (127.0.0.1:<port>), not the upstream's name",
        through and _host(plain).startswith("127.0.0.1"),
        "`proxy_set_header Host $http_host;`: otherwise nginx sends the name in proxy_pass (`app`)",
        unchecked if plain is None else f"the app saw Host: {_host(plain)!r}",
    )
    report.add(
        f"a connection on which nothing passes for {QUIET_SECONDS:g} s (no pings) stays open",
        through and quiet is not None,
        "nginx closes an upgraded connection after proxy_read_timeout without traffic: leave it at its 60 s "
        "default or raise it (`proxy_read_timeout 1h;`), and let pings find dead peers (lesson 15)",
        unchecked if plain is None else quiet_said,
    )


# --------------------------------------------------------------------------------------------------
# 4. refuse unauthenticated clients within 2 s (lesson 17)


def issue_token(user: str, lifetime: float = 60.0) -> str:
    """A JWT (HS256, AUTH_SECRET) for `user`, for AUTH_AUDIENCE, expiring `lifetime` s from now (negative: expired)."""
    claims = {"sub": user, "aud": AUTH_AUDIENCE, "exp": math.ceil(time.time() + lifetime)}
    return jwt.encode(claims, AUTH_SECRET, algorithm="HS256")


def auth_message(token: str) -> str:
    """The first message a client sends: `{"type": "auth", "token": ...}`."""
    return json.dumps({"type": "auth", "token": token})


def _tampered() -> str:
    """ada's token with its payload swapped for bob's: bob's claims under ada's signature."""
    ada, bob = issue_token("ada").split("."), issue_token("bob").split(".")
    return ".".join([ada[0], bob[1], ada[2]])


def _refused(outcome: Outcome) -> bool:
    """Closed by the server with a code from 4000-4999 and a reason, and nothing received before."""
    code = outcome.close_code
    readable = outcome.closed_by == "server" and code is not None and 4000 <= code <= 4999
    return readable and bool(outcome.close_reason) and not outcome.messages


@challenge(4, "Refuse unauthenticated clients within 2 s", ["auth_app"], starter_fails=[2, 3, 4, 5])
async def _auth_deadline(report: Report, app: Any) -> None:
    with serve_for(app, "auth-deadline", ws_ping_interval=None) as server:
        url = server.ws_url("/room")
        valid, silent, tampered, expired, talks_first = await asyncio.gather(
            attempt(url, send=[auth_message(issue_token("ada")), "hi"], receive=2, timeout=1),
            attempt(url, receive=1, timeout=AUTH_DEADLINE + 1.0),
            attempt(url, send=[auth_message(_tampered())], receive=1, timeout=1),
            attempt(url, send=[auth_message(issue_token("ada", lifetime=-30))], receive=1, timeout=1),
            attempt(url, send=["hello", auth_message(issue_token("ada"))], receive=1, timeout=1),
        )
    report.add(
        "a valid token lets ada in: 'welcome ada', then 'hi' comes back as 'ada: hi'",
        valid.messages == ["welcome ada", "ada: hi"] and valid.closed_by == "client",
        "after a valid auth message, send f'welcome {user}', then answer each text with f'{user}: {text}'",
        str(valid),
    )
    in_time = silent.elapsed <= AUTH_DEADLINE + AUTH_SLACK
    report.add(
        f"a client that sends nothing is closed by the server within {AUTH_DEADLINE:g} s, with a 4000-4999 code "
        "and a reason",
        _refused(silent) and in_time,
        "wait for the first message inside `async with asyncio.timeout(2):` and on TimeoutError "
        "`await websocket.close(4408, 'no auth message within 2 s')`",
        str(silent),
    )
    report.add(
        "a tampered token (bob's claims, ada's signature) is refused with a 4000-4999 code and a reason",
        _refused(tampered),
        "catch jwt.InvalidTokenError and close with a code and reason: an exception drops the client with no "
        "close frame (1006), and a bare close() sends 1000 with no reason",
        str(tampered),
    )
    report.add(
        "an expired token is refused with a code of its own (not the tampered token's) and a reason",
        _refused(expired) and expired.close_code != tampered.close_code,
        "let jwt.decode check exp, catch jwt.ExpiredSignatureError first and close with its own code "
        "(4419: 'get a fresh token'), so the client knows that a new token helps",
        str(expired),
    )
    report.add(
        "a first message that is not an auth message ('hello') is refused, not answered",
        _refused(talks_first),
        "nothing is handled before the user is known: if the first message is not "
        '{"type": "auth", "token": ...}, close with 4401',
        str(talks_first),
    )


# --------------------------------------------------------------------------------------------------
# 5. write the missing test (lesson 14)

_CONFTEST = '''\
"""Written by helpers.challenges.production: the `app` fixture is the chat as specified, then each buggy chat."""

import pytest

from helpers.challenges.production_chat import BUGS, chat_app


@pytest.fixture(params=["as specified", *BUGS])
def app(request):
    return chat_app(None if request.param == "as specified" else request.param)
'''


def _test_source(test: Any) -> str:
    if not inspect.isfunction(test) or not test.__name__.startswith("test"):
        raise ChallengeError(
            "pass your test function itself, whose name starts with test: check('missing-test', test_chat)"
        )
    if "app" not in inspect.signature(test).parameters:
        raise ChallengeError("your test takes the chat as its `app` argument: def test_chat(app): ...")
    try:
        return textwrap.dedent(inspect.getsource(test))
    except (OSError, TypeError):
        raise ChallengeError("the check could not read your test's source: define it with `def` in a cell") from None


def _run_pytest(source: str, name: str) -> dict[str, tuple[str, str]]:
    """Run the learner's test against every variant in a child pytest: variant -> (outcome, first failure line)."""
    project = started_for("missing-test", Project(prefix="ws-challenge-"))
    with project:
        project.write("conftest.py", _CONFTEST)
        project.write("test_chat.py", TEST_IMPORTS + "\n\n" + source)
        # Only the plugins a test here can use: the venv's others (nbval pulls in jsonschema, hypothesis) cost
        # ~6 s of start-up per child, which pushed the check past its 15 s under a loaded CI runner.
        run = project.pytest(
            "-q",
            "--disable-plugin-autoload",
            "-p",
            "pytest_timeout",
            "-p",
            "pytest_asyncio.plugin",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            f"--timeout={TEST_TIMEOUT:g}",
            "-W",
            "error",
            "test_chat.py",
        )
    found = {}
    for variant in ("as specified", *BUGS):
        outcome = run.run.outcomes.get(f"test_chat.py::{name}[{variant}]")
        found[variant] = (outcome.outcome, outcome.message) if outcome else ("not run", run.output.strip()[-300:])
    return found


@challenge(5, "Write the missing test", ["test_chat"], starter_fails=[2, 3, 4])
async def _missing_test(report: Report, test: Any) -> None:
    results = await asyncio.to_thread(_run_pytest, _test_source(test), test.__name__)
    outcome, message = results["as specified"]
    report.add(
        "your test passes against the chat as specified",
        outcome == "passed",
        "a test that fails against a correct app catches nothing: check what a client of this app really sees "
        "(TestClient shows the app's close code 4003; a client over the network gets HTTP 403)",
        f"{outcome}: {message}",
    )
    for bug, what in BUGS.items():
        outcome, message = results[bug]
        report.add(
            f"it fails against a chat where {what}",
            outcome in ("failed", "error"),
            {
                "echo-only": "check that another client in the room (not only the sender) receives the message",
                "first-message-only": "send a second message and check that it arrives too",
                "lets-bad-rooms-in": "check that connecting to /chat/no-such-room! is refused "
                "(`pytest.raises(WebSocketDisconnect)` around TestClient's websocket_connect)",
            }[bug],
            f"your test {outcome} against it" + (f": {message}" if outcome == "not run" else ""),
        )
