"""Run real ASGI servers (uvicorn by default) from a notebook or a test, and always get them back.

Three ways to run an ASGI app, each returning a handle with `.url`, `.ws_url(path)`, `.port` and `.stop()`:

- `serve(app)`: a server in a daemon thread with its own event loop (the default in this series). The
  kernel's loop stays free, so both async and sync clients work from cells.
- `await serve_on_loop(app)`: uvicorn as a task on the caller's running loop (lesson 05 shows why this
  is fragile). Signal handlers are never touched, so the kernel's interrupt button keeps working.
- `serve_process("module:app")`: a server in a child process, for lessons where several processes share
  a channel layer or Redis.

`serve()` and `serve_process()` take `server=`, one of SERVERS: uvicorn with each of its WebSocket protocols,
hypercorn, or daphne (in a child process only). The listening socket is bound before the server starts, so
"port in use" is an immediate, clear error, and `port=0` (the default) gets a free loopback port with no race.
Each server has a name; serving again under the same name first stops the old server, which makes re-running
a cell safe. Every server still running stops when the interpreter exits."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import errno
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
import uvicorn.importer

from helpers import asgi_servers, loops, server_logs
from helpers.spawn import reap
from helpers.usage import (
    LOG_LEVELS,
    UsageError,
    UsageTypeError,
    check_choice,
    check_port,
    check_positive,
    check_text,
)

__all__ = [
    "DEFAULT_HOST",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "MAX_MESSAGE_BYTES",
    "READY_TIMEOUT",
    "SERVERS",
    "STOP_TIMEOUT",
    "LoopServer",
    "ProcessServer",
    "ServerStartError",
    "ServerUsageError",
    "ThreadServer",
    "free_port",
    "listen_socket",
    "make_config",
    "netloc",
    "running_servers",
    "serve",
    "serve_on_loop",
    "serve_process",
    "stop_all",
    "ws_url_for",
]

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
# The largest WebSocket message a lesson server accepts (larger ones are closed with 1009), and the largest the
# course's chat client accepts from a server (helpers.chat_connection): one limit for both ends.
MAX_MESSAGE_BYTES = 1024 * 1024
# A handler that never returns (a lesson about never accepting, say) must not make stop() hang: after this many
# seconds of graceful shutdown uvicorn cancels what is left. Whole seconds: uvicorn's Config takes an int.
GRACEFUL_SHUTDOWN_SECONDS = 1
STOP_TIMEOUT = 5.0
# The ASGI servers serve() and serve_process() can run, by their `server=` name (the first is the default):
# "uvicorn" (ws="auto": websockets-sansio), "uvicorn-websockets" (ws="websockets", the legacy websockets
# implementation), "uvicorn-wsproto" (ws="wsproto"), "hypercorn", and "daphne" (in a child process only).
SERVERS = ("uvicorn", "uvicorn-websockets", "uvicorn-wsproto", "hypercorn", "daphne")


class ServerStartError(RuntimeError):
    """A server did not start; the message says why and what to do."""


class ServerUsageError(RuntimeError):
    """A server handle was used in a way that cannot work; the message says what to do instead."""


# --------------------------------------------------------------------------------------------------
# shared pieces


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port on `host` that nothing listens on just now, for a program that must be told its port in advance.

    Another program may take it before that one binds it; the servers here never need this (they bind first,
    `port=0`, and report the port the kernel picked), so use it only for something that cannot do that.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listen_socket(name: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: a free port) for server `name`; ServerStartError says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Same option uvicorn sets: a restarted server may reuse a port still in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerStartError(
                f"cannot start server {name!r}: port {port} on {host} is already in use. "
                "Stop whatever holds it, or leave out port= to get a free port."
            ) from exc
        raise ServerStartError(f"cannot start server {name!r}: binding {host}:{port} failed: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def _check_serve_arguments(
    app: object, name: object, host: object, port: object, log_level: object, ready_timeout: object
) -> None:
    """Refuse, before anything starts, arguments that cannot work (one clear error that says what to pass)."""
    if not (callable(app) or isinstance(app, str)):
        raise UsageTypeError(
            f"app must be an ASGI app (an async callable such as a Starlette or FastAPI app, or Consumer.as_asgi()) "
            f"or an import string 'package.module:app', not {type(app).__name__}"
        )
    if name is not None:
        check_text(name, "name", example="echo")
    check_text(host, "host", example=DEFAULT_HOST)
    check_port(port)
    check_choice(log_level, "log_level", LOG_LEVELS)
    check_positive(ready_timeout, "ready_timeout")


def _check_server(server: object, *, in_thread: bool) -> str:
    """One of SERVERS, and (in_thread) one that can run in a thread; refused before anything starts."""
    if not isinstance(server, str):
        raise UsageTypeError(
            f"server must be a str, one of {', '.join(map(repr, SERVERS))}; not {type(server).__name__}"
        )
    if server not in SERVERS:
        raise ServerUsageError(f"unknown server {server!r}: choose one of {', '.join(map(repr, SERVERS))}")
    if in_thread and server == "daphne":
        raise ServerUsageError(
            "daphne cannot be served in a thread: its Twisted reactor is one per process and cannot be restarted, "
            "so a second serve() (re-running the cell) would fail. "
            'Use serve_process("module:app", server="daphne"), which runs it in a child process.'
        )
    return server


def _default_name(app: object) -> str:
    if isinstance(app, str):
        return app
    inner = app
    while hasattr(inner, "inner"):  # Channels middleware (AuthMiddlewareStack, ...) wraps the app
        inner = inner.inner
    consumer = getattr(inner, "consumer_class", None)  # Channels' Consumer.as_asgi() result
    if consumer is not None:
        return consumer.__name__
    return getattr(app, "__name__", None) or type(app).__name__


def _display_host(host: str) -> str:
    """Clients connect to loopback when a server listens on every interface."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def netloc(host: str, port: int) -> str:
    """`host:port` as a URL writes it: a wildcard host as loopback, an IPv6 address in brackets."""
    host = _display_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ws_url_for(host: str, port: int, path: str = "/") -> str:
    """The ws:// address of `path` at host:port (a leading slash is added if missing); a whole URL is refused."""
    if not isinstance(path, str):
        raise UsageTypeError(f"path must be a str such as '/chat', not {type(path).__name__}")
    if "://" in path:
        raise UsageError(f"path {path!r} is a whole URL; pass only the path, such as '/chat'")
    return f"ws://{netloc(host, port)}{path if path.startswith('/') else '/' + path}"


