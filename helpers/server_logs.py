"""Route uvicorn's log records to the server that produced them.

A notebook prints thread output under whichever cell happens to be running, so a server that logs to
stderr makes stored outputs non-deterministic. Instead, every server here owns a `ServerLog`: records
from its thread (or, for a server on the caller's loop, from that loop's tasks) are kept in a bounded
list, and a lesson prints `server.errors` when it wants to show what went wrong on the server side.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable

__all__ = [
    "MAX_RECORDS",
    "UVICORN_LOGGER",
    "Matcher",
    "ServerLog",
    "install",
    "loop_matcher",
]

MAX_RECORDS = 200
UVICORN_LOGGER = "uvicorn"


def _one_line(record: logging.LogRecord) -> str:
    """Summarise a record as one line: the exception (type: message) when there is one."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text = " ".join(str(exc).split())  # a message with line breaks still makes one line
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    message = record.getMessage().strip()
    lines = [line for line in message.splitlines() if line.strip()]
    # Lifespan failures arrive as a whole traceback text: its last line names the exception.
    return lines[-1].strip() if lines else ""


class ServerLog:
    """A bounded record of one server's WARNING+ log lines, optionally echoed to stderr."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.records: deque[logging.LogRecord] = deque(maxlen=MAX_RECORDS)

    def add(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.echo:
            print(f"[server {record.levelname.lower()}] {record.getMessage()}", file=sys.stderr)

    @property
    def errors(self) -> list[str]:
        """One line per ERROR record, exceptions shown as 'Type: message'."""
        return [_one_line(r) for r in self.records if r.levelno >= logging.ERROR]

    @property
    def lines(self) -> list[str]:
        return [_one_line(r) for r in self.records]

    def clear(self) -> None:
        self.records.clear()

    def loop_exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """Keep an asyncio report about this server's loop ("Task exception was never retrieved") as a record.

        Installed with `loop.set_exception_handler`. Such a report often comes from a finalizer, at a
        garbage collection long after the server stopped and inside whatever code is running then. The
        default handler formats a traceback there, and on Python 3.11 a traceback formatted during a GC
        inside `ast.parse` breaks that parse (SystemError: AST constructor recursion depth mismatch). Here
        nothing is formatted: the record keeps the exception, and `errors` shows it as 'Type: message'.
        """
        exception = context.get("exception")
        exc_info = (
            (type(exception), exception, exception.__traceback__) if isinstance(exception, BaseException) else None
        )
        record = logging.LogRecord(
            "asyncio", logging.ERROR, __file__, 0, str(context.get("message", "")), None, exc_info
        )
        self.add(record)


Matcher = Callable[[logging.LogRecord], bool]


class _Router(logging.Handler):
    """Single handler on the 'uvicorn' logger that hands each record to the owning ServerLog."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._lock_routes = threading.Lock()
        self._routes: dict[int, tuple[Matcher, ServerLog]] = {}
        self._next = 0

    def register(self, matcher: Matcher, log: ServerLog) -> int:
        with self._lock_routes:
            self._next += 1
            self._routes[self._next] = (matcher, log)
            return self._next

    def unregister(self, key: int) -> None:
        with self._lock_routes:
            self._routes.pop(key, None)

    def claim(self, record: logging.LogRecord) -> bool:
        """Hand the record to the server it came from; False if no server claims it."""
        with self._lock_routes:
            routes = list(self._routes.values())
        for matcher, log in routes:
            if matcher(record):
                log.add(record)
                return True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.claim(record):
            # A record no server claims (for example a learner's own uvicorn run) still reaches stderr.
            print(f"[uvicorn {record.levelname.lower()}] {record.getMessage()}", file=sys.stderr)

    def filter(self, record: logging.LogRecord) -> bool:
        """As a filter on the 'asyncio' logger: keep server-thread records ("Task exception was never
        retrieved", ...) on their server instead of printing them under a random cell."""
        return record.levelno < logging.WARNING or not self.claim(record)


_router = _Router()


def install() -> _Router:
    """Attach the router once; uvicorn's own console handlers are not used (we pass log_config=None)."""
    logger = logging.getLogger(UVICORN_LOGGER)
    if _router not in logger.handlers:
        logger.addHandler(_router)
        logger.propagate = False
    asyncio_logger = logging.getLogger("asyncio")
    if _router not in asyncio_logger.filters:
        asyncio_logger.addFilter(_router)
    return _router


def loop_matcher(loop: asyncio.AbstractEventLoop) -> Matcher:
    """Records emitted while the given loop is running on the current thread."""

    def match(record: logging.LogRecord) -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    return match
