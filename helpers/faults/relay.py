"""A loopback TCP relay between clients and a server, which can make the path between them go silent.

`start_relay(server.port)` listens on a free loopback port and forwards each connection made to it to the
server's port, byte for byte. Point a client at `relay.ws_url("/path")` instead of `server.ws_url("/path")`.
The relay runs on a daemon thread with an event loop of its own (as `helpers.servers.serve()` servers do), so
whether it forwards never depends on the kernel's loop, and a cell that blocks does not freeze it.

- `freeze(direction)`: the relay stops *reading* one side's socket: "to_server" the client's, "to_client" the
  server's, "both" both. Nothing is closed and nothing is sent. The bytes wait in the kernel's socket buffers,
  the sender's writes keep succeeding until those buffers fill (megabytes on loopback), and neither side gets a
  FIN or an RST: this is what a dead network path looks like. A freeze applies to open and to new connections.
- `thaw(direction)`: reading resumes; what waited is delivered, in order.
- `cut()`: every relayed connection is aborted with an RST on both sides (SO_LINGER 0, then close).
- `close_connections()`: every relayed connection is closed on both sides: a FIN, after what the relay holds.
- `stats()`: bytes forwarded each way, connections open and accepted, directions frozen.
- `stop()`: stops listening and closes every connection; calling it again does nothing; it also runs at exit.

A FIN or RST the relay reads from one side is passed on to the other (a half-close stays a half-close). Every
method may be called from any thread but the relay's own; each waits at most CALL_TIMEOUT seconds for the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from helpers import loops
from helpers.servers import DEFAULT_HOST, listen_socket, netloc, ws_url_for
from helpers.usage import UsageError, UsageTypeError, check_choice, check_port, check_positive, check_text

__all__ = [
    "CALL_TIMEOUT",
    "CLOSE_GRACE",
    "DIRECTIONS",
    "READY_TIMEOUT",
    "Relay",
    "RelayStats",
    "RelayUsageError",
    "start_relay",
]

T = TypeVar("T")

DIRECTIONS = ("both", "to_server", "to_client")
READY_TIMEOUT = 5.0
CALL_TIMEOUT = 5.0  # the most any method waits for the relay's loop to do what it asked
CLOSE_GRACE = 0.5  # stop(): how long closing connections get to flush before they are aborted

# Why an end's reading is paused; it reads again only when no reason is left.
_FROZEN = "frozen"  # its direction is frozen
_BACKPRESSURE = "backpressure"  # the other end's socket is full: reading more would only pile it up here
_CONNECTING = "connecting"  # the client's end, until the relay's connection to the server is up


class RelayUsageError(RuntimeError):
    """A relay was used in a way that cannot work (it is stopped, say); the message says what to do instead."""


@dataclass(frozen=True)
class RelayStats:
    """What a relay has done so far (`Relay.stats()`)."""

    to_server: int  # bytes read from clients and handed on to the server's socket
    to_client: int  # bytes read from the server and handed on to clients' sockets
    connections: int  # relayed connections open now
    accepted: int  # connections accepted since the relay started
    frozen: tuple[str, ...]  # the directions frozen now: "to_server", "to_client", or both


def _directions(direction: object) -> tuple[str, ...]:
    """The one-way directions `direction` (one of DIRECTIONS) stands for."""
    check_choice(direction, "direction", DIRECTIONS)
    return ("to_server", "to_client") if direction == "both" else (str(direction),)


def _abort_with_rst(transport: asyncio.Transport) -> None:
    """Close `transport`'s socket at once; SO_LINGER 0 makes the kernel send an RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already reset by the peer: nothing to linger on
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _End(asyncio.Protocol):
    """One socket of a relayed connection: what it reads travels `direction`, written to the other end's socket."""

    def __init__(self, pair: _Pair, direction: str, holds: set[str]) -> None:
        self.pair = pair
        self.direction = direction
        self.holds = holds
        self.transport: asyncio.Transport | None = None
        self.peer: _End | None = None
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.holds:
            # Before the transport starts reading (it adds its reader after this call), so nothing is read.
            self.transport.pause_reading()
        self.pair.made(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return  # the other side is gone; this end is being closed too
        self.pair.core.forwarded[self.direction] += len(data)
        peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write_eof()  # after what is buffered for it
            if peer.eof:  # both sides have sent their FIN: nothing more can travel
                peer.transport.close()
                assert self.transport is not None
                self.transport.close()
        return True  # keep the socket open: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pair.lost(self, exc)

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.hold(_BACKPRESSURE)

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.release(_BACKPRESSURE)

    def hold(self, reason: str) -> None:
        self.holds.add(reason)
        if self.transport is not None:
            self.transport.pause_reading()

    def release(self, reason: str) -> None:
        self.holds.discard(reason)
        # After its FIN a socket has nothing more to read (and a reader on it would only see the EOF again).
        if not self.holds and not self.eof and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _Pair:
    """A client's connection to the relay and the relay's own connection to the server, forwarding both ways."""

    def __init__(self, core: _Core) -> None:
        self.core = core
        to_server = {_CONNECTING} | ({_FROZEN} if "to_server" in core.frozen else set())
        self.client = _End(self, "to_server", to_server)
        self.server = _End(self, "to_client", {_FROZEN} if "to_client" in core.frozen else set())
        self.client.peer, self.server.peer = self.server, self.client

    @property
    def ends(self) -> tuple[_End, _End]:
        return self.client, self.server

    def made(self, end: _End) -> None:
        if end is self.client:
            self.core.accepted(self)

    async def connect(self) -> None:
        """Connect to the server, then let the client's bytes (already waiting in its socket) flow."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.server, self.core.host, self.core.target_port)
        except OSError:
            # Nothing listens there (the server stopped?): the client's connection is closed, as a proxy does
            # when it cannot reach the server.
            self.close()
            return
        if self.client.lost:  # the client left (or was cut) while the relay was connecting
            assert self.server.transport is not None
            _abort_with_rst(self.server.transport)
            return
        self.client.release(_CONNECTING)

    def lost(self, end: _End, exc: Exception | None) -> None:
        """One socket is gone: close the other the same way (a reset passed on as a reset), then forget the pair."""
        peer = end.peer
        assert peer is not None
        if peer.transport is not None and not peer.lost and not peer.transport.is_closing():
            if exc is None:
                peer.transport.close()
            else:
                _abort_with_rst(peer.transport)
        if self.client.lost and (self.server.lost or self.server.transport is None):
            self.core.pairs.discard(self)

    def close(self) -> None:
        for end in self.ends:
            if end.transport is not None and not end.transport.is_closing():
                end.transport.close()

    def cut(self) -> None:
        for end in self.ends:
            if end.transport is not None and not end.lost:
                _abort_with_rst(end.transport)


class _Core:
    """The relay's state and actions; used only on the relay's loop."""

    def __init__(self, host: str, target_port: int) -> None:
        self.host = host
        self.target_port = target_port
        self.frozen: set[str] = set()
        self.pairs: set[_Pair] = set()
        self.forwarded = {"to_server": 0, "to_client": 0}
        self.accepted_count = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener: asyncio.Server | None = None

    def new_client_end(self) -> _End:
        return _Pair(self).client

    def accepted(self, pair: _Pair) -> None:
        self.pairs.add(pair)
        self.accepted_count += 1
        task = asyncio.get_running_loop().create_task(pair.connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def set_frozen(self, directions: tuple[str, ...], frozen: bool) -> None:
        for direction in directions:
            if frozen:
                self.frozen.add(direction)
            else:
                self.frozen.discard(direction)
            for pair in self.pairs:
                end = pair.client if direction == "to_server" else pair.server
                if frozen:
                    end.hold(_FROZEN)
                else:
                    end.release(_FROZEN)

    def stats(self) -> RelayStats:
        frozen = tuple(d for d in DIRECTIONS[1:] if d in self.frozen)
        return RelayStats(
            self.forwarded["to_server"], self.forwarded["to_client"], len(self.pairs), self.accepted_count, frozen
        )

    def each_pair(self, action: Callable[[_Pair], None]) -> int:
        pairs = list(self.pairs)
        for pair in pairs:
            action(pair)
        return len(pairs)

    async def gone(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until every pair has lost both sockets."""
        deadline = time.monotonic() + timeout
        while self.pairs and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def start(self, sock: socket.socket) -> None:
        self.listener = await asyncio.get_running_loop().create_server(self.new_client_end, sock=sock)

    async def shutdown(self) -> None:
        """Stop listening, close every connection (abort what has not closed after CLOSE_GRACE), end the tasks."""
        if self.listener is not None:
            self.listener.close()
        self.each_pair(_Pair.close)
        await self.gone(CLOSE_GRACE)
        self.each_pair(_Pair.cut)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.gone(CLOSE_GRACE)
        if self.listener is not None:
            await self.listener.wait_closed()


class Relay:
    """A running relay (see the module docstring); `start_relay()` makes one."""

    def __init__(
        self, host: str, port: int, core: _Core, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.host = host
        self.port = port
        self.target_port = core.target_port
        self.loop = loop
        self.thread = thread
        self._core = core
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def running(self) -> bool:
        return not self._stopped and self.thread.is_alive()

    @property
    def url(self) -> str:
        return f"http://{netloc(self.host, self.port)}"

    def ws_url(self, path: str = "/") -> str:
        """The ws:// address of `path` through this relay (a leading slash is added if missing)."""
        return ws_url_for(self.host, self.port, path)

    def freeze(self, direction: str = "both") -> None:
        """Stop reading the socket(s) of `direction` ("both", "to_server", "to_client"); nothing is closed."""
        directions = _directions(direction)
        self._call(self._core.set_frozen, directions, True)

    def thaw(self, direction: str = "both") -> None:
        """Read `direction` again ("both" by default: every frozen direction); what waited is delivered in order."""
        directions = _directions(direction)
        self._call(self._core.set_frozen, directions, False)

    def cut(self) -> int:
        """Abort every relayed connection with an RST to the client and to the server; returns how many."""
        return self._call(self._core.each_pair, _Pair.cut)

    def close_connections(self) -> int:
        """Close every relayed connection on both sides (a FIN after what the relay holds); returns how many.

        Linux sends an RST instead when bytes wait unread in the relay's socket, as they do in a frozen direction.
        """
        return self._call(self._core.each_pair, _Pair.close)

    def stats(self) -> RelayStats:
        """Bytes forwarded each way, connections open and accepted, and the directions frozen now."""
        return self._call(self._core.stats)

    def _call(self, function: Callable[..., T], *args: object) -> T:
        """Call `function(*args)` on the relay's loop and return its result (at most CALL_TIMEOUT s)."""
        if not self.running:
            raise RelayUsageError("this relay is stopped: start a new one with start_relay(server.port)")

        async def call() -> T:
            return function(*args)

        return loops.run_on(self.loop, call(), CALL_TIMEOUT)

    def stop(self) -> None:
        """Stop listening and close every connection (FIN, or RST after CLOSE_GRACE); again does nothing."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        with contextlib.suppress(loops.LoopUsageError, TimeoutError):  # the loop is gone already
            loops.run_on(self.loop, self._core.shutdown(), CALL_TIMEOUT)
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(CALL_TIMEOUT)
        _running.discard(self)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Relay {state} at {self.url} to port {self.target_port}>"


_running: set[Relay] = set()


@atexit.register
def _stop_all() -> None:
    for relay in list(_running):
        relay.stop()


def _check_target_port(target_port: object) -> int:
    if hasattr(target_port, "port") and not isinstance(target_port, int):
        raise UsageTypeError(
            "target_port must be the server's port number: start_relay(server.port), "
            f"not a {type(target_port).__name__}"
        )
    port = check_port(target_port, "target_port")
    if port == 0:
        raise UsageError("target_port is 0; pass the port the server listens on, e.g. start_relay(server.port)")
    return port


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The relay thread: run the loop until stop(), then close it with nothing left on it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def start_relay(
    target_port: int, host: str = DEFAULT_HOST, *, port: int = 0, ready_timeout: float = READY_TIMEOUT
) -> Relay:
    """Relay connections made to `host`:`port` (0: a free port) to `host`:`target_port`; returns once it listens.

    Arguments that cannot work raise `helpers.usage.UsageError` before anything starts.
    """
    target_port = _check_target_port(target_port)
    check_text(host, "host", example=DEFAULT_HOST)
    check_port(port)
    check_positive(ready_timeout, "ready_timeout")
    sock = listen_socket("relay", host, port)
    core = _Core(host, target_port)
    loop = asyncio.new_event_loop()
    loops.label_loop(loop, "relay loop")
    thread = threading.Thread(target=_run_loop, args=(loop,), name="relay", daemon=True)
    relay = Relay(host, sock.getsockname()[1], core, loop, thread)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(core.start(sock), loop).result(ready_timeout)
    except BaseException:
        relay.stop()
        sock.close()
        raise
    _running.add(relay)
    return relay