def make_config(
    app: Any,
    log_level: str,
    uvicorn_options: dict[str, Any] | None = None,
    *,
    log_config: dict[str, Any] | str | None = None,
    library_defaults: bool = False,
) -> uvicorn.Config:
    """The uvicorn Config of every lesson server: in a thread, on a loop, or in a child process (process_entry).

    `app` is an ASGI app or an import string; `uvicorn_options` override the defaults below. With the default
    `log_config=None` uvicorn installs no logging handlers, so records go to the server's ServerLog; a child
    process passes uvicorn's own config instead, to log to its stderr. `library_defaults=True` leaves out the
    lesson limits below (uvicorn's own: 16 MiB messages, no graceful-shutdown deadline), for lesson 13, which
    compares servers as their libraries ship them.
    """
    # Limits every lesson server has: incoming messages up to MAX_MESSAGE_BYTES (larger ones are closed with 1009),
    # and at most GRACEFUL_SHUTDOWN_SECONDS of graceful shutdown.
    # ws_max_queue bounds unread messages only under uvicorn's legacy "websockets" protocol. The default
    # "websockets-sansio" protocol (uvicorn 0.54) ignores it: after queuing a message it pauses reading until the
    # app has received everything queued, so it holds at most what one read brought in (up to 256 KiB of frames:
    # thousands of tiny messages) and a flood waits in the kernel's socket buffers (lesson 08, Experiment 5).
    options: dict[str, Any] = {
        "lifespan": "auto",
        "ws": "auto",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws_max_queue": 32,  # for ws="websockets" (legacy) only; see above
    }
    if library_defaults:
        options = {"ws": "auto"}
    options.update(uvicorn_options or {})
    asgi_servers.prepare_uvicorn_ws(options["ws"])
    return uvicorn.Config(app, log_level=log_level, log_config=log_config, **options)


