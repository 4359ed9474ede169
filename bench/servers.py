"""How fast `helpers.servers` starts, stops and echoes: a report, not a test.

Run with `make bench` (or `.venv/bin/python -m bench.servers [--cycles N] [--round-trips N] [--check]`).

What is measured, and why:

1. Start-to-ready and stop of `serve(echo)`. Notebooks call `serve()` in almost every experiment and
   again on every re-run, so its cost is paid constantly. Start-to-ready is the wall time from calling
   `serve()` until it returns; it only returns once uvicorn has started and accepts connections on the
   pre-bound socket. Stop is the wall time of `handle.stop()`, which waits for the server thread to
   exit. Plain uvicorn polls `should_exit` every 0.1 s; helpers.servers wakes it at once, so what is
   left is uvicorn's fixed 0.1 s pause in shutdown (letting open connections close): about 100 ms with
   almost no spread. Median and p90 over `--cycles` cycles, after warm-up cycles that pay for imports and
   first-use caches.

2. Echo round-trip latency. One `websockets` asyncio client, on this process's main-thread event loop
   (`asyncio.run`), sends a short text message and awaits the echo, `--round-trips` times after a
   warm-up, against the same `helpers.demo_apps:echo` app served two ways:
   (a) `serve(echo)`: uvicorn on its own loop in a daemon thread of *this* process, so client and
       server share one interpreter and take turns on the GIL;
   (b) `serve_process("helpers.demo_apps:echo")`: uvicorn in a child process, with its own GIL, so
       client and server run in parallel on separate cores.
   The ratio of the medians (thread / process) is the price of running the server inside the kernel,
   which is what every lesson does.

3. Every server of `helpers.servers.SERVERS` (uvicorn with each WebSocket protocol, hypercorn, daphne), served
   in a thread (`serve(echo, server=...)`; not daphne, whose reactor is one per process) and in a child process
   (`serve_process(..., server=...)`): start-to-ready, stop and echo round trip, medians over `--server-cycles`
   cycles and `--server-round-trips` round trips, each with its ratio to uvicorn's default served the same way.
   A process start is mostly Python importing the server in the child. Informational: no targets.

Targets (a verdict line each): start-to-ready median <= 20 ms, stop median <= 250 ms, in-thread echo
median within 1.5x of the separate-process server. The exit code is 0 unless `--check` is given and a
target is missed. Everything binds 127.0.0.1 and every server is stopped before the script exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from bench.report import Verdict, format_columns, percentile, positive_int, print_verdicts, ratio
from helpers.clients import connect
from helpers.demo_apps import echo
from helpers.servers import SERVERS, serve, serve_process

HOST = "127.0.0.1"
ECHO_IMPORT = "helpers.demo_apps:echo"
LIFECYCLE_WARMUP = 2
ROUND_TRIP_WARMUP = 100
MESSAGE = "ping"

START_TARGET_MS = 20.0
STOP_TARGET_MS = 250.0
RATIO_TARGET = 1.5


@dataclass
class Series:
    """One row of the table: a label and its samples in milliseconds."""

    label: str
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return percentile(self.samples_ms, 50)

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q)


# --------------------------------------------------------------------------------------------------
# measurements


def measure_lifecycle(cycles: int, warmup: int = LIFECYCLE_WARMUP) -> tuple[Series, Series]:
    """Time `serve(echo)` until it returns, then `stop()` (via the context manager), `cycles` times."""
    start_ms: list[float] = []
    stop_ms: list[float] = []
    for cycle in range(warmup + cycles):
        began = time.perf_counter()
        with serve(echo, name="bench-lifecycle", host=HOST):
            ready = time.perf_counter()
        stopped = time.perf_counter()
        if cycle >= warmup:
            start_ms.append((ready - began) * 1000)
            stop_ms.append((stopped - ready) * 1000)
    return Series("serve(echo) start-to-ready", start_ms), Series("handle.stop()", stop_ms)


async def _round_trips(url: str, count: int, warmup: int) -> list[float]:
    samples_ms: list[float] = []
    async with connect(url) as ws:
        for index in range(warmup + count):
            began = time.perf_counter_ns()
            await ws.send(MESSAGE)
            reply = await ws.recv()
            elapsed_ns = time.perf_counter_ns() - began
            if reply != MESSAGE:
                raise RuntimeError(f"echo server answered {reply!r} to {MESSAGE!r}")
            if index >= warmup:
                samples_ms.append(elapsed_ns / 1e6)
    return samples_ms


def measure_thread_echo(count: int, warmup: int = ROUND_TRIP_WARMUP) -> Series:
    """Round trips against `serve(echo)`: server thread and client share this process."""
    with serve(echo, name="bench-echo-thread", host=HOST) as server:
        samples = asyncio.run(_round_trips(server.ws_url("/"), count, warmup))
    return Series("echo RTT, in-thread serve()", samples)


def measure_process_echo(count: int, warmup: int = ROUND_TRIP_WARMUP) -> Series:
    """Round trips against `serve_process(...)`: the server has its own process and GIL."""
    with serve_process(ECHO_IMPORT, name="bench-echo-process", host=HOST) as server:
        samples = asyncio.run(_round_trips(server.ws_url("/"), count, warmup))
    return Series("echo RTT, serve_process()", samples)


@dataclass(frozen=True)
class ServerTimes:
    """One server served one way: medians in milliseconds."""

    server: str
    mode: str  # "thread" or "process"
    start_ms: float
    stop_ms: float
    echo_ms: float


def measure_server(server: str, mode: str, cycles: int, round_trips: int) -> ServerTimes:
    """Start-to-ready and stop over `cycles` cycles, and the echo round trip on the last one, for one server."""
    start_ms: list[float] = []
    stop_ms: list[float] = []
    echo_ms: list[float] = []
    for cycle in range(cycles):
        began = time.perf_counter()
        if mode == "thread":
            handle: Any = serve(echo, server=server, name=f"bench-{server}", host=HOST)
        else:
            handle = serve_process(ECHO_IMPORT, server=server, name=f"bench-{server}-process", host=HOST)
        ready = time.perf_counter()
        try:
            if cycle == cycles - 1:
                echo_ms = asyncio.run(_round_trips(handle.ws_url("/"), round_trips, ROUND_TRIP_WARMUP))
        finally:
            stopping = time.perf_counter()
            handle.stop()
        stop_ms.append((time.perf_counter() - stopping) * 1000)
        start_ms.append((ready - began) * 1000)
    return ServerTimes(server, mode, percentile(start_ms, 50), percentile(stop_ms, 50), percentile(echo_ms, 50))


def measure_servers(cycles: int, round_trips: int) -> list[ServerTimes]:
    """Every server in a thread (where it can be) and in a child process."""
    rows = [measure_server(name, "thread", cycles, round_trips) for name in SERVERS if name != "daphne"]
    rows += [measure_server(name, "process", cycles, round_trips) for name in SERVERS]
    return rows


# --------------------------------------------------------------------------------------------------
# report


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def format_table(lifecycle: Sequence[Series], echoes: Sequence[Series], ratio: float) -> str:
    headers = ("measurement", "n", "median", "p90", "p99")
    rows: list[tuple[str, ...]] = []
    for series in lifecycle:  # p99 of a few dozen samples is just the maximum: not shown
        rows.append((series.label, str(len(series.samples_ms)), _ms(series.median), _ms(series.p(90)), "-"))
    for series in echoes:
        rows.append(
            (series.label, str(len(series.samples_ms)), _ms(series.median), _ms(series.p(90)), _ms(series.p(99)))
        )
    rows.append(("echo RTT ratio thread/process", "-", f"{ratio:.2f}x", "-", "-"))
    return format_columns(headers, rows, numeric=range(1, len(headers)))


def format_servers(rows: Sequence[ServerTimes]) -> str:
    """One line per server and mode, each time with its ratio to uvicorn's (same mode)."""
    base = {row.mode: row for row in rows if row.server == SERVERS[0]}

    def cell(value: float, reference: float) -> str:
        return f"{_ms(value)} ({ratio(value, reference):.2f}x)"

    headers = ("server", "served", "start-to-ready", "stop", "echo RTT")
    lines = [
        (
            row.server,
            "in a thread" if row.mode == "thread" else "child process",
            cell(row.start_ms, base[row.mode].start_ms),
            cell(row.stop_ms, base[row.mode].stop_ms),
            cell(row.echo_ms, base[row.mode].echo_ms),
        )
        for row in rows
    ]
    return format_columns(headers, lines, numeric={2, 3, 4})


