"""A throwaway nginx in front of the lesson's servers (lesson 16): a real reverse proxy on loopback.

`start_nginx(upstreams)` writes an nginx.conf into its own temporary folder, starts nginx from PATH on a free
127.0.0.1 port, proxying `location /` to an `upstream` block of the given backend ports on 127.0.0.1, and returns
an `Nginx` handle once nginx listens. Everything nginx writes stays in that folder: its pid file, error and access
logs and the temp paths of request bodies and proxied responses. nginx runs as
`nginx -p FOLDER -c FOLDER/nginx.conf -e FOLDER/error.log`, so no system config is read and even a startup error
(before the config names its error_log) lands in the folder; no root is needed. A config nginx refuses raises
`NginxError` with nginx's own words (`nginx: [emerg] unknown directive "bogus" in ...`), leaving nothing behind.
Without nginx on PATH, `NginxUnavailable` says how to install it.

The switches are the lesson's experiments: leave out the WebSocket headers and the handshake fails; lower
`read_timeout` and an idle WebSocket is cut; `forwarded_headers` tells the app who the client was; `tls` serves
https:// and wss://. `Nginx.config_text` is the config as written, for the lesson to print.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers.servers import DEFAULT_HOST, free_port, netloc, ws_url_for
from helpers.spawn import spawn
from helpers.usage import (
    UsageError,
    UsageTypeError,
    check_choice,
    check_count,
    check_port,
    check_positive,
    check_text,
)

__all__ = [
    "ERROR_LOG_LEVELS",
    "GRACEFUL_STOP_SECONDS",
    "HTTP_VERSIONS",
    "INSTALL_HINT",
    "LOG_WAIT_TIMEOUT",
    "READY_TIMEOUT",
    "STOP_TIMEOUT",
    "Nginx",
    "NginxError",
    "NginxUnavailable",
    "available",
    "nginx_config",
    "running_nginx",
    "start_nginx",
    "stop_all",
]

READY_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
# stop() asks for a graceful shutdown first (SIGQUIT: finish the requests in flight). nginx waits for open
# WebSockets without limit then, so after this many seconds stop() asks for a fast one (SIGTERM).
GRACEFUL_STOP_SECONDS = 1.0
# nginx writes a request's access-log line after it has sent the response (its log phase comes last), so a
# client can hold the answer before the line is there: access_log(lines=N) waits up to this long for N lines.
LOG_WAIT_TIMEOUT = 5.0
HTTP_VERSIONS = ("1.0", "1.1")
# nginx's levels, most detailed first; each logs itself and every level after it. "info" adds what happens to
# connections ("upstream timed out ... while proxying upgraded connection"), "notice" nginx's own start and stop.
ERROR_LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
INSTALL_HINT = (
    "nginx is not installed. Install it with one of: "
    "`sudo apt-get install nginx` (Debian/Ubuntu), `brew install nginx` (macOS), "
    "`conda install -c conda-forge nginx`."
)
_BIND_RETRIES = 3  # the free port could be taken between choosing it and nginx binding it

# The config, filled in by nginx_config(). Paths without a leading slash are relative to the folder given with
# -p, so the text is the same in every run but for its ports (and, with TLS, the certificate paths).
_TEMPLATE = """\
# Written by helpers.nginx. Relative paths are inside this nginx's own folder (nginx -p FOLDER).
daemon off;               # stay in the foreground: the process started is the master, stopped by its pid
master_process on;
worker_processes 1;       # one worker: round-robin order is kept per worker
pid nginx.pid;
error_log error.log {error_log_level};

events {{
    worker_connections 512;
}}

http {{
    log_format lab '$remote_addr "$request" $status upstream=$upstream_addr';
    access_log access.log lab;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
{http_extra}
    upstream app {{
{servers}
    }}

    server {{
        listen {listen};
{server_extra}
{location}
    }}
}}
"""

# nginx does not pass the hop-by-hop headers Upgrade and Connection on (nginx.org/en/docs/http/websocket.html):
# the proxy must set them. $connection_upgrade is "upgrade" when the client asked to upgrade, else "close".
_CONNECTION_MAP = """
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
"""


class NginxError(RuntimeError):
    """nginx did not start or refused its config; the message quotes nginx's own error text."""

    def __init__(self, message: str, config_text: str = "") -> None:
        super().__init__(message)
        self.config_text = config_text  # the config nginx was given, for printing next to the error