def _failure_text(log: server_logs.ServerLog, exc: BaseException | None, server: str = "uvicorn") -> str:
    reasons = [line for line in log.errors if line]
    if exc is not None and not isinstance(exc, SystemExit):
        reasons.append(_exception_line(exc))
    return "; ".join(dict.fromkeys(reasons)) or f"{server} exited during startup without saying why"


def _exception_line(exc: BaseException) -> str:
    """'Type: message', or for a message that is a whole traceback text (hypercorn's LifespanFailureError carries
    one) its last line, which names the exception that caused it."""
    lines = [line.strip().strip("'\"").strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if len(lines) > 1 else f"{type(exc).__name__}: {exc}"


class _Server:
    """What every kind of server handle has in common."""

    kind = "server"

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{netloc(self.host, self.port)}"

    def ws_url(self, path: str = "/") -> str:
        """The ws:// address of `path` on this server (a leading slash is added if missing)."""
        return ws_url_for(self.host, self.port, path)

    @property
    def running(self) -> bool:
        return not self._stopped

    def signal_stop(self) -> None:
        """Ask the server to begin shutting down without waiting for it (stop() then waits)."""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state} at {self.url}>"


# --------------------------------------------------------------------------------------------------
# registry


_registry: dict[str, _Server] = {}
_registry_lock = threading.RLock()


def _register(server: _Server) -> None:
    with _registry_lock:
        _registry[server.name] = server


def _unregister(server: _Server) -> None:
    with _registry_lock:
        if _registry.get(server.name) is server:
            del _registry[server.name]


def _replace(name: str) -> None:
    """Stop the server registered under `name`, if any, before a new one takes the name."""
    with _registry_lock:
        old = _registry.get(name)
    if old is None:
        return
    if isinstance(old, LoopServer):
        old.stop_soon()
    else:
        old.stop()  # type: ignore[attr-defined]


def running_servers() -> dict[str, str]:
    """Name -> URL of every server still running, for a quick look from a cell."""
    with _registry_lock:
        return {name: s.url for name, s in _registry.items() if s.running}


def stop_all() -> list[str]:
    """Stop every server started through this module; returns the names that were stopped."""
    with _registry_lock:
        servers = list(_registry.values())
    # Signal every server first, then wait: shutdowns overlap instead of adding up.
    for server in servers:
        server.signal_stop()
    for server in servers:
        if isinstance(server, LoopServer):
            server.stop_soon()
        else:
            server.stop()  # type: ignore[attr-defined]
    return [s.name for s in servers]


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------------
# in a thread


