"""Part 1's coding challenges (notebook 12_coding_challenges.ipynb): fix-the-server exercises, checked by live clients.

The mechanism (registry, `Report`, the bounded check) is `helpers.challenges.core`; this module registers Part 1's
seven checkers on its own `Registry`, whose functions `helpers.challenges` exports (`check`, `load`, ...).

    check("echo-json", EchoJson)                     # a Channels consumer class
    check("fastapi-manager", chat_app, manager)      # a FastAPI app and its ConnectionManager
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers import django_env
from helpers.challenges.core import (
    ChallengeError,
    Registry,
    Report,
    connect_or_none,
    json_or_none,
    listen,
    serve_for,
)
from helpers.clients import attempt, connect
from helpers.evidence.shared import recording_warnings
from helpers.servers import ThreadServer
from helpers.slow_clients import SLOW_MESSAGES, SLOW_SIZE, slow_client_scene, small_socket

__all__ = [
    "CHALLENGES",
    "LOOKUP_SECONDS",
    "MEMBERS",
    "REGISTRY",
    "challenge",
    "check",
    "load",
    "load_file",
    "path",
    "slow_lookup",
    "source",
    "wrong_solutions",
]

LOOKUP_SECONDS = 0.5
MEMBERS = ("ada", "grace")  # two users, so a greeting with a name written into the code cannot pass

REGISTRY = Registry(prepare=django_env.ensure)  # consumer files import Channels, which needs configured settings
CHALLENGES = REGISTRY.challenges
challenge = REGISTRY.challenge
check = REGISTRY.check
path = REGISTRY.path
source = REGISTRY.source
load = REGISTRY.load
load_file = REGISTRY.load_file
wrong_solutions = REGISTRY.wrong_solutions


def slow_lookup(word: str) -> str:
    """A blocking "dictionary lookup" for the blocking-call challenge: it takes half a second."""
    time.sleep(LOOKUP_SECONDS)
    return f"{word}: {len(word)} letters"


def _consumer_app(target: Any, key: str) -> Any:
    if not hasattr(target, "as_asgi"):
        raise ChallengeError(
            f"check({key!r}, ...) needs the consumer class itself (e.g. EchoJson), not {type(target).__name__}"
        )
    return target.as_asgi()


# --------------------------------------------------------------------------------------------------
# the challenges


@challenge(1, "Accept and echo JSON", ["EchoJson"], starter_fails=[2])
async def _echo_json(report: Report, target: Any) -> None:
    django_env.ensure()
    with serve_for(_consumer_app(target, "echo-json"), "echo-json") as server:
        url = server.ws_url("/")
        one = await attempt(url, send=['{"n": 1}'], receive=1, timeout=0.5)
        many = await attempt(url, send=['{"n": 1}', '{"n": 2}', '{"n": 3}'], receive=3, timeout=0.5)
        # Starts like JSON but is not: a consumer that echoes anything beginning with "{" unparsed fails here.
        bad = await attempt(url, send=['{"n": 4', '{"n": 4}'], receive=2, timeout=0.5)
    report.add(
        "accepts the connection (HTTP 101)",
        one.opened,
        "call `await self.accept()` in connect()",
        str(one),
    )
    report.add(
        'replies to {"n": 1} with the same object, as JSON text',
        bool(one.messages) and json_or_none(one.messages[0]) == {"n": 1},
        "decode with json.loads(text_data), reply with `await self.send(text_data=json.dumps(data))`: "
        "text_data must be a str, not a dict",
        str(one),
    )
    report.add(
        "answers every message, in order (3 sent, 3 replies)",
        [json_or_none(m) for m in many.messages] == [{"n": 1}, {"n": 2}, {"n": 3}],
        "receive() runs once per message: send one reply each time",
        str(many),
    )
    first = json_or_none(bad.messages[0]) if bad.messages else None
    report.add(
        'answers text that is not JSON (\'{"n": 4\', cut short) with {"error": ...} and keeps the connection open',
        isinstance(first, dict)
        and "error" in first
        and len(bad.messages) == 2
        and json_or_none(bad.messages[1]) == {"n": 4},
        'catch json.JSONDecodeError and send json.dumps({"error": "..."}); an exception would drop the client',
        str(bad),
    )


@challenge(2, "Reject anonymous users with a readable reason", ["MembersOnly"], starter_fails=[2])
async def _reject_anonymous(report: Report, target: Any) -> None:
    django_env.ensure()
    from channels.auth import AuthMiddlewareStack

    members = {name: await asyncio.to_thread(django_env.login_headers, name) for name in MEMBERS}
    app = AuthMiddlewareStack(_consumer_app(target, "reject-anonymous"))
    with serve_for(app, "reject-anonymous") as server:
        # receive=2: the client keeps listening until the server closes, even after a first (unwanted) message
        anonymous = await attempt(server.ws_url("/"), receive=2, timeout=0.5, open_timeout=1)
        seen = {
            name: await attempt(server.ws_url("/"), receive=1, timeout=0.5, open_timeout=1, headers=headers)
            for name, headers in members.items()
        }
    turned_away = anonymous.rejected or anonymous.closed_by == "server"
    report.add(
        "an anonymous client is turned away",
        turned_away,
        "check `self.scope['user'].is_authenticated` in connect()",
        str(anonymous),
    )
    readable = (
        anonymous.opened
        and anonymous.closed_by == "server"
        and anonymous.close_code is not None
        and 4000 <= anonymous.close_code <= 4999
        and bool(anonymous.close_reason)
    )
    report.add(
        "...and can read why: a close code from 4000-4999 with a reason",
        readable,
        "a close before accept becomes a bare HTTP 403 with no code: accept first, then "
        "`await self.close(code=4401, reason='log in first')`",
        str(anonymous),
    )
    report.add(
        "the anonymous client gets no other message first",
        not anonymous.messages,
        "decide in connect() and return right after closing; send nothing to a refused client",
        str(anonymous),
    )

    def greeted(name: str) -> bool:
        outcome = seen[name]
        others = [other for other in MEMBERS if other != name]
        text = " ".join(str(m) for m in outcome.messages)
        return outcome.opened and outcome.closed_by != "server" and name in text and not any(o in text for o in others)

    report.add(
        f"logged-in users ({' and '.join(MEMBERS)}) are let in, each greeted by their own name",
        all(greeted(name) for name in MEMBERS),
        "for an authenticated user: `await self.accept()`, then send a greeting with `self.scope['user'].username`",
        "; ".join(f"{name}: {outcome}" for name, outcome in seen.items()),
    )


@challenge(3, "Fix the missing awaits", ["Greeter"], starter_fails=[1, 4])
async def _missing_awaits(report: Report, target: Any) -> None:
    django_env.ensure()
    with recording_warnings() as caught, serve_for(_consumer_app(target, "missing-awaits"), "missing-awaits") as server:
        outcome = await attempt(server.ws_url("/"), send=["hello"], receive=2, open_timeout=1, timeout=0.5)
    never_awaited = sorted({str(w.message) for w in caught if "was never awaited" in str(w.message)})
    report.add(
        "the handshake completes (HTTP 101)",
        outcome.opened,
        "`self.accept()` only creates a coroutine: write `await self.accept()`",
        str(outcome),
    )
    report.add(
        "the greeting 'welcome' arrives first",
        outcome.messages[:1] == ["welcome"],
        "await the send in connect() as well",
        str(outcome),
    )
    report.add(
        "'hello' comes back as 'HELLO'",
        outcome.messages[1:2] == ["HELLO"],
        "await the send in receive()",
        str(outcome),
    )
    report.add(
        "no 'coroutine ... was never awaited' warnings on the server",
        not never_awaited,
        "every call to an async method (accept, send, close, group_send) needs `await`",
        "; ".join(never_awaited),
    )


@challenge(4, "Group chat with the right handler", ["RoomChat"], starter_fails=[2, 4])
async def _group_chat(report: Report, target: Any) -> None:
    django_env.ensure()
    from channels.layers import get_channel_layer

    group = getattr(target, "group", None)
    layer = get_channel_layer()
    groups = getattr(layer, "groups", None)
    before = set(groups.get(group, {})) if groups is not None and group else set()
    with serve_for(_consumer_app(target, "group-chat"), "group-chat") as server:
        url = server.ws_url("/")
        ada, bob = await connect_or_none(url), await connect_or_none(url)
        report.add(
            "two clients can connect",
            ada is not None and bob is not None,
            "join the group, then `await self.accept()` in connect()",
        )
        if ada is None or bob is None:
            return
        await ada.send("hi from ada")
        (ada_heard, _), (bob_heard, _) = await asyncio.gather(listen(ada), listen(bob))
        await ada.close()
        await bob.close()
        errors = list(dict.fromkeys(server.errors))
        report.add(
            "a line ada sends reaches bob",
            bob_heard == ["hi from ada"],
            'group_send({"type": "chat.message", ...}) calls the method chat_message: dots become underscores',
            f"bob heard {bob_heard}",
        )
        report.add(
            "...and ada herself (every member delivers to its own client)",
            ada_heard == ["hi from ada"],
            "send to the group, not to your own socket: each member's handler sends to its client",
            f"ada heard {ada_heard}",
        )
        report.add(
            "no errors on the server",
            not errors,
            "a message type without a handler raises ValueError in every member",
            "; ".join(errors),
        )
        if groups is None or not group:
            reason = "the class needs a `group` attribute" if not group else "the channel layer is not in-memory"
            report.add("clients that leave are removed from the group", None if group else False, "", reason)
            return
        left: set[str] = set()
        for _ in range(50):  # disconnect() runs on the server's loop shortly after the close
            left = set(groups.get(group, {})) - before
            if not left:
                break
            await asyncio.sleep(0.02)
    for channel in left:  # dead mailboxes of a consumer that crashed: take them out
        await layer.group_discard(group, channel)
    report.add(
        "clients that leave are removed from the group",
        not left,
        "a consumer that raised never runs disconnect(): fix the handler first; and leave the group in disconnect() "
        "with `await self.channel_layer.group_discard(self.group, self.channel_name)`",
        f"{len(left)} mailbox(es) still in group {group!r}" if left else "",
    )


async def _size(manager: Any) -> int:
    return len(manager.active)


async def _wait_size(server: ThreadServer, manager: Any, size: int, timeout: float = 0.5) -> int:
    """Poll len(manager.active) on the server's loop until it equals `size` (bounded); return the last value."""
    deadline = time.monotonic() + timeout
    current = -1
    while time.monotonic() < deadline:
        current = server.run(_size(manager))
        if current == size:
            break
        await asyncio.sleep(0.02)
    return current