class NginxUnavailable(NginxError):
    """nginx is not on PATH; the message says how to install it."""


def available() -> bool:
    """True when nginx is on PATH, so start_nginx() can run it."""
    return shutil.which("nginx") is not None


# --------------------------------------------------------------------------------------------------
# the config


def _nginx_time(seconds: float) -> str:
    """A duration as nginx writes one: whole seconds as "1s", anything finer in milliseconds ("300ms")."""
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def _quoted(path: str | os.PathLike[str]) -> str:
    """A path as an nginx string: double quotes, so spaces work; backslash and quote escaped."""
    text = str(Path(path).resolve())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _location_lines(
    websocket_headers: bool, http_version: str, read_timeout: float | None, forwarded_headers: bool
) -> list[str]:
    lines = [f"proxy_http_version {http_version};"]
    if websocket_headers:
        lines += ["proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;"]
    if read_timeout is not None:
        lines.append(f"proxy_read_timeout {_nginx_time(read_timeout)};  # nginx's default: 60s")
    if forwarded_headers:
        lines += [
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header X-Real-IP $remote_addr;",
        ]
    return lines


def nginx_config(
    port: int,
    upstreams: Sequence[int],
    *,
    websocket_headers: bool = True,
    http_version: str = "1.1",
    read_timeout: float | None = None,
    forwarded_headers: bool = True,
    tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    extra_location: str = "",
    error_log_level: str = "warn",
    location_block: str | None = None,
) -> str:
    """The nginx.conf start_nginx() writes (see start_nginx for the switches); nothing is checked or started.

    WebSocket headers: the `map $http_upgrade $connection_upgrade` form of nginx's WebSocket page (uvicorn's
    deployment docs use it too), rather than a constant `Connection "upgrade"`. Both proxy a WebSocket; the map
    also keeps what nginx sends on a plain HTTP request as it was (`Connection: close`, nginx's default), so
    turning the headers on changes nothing but upgrades, where the constant would tell every plain request's
    backend `Connection: upgrade` with no Upgrade header.
    """
    if location_block is None:
        lines = _location_lines(websocket_headers, http_version, read_timeout, forwarded_headers)
        lines += [line.strip() for line in extra_location.splitlines() if line.strip()]
        location = "\n".join(["        location / {", "            proxy_pass http://app;"])
        location += "".join(f"\n            {line}" for line in lines) + "\n        }"
    else:  # someone else's block, as written: only indented to sit in the server block
        location = "\n".join(f"        {line}".rstrip() for line in location_block.strip("\n").splitlines())
    server_extra = ""
    if tls is not None:
        server_extra = f"        ssl_certificate {_quoted(tls[0])};\n        ssl_certificate_key {_quoted(tls[1])};\n"
    return _TEMPLATE.format(
        error_log_level=error_log_level,
        http_extra=_CONNECTION_MAP if websocket_headers or location_block is not None else "",
        servers="\n".join(f"        server {netloc(DEFAULT_HOST, p)};" for p in upstreams),
        listen=f"{netloc(DEFAULT_HOST, port)}{' ssl' if tls is not None else ''}",
        server_extra=server_extra,
        location=location,
    )


# --------------------------------------------------------------------------------------------------
# the handle


