"""A `websockets` client in a child process, which can be paused, resumed and killed: a peer that goes silent.

`start_child_client(url)` starts `python -m helpers.faults.child_client URL` and returns once the child's
handshake is done (and its optional `hello` text sent). The child then only reads: each message it receives, and
how its connection ended, is a line of `output`. Controls, each by the child's pid:

- `pause()`: SIGSTOP. No code runs in the child, but its socket stays open: the kernel still acknowledges
  TCP segments and buffers what arrives, so the server sees neither a FIN nor an RST, and nothing answers,
  not even a ping (pongs are sent by the library's code, which is stopped).
- `resume()`: SIGCONT; the child reads what waited and answers again.
- `kill()`: SIGKILL; the kernel closes the socket, so the server gets a FIN (an RST if data was unread).
- `stop()`: a clean close (code 1000) when the child can still make one, else SIGTERM, then SIGKILL; a paused
  child is resumed first, so no stopped process is ever left. Calling it again does nothing; it runs at exit too.

`ping_interval` and `ping_timeout` are the child's keepalive (`websockets.asyncio.client.connect` options):
`ping_interval=None`, the default here, sends no pings, so only the server's keepalive can notice a dead peer.
The child dies with this process: when its stdin closes it closes its connection and exits, and on Linux the
kernel SIGKILLs it (paused or not) if this process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from helpers.spawn import spawn
from helpers.usage import UsageTypeError, check_positive, check_ws_url

__all__ = [
    "OPEN_TIMEOUT",
    "READY_TIMEOUT",
    "STOP_TIMEOUT",
    "ChildClient",
    "ChildClientError",
    "main",
    "start_child_client",
]

READY_TIMEOUT = 5.0
OPEN_TIMEOUT = 2.0  # the child's handshake timeout (helpers.clients uses the same)
CLOSE_TIMEOUT = 0.5  # the child's wait for the server's close frame when it closes
STOP_TIMEOUT = 2.0  # stop(): how long each step (clean close, SIGTERM) gets before the next
_ROOT = Path(__file__).resolve().parent.parent.parent


class ChildClientError(RuntimeError):
    """A child client did not start, or was used after it ended; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# the child's side


def _watch_stdin(loop: asyncio.AbstractEventLoop, close: asyncio.Event) -> None:
    """Set `close` once stdin reaches EOF: the parent closed it (stop()) or died."""

    def watch() -> None:
        with contextlib.suppress(OSError):  # os.read on the raw fd: no buffered-stdin lock at exit
            while os.read(0, 4096):
                pass
        with contextlib.suppress(RuntimeError):  # the loop has closed: the child is exiting anyway
            loop.call_soon_threadsafe(close.set)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _say(line: str) -> None:
    print(line, flush=True)


