"""Tests for helpers.redis_server: a private redis-server that starts, answers, stops and never orphans."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from helpers import redis_server
from helpers.usage import UsageError
from tests.support import ROOT, child_pids, require_binary

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def redis_binary() -> str:
    return require_binary("redis-server", "apt-get install redis-server")


def test_start_answers_ping_on_loopback_and_stop_removes_everything(redis_binary: str) -> None:
    """start_redis() returns a server that answers PING on 127.0.0.1; stop() ends it and deletes its folder."""
    before = child_pids()
    with redis_server.start_redis() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert redis_server.ping("127.0.0.1", server.port)
        assert server.pid in child_pids()
        folder = server.folder
    assert not redis_server.ping("127.0.0.1", server.port)
    assert not folder.exists()
    assert child_pids() <= before
    server.stop()  # idempotent


def test_an_impossible_ready_timeout_is_refused() -> None:
    """start_redis(ready_timeout=0) raises UsageError instead of starting a server it would never wait for."""
    with pytest.raises(UsageError, match="ready_timeout must be above zero"):
        redis_server.start_redis(ready_timeout=0)


def test_redis_py_can_use_it(redis_binary: str) -> None:
    """The real redis-py client can set and get through the URL it gives."""
    import redis

    with redis_server.start_redis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        try:
            client.set("lesson", "06")
            assert client.get("lesson") == b"06"
        finally:
            client.close()


def test_missing_redis_server_explains_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without redis-server on PATH (and no REDIS_URL), the error names apt, brew, conda-forge and REDIS_URL."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert not redis_server.available()
    with pytest.raises(
        redis_server.RedisUnavailable, match=r"apt-get install redis-server.*brew.*conda-forge.*REDIS_URL"
    ):
        redis_server.start_redis()


def test_redis_url_prefers_the_learners_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """With REDIS_URL set, redis_url() returns it and starts nothing."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    before = child_pids()
    assert redis_server.redis_url() == "redis://127.0.0.1:6390/2"
    assert child_pids() == before


def test_redis_server_dies_with_its_parent(redis_binary: str) -> None:
    """If the process that started redis-server is killed outright, redis-server exits too."""
    script = textwrap.dedent(
        """
        import time
        from helpers.redis_server import start_redis
        server = start_redis()
        print(server.pid, server.port, server.folder, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert parent.stdout is not None
        pid_text, port_text, folder = parent.stdout.readline().split()
        pid, port = int(pid_text), int(port_text)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and redis_server.ping("127.0.0.1", port, timeout=0.2):
            time.sleep(0.05)
        still_up = redis_server.ping("127.0.0.1", port, timeout=0.2)
        if still_up:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)  # its owner was killed before it could clean up
        assert not still_up, "redis-server outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_server_started_from_a_short_lived_thread_outlives_it(redis_binary: str) -> None:
    """A redis-server started by a worker thread that then ends (a quiz's Show me) keeps answering until stop()."""
    started: list[redis_server.RedisServer] = []
    worker = threading.Thread(target=lambda: started.append(redis_server.start_redis()))
    worker.start()
    worker.join(30)
    server = started[0]
    try:
        time.sleep(0.3)  # a SIGTERM tied to the ended thread would have arrived by now
        assert server.running and redis_server.ping("127.0.0.1", server.port)
    finally:
        server.stop()
