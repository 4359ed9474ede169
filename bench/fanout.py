"""Broadcast fan-out strategies under load, with and without a client that never reads: a report, not a test.

Run with `make bench` (or `.venv/bin/python -m bench.fanout [--runs N] [--window S] [--loads 1,2,3] [--quick]
[--check]`; `--loads 1` runs only the first load, and a target is judged only when the loads it needs ran).

Each run starts a fresh server process (the strategies are in bench/fanout_apps.py: the four Starlette
ones are served by uvicorn through `helpers.servers.serve_process`, which runs uvicorn 0.54 with its
default WebSocket protocol, websockets-sansio (`ws="auto"` picks it when the websockets package is
installed), on asyncio's own event loop (`asyncio.run`, no uvloop); the anchor is the `websockets`
library's own server and its `broadcast()`) and a fresh client process, both on 127.0.0.1. The client
process opens the healthy clients, which read everything (on the `websockets` library's Sans-I/O client,
each frame handled where it arrives, with no task woken per message), and the slow ones, which
complete the handshake and never read (the library's asyncio client with a fixed 64 KiB receive buffer
and a library queue of one frame, so neither kernel autotuning nor the client library soaks up the
backlog). Then it asks the server, on /control, to broadcast M messages of S bytes, and records every
delivery.

Three loads, each run for every strategy:

1. 200 clients x 200 messages x 100 B, as fast as the server can send (throughput);
2. 100 clients x 100 messages x 100 KB (10 MB per client) at 40 messages/s. The producer is paced
   because a healthy client is one that keeps up: unpaced, one Python client process cannot read
   100 KB messages as fast as any server writes them, every client lags, and a bounded queue rightly
   treats them all as slow;
3. load 2 plus one client that never reads.

Reported per strategy and load (median of `--runs` runs, taken in rounds: each round runs every strategy
once, so a burst of load from elsewhere on the machine falls on one run of several strategies):

- msg/s: messages delivered to healthy clients divided by the time from the first message's creation on
  the server until the last healthy client has the last message ("done in");
- done in: that time, or "froze" when the healthy clients did not all finish within `--window` seconds
  (a strategy that froze is not run again on that load: freezing is an outcome, not a timing sample);
- p50/p99: delivery latency of every message to every healthy client, from the server's
  `time.monotonic()` written into the message to the client's on arrival (one clock: CLOCK_MONOTONIC
  is system-wide on Linux);
- CPU/msg: server process CPU time (/proc/PID/task/*/schedstat, in ns) during the run per delivered
  message, which other processes' load disturbs much less than wall time;
- RSS +MB: the server process's peak VmRSS (/proc/PID/status, sampled every 10 ms) minus its VmRSS once
  every client was connected;
- healthy clients: whether every healthy client got every message, or how many were closed (with which
  code) or lost messages;
- slow client: what the client that never read found when it finally read (for up to 3 s after the run):
  the close code after the messages that had reached it (evicted), a gap (messages dropped), everything
  (nothing lost, and how much the server buffered for it), or "stuck" when the fan-out froze.

Targets for the recommended strategy, FanOut (helpers/fanout.py, max_queue 32), each checked for both
policies, "disconnect" and "drop-oldest": (1) on load 1, at most 1.3x the server CPU per message of
sequential awaits, and (2) at least 1.0x the msg/s of `websockets.broadcast()`, with every healthy
client getting every message (each ratio the median over rounds of the ratio within a round); (3) on
load 3, every healthy client gets everything within 1.1x of its time on load 2, and (4) the server's
peak memory growth stays within what FanOut bounds it to: the queue limit (32 distinct messages: the
queues share each message) plus one transport buffer (64 KiB + a message) per connection, with 2 MB
allowed for the allocator. FanOut can be as cheap as the sequential loop because `publish()` writes to
every client whose writer is idle itself: under websockets-sansio a send to a writable connection
completes without suspending, so no task, future or queue takes part; only a send that has to wait goes
to the client's writer task. Each message is still encoded once per client (uvicorn's `send()` encodes
the text it is given; the ASGI interface has no way to hand it an encoded frame), as in every Starlette
strategy. A PASS or MISS line per target, with its ratio; INFO lines for the rest. The exit code is 0
unless `--check` is given and a target is missed. Every process is stopped before the script exits, also
on errors."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import platform
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.fanout_apps import parse_message
from bench.report import Verdict, format_columns, percentile, positive_int, print_verdicts, ratio
from helpers.clients import connect
from helpers.servers import ProcessServer, serve_process

ROOT = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
STRATEGIES: dict[str, str | None] = {
    "sequential": "bench.fanout_apps:sequential",
    "gather": "bench.fanout_apps:gather",
    "queue-drop-oldest": "bench.fanout_apps:queue_drop_oldest",
    "queue-disconnect": "bench.fanout_apps:queue_disconnect",
    "websockets.broadcast": None,  # the anchor: python -m bench.fanout_apps
}
FANOUT_STRATEGIES = ("queue-disconnect", "queue-drop-oldest")  # helpers.fanout.FanOut, both policies
MAX_QUEUE = 32
SLOW_RCVBUF = 65536
TRANSPORT_HIGH_WATER = 64 * 1024
RSS_NOISE = 2 * 1024 * 1024
SLOW_DRAIN_SECONDS = 3.0
READY_TIMEOUT = 10.0
CPU_TARGET = 1.3  # FanOut's server CPU per message, at most this many times sequential's (load 1)
ANCHOR_TARGET = 1.0  # FanOut's msg/s, at least this many times websockets.broadcast()'s (load 1)
SLOW_TARGET = 1.1  # FanOut's healthy clients on load 3, done within this many times their time on load 2


@dataclass(frozen=True)
class Load:
    """How many healthy clients, messages, bytes per message, and clients that never read."""

    clients: int
    messages: int
    size: int
    slow: int = 0
    rate: float = 0.0

    @property
    def label(self) -> str:
        size = f"{self.size // 1000} KB" if self.size >= 1000 else f"{self.size} B"
        rate = f" @{self.rate:g}/s" if self.rate else ""
        slow = f" + {self.slow} slow" if self.slow else ""
        return f"{self.clients} x {self.messages} x {size}{rate}{slow}"


@dataclass
class Run:
    """What one run measured (written as JSON by the client process)."""

    finished: bool
    froze: bool
    healthy_closed: list[str]
    healthy_lost: int
    seconds: float
    delivered: int
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    rss_growth: int
    rss_end_growth: int
    cpu_us_per_msg: float
    client_cpu_us_per_msg: float
    slow: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# client process


def read_cpu(pid: int) -> float:
    """CPU seconds used so far by `pid`'s threads: the scheduler's own count, in nanoseconds.

    /proc/PID/task/TID/schedstat starts with the time the thread has run on a CPU, in ns. /proc/PID/stat's
    utime and stime count clock ticks (10 ms): a 200-client run uses a few tenths of a second of server CPU,
    so a tick or two either way would move CPU/msg by several percent. Where schedstat is missing (a kernel
    without it), the ticks it is.
    """
    try:
        return sum(int(path.read_text().split()[0]) for path in Path(f"/proc/{pid}/task").glob("*/schedstat")) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_rss(pid: int) -> int:
    """VmRSS of `pid` in bytes, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 10 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.peak = read_rss(pid)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.01):
            try:
                self.peak = max(self.peak, read_rss(self.pid))
            except (OSError, RuntimeError):
                return


