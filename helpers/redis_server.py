"""A throwaway Redis for the multi-process lessons, or the one the learner points us to.

`redis_url()` returns `REDIS_URL` when it is set (nothing is started or stopped then), otherwise it
starts `redis-server` from PATH on a free loopback port (no persistence, its own temporary folder,
never touching a system Redis) and stops it when the interpreter exits. Without redis-server it raises
`RedisUnavailable`, whose message says how to install it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from helpers.servers import free_port
from helpers.spawn import spawn
from helpers.usage import check_positive

__all__ = [
    "INSTALL_HINT",
    "READY_TIMEOUT",
    "RedisServer",
    "RedisUnavailable",
    "available",
    "ping",
    "private_redis_url",
    "redis_url",
    "start_redis",
]

READY_TIMEOUT = 10.0
INSTALL_HINT = (
    "redis-server is not installed. Install it with one of: "
    "`sudo apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), "
    "`conda install -c conda-forge redis-server`; or set REDIS_URL=redis://HOST:PORT/0 to use a running Redis."
)


class RedisUnavailable(RuntimeError):
    """No Redis can be had here; the message says how to get one."""


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING at host:port (plain RESP over a socket)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _spawn(command: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start redis-server so that it dies with this process (`helpers.spawn`), its output to `log`."""
    return spawn(command, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class RedisServer:
    """A redis-server process this code started; `stop()` ends it and removes its folder."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate redis-server (SIGTERM, then SIGKILL) and delete its folder; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(ready_timeout: float = READY_TIMEOUT) -> RedisServer:
    """Start a private redis-server on 127.0.0.1 and a free port; returns once it answers PING."""
    check_positive(ready_timeout, "ready_timeout")
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(INSTALL_HINT)
    last_error = ""
    for _ in range(3):  # the free port could be taken between choosing it and redis binding it
        port = free_port()
        folder = Path(tempfile.mkdtemp(prefix="wslab-redis-"))
        command = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(folder),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        log = open(folder / "redis.log", "wb")  # noqa: SIM115 - handed to the child, closed below
        process = _spawn(command, log)
        log.close()
        server = RedisServer(port, process, folder)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if ping("127.0.0.1", port, timeout=0.2):
                return server
            time.sleep(0.02)
        lines = (folder / "redis.log").read_text(errors="replace").strip().splitlines()
        last_error = lines[-1] if lines else "no output"
        server.stop()
    raise RedisUnavailable(f"redis-server did not start: {last_error}")


_shared: RedisServer | None = None


def redis_url() -> str:
    """The Redis the lessons should use: REDIS_URL if set, else a throwaway server started once per process."""
    global _shared
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if _shared is None or not _shared.running:
        _shared = start_redis()
        atexit.register(_shared.stop)
    return _shared.url


@contextlib.contextmanager
def private_redis_url() -> Iterator[str]:
    """For code that must leave nothing behind (an experiment, a test): REDIS_URL if set, else the URL of a
    redis-server started for this block and stopped when it ends."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with start_redis() as server:
        yield server.url


def available() -> bool:
    """True when redis_url() can deliver (REDIS_URL set or redis-server on PATH)."""
    return bool(os.environ.get("REDIS_URL")) or shutil.which("redis-server") is not None
