"""Tests for helpers.process_entry, the child side of serve_process(), driven as serve_process() drives it."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from helpers.clients import attempt_sync
from helpers.servers import MAX_MESSAGE_BYTES
from tests.support import ROOT, Snapshot

pytestmark = pytest.mark.timeout(60)

READY_TIMEOUT = 15.0


def start_child(*arguments: str) -> subprocess.Popen[bytes]:
    """`python -m helpers.process_entry ...` with pipes on stdin, stdout and stderr, as serve_process() starts it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.process_entry", *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )


def ready_port(child: subprocess.Popen[bytes]) -> int:
    """The port of the child's `READY <port>` line (the first line on its stdout)."""
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], READY_TIMEOUT)
    assert readable, f"no READY line within {READY_TIMEOUT} s"
    line = child.stdout.readline()
    assert line.startswith(b"READY "), f"expected 'READY <port>', got {line!r}"
    return int(line.split()[1])


def finish(child: subprocess.Popen[bytes], timeout: float = 10.0) -> tuple[int, bytes, bytes]:
    """Close the child's stdin (serve_process()'s way of asking it to stop); its exit code, stdout rest, stderr."""
    stdout, stderr = child.communicate(timeout=timeout)
    return child.returncode, stdout, stderr


@pytest.fixture
def echo_child(no_leaks: Snapshot) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    child = start_child("helpers.demo_apps:echo", "--port", "0")
    try:
        yield child, ready_port(child)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def test_the_child_prints_ready_with_its_port_and_serves_the_app(
    echo_child: tuple[subprocess.Popen[bytes], int],
) -> None:
    """With --port 0 the child prints `READY <port>` for a free port, and the app answers there."""
    child, port = echo_child
    assert port > 0
    outcome = attempt_sync(f"ws://127.0.0.1:{port}/", send=["hello"], receive=1)
    assert outcome.messages == ["hello"]
    assert finish(child)[0] == 0


def test_the_child_has_the_servers_message_limit(echo_child: tuple[subprocess.Popen[bytes], int]) -> None:
    """The child uses servers.make_config: a message of MAX_MESSAGE_BYTES is echoed, one byte more closes with 1009."""
    child, port = echo_child
    at_limit = attempt_sync(f"ws://127.0.0.1:{port}/", send=[b"x" * MAX_MESSAGE_BYTES], receive=1)
    assert at_limit.messages == [b"x" * MAX_MESSAGE_BYTES]
    over = attempt_sync(f"ws://127.0.0.1:{port}/", send=[b"x" * (MAX_MESSAGE_BYTES + 1)])
    assert over.close_code == 1009
    assert finish(child)[0] == 0


def test_the_child_stops_when_its_stdin_closes(echo_child: tuple[subprocess.Popen[bytes], int]) -> None:
    """Closing stdin (what serve_process()'s stop() does, and what a dying parent does) makes it exit with 0."""
    child, port = echo_child
    code, rest_of_stdout, _ = finish(child)
    assert code == 0 and rest_of_stdout == b""
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more


def test_the_child_stops_on_sigterm(echo_child: tuple[subprocess.Popen[bytes], int]) -> None:
    """SIGTERM (serve_process()'s fallback when the child lingers) ends it without a traceback, as killed by SIGTERM."""
    child, port = echo_child
    child.send_signal(signal.SIGTERM)
    code, _, stderr = finish(child)
    # uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit status says SIGTERM.
    assert code == -signal.SIGTERM
    assert b"Traceback" not in stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_access_lines_go_to_stderr_not_to_the_ready_pipe(no_leaks: Snapshot) -> None:
    """At --log-level info uvicorn's access log goes to stderr: stdout carries the READY line only."""
    child = start_child("helpers.demo_apps:echo", "--port", "0", "--log-level", "info")
    try:
        port = ready_port(child)
        with pytest.raises(urllib.error.HTTPError):  # echo answers plain HTTP with 404: one access line
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        code, rest_of_stdout, stderr = finish(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert code == 0
    assert rest_of_stdout == b""
    assert b'"GET / HTTP/1.1" 404' in stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), b"the following arguments are required: app"),
        (("x:app", "--port", "99999"), b"--port must be 0 (any free port) or a port number up to 65535, not 99999"),
        (("x:app", "--port", "eighty"), b"argument --port: invalid int value: 'eighty'"),
        (("x:app", "--log-level", "loud"), b"argument --log-level: invalid choice: 'loud'"),
        (("x:app", "--server", "gunicorn"), b"argument --server: invalid choice: 'gunicorn'"),
    ],
)
def test_bad_arguments_exit_with_2_and_say_what_is_wrong(
    no_leaks: Snapshot, arguments: tuple[str, ...], message: bytes
) -> None:
    """Missing or impossible arguments end the child with argparse's usage error (code 2) naming the problem."""
    child = start_child(*arguments)
    code, stdout, stderr = finish(child)
    assert code == 2
    assert stdout == b""  # no READY line
    assert message in stderr


def test_a_port_in_use_exits_with_1_and_names_the_address(no_leaks: Snapshot) -> None:
    """A port something already listens on ends the child with code 1 and `ERROR: cannot bind host:port`."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stdout, stderr = finish(start_child("helpers.demo_apps:echo", "--port", str(port)))
    assert (code, stdout) == (1, b"")
    assert f"ERROR: cannot bind 127.0.0.1:{port}".encode() in stderr


def test_an_app_that_cannot_be_imported_exits_with_3_and_uvicorn_says_why(no_leaks: Snapshot) -> None:
    """An import string that does not import ends the child with code 3 (never started) and uvicorn's reason."""
    code, stdout, stderr = finish(start_child("no_such_module:app", "--port", "0"))
    assert (code, stdout) == (3, b"")
    assert b'Could not import module "no_such_module"' in stderr


@pytest.mark.parametrize("server", ["hypercorn", "daphne"])
def test_other_servers_stop_on_sigterm_with_0_and_no_traceback(no_leaks: Snapshot, server: str) -> None:
    """hypercorn (our handler sets its shutdown trigger) and daphne (Twisted's handler) shut down on SIGTERM with 0."""
    child = start_child("helpers.demo_apps:echo", "--port", "0", "--server", server)
    try:
        port = ready_port(child)
        assert attempt_sync(f"ws://127.0.0.1:{port}/", send=["hi"], receive=1).messages == ["hi"]
        child.send_signal(signal.SIGTERM)
        code, rest_of_stdout, stderr = finish(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert (code, rest_of_stdout) == (0, b""), stderr
    assert b"Traceback" not in stderr


@pytest.mark.parametrize("server", ["uvicorn-wsproto", "hypercorn", "daphne"])
def test_an_app_that_cannot_be_imported_exits_with_3_under_every_server(no_leaks: Snapshot, server: str) -> None:
    """Every --server says why the import string does not import, in uvicorn's words, and exits with 3."""
    code, stdout, stderr = finish(start_child("no_such_module:app", "--port", "0", "--server", server))
    assert (code, stdout) == (3, b"")
    assert b'Could not import module "no_such_module"' in stderr