class ThreadServer(_Server):
    """An ASGI server (uvicorn or hypercorn, see SERVERS) serving an app on its own event loop in a daemon thread."""

    kind = "thread"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        driver: asgi_servers.Driver,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        log: server_logs.ServerLog,
        server: str = SERVERS[0],
    ) -> None:
        super().__init__(name, host, port)
        self.loop = loop
        self.thread = thread
        self.log = log
        self.server = server
        self._driver = driver
        self._stop_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def errors(self) -> list[str]:
        """Errors the server logged (exceptions in handlers, failed sends), one line each."""
        return self.log.errors

    @property
    def running(self) -> bool:
        return not self._stopped and self.thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the server's loop from any other thread; returns a concurrent Future."""
        self._check_runnable(coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
        """Run `coro` on the server's loop and return its result, waiting at most `timeout` s (`loops.run_on`)."""
        self._check_runnable(coro)
        return loops.run_on(self.loop, coro, timeout)

    def _check_runnable(self, coro: object) -> None:
        """Refuse what `submit()`/`run()` cannot do, in the server's words (the loop's own checks are `loops`')."""
        if not asyncio.iscoroutine(coro):
            raise ServerUsageError(
                f"submit()/run() need a coroutine object, got {type(coro).__name__}: "
                "call the async function, e.g. server.run(broadcast('hi')), not server.run(broadcast)."
            )
        if not self.running:
            coro.close()
            raise ServerUsageError(f"server {self.name!r} is stopped: serve it again before running code on its loop.")
        if threading.current_thread() is self.thread:
            coro.close()
            raise ServerUsageError(
                "run()/submit() were called from the server's own loop, which would wait on itself: "
                "inside the server just `await` the coroutine."
            )

    def signal_stop(self) -> None:
        self._driver.request_exit(self.loop)

    def call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Call a plain function on the server's loop (thread-safe)."""
        self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server and wait for its thread (bounded: about 3 x `timeout` at most); again does nothing."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._driver.request_exit(self.loop)
        if not self._driver.started:
            # Still in startup (e.g. a lifespan that never finishes): the exit request is not looked at yet.
            self._cancel_task()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)
            if self.thread.is_alive():
                self._driver.force_exit()
                self.thread.join(timeout)
            if self.thread.is_alive():
                self._cancel_task()
                self.thread.join(timeout)
        _unregister(self)

    def _cancel_task(self) -> None:
        if self._task is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self.loop.call_soon_threadsafe(self._task.cancel)

    def __enter__(self) -> ThreadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ThreadServer {self.name!r} ({self.server}) {state} at {self.url}>"


def _make_driver(
    server: str, app: Any, name: str, log_level: str, options: dict[str, Any], on_settled: Callable[[], None]
) -> asgi_servers.Driver:
    """The driver for `server` in a thread, its logs going to the ServerLog router (see serve() for the settings)."""
    if server == "hypercorn":
        from helpers import hypercorn_driver  # imported only here: see its docstring

        hypercorn_config = hypercorn_driver.hypercorn_config(log_level, options)
        hypercorn_config.errorlog = hypercorn_driver.captured_error_log(name, log_level, server_logs.install())
        try:
            loaded = uvicorn.importer.import_from_string(app) if isinstance(app, str) else app
        except uvicorn.importer.ImportFromStringError as exc:  # said as uvicorn says it, for the same mistake
            raise ServerStartError(f"server {name!r} failed to start: Error loading ASGI app. {exc}") from exc
        return hypercorn_driver.HypercornDriver(loaded, hypercorn_config, on_settled)
    if "ws" in options:
        raise ServerUsageError(
            f"ws={options['ws']!r} and server={server!r} both choose uvicorn's WebSocket protocol: "
            f"pass only server=, one of {', '.join(map(repr, SERVERS[:3]))}"
        )
    config = make_config(app, log_level, {**options, "ws": asgi_servers.UVICORN_WS[server]})
    return asgi_servers.UvicornDriver(config, on_settled)