def slow_socket(port: int) -> socket.socket:
    """A connected socket with a small, fixed receive buffer (no autotuning to soak up megabytes)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    sock.connect((HOST, port))
    sock.setblocking(False)
    return sock


class Subscriber(asyncio.Protocol):
    """A healthy client on the `websockets` library's Sans-I/O client (`ClientProtocol`), straight on asyncio.

    Every frame is handled in `data_received`, where it arrives: no task wakes up per message, as one does behind
    `recv()` of the library's asyncio client. That client costs about 12 us of CPU per message here, more than
    any server under test, so with it msg/s measured the client process; this one costs a fraction of that
    (the INFO line prints it), and msg/s measures the server.
    """

    def __init__(self, url: str, messages: int, latencies: list[float], first_sent: list[float]) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.messages = messages
        self.latencies = latencies
        self.first_sent = first_sent
        self.count = 0
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[float] = loop.create_future()  # the last message's arrival time
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self.opened.set_exception(self.protocol.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and (event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY):
                sequence, sent = parse_message(event.data)
                if sequence == 0:
                    self.first_sent.append(sent)
                self.latencies.append(now - sent)
                self.count += 1
                if sequence == self.messages - 1 and not self.done.done():
                    self.done.set_result(now)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        failure = self.protocol.close_exc
        for future in (self.opened, self.done):
            if not future.done():
                future.set_exception(failure)

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()


async def subscribe(url: str, messages: int, latencies: list[float], first_sent: list[float]) -> Subscriber:
    """Open a `Subscriber` to `url` (ws://HOST:PORT/PATH) and wait for its handshake, within READY_TIMEOUT."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    _, subscriber = await asyncio.wait_for(
        loop.create_connection(lambda: Subscriber(url, messages, latencies, first_sent), uri.host, uri.port),
        READY_TIMEOUT,
    )
    await asyncio.wait_for(subscriber.opened, READY_TIMEOUT)
    return subscriber