async def _check_a_failed_handler_leaves(
    report: Report, server: ThreadServer, manager: Any, clients: dict[str, ClientConnection]
) -> None:
    """mallory's binary frame ends her handler with a KeyError: she must leave the set, and the room go on."""
    await clients["mallory"].send(b"\x89PNG")  # receive_text() raises KeyError: 'text' on a binary frame
    await asyncio.sleep(0.3)
    connected = [name for name, ws in clients.items() if ws.close_code is None]
    size = await _wait_size(server, manager, len(connected))
    report.add(
        "a client whose handler fails (mallory sends a binary frame) leaves the set too",
        size == len(connected),
        "clean up in `finally:`, which runs however the handler ends (a KeyError is not a WebSocketDisconnect)",
        f"{size} sockets in the set, {len(connected)} clients connected",
    )
    await clients["alice"].send("still here")
    (alice_heard, alice_open), (bob_heard, _) = await asyncio.gather(listen(clients["alice"]), listen(clients["bob"]))
    report.add(
        "after that, a broadcast still reaches alice and bob, and alice stays connected",
        alice_open and all(any("still here" in str(m) for m in heard) for heard in (alice_heard, bob_heard)),
        "a dead socket left in the set makes the *sender's* broadcast fail: clean up in `finally:` and "
        "loop over a copy, `for ws in list(self.active)`",
        "alice's connection was closed" if not alice_open else "",
    )