def serve(
    app: Any,
    *,
    server: str = SERVERS[0],
    name: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log_level: str = "warning",
    echo_logs: bool = False,
    ready_timeout: float = READY_TIMEOUT,
    **server_options: Any,
) -> ThreadServer:
    """Serve `app` in a background thread with `server` (one of SERVERS but daphne) once it accepts connections.

    `app` is an ASGI app or an import string ("package.module:app"). `name` defaults to the app's
    name; a running server with the same name is stopped first. Log records are kept on the handle
    (`server.errors`), not printed, unless `echo_logs=True`. Extra keyword arguments go to the server's
    config (`uvicorn.Config`, for example `ws_max_size=...`; hypercorn's `Config` attributes, for example
    `websocket_max_message_size=...`). Arguments that cannot work raise `helpers.usage.UsageError` or
    `ServerUsageError` before anything starts; daphne is refused here (its reactor is one per process):
    use `serve_process(..., server="daphne")`.

    What the helpers set; everything else is the library's default:

    - every server: the socket (bound here, loopback, port=0 a free port), no signal handlers, the log level.
    - uvicorn, uvicorn-websockets, uvicorn-wsproto (`make_config`): ws= from the name, incoming messages up to
      MAX_MESSAGE_BYTES (uvicorn's default is 16 MiB), GRACEFUL_SHUTDOWN_SECONDS of graceful shutdown (uvicorn's
      default: unbounded), ws_max_queue=32 (its default), lifespan="auto"; no log handlers (records go to the
      ServerLog).
    - hypercorn (`hypercorn_driver.hypercorn_config`): only `loglevel`; its error log goes to the ServerLog (a
      logger of its own), so `errors` works. Its defaults stay: 16 MiB messages, graceful_timeout 3 s, no
      pings, backlog 100, no access log. The app's lifespan runs before the socket is served. hypercorn does
      not close open WebSockets when asked to shut down: with a client still connected, stop() waits out the
      3 s graceful_timeout, and the client then gets 1011 (uvicorn: 1012 at once).
    """
    _check_serve_arguments(app, name, host, port, log_level, ready_timeout)
    server = _check_server(server, in_thread=True)
    name = name or _default_name(app)
    _replace(name)
    sock = listen_socket(name, host, port)
    actual_port = sock.getsockname()[1]
    settled = threading.Event()
    try:
        driver = _make_driver(server, app, name, log_level, server_options, settled.set)
    except BaseException:
        sock.close()
        raise
    log = server_logs.ServerLog(echo=echo_logs)
    router = server_logs.install()
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(log.loop_exception_handler)
    loops.label_loop(loop, f"server {name!r} loop")
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            handle._task = loop.create_task(driver.serve(sock))
            loop.run_until_complete(handle._task)
        except BaseException as exc:  # SystemExit is how uvicorn reports a failed startup
            failure.append(exc)
        finally:
            settled.set()
            sock.close()
            _close_loop(loop)
            router.unregister(route)

    thread = threading.Thread(target=main, name=f"{server.split('-')[0]}-{name}", daemon=True)
    # thread.ident is read when a record arrives; the thread logs nothing before it starts.
    route = router.register(lambda record: record.thread == thread.ident, log)
    handle = ThreadServer(name, host, actual_port, driver, loop, thread, log, server)
    thread.start()
    _wait_until_ready(handle, settled, failure, ready_timeout)
    _register(handle)
    return handle


def _wait_until_ready(
    handle: ThreadServer, settled: threading.Event, failure: list[BaseException], ready_timeout: float
) -> None:
    """Return once the server accepts connections; ServerStartError (and nothing left running) if it does not."""
    if not settled.wait(ready_timeout):
        handle.stop(timeout=1.0)
        raise ServerStartError(
            f"server {handle.name!r} did not become ready within {ready_timeout} s; "
            "is the app's lifespan startup waiting on something?"
        )
    if not handle._driver.started:
        handle.thread.join(STOP_TIMEOUT)
        handle._stopped = True
        cause = _failure_text(handle.log, failure[0] if failure else None, handle.server)
        raise ServerStartError(f"server {handle.name!r} failed to start: {cause}")


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on a server loop and close it, so no task or socket outlives the server."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            # Bounded: a task that swallows its cancellation must not keep the thread (and stop()) waiting.
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


# --------------------------------------------------------------------------------------------------
# on the caller's loop