@dataclass(eq=False)
class Nginx:
    """An nginx this code started (a master and one worker); `stop()` ends it and removes its folder."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    config_text: str
    tls: bool = False
    name: str | None = None
    host: str = DEFAULT_HOST
    _stopped: bool = field(default=False, repr=False)
    _logs: dict[str, str] = field(default_factory=dict, repr=False)  # read at stop(), before the folder goes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{netloc(self.host, self.port)}"

    def ws_url(self, path: str = "/") -> str:
        """The ws:// (wss:// with TLS) address of `path` through nginx (a leading slash is added if missing)."""
        url = ws_url_for(self.host, self.port, path)
        return "wss://" + url.removeprefix("ws://") if self.tls else url

    @property
    def pid(self) -> int:
        """The master's pid (the process started here); its workers are `worker_pids`."""
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.process.poll() is None

    @property
    def worker_pids(self) -> list[int]:
        """The master's worker processes (read from /proc: Linux only, [] elsewhere or once stopped)."""
        return _children(self.pid) if self.running else []

    def access_log(self, lines: int = 0, timeout: float = LOG_WAIT_TIMEOUT) -> str:
        """The access log so far, one line per finished request: `client "request" status upstream=ADDRESS`.

        nginx writes a request's line just after it sends the response, and a WebSocket's line (status 101) when
        the connection ends, not when it opens. With `lines`, first wait (at most `timeout` seconds) until the
        log holds at least that many lines; after that, what is there is returned.
        """
        lines = check_count(lines, "lines")
        timeout = check_positive(timeout, "timeout")
        deadline = time.monotonic() + timeout
        text = self._read("access.log")
        while len(text.splitlines()) < lines and time.monotonic() < deadline:
            time.sleep(0.01)
            text = self._read("access.log")
        return text

    def error_log(self) -> str:
        """nginx's error log so far (at start_nginx's error_log_level and above), with nginx's timestamps."""
        return self._read("error.log")

    def _read(self, name: str) -> str:
        if name in self._logs:
            return self._logs[name]
        with contextlib.suppress(OSError):
            return (self.folder / name).read_text(errors="replace")
        return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop nginx by its pid and delete its folder, keeping its logs readable; idempotent.

        SIGQUIT first (graceful: requests in flight finish), after GRACEFUL_STOP_SECONDS SIGTERM (fast: open
        connections, WebSockets among them, are closed), after `timeout` more SIGKILL to the workers and the master.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _unregister(self)
        if self.process.poll() is None:
            self._end_process(timeout)
        for name in ("access.log", "error.log"):
            self._logs[name] = self._read(name)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _end_process(self, timeout: float) -> None:
        for sig, wait in ((signal.SIGQUIT, GRACEFUL_STOP_SECONDS), (signal.SIGTERM, timeout)):
            self.process.send_signal(sig)  # by pid, and only while it has not been reaped
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait)
                return
        # Killed outright the master could not stop its workers: kill them first, while they are still its children.
        for worker in _children(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Nginx {'running' if self.running else 'stopped'} at {self.url}>"


def _children(pid: int) -> list[int]:
    """Live children of `pid`, from /proc (empty where there is no /proc)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if ppid == str(pid) and state != "Z":
                found.append(int(entry.name))
    return sorted(found)


# --------------------------------------------------------------------------------------------------
# registry: stopped at exit, and replaced by name


_running: list[Nginx] = []
_running_lock = threading.Lock()


def _register(handle: Nginx) -> None:
    with _running_lock:
        _running.append(handle)


def _unregister(handle: Nginx) -> None:
    with _running_lock, contextlib.suppress(ValueError):
        _running.remove(handle)


def running_nginx() -> list[Nginx]:
    """Every nginx started here and not stopped yet."""
    with _running_lock:
        return [handle for handle in _running if handle.running]


def stop_all() -> None:
    """Stop every nginx started here (also run when the interpreter exits)."""
    with _running_lock:
        handles = list(_running)
    for handle in handles:
        handle.stop()


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------------
# starting


def _check_upstreams(upstreams: object) -> list[int]:
    ports = [upstreams] if isinstance(upstreams, int) and not isinstance(upstreams, bool) else upstreams
    if isinstance(ports, str) or not isinstance(ports, Sequence) or not ports:
        raise UsageTypeError(
            f"upstreams must be a backend's port or a list of them, such as [server.port for server in workers]; "
            f"got {upstreams!r}"
        )
    for index, port in enumerate(ports):
        if check_port(port, f"upstreams[{index}]") == 0:
            raise UsageError(f"upstreams[{index}] is 0; pass the port the backend listens on, such as server.port")
    return list(ports)


def _check_flag(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise UsageTypeError(f"{argument} must be True or False, not {type(value).__name__}")
    return value


def _check_tls(tls: object) -> tuple[Path, Path] | None:
    example = "(cert_path, key_path), e.g. files written by trustme's cert.cert_chain_pems[0].write_to_path()"
    if tls is None:
        return None
    if not isinstance(tls, tuple | list) or len(tls) != 2 or not all(isinstance(p, str | os.PathLike) for p in tls):
        raise UsageTypeError(f"tls must be a pair of paths {example}; got {tls!r}")
    paths = (Path(tls[0]), Path(tls[1]))
    for path, what in zip(paths, ("certificate", "key"), strict=True):
        if not path.is_file():
            raise UsageError(f"tls {what} {str(path)!r} is not a file; pass {example}")
    return paths


def _check_read_timeout(read_timeout: object) -> float | None:
    if read_timeout is None:
        return None
    seconds = check_positive(read_timeout, "read_timeout")
    if seconds < 0.001:
        raise UsageError(f"read_timeout {seconds!r} is below nginx's resolution; pass 0.001 s or more, such as 1.0")
    return seconds


def _check_location_block(location_block: object, switches_at_defaults: bool) -> None:
    if location_block is None:
        return
    if not isinstance(location_block, str) or "location" not in location_block or "{" not in location_block:
        raise UsageTypeError(
            "location_block must be the text of a whole block, such as 'location / { proxy_pass http://app; }'"
        )
    if not switches_at_defaults:
        raise UsageError(
            "location_block replaces the block websocket_headers, http_version, read_timeout, forwarded_headers "
            "and extra_location write: write those directives into your block instead"
        )


def _failure(folder: Path, config_text: str) -> str:
    """nginx's own words for why it stopped: its stderr (`nginx: [emerg] ...`), else its error log's worst lines,
    with the config line an error points at (the file itself is about to be deleted)."""
    said = [line for line in _text(folder / "stderr.log").splitlines() if line.strip()]
    if not said:
        logged = _text(folder / "error.log").splitlines()
        said = [line for line in logged if re.search(r"\[(emerg|alert|crit)\]", line)] or logged[-1:]
    text = "; ".join(said) or "nginx exited without saying why"
    match = re.search(r"nginx\.conf:(\d+)", text)
    lines = config_text.splitlines()
    if match and 0 < int(match[1]) <= len(lines):
        text += f" (line {match[1]} of the config reads: {lines[int(match[1]) - 1].strip()!r})"
    return text


def _text(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")
    return ""


def _wait_ready(handle: Nginx, ready_timeout: float) -> bool:
    """True once nginx has accepted its config and bound its port (it writes its pid file just after) and, where
    /proc shows it, has started its worker, which accepts the connections.

    Not a test connection: a port taken by another program in the meantime would accept it too (nginx would not
    write the file), and nginx would log the probe ("client closed connection while waiting for request").
    """
    deadline = time.monotonic() + ready_timeout
    has_proc = Path("/proc/self").exists()
    while time.monotonic() < deadline and handle.process.poll() is None:
        if _text(handle.folder / "nginx.pid").strip() == str(handle.pid) and (_children(handle.pid) or not has_proc):
            return True
        time.sleep(0.01)
    return False


def _launch(binary: str, config_for: Callable[[int], str], tls: bool, ready_timeout: float, name: str | None) -> Nginx:
    """Start nginx on free ports until one binds; raise NginxError with nginx's words if it will not start."""
    failure = config_text = ""
    for _ in range(_BIND_RETRIES):
        port = free_port(DEFAULT_HOST)
        config_text = config_for(port)
        folder = Path(tempfile.mkdtemp(prefix="wslab-nginx-"))
        # Started as root, nginx runs its workers as `nobody`: they must be able to enter the folder to reach the
        # temp directories nginx makes for them (and chowns to them), or a response too big for nginx's buffers is
        # cut short. Listing the folder stays the owner's.
        folder.chmod(0o711)
        (folder / "nginx.conf").write_text(config_text)
        command = [binary, "-p", f"{folder}/", "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
        with open(folder / "stderr.log", "wb") as log:
            process = spawn(command, stdout=log, stderr=subprocess.STDOUT)
        handle = Nginx(port, process, folder, config_text, tls=tls, name=name)
        ready = _wait_ready(handle, ready_timeout)
        if ready:
            return handle
        failure = _failure(folder, config_text) if process.poll() is not None else ""
        handle.stop(timeout=1.0)
        if not failure:
            logged = handle.error_log().strip()
            said = f"; its error log: {logged}" if logged else ""
            raise NginxError(f"nginx did not become ready within {ready_timeout:g} s{said}", config_text)
        if "Address already in use" not in failure:
            raise NginxError(f"nginx did not start: {failure}", config_text)
    raise NginxError(f"nginx did not start: {failure}", config_text)


def start_nginx(
    upstreams: Sequence[int] | int,
    *,
    websocket_headers: bool = True,
    http_version: str = "1.1",
    read_timeout: float | None = None,
    forwarded_headers: bool = True,
    tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    extra_location: str = "",
    error_log_level: str = "warn",
    location_block: str | None = None,
    name: str | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> Nginx:
    """Start nginx on 127.0.0.1 and a free port, proxying `location /` to `upstreams` (ports on 127.0.0.1, taken in
    turn: nginx's default round-robin); returns once nginx listens.

    - `websocket_headers`: pass Upgrade and set Connection (see nginx_config for the form); False leaves them out,
      and a WebSocket handshake then reaches the backend as a plain HTTP request.
    - `http_version`: proxy_http_version, "1.1" (what nginx's WebSocket page asks for) or "1.0" (nginx's default).
    - `read_timeout`: proxy_read_timeout in seconds (nginx's default: 60): how long nginx waits for the backend to
      send anything before it closes the connection, WebSockets included.
    - `forwarded_headers`: Host as the client sent it, X-Forwarded-For, X-Forwarded-Proto and X-Real-IP.
    - `tls`: (cert_path, key_path): serve https:// and wss:// on the port.
    - `extra_location`: directives added to `location /` as they are (a bad one makes nginx refuse the config).
    - `error_log_level`: one of ERROR_LOG_LEVELS; "info" shows why nginx closed a connection.
    - `location_block`: a whole `location ... { ... }` block, written into the server block as it is, instead of
      the one the switches above write (which must then keep their defaults). The upstream is still named `app`
      (`proxy_pass http://app;`) and the http block still defines `$connection_upgrade`.
    - `name`: a running nginx started under the same name is stopped first, so re-running a cell is safe.

    Raises NginxUnavailable without nginx on PATH, NginxError (with nginx's own error text) if it refuses the
    config or does not start, UsageError for arguments that cannot work. It stops when the interpreter exits.
    """
    ports = _check_upstreams(upstreams)
    websocket_headers = _check_flag(websocket_headers, "websocket_headers")
    http_version = check_choice(http_version, "http_version", HTTP_VERSIONS)
    read_timeout = _check_read_timeout(read_timeout)
    forwarded_headers = _check_flag(forwarded_headers, "forwarded_headers")
    tls_paths = _check_tls(tls)
    error_log_level = check_choice(error_log_level, "error_log_level", ERROR_LOG_LEVELS)
    if not isinstance(extra_location, str):
        raise UsageTypeError("extra_location must be a str of nginx directives, such as 'proxy_buffering off;'")
    _check_location_block(
        location_block,
        websocket_headers
        and http_version == "1.1"
        and read_timeout is None
        and forwarded_headers
        and not extra_location,
    )
    if name is not None:
        check_text(name, "name", example="proxy")
    check_positive(ready_timeout, "ready_timeout")
    binary = shutil.which("nginx")
    if binary is None:
        raise NginxUnavailable(INSTALL_HINT)
    if name is not None:
        for old in running_nginx():
            if old.name == name:
                old.stop()
    config_for = functools.partial(
        nginx_config,
        upstreams=ports,
        websocket_headers=websocket_headers,
        http_version=http_version,
        read_timeout=read_timeout,
        forwarded_headers=forwarded_headers,
        tls=tls_paths,
        extra_location=extra_location,
        error_log_level=error_log_level,
        location_block=location_block,
    )
    handle = _launch(binary, config_for, tls_paths is not None, ready_timeout, name)
    _register(handle)
    return handle