@challenge(5, "A FastAPI ConnectionManager that cleans up", ["chat_app", "manager"], starter_fails=[3])
async def _fastapi_manager(report: Report, app: Any, manager: Any) -> None:
    if not hasattr(manager, "active"):
        raise ChallengeError("the manager needs an `active` collection (a set of the open WebSockets)")
    with serve_for(app, "fastapi-manager") as server:
        clients: dict[str, ClientConnection] = {}
        for name in ("alice", "bob", "carol", "mallory"):
            ws = await connect_or_none(server.ws_url(f"/chat/{name}"))
            if ws is None:
                report.add("clients can connect to /chat/{name}", False, "accept in the endpoint (manager.connect)")
                return
            clients[name] = ws
        await _wait_size(server, manager, 4)
        await asyncio.gather(*(listen(ws, 0.1) for ws in clients.values()))  # any welcome messages
        await clients["alice"].send("hi all")
        heard = await asyncio.gather(*(listen(ws) for ws in clients.values()))
        everyone = all(any("hi all" in str(m) for m in messages) for messages, _ in heard)
        report.add(
            "a message reaches every client, the sender included",
            everyone,
            "broadcast() sends to every socket in manager.active",
        )
        await clients.pop("carol").close()
        size = await _wait_size(server, manager, 3)
        report.add(
            "a client that closes normally leaves the set",
            size == 3,
            "remove the socket when receive_text() raises WebSocketDisconnect",
            f"{size} sockets in the set, 3 clients connected",
        )
        await _check_a_failed_handler_leaves(report, server, manager, clients)
        survived, saw = await _broadcast_while_the_set_changes(server, clients)
        report.add(
            "a broadcast stuck on a client that does not read survives another client leaving meanwhile and the "
            "stuck client vanishing: alice stays connected and her next message reaches bob",
            survived,
            "while a send waits, other handlers run and change the set: loop over a copy, "
            "`for ws in list(self.active)`, and catch the failed send of a vanished client per socket "
            "(`except (WebSocketDisconnect, RuntimeError)`) so it cannot end the sender's handler",
            saw,
        )
        for ws in clients.values():
            await ws.close()
        size = await _wait_size(server, manager, 0)
        report.add(
            "when everyone has left, the set is empty",
            size == 0,
            "every way out of the handler must remove the socket: `finally:`",
            f"{size} socket(s) left in the set",
        )