class LoopServer(_Server):
    """uvicorn running as a task on the loop that started it (usually the kernel's)."""

    kind = "loop"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        server: asgi_servers.ReadyUvicorn,
        task: asyncio.Task[None],
        log: server_logs.ServerLog,
    ) -> None:
        super().__init__(name, host, port)
        self.task = task
        self.loop = task.get_loop()
        self.log = log
        self._uvicorn = server

    @property
    def errors(self) -> list[str]:
        return self.log.errors

    @property
    def running(self) -> bool:
        return not self._stopped and not self.task.done()

    def stop_soon(self) -> None:
        """Ask the server to exit without waiting (usable from plain functions and other threads)."""
        self._stopped = True
        self._uvicorn.request_exit(self.loop)
        _unregister(self)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server and wait for its task; calling it again does nothing."""
        self.stop_soon()
        if self.task.done():
            return
        if asyncio.get_running_loop() is not self.loop:
            raise ServerUsageError("await stop() on the loop that started the server, or call stop_soon().")
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self._uvicorn.force_exit = True
            await asyncio.wait_for(self.task, timeout)

    async def __aenter__(self) -> LoopServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_on_loop(
    app: Any,
    *,
    name: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log_level: str = "warning",
    echo_logs: bool = False,
    ready_timeout: float = READY_TIMEOUT,
    **uvicorn_options: Any,
) -> LoopServer:
    """Start uvicorn as a task on the running loop and return once it accepts connections.

    While a cell awaits something, this server is served; while a cell blocks (a sync client, time.sleep),
    it is not. That is the lesson of notebook 05; everyday notebooks should use `serve()`.
    """
    _check_serve_arguments(app, name, host, port, log_level, ready_timeout)
    loop = asyncio.get_running_loop()
    name = name or _default_name(app)
    _replace(name)
    sock = listen_socket(name, host, port)
    actual_port = sock.getsockname()[1]
    log = server_logs.ServerLog(echo=echo_logs)
    router = server_logs.install()
    settled = asyncio.Event()
    try:
        config = make_config(app, log_level, uvicorn_options)
    except BaseException:
        sock.close()
        raise
    server = asgi_servers.ReadyUvicorn(config, on_settled=settled.set)
    route = router.register(server_logs.loop_matcher(loop), log)

    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:
            # uvicorn reports a failed startup with sys.exit(); escaping a task on the kernel's loop,
            # SystemExit would stop the loop itself, so it ends here.
            failure.append(exc)
        finally:
            settled.set()
            sock.close()
            router.unregister(route)

    task = loop.create_task(main(), name=f"uvicorn-{name}")
    handle = LoopServer(name, host, actual_port, server, task, log)
    waiter = loop.create_task(settled.wait())
    await asyncio.wait({waiter, task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not server.started:
        if task.done():
            cause = _failure_text(log, failure[0] if failure else task.exception())
        else:
            await handle.stop(timeout=1.0)
            raise ServerStartError(f"server {name!r} did not become ready within {ready_timeout} s")
        raise ServerStartError(f"server {name!r} failed to start: {cause}")
    _register(handle)
    return handle


# --------------------------------------------------------------------------------------------------
# in a separate process


class ProcessServer(_Server):
    """An ASGI server (any of SERVERS) serving an import string in a child process (see helpers.process_entry)."""

    kind = "process"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        process: subprocess.Popen[bytes],
        log_path: Path,
        server: str = SERVERS[0],
    ) -> None:
        super().__init__(name, host, port)
        self.server = server
        self.process = process
        self.log_path = log_path
        self._final_output: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.process.poll() is None

    @property
    def output(self) -> str:
        """What the child wrote to stderr (uvicorn logs, tracebacks), also after stop()."""
        if self._final_output is not None:
            return self._final_output
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def errors(self) -> list[str]:
        """The child's ERROR log lines and exception lines, one line each (like ThreadServer.errors)."""
        found = []
        for line in self.output.splitlines():
            text = line.strip()
            if text.startswith("ERROR:"):  # uvicorn's format, and the one process_entry gives daphne's logging
                found.append(text.removeprefix("ERROR:").strip())
            elif "] [ERROR] " in text:  # hypercorn's: "[date] [pid] [ERROR] message"
                found.append(text.split("] [ERROR] ", 1)[1].strip())
            elif text and not line.startswith((" ", "\t")) and ("Error: " in text or "Exception: " in text):
                found.append(text)
        return found

    def signal_stop(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.close()  # the child treats EOF on stdin as "shut down now"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the child to shut down (close its stdin), then terminate or kill it if it lingers."""
        if self._stopped:
            return
        self._stopped = True
        _terminate(self.process, timeout)
        self._final_output = self.output
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()
        _unregister(self)

    def __enter__(self) -> ProcessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        try:
            assert process.stdin is not None
            process.stdin.close()  # the child treats EOF on stdin as "shut down now"
        except (OSError, ValueError):
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def serve_process(
    import_string: str,
    *,
    name: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    server: str = SERVERS[0],
    log_level: str = "warning",
    env: dict[str, str] | None = None,
    app_dir: str | os.PathLike[str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    library_defaults: bool = False,
) -> ProcessServer:
    """Start `python -m helpers.process_entry import_string` and return once it accepts connections.

    The child binds the port itself (port=0 gets a free one) and reports it back. It exits when this
    process closes its stdin, which also happens if this process dies, so no orphan is left behind.
    `env` adds environment variables; `app_dir` is put first on the child's import path. `server` is one of
    SERVERS, daphne included (`python -m helpers.process_entry --help` says what each is given); the child logs to
    its stderr, kept in `output` and summed up in `errors`. `library_defaults=True` serves uvicorn with uvicorn's
    own settings instead of the lesson limits of `make_config` (hypercorn and daphne always get their own).
    """
    if not isinstance(library_defaults, bool):
        raise UsageTypeError(f"library_defaults must be True or False, not {type(library_defaults).__name__}")
    if not isinstance(import_string, str):
        raise UsageTypeError(
            f"serve_process() needs an import string like 'package.module:app', not {type(import_string).__name__}; "
            "a process cannot be handed an app object, only told where to import it from."
        )
    _check_serve_arguments(import_string, name, host, port, log_level, ready_timeout)
    server = _check_server(server, in_thread=False)
    if ":" not in import_string:
        raise ServerUsageError(
            f"serve_process() needs an import string like 'package.module:app', got {import_string!r}; "
            "a process cannot be handed an app object, only told where to import it from."
        )
    name = name or import_string
    _replace(name)
    child_env = _child_environment(env, app_dir)
    fd, log_name = tempfile.mkstemp(prefix="wslab-server-", suffix=".log")
    log_path = Path(log_name)
    command = [sys.executable, "-m", "helpers.process_entry", import_string]
    command += ["--host", host, "--port", str(port), "--log-level", log_level, "--server", server]
    command += ["--library-defaults"] if library_defaults else []
    with os.fdopen(fd, "wb") as log_file:
        process = reap(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=child_env)
        )
    handle = ProcessServer(name, host, port, process, log_path, server)
    line = _first_line(process, name, ready_timeout)
    if not line.startswith(b"READY "):
        if line == b"":  # stdout closed: the child is exiting; let it finish so its code is known
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1.0)
        exit_code = process.poll()
        output = handle.output
        handle.stop(timeout=1.0)
        if exit_code is None:
            raise ServerStartError(f"process server {name!r} did not become ready within {ready_timeout} s")
        raise ServerStartError(
            f"process server {name!r} exited with code {exit_code} before it was ready: {_last_error_line(output)}"
        )
    handle.port = int(line.split()[1])
    _register(handle)
    return handle


def _child_environment(env: dict[str, str] | None, app_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    """This process's environment plus `env`, with `app_dir` and the repository first on PYTHONPATH."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    paths = [str(Path(app_dir).resolve())] if app_dir else []
    paths.append(str(Path(__file__).resolve().parent.parent))
    if child_env.get("PYTHONPATH"):
        paths.append(child_env["PYTHONPATH"])
    child_env["PYTHONPATH"] = os.pathsep.join(paths)
    return child_env


def _first_line(process: subprocess.Popen[bytes], name: str, timeout: float) -> bytes:
    """The child's first stdout line (READY <port>, if all went well); b"" if it exited or `timeout` passed first."""
    lines: queue.Queue[bytes] = queue.Queue()

    def read_ready_line() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline())

    threading.Thread(target=read_ready_line, name=f"ready-{name}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.05)
        except queue.Empty:
            if process.poll() is not None:
                break
    return b""


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            return line
    return lines[-1] if lines else "no output"