async def drive(port: int, pid: int, load: Load, window: float) -> Run:
    """Connect everyone, start the broadcast, and measure it (runs in the client process)."""
    base = f"ws://{HOST}:{port}"
    options: dict[str, Any] = {"compression": None, "max_size": None, "open_timeout": 20}
    slow = [
        await connect(f"{base}/ws?name=slow{i}", max_queue=1, sock=slow_socket(port), **options)
        for i in range(load.slow)
    ]
    gate = asyncio.Semaphore(50)
    latencies: list[float] = []
    first_sent: list[float] = []

    async def open_one(i: int) -> Subscriber:
        async with gate:
            return await subscribe(f"{base}/ws?name=h{i}", load.messages, latencies, first_sent)

    healthy = await asyncio.gather(*(open_one(i) for i in range(load.clients)))
    control = await connect(f"{base}/control", **options)
    try:
        await asyncio.sleep(0.2)  # let the server settle after the connection burst
        baseline = read_rss(pid)
        cpu_before = read_cpu(pid)
        client_cpu_before = time.process_time()
        sampler = RssSampler(pid)
        sampler.start()
        command = {"messages": load.messages, "size": load.size, "rate": load.rate, "expect": len(healthy) + len(slow)}
        await control.send(json.dumps(command))
        began = time.monotonic()
        tasks = [subscriber.done for subscriber in healthy]
        done, pending = await asyncio.wait(tasks, timeout=window)
        closed = [_ending(exc) for t in done if (exc := t.exception()) is not None]
        finished = not pending and not closed
        lost = sum(load.messages - s.count for s in healthy if s.done in done and s.done.exception() is None)
        start = min(first_sent, default=began)
        end = max((t.result() for t in done if t.exception() is None), default=began)
        seconds = end - start if finished else time.monotonic() - start
        server: dict[str, Any] = {}
        if not pending:  # the producer is done (or close to it): its report says who was evicted
            try:
                server = json.loads(await asyncio.wait_for(control.recv(), 5))
            except Exception as exc:
                server = {"error": f"{type(exc).__name__}: {exc}"}
        sampler.halt.set()
        sampler.join()
        cpu = read_cpu(pid) - cpu_before
        client_cpu = time.process_time() - client_cpu_before
        rss_end = read_rss(pid)
        delivered = sum(s.count for s in healthy)
        fates = await asyncio.gather(*(drain(ws, load.messages) for ws in slow))
        return Run(
            finished=finished,
            froze=bool(pending),
            healthy_closed=closed,
            healthy_lost=lost,
            seconds=seconds,
            delivered=delivered,
            msgs_per_s=delivered / seconds if seconds > 0 else 0.0,
            p50_ms=percentile(latencies, 50) * 1000 if finished else math.nan,
            p99_ms=percentile(latencies, 99) * 1000 if finished else math.nan,
            rss_growth=sampler.peak - baseline,
            rss_end_growth=rss_end - baseline,
            cpu_us_per_msg=cpu / delivered * 1e6 if finished and delivered else math.nan,
            client_cpu_us_per_msg=client_cpu / delivered * 1e6 if finished and delivered else math.nan,
            slow=fates,
            server=server,
        )
    finally:
        for ws in [*slow, control]:
            ws.transport.abort()
        for subscriber in healthy:
            if subscriber.transport is not None:
                subscriber.transport.abort()