async def _count_until_closed(ws: ClientConnection, counter: list[int]) -> None:
    """Read everything `ws` receives, counting messages in counter[0], until it closes or is cancelled."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()
            counter[0] += 1


async def _broadcast_while_the_set_changes(
    server: ThreadServer, clients: dict[str, ClientConnection]
) -> tuple[bool, str]:
    """Make alice's broadcast wait on a client that never reads, then change the set and kill that client.

    A send only waits (yields to other handlers) once that client's buffers are full, so alice sends
    SLOW_MESSAGES big messages, more than any loopback buffer holds. When bob's count stops growing the
    broadcast is stuck on the slow client: dave leaves (his handler removes him from the set meanwhile) and
    the slow client's TCP connection is aborted, which makes the stuck send fail. Returns (alice still served,
    what was seen).
    """
    options: dict[str, Any] = {"max_size": None, "compression": None}  # compression would shrink the load
    slow = await connect(server.ws_url("/chat/slow"), max_queue=1, sock=small_socket(server.port), **options)
    dave = await connect_or_none(server.ws_url("/chat/dave"), **options)
    alice, bob = clients["alice"], clients["bob"]
    if dave is None:
        slow.transport.abort()
        return False, "could not connect dave for this step"
    counts = {name: [0] for name in ("alice", "bob", "dave")}
    readers = [
        asyncio.create_task(_count_until_closed(ws, counts[name]))
        for name, ws in (("alice", alice), ("bob", bob), ("dave", dave))
    ]
    try:
        await asyncio.sleep(0.05)  # let the endpoints register the new clients
        sender = asyncio.create_task(_send_all(alice, ["x" * SLOW_SIZE] * SLOW_MESSAGES))
        stalled = await _wait_until_stalled(counts["bob"], limit=SLOW_MESSAGES)
        if not stalled:
            sender.cancel()
            return False, "the broadcast never had to wait for the slow client, so this could not be tested"
        await dave.close()
        await asyncio.sleep(0.2)  # dave's handler runs and leaves the set while alice's broadcast waits
        slow.transport.abort()
        await asyncio.sleep(0.3)  # the stuck send fails; what the broadcast does next decides alice's fate
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        before = counts["bob"][0]
        if alice.close_code is None:
            with contextlib.suppress(ConnectionClosed):
                await alice.send("after the storm")
        for _ in range(50):
            if counts["bob"][0] > before:
                break
            await asyncio.sleep(0.02)
        if alice.close_code is not None:
            return False, f"alice's connection was closed ({alice.close_code}): her broadcast raised"
        if counts["bob"][0] == before:
            return False, "alice is connected, but her next message reached nobody: her handler died"
        return True, ""
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for ws in (slow, dave):
            ws.transport.abort()


async def _send_all(ws: ClientConnection, messages: list[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for message in messages:
            await ws.send(message)


async def _wait_until_stalled(counter: list[int], limit: int, quiet: float = 0.3, timeout: float = 5.0) -> bool:
    """True once `counter` has stopped growing for `quiet` s below `limit` (bounded by `timeout`)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    last, since = -1, loop.time()
    while loop.time() < give_up:
        if counter[0] != last:
            last, since = counter[0], loop.time()
        elif counter[0] < limit and loop.time() - since >= quiet:
            return True
        await asyncio.sleep(0.02)
    return False


async def _drain_tags(ws: ClientConnection, quiet: float = 0.5) -> tuple[set[str], bool]:
    """Read until `quiet` s of silence: the tags of the big burst messages received, and whether it stayed open."""
    heard, still_open = await listen(ws, quiet)
    return {message[:4] for message in heard if isinstance(message, str) and len(message) > SLOW_SIZE}, still_open