async def _run(url: str, hello: str | None, ping_interval: float | None, ping_timeout: float | None) -> int:
    """Connect, send `hello`, say READY, then print what arrives until the connection ends."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    close = asyncio.Event()
    _watch_stdin(asyncio.get_running_loop(), close)
    try:
        ws = await connect(
            url,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            proxy=None,  # loopback only: an HTTP(S)_PROXY in the environment must not reroute it
        )
    except Exception as exc:
        _say(f"FAILED {type(exc).__name__}: {exc}")
        return 1
    if hello is not None:
        await ws.send(hello)
    _say("READY")
    closer = asyncio.create_task(_close_when(close, ws))
    try:
        while True:
            message = await ws.recv()
            _say("< " + (json.dumps(message) if isinstance(message, str) else "bytes " + message.hex()))
    except ConnectionClosed as exc:
        _say(f"CLOSED {exc}")
    closer.cancel()
    return 0


async def _close_when(close: asyncio.Event, ws: Any) -> None:
    await close.wait()
    await ws.close()


def _seconds_or_none(text: str) -> float | None:
    return None if text == "none" else float(text)


def main(argv: list[str] | None = None) -> int:
    """The child: `python -m helpers.faults.child_client URL [--hello TEXT] [--ping-interval S|none] ...`."""
    parser = argparse.ArgumentParser(prog="python -m helpers.faults.child_client")
    parser.add_argument("url")
    parser.add_argument("--hello", default=None)
    parser.add_argument("--ping-interval", type=_seconds_or_none, default=None)
    parser.add_argument("--ping-timeout", type=_seconds_or_none, default=None)
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.url, args.hello, args.ping_interval, args.ping_timeout))


# --------------------------------------------------------------------------------------------------
# the parent's side


def _command(url: str, hello: str | None, ping_interval: float | None, ping_timeout: float | None) -> list[str]:
    command = [sys.executable, "-m", "helpers.faults.child_client", url]
    command += ["--ping-interval", "none" if ping_interval is None else repr(ping_interval)]
    command += ["--ping-timeout", "none" if ping_timeout is None else repr(ping_timeout)]
    # --hello=TEXT in one argument: a text that starts with "-" must not read as an option.
    return command + ([f"--hello={hello}"] if hello is not None else [])


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the child (it dies with this process: `helpers.spawn`), its output to `log_path`, the repo importable."""
    paths = [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        # SIGKILL when this process dies: a paused (stopped) child would never act on SIGTERM or on its stdin closing.
        return spawn(
            command, death_signal=signal.SIGKILL, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env
        )


def _process_state(pid: int) -> str:
    """The kernel's one-letter state of `pid` ("T": stopped), "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


class ChildClient:
    """A `websockets` client running in a child process (see the module docstring); `start_child_client()` makes one."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.url = url
        self.process = process
        self.log_path = log_path
        self._final_output: str | None = None
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        """True while the child process exists (paused or not)."""
        return self.process.poll() is None

    @property
    def paused(self) -> bool:
        return self.running and _process_state(self.pid) in {"T", "t"}

    @property
    def exit_code(self) -> int | None:
        """The child's exit code (negative: the signal that ended it), None while it runs."""
        return self.process.poll()

    @property
    def output(self) -> str:
        """What the child printed: READY, `< "text"` per message received, and `CLOSED ...` when it ended."""
        if self._final_output is not None:
            return self._final_output
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def received(self) -> list[str | bytes]:
        """The messages the child has received and printed so far (a paused child prints nothing)."""
        found: list[str | bytes] = []
        for line in self.output.splitlines():
            if line.startswith("< bytes "):
                found.append(bytes.fromhex(line.removeprefix("< bytes ")))
            elif line.startswith("< "):
                found.append(json.loads(line.removeprefix("< ")))
        return found

    def _signal(self, signum: signal.Signals, what: str) -> None:
        if not self.running:
            raise ChildClientError(
                f"cannot {what}: the child client has exited (code {self.exit_code}); "
                "start a new one with start_child_client(url)"
            )
        self.process.send_signal(signum)  # by its pid; Popen never signals a pid it has already reaped

    def _wait_state(self, stopped: bool, timeout: float = 1.0) -> None:
        """Wait (bounded) until the kernel shows the child stopped, or running again: the next cell can rely on it."""
        deadline = time.monotonic() + timeout
        while self.running and self.paused != stopped and time.monotonic() < deadline:
            time.sleep(0.005)

    def pause(self) -> None:
        """SIGSTOP the child: its connection stays open and nothing in it runs (no reads, no pongs)."""
        self._signal(signal.SIGSTOP, "pause")
        self._wait_state(stopped=True)

    def resume(self) -> None:
        """SIGCONT the child: it reads what waited and answers pings again."""
        self._signal(signal.SIGCONT, "resume")
        self._wait_state(stopped=False)

    def kill(self) -> None:
        """SIGKILL the child and wait for it: the kernel closes its socket (no close frame is sent)."""
        self._signal(signal.SIGKILL, "kill")
        self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """End the child (clean close, else SIGTERM, else SIGKILL; resumed first if paused); again does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)  # a stopped child acts on nothing but SIGKILL
        _end(self.process)
        self._final_output = self.output
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()
        _live.discard(self)

    def __enter__(self) -> ChildClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else f"exited ({self.exit_code})"
        return f"<ChildClient {state} to {self.url}>"


def _end(process: subprocess.Popen[bytes]) -> None:
    """Close the child's stdin (it closes its connection and exits), then SIGTERM, then SIGKILL, each bounded."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    for escalate in (process.terminate, process.kill):
        try:
            process.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            escalate()
    process.wait()


_live: set[ChildClient] = set()


@atexit.register
def _stop_all() -> None:
    for client in list(_live):
        client.stop()


def _check_seconds(value: object, argument: str) -> float | None:
    return None if value is None else check_positive(value, argument)


def _wait_ready(client: ChildClient, ready_timeout: float) -> None:
    """Return once the child said READY; otherwise stop it and raise ChildClientError with what it said."""
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        lines = client.output.splitlines()
        if "READY" in lines:
            return
        if not client.running:
            break
        time.sleep(0.01)
    client.stop()
    said = [line for line in client.output.splitlines() if line.strip()]
    if client.exit_code is not None and said:
        reason = said[-1].removeprefix("FAILED ")
        raise ChildClientError(f"the child client could not connect to {client.url}: {reason}")
    raise ChildClientError(f"the child client did not connect to {client.url} within {ready_timeout} s")


def start_child_client(
    url: str,
    *,
    hello: str | None = None,
    ping_interval: float | None = None,
    ping_timeout: float | None = 20.0,
    ready_timeout: float = READY_TIMEOUT,
) -> ChildClient:
    """Start a child process that connects to `url`, sends `hello` (if given), then only reads.

    Returns once the handshake is done and `hello` is sent. `ping_interval=None` (the default) sends no
    keepalive pings; `ping_timeout` (the library's default, 20 s) is how long the child waits for a pong.
    Arguments that cannot work raise `helpers.usage.UsageError`; a child that cannot connect raises
    ChildClientError with the child's reason, and leaves no process behind.
    """
    check_ws_url(url)
    if hello is not None and not isinstance(hello, str):
        raise UsageTypeError(f"hello must be a str (one text message), such as 'hi', not {type(hello).__name__}")
    ping_interval = _check_seconds(ping_interval, "ping_interval")
    ping_timeout = _check_seconds(ping_timeout, "ping_timeout")
    check_positive(ready_timeout, "ready_timeout")
    fd, log_name = tempfile.mkstemp(prefix="wslab-child-client-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    process = _spawn(_command(url, hello, ping_interval, ping_timeout), log_path)
    client = ChildClient(url, process, log_path)
    _live.add(client)
    _wait_ready(client, ready_timeout)
    return client


if __name__ == "__main__":
    sys.exit(main())