async def drain(ws: Any, expected: int) -> dict[str, Any]:
    """Let a client that never read read now: how many messages reached it, and how it ended."""
    received = 0
    ending = "still open"
    deadline = time.monotonic() + SLOW_DRAIN_SECONDS
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(decode=False), 0.5)
            received += 1
    except TimeoutError:
        pass
    except Exception as exc:  # ConnectionClosed: how the server ended it
        ending = _ending(exc)
    return {"received": received, "expected": expected, "ending": ending}


def _ending(exc: BaseException) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return f"closed {rcvd.code}"
    return "dropped (1006)" if hasattr(exc, "rcvd") else f"{type(exc).__name__}: {exc}"


def client_main(spec: str) -> int:
    """Entry point of the client process: run `drive` and print the Run as JSON."""
    args = json.loads(spec)
    load = Load(**args["load"])
    run = asyncio.run(drive(args["port"], args["pid"], load, args["window"]))
    print(json.dumps(asdict(run)), flush=True)
    return 0


# --------------------------------------------------------------------------------------------------
# orchestration


class AnchorServer:
    """The websockets-library server (python -m bench.fanout_apps) in a child process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout_apps", "--host", HOST],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], READY_TIMEOUT)
        line = self.process.stdout.readline() if ready else b"(nothing within the ready timeout)"
        if not line.startswith(b"READY "):
            self.stop()
            raise RuntimeError(f"the websockets server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def run_once(strategy: str, load: Load, window: float) -> Run:
    """One run: a fresh server process and a fresh client process, both stopped before returning."""
    target = STRATEGIES[strategy]
    server: ProcessServer | AnchorServer
    if target is None:
        server = AnchorServer()
    else:
        env = {"FANOUT_MAX_QUEUE": str(MAX_QUEUE)}
        server = serve_process(target, name=f"bench-fanout-{strategy}", host=HOST, env=env, app_dir=ROOT)
    client: subprocess.Popen[bytes] | None = None
    try:
        spec = json.dumps({"port": server.port, "pid": server.pid, "load": asdict(load), "window": window})
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout", "--client", spec],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = client.communicate(timeout=window + 60)
        if client.returncode != 0:
            raise RuntimeError(f"client process failed ({strategy}, {load.label}):\n{err.decode(errors='replace')}")
        return Run(**json.loads(out))
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        server.stop()


@dataclass
class Result:
    """The median of several runs of one strategy on one load."""

    strategy: str
    load: Load
    runs: list[Run]

    @property
    def finished(self) -> bool:
        return all(r.finished for r in self.runs)

    @property
    def froze(self) -> bool:
        return any(r.froze for r in self.runs)

    def median(self, name: str) -> float:
        values = [getattr(r, name) for r in self.runs if r.finished]
        return statistics.median(values) if values else math.nan

    @property
    def rss_growth(self) -> float:
        return statistics.median(r.rss_growth for r in self.runs)

    def done_text(self, window: float) -> str:
        if self.froze:
            return f"froze (>{window:g} s)"
        return _number(self.median("seconds"), ".2f", " s")

    @property
    def complete(self) -> bool:
        """Every run finished and every healthy client got every message."""
        return self.finished and not any(r.healthy_lost for r in self.runs)

    def healthy_summary(self) -> str:
        if self.froze:
            return "waiting behind the slow client"
        bad = [r for r in self.runs if r.healthy_closed or r.healthy_lost]
        if not bad:
            return "got everything"
        worst = max(bad, key=lambda r: (len(r.healthy_closed), r.healthy_lost))
        parts = []
        if worst.healthy_closed:
            code = collections.Counter(worst.healthy_closed).most_common(1)[0][0]
            parts.append(f"{len(worst.healthy_closed)} {code}")
        if worst.healthy_lost:
            parts.append(f"lost {worst.healthy_lost} msgs")
        return ", ".join(parts) + (f" ({len(bad)}/{len(self.runs)} runs)" if len(self.runs) > 1 else "")

    def slow_summary(self) -> str:
        if not self.load.slow:
            return "-"
        if self.froze:
            return "stuck: the fan-out waits on its socket"
        fates = [_fate(r, self.load) for r in self.runs]
        kinds = collections.Counter(kind for kind, _ in fates)
        kind, times = kinds.most_common(1)[0]
        received = sorted({n for k, n in fates if k == kind})
        span = f"{received[0]}" if len(received) == 1 else f"{received[0]}-{received[-1]}"
        text = kind.format(got=f"{span}/{self.load.messages}")
        return text if times == len(self.runs) else f"{text} ({times}/{len(self.runs)} runs)"


def _fate(run: Run, load: Load) -> tuple[str, int]:
    """What happened to the (first) slow client: a description with a {got} slot, and what it received."""
    fate = run.slow[0]
    received = fate["received"]
    evicted = "evicted: " if run.server.get("evicted") else ""
    if fate["ending"].startswith("closed"):
        return f"{evicted}{fate['ending']} after {{got}}", received
    if received < load.messages:
        return f"{evicted}messages dropped, got {{got}}, {fate['ending']}", received
    buffered = run.server.get("buffered", {}).get("slow0", 0)
    held = f", the server buffered {buffered / 1e6:.0f} MB for it" if buffered else ""
    return f"lost nothing{held}", received


def measure(load: Load, runs: int, window: float) -> dict[str, Result]:
    """Every strategy on `load`, `runs` times, in rounds (each round runs each strategy once).

    Rounds rather than all runs of one strategy in a row, so that a burst of load from another process on the
    machine lands on one run of several strategies, not on every run of one.
    """
    results = {strategy: Result(strategy, load, []) for strategy in STRATEGIES}
    for _ in range(runs):
        for strategy, result in results.items():
            if result.froze:
                continue  # another run would only freeze again for the whole window
            result.runs.append(run_once(strategy, load, window))
            print(f"measured {strategy} on {load.label}", file=sys.stderr, flush=True)
    return results


# --------------------------------------------------------------------------------------------------
# report


def _number(value: float, fmt: str, unit: str = "") -> str:
    return "-" if math.isnan(value) else format(value, fmt) + unit


def format_table(results: Sequence[Result], window: float) -> str:
    headers = (
        "load",
        "strategy",
        "runs",
        "msg/s",
        "done in",
        "p50",
        "p99",
        "CPU/msg",
        "RSS +MB",
        "healthy clients",
        "slow client",
    )
    rows = [
        (
            r.load.label,
            r.strategy,
            str(len(r.runs)),
            _number(r.median("msgs_per_s"), ",.0f"),
            r.done_text(window),
            _number(r.median("p50_ms"), ".1f", " ms"),
            _number(r.median("p99_ms"), ".1f", " ms"),
            _number(r.median("cpu_us_per_msg"), ".0f", " us"),
            f"{r.rss_growth / 1e6:.1f}",
            r.healthy_summary(),
            r.slow_summary(),
        )
        for r in results
    ]
    return format_columns(headers, rows, numeric={2, 3, 4, 5, 6, 7, 8})


def memory_bound(load: Load) -> int:
    """What FanOut lets a server hold: the queued messages, plus each client's transport write buffer.

    The queues share one object per message, so at most `MAX_QUEUE` distinct messages wait in them; uvicorn
    stops a client's writer once that client's transport buffer passes 64 KiB, so a transport holds at most
    64 KiB plus the message that crossed the mark.
    """
    return MAX_QUEUE * load.size + (load.clients + load.slow) * (TRANSPORT_HIGH_WATER + load.size)


def verdicts(tables: dict[int, dict[str, Result]], window: float) -> list[Verdict]:
    """(passed, text) per target, for the loads that ran (by number); passed is None for lines that only inform."""
    lines: list[Verdict] = []
    if 1 in tables:
        lines += throughput_verdicts(tables[1])
    if 2 in tables and 3 in tables:
        for name in FANOUT_STRATEGIES:
            lines += slow_client_verdicts(name, tables[3][name], tables[2][name], window)
        for name in STRATEGIES:
            if name in FANOUT_STRATEGIES:
                continue
            with_slow, without = tables[3][name], tables[2][name]
            if with_slow.finished and without.finished:
                ratio = with_slow.median("seconds") / without.median("seconds")
                lines.append((None, f"{name} with one slow client: finished, {ratio:.2f}x its time without it"))
            else:
                frozen = f"froze: did not finish within {window:g} s"
                outcome = frozen if with_slow.froze else with_slow.done_text(window)
                lines.append((None, f"{name} with one slow client: {outcome}"))
    return lines


def throughput_verdicts(table: dict[str, Result]) -> list[Verdict]:
    """Load 1: each FanOut policy against sequential's server CPU per message and broadcast()'s msg/s.

    A ratio is the median, over the rounds, of the ratio within a round: the runs of a round are seconds apart,
    on the machine as it was then, while on a VM the same server's CPU per message can differ by 40% from one
    round to the next (sequential: 6.2 to 8.7 us in six rounds here).
    """
    lines: list[Verdict] = []
    label = table["sequential"].load.label
    sequential, anchor = table["sequential"], table["websockets.broadcast"]
    for name in FANOUT_STRATEGIES:
        result = table[name]
        cpu_ratio = paired_ratio(result, sequential, "cpu_us_per_msg")
        rate_ratio = paired_ratio(result, anchor, "msgs_per_s")
        got = "" if result.complete else f"; healthy clients: {result.healthy_summary()}"
        lines.append(
            (
                result.complete and cpu_ratio <= CPU_TARGET,
                f"{name} uses {cpu_ratio:.2f}x sequential's server CPU per message on {label} "
                f"(median per-round ratio; medians {result.median('cpu_us_per_msg'):.1f} vs "
                f"{sequential.median('cpu_us_per_msg'):.1f} us; target <= {CPU_TARGET:g}x){got}",
            )
        )
        lines.append(
            (
                result.complete and rate_ratio >= ANCHOR_TARGET,
                f"{name} delivers {rate_ratio:.2f}x the msg/s of websockets.broadcast on {label} "
                f"(median per-round ratio; medians {result.median('msgs_per_s'):,.0f} vs "
                f"{anchor.median('msgs_per_s'):,.0f}; target >= {ANCHOR_TARGET:g}x){got}",
            )
        )
    servers = [table[name].median("cpu_us_per_msg") for name in STRATEGIES]
    clients = statistics.median(r.median("client_cpu_us_per_msg") for r in table.values())
    busy = statistics.median(
        run.client_cpu_us_per_msg * run.msgs_per_s / 1e6 for r in table.values() for run in r.runs if run.finished
    )
    lines.append(
        (
            None,
            f"on {label} the client process used {clients:.1f} us of CPU per message and the servers "
            f"{min(servers):.1f}-{max(servers):.1f} us; client CPU per message x msg/s = {busy:.2f} (median "
            f"run; its CPU is counted over a slightly longer span): at 1 or more the client process was busy "
            f"the whole run, so msg/s is the client's speed, which a server changes only through how many "
            f"frames each of the client's reads finds waiting; CPU/msg is the server's own cost",
        )
    )
    return lines


def paired_ratio(result: Result, reference: Result, name: str) -> float:
    """The median over rounds of `result`'s value / `reference`'s value in the same round; nan if none is finished."""
    ratios = [
        ratio(getattr(run, name), getattr(ref, name))
        for run, ref in zip(result.runs, reference.runs, strict=False)
        if run.finished and ref.finished
    ]
    return statistics.median(ratios) if ratios else math.nan


def slow_client_verdicts(name: str, with_slow: Result, without: Result, window: float) -> list[Verdict]:
    """Loads 2 and 3 for one FanOut policy: the healthy clients' time, and the server's memory."""
    lines: list[Verdict] = []
    if with_slow.complete and without.complete:
        ratio = with_slow.median("seconds") / without.median("seconds")
        lines.append(
            (
                ratio <= SLOW_TARGET,
                f"{name} with one client that never reads: every healthy client done in {ratio:.2f}x the "
                f"time without it ({with_slow.load.label}; target <= {SLOW_TARGET:g}x)",
            )
        )
    else:
        lines.append(
            (
                False,
                f"{name} with one client that never reads: done in {with_slow.done_text(window)}, healthy "
                f"clients {with_slow.healthy_summary()} (without it: {without.done_text(window)}, "
                f"{without.healthy_summary()})",
            )
        )
    bound = memory_bound(with_slow.load)
    peak = max(r.rss_growth for r in with_slow.runs)
    extra = with_slow.rss_growth - without.rss_growth
    connections = with_slow.load.clients + with_slow.load.slow
    queue_limit = MAX_QUEUE * with_slow.load.size
    lines.append(
        (
            peak <= bound + RSS_NOISE,
            f"{name} server memory with the slow client: peak RSS +{peak / 1e6:.1f} MB (worst run) <= "
            f"{bound / 1e6:.1f} MB, FanOut's bound: queue limit {MAX_QUEUE} x {with_slow.load.size // 1000} KB + "
            f"{connections} transport buffers of 64 KiB + 1 message (+{RSS_NOISE / 1e6:.0f} MB allowed for the "
            f"allocator); median +{extra / 1e6:.1f} MB over the run without it "
            f"(its queue limit: {queue_limit / 1e6:.1f} MB)",
        )
    )
    return lines


def _load_numbers(text: str) -> tuple[int, ...]:
    try:
        numbers = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of 1, 2 and 3, got {text!r}") from None
    if not numbers or not set(numbers) <= {1, 2, 3}:
        raise argparse.ArgumentTypeError(f"loads are numbered 1, 2 and 3, got {text!r}")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--client":
        return client_main(sys.argv[2])
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Fan-out strategies (sequential, gather, FanOut queues, websockets.broadcast) under load.",
    )
    parser.add_argument("--runs", type=positive_int, default=3, help="runs per strategy and load (default 3)")
    parser.add_argument("--clients", type=positive_int, default=200, help="healthy clients (default 200)")
    parser.add_argument("--messages", type=positive_int, default=200, help="messages, small load (default 200)")
    parser.add_argument("--size", type=positive_int, default=100, help="bytes per message, small load (default 100)")
    parser.add_argument(
        "--big-clients", type=positive_int, default=100, help="healthy clients, 10 MB loads (default 100)"
    )
    parser.add_argument("--big-messages", type=positive_int, default=100, help="messages, 10 MB loads (default 100)")
    parser.add_argument(
        "--big-size", type=positive_int, default=100_000, help="bytes per message, 10 MB loads (default 100000)"
    )
    parser.add_argument("--slow", type=positive_int, default=1, help="clients that never read (default 1)")
    parser.add_argument("--rate", type=float, default=40.0, help="messages per second on the 10 MB loads (default 40)")
    parser.add_argument(
        "--window", type=float, default=10.0, help="seconds before a fan-out counts as frozen (default 10)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run: 20 clients, 1 run, 200 msg/s, 3 s window"
    )
    parser.add_argument(
        "--loads",
        type=_load_numbers,
        default=(1, 2, 3),
        help="which loads to run, e.g. 1 or 2,3 (default 1,2,3); a target is judged only when its loads ran",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.clients, args.big_clients, args.messages, args.rate, args.window = 1, 20, 20, 50, 200.0, 3.0

    small = Load(args.clients, args.messages, max(args.size, 32))
    big = Load(args.big_clients, args.big_messages, max(args.big_size, 32), rate=args.rate)
    big_slow = Load(args.big_clients, args.big_messages, max(args.big_size, 32), args.slow, args.rate)
    print(
        f"Python {platform.python_version()}, uvicorn {version('uvicorn')}, starlette {version('starlette')}, "
        f"websockets {version('websockets')}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"server and clients in separate processes on {HOST}; median of {args.runs} runs; "
        f"FanOut max_queue={MAX_QUEUE}; frozen after {args.window:g} s"
    )
    started = time.perf_counter()
    loads = {1: small, 2: big, 3: big_slow}
    tables: dict[int, dict[str, Result]] = {}
    for number in args.loads:
        tables[number] = measure(loads[number], args.runs, args.window)
    print()
    print(format_table([r for table in tables.values() for r in table.values()], args.window))
    print()
    passed = print_verdicts(verdicts(tables, args.window))
    print(f"\n(total {time.perf_counter() - started:.1f} s, load average now {os.getloadavg()[0]:.2f})")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