async def _check_a_late_joiner_still_hears(
    report: Report, url: str, options: dict[str, Any], fast: ClientConnection
) -> None:
    """While a slow client stalls the room, a client that joins late still gets a new message within 0.5 s."""
    late = await connect_or_none(url, **options)
    late_got = False
    late_saw = "the late client could not connect"
    if late is not None:
        late_saw = "nothing arrived for the late client within 0.5 s of a new message"
        await asyncio.sleep(0.05)
        await fast.send("after the burst")
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            while not late_got:
                late_got = await asyncio.wait_for(late.recv(), 0.5) == "after the burst"
        if not late_got and late.close_code is not None:
            late_saw = f"the late client's connection was closed ({late.close_code}) before the message"
        late.transport.abort()
    report.add(
        "meanwhile, a client that joins late still receives new messages",
        late_got,
        "nothing in a handler may wait for another client: queue the message, let a writer task send it, "
        "and drop or disconnect a client whose queue is full",
        late_saw,
    )


@challenge(6, "A fan-out that survives a slow client", ["fanout_app"], starter_fails=[2, 4])
async def _slow_client(report: Report, app: Any) -> None:
    options: dict[str, Any] = {"max_size": None, "compression": None}
    with serve_for(app, "slow-client") as server:
        url = server.ws_url("/chat")
        readers = [await connect_or_none(url, **options) for _ in range(3)]
        if any(ws is None for ws in readers):
            report.add("clients can connect to /chat", False, "accept every WebSocket at /chat")
            return
        live = [ws for ws in readers if ws is not None]
        await asyncio.sleep(0.05)
        for n in range(5):
            await live[0].send(f"small {n}")
        heard = await asyncio.gather(*(listen(ws) for ws in live))
        report.add(
            "with everyone reading, each of 3 clients gets all 5 messages",
            all(len(messages) == 5 for messages, _ in heard),
            "send every text a client sends to every connected client",
            f"counts: {[len(messages) for messages, _ in heard]}",
        )
        for ws in live:
            await ws.close()
        await asyncio.sleep(0.1)  # let their handlers finish, so the next clients meet no stale sockets

        async with slow_client_scene(server, "/chat") as scene:
            got = await scene.burst(1.0)
            report.add(
                f"with one client that never reads, a reading client still gets all {SLOW_MESSAGES} big messages "
                "within 1 s",
                got == SLOW_MESSAGES,
                "`await ws.send_text()` for each client in turn waits for the slowest one: give every client a "
                "bounded asyncio.Queue and its own writer task, and publish with put_nowait()",
                f"it got fewer than {SLOW_MESSAGES}",
            )
            await _check_a_late_joiner_still_hears(report, url, options, scene.fast)

            # A second burst, so that more is published than socket buffers can hold; then the slow client reads
            # at last. A server that kept everything for it (an unbounded queue) delivers every message now.
            await scene.burst(2.0, stall=0.5)
            published = scene.published
            tags, still_open = await _drain_tags(scene.slow)
            kept = len(tags)
            report.add(
                f"a client that never reads loses messages or is disconnected: the server does not keep all "
                f"{2 * SLOW_MESSAGES} big messages (about 20 MB) for it",
                kept < published,
                "bound each client's queue well below that (asyncio.Queue(maxsize=16), or FanOut(max_queue=16)): "
                "when it is full, drop the oldest message or disconnect the client; an unbounded queue grows by "
                "every message the client does not read",
                "once it read, the slow client received every message published while it did not read, "
                f"{'and stayed connected' if still_open else 'then it was closed'}: the server kept them all for it",
            )


@challenge(7, "No blocking calls in a consumer", ["Lookup"], starter_fails=[2])
async def _blocking_call(report: Report, target: Any) -> None:
    django_env.ensure()
    with serve_for(_consumer_app(target, "blocking-call"), "blocking-call") as server:
        url = server.ws_url("/")
        started = time.perf_counter()
        first, second = await asyncio.gather(
            attempt(url, send=["socket"], receive=1, timeout=2),
            attempt(url, send=["loop"], receive=1, timeout=2),
        )
        took = time.perf_counter() - started
    report.add(
        "answers a lookup with slow_lookup()'s result",
        first.messages == ["socket: 6 letters"],
        "reply with the string slow_lookup(text_data) returns",
        str(first),
    )
    report.add(
        "two clients asking at once are both answered within 0.8 s (one lookup takes 0.5 s)",
        took < 0.8 and second.messages == ["loop: 4 letters"],
        "slow_lookup() blocks the event loop, so the second client waits for the first: "
        "`await asyncio.to_thread(slow_lookup, text_data)`",
        "the second answer waited for the first" if took >= 0.8 else str(second),
    )