def verdicts(start: Series, stop: Series, ratio: float) -> list[Verdict]:
    return [
        (
            start.median <= START_TARGET_MS,
            f"start-to-ready median {_ms(start.median)} (target <= {START_TARGET_MS:g} ms)",
        ),
        (
            stop.median <= STOP_TARGET_MS,
            f"stop median {_ms(stop.median)} (target <= {STOP_TARGET_MS:g} ms)",
        ),
        (
            ratio <= RATIO_TARGET,
            f"in-thread echo median is {ratio:.2f}x the separate process's (target <= {RATIO_TARGET:g}x)",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers",
        description="Start/stop time of serve() and echo latency, in-thread vs separate process.",
    )
    parser.add_argument("--cycles", type=positive_int, default=20, help="serve()/stop() cycles (default 20)")
    parser.add_argument(
        "--round-trips", type=positive_int, default=2000, help="echo round trips per server (default 2000)"
    )
    parser.add_argument(
        "--server-cycles", type=positive_int, default=5, help="start/stop cycles per server and mode (default 5)"
    )
    parser.add_argument(
        "--server-round-trips", type=positive_int, default=500, help="echo round trips per server (default 500)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    print(
        f"Python {platform.python_version()}, uvicorn {version('uvicorn')}, websockets {version('websockets')}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    )
    print(
        f"{args.cycles} serve/stop cycles after {LIFECYCLE_WARMUP} warm-up; "
        f"{args.round_trips} echo round trips of {MESSAGE!r} after {ROUND_TRIP_WARMUP} warm-up, per server"
    )
    started = time.perf_counter()
    start, stop = measure_lifecycle(args.cycles)
    thread_echo = measure_thread_echo(args.round_trips)
    process_echo = measure_process_echo(args.round_trips)
    ratio = thread_echo.median / process_echo.median

    print()
    print(format_table([start, stop], [thread_echo, process_echo], ratio))
    print()
    passed = print_verdicts(verdicts(start, stop, ratio))
    print(
        f"\nevery server ({args.server_cycles} cycles, {args.server_round_trips} echo round trips each; "
        f"ratios to {SERVERS[0]} served the same way):"
    )
    print(format_servers(measure_servers(args.server_cycles, args.server_round_trips)))
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
