"""The mechanism every set of coding challenges shares: a registry, the checklist, and a bounded live check.

A part of the series (`helpers.challenges.basics` for Part 1, `helpers.challenges.production` for Part 2) makes
one `Registry` and registers its checkers with `@registry.challenge(...)`. Each challenge has a starter
(`challenges/starters/<key>.py`, the broken code the notebook shows), a reference solution
(`challenges/solutions/<key>.py`) and known-wrong solutions (`challenges/wrong/<key>__<mistake>.py`).
`registry.check(key, *targets)` runs the checker on a private event loop in a worker thread, so it works from a
notebook cell, bounded by CHECK_TIMEOUT (15 s): the checker serves the learner's code on loopback, runs real
clients against it, stops what it started, and fills a `Report`: a checklist with pass/fail per requirement, a
hint for every failure and, where the check recorded it, what it saw. A check that gives up stops what it had
started (`serve_for`, `started_for`) in the background.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from helpers.clients import collect, connect
from helpers.loops import ThreadTimeout, run_on_private_loop
from helpers.servers import ThreadServer, serve

__all__ = [
    "CHALLENGE_DIR",
    "CHECK_TIMEOUT",
    "KINDS",
    "ROOT",
    "Challenge",
    "ChallengeError",
    "Checker",
    "Item",
    "Registry",
    "Report",
    "Stoppable",
    "connect_or_none",
    "json_or_none",
    "listen",
    "serve_for",
    "started_for",
]

ROOT = Path(__file__).resolve().parent.parent.parent
CHALLENGE_DIR = ROOT / "challenges"
CHECK_TIMEOUT = 15.0
KINDS = ("starters", "solutions")


class ChallengeError(RuntimeError):
    """A check was called in a way it cannot run; the message says what to pass instead."""


# --------------------------------------------------------------------------------------------------
# reports


@dataclass(frozen=True)
class Item:
    """One requirement's result. `passed` is None when it could not be checked here."""

    requirement: str
    passed: bool | None
    hint: str
    saw: str = ""

    def lines(self) -> list[str]:
        mark = {True: "✔", False: "✘", None: "○"}[self.passed]
        lines = [f"  {mark} {self.requirement}"]
        if self.passed is None:
            lines.append(f"      not checked: {self.saw}")
        elif not self.passed:
            if self.saw:
                lines.append(f"      saw: {self.saw}")
            lines.append(f"      hint: {self.hint}")
        return lines


@dataclass
class Report:
    """The checklist for one run of a check; its text form is what the notebook shows."""

    number: int
    title: str
    items: list[Item] = field(default_factory=list)

    def add(self, requirement: str, passed: bool | None, hint: str, saw: str = "") -> bool:
        self.items.append(Item(requirement, passed, hint, saw))
        return bool(passed)

    @property
    def passed(self) -> bool:
        """True when every checkable requirement passed."""
        return all(item.passed is not False for item in self.items)

    def failed(self) -> list[str]:
        return [item.requirement for item in self.items if item.passed is False]

    def __str__(self) -> str:
        met = sum(1 for item in self.items if item.passed)
        head = f"Challenge {self.number} · {self.title}: {met} of {len(self.items)} requirements met"
        lines = [head, *(line for item in self.items for line in item.lines())]
        lines.append("All done: well solved!" if self.passed else "Not yet: fix the first ✘ and run the check again.")
        return "\n".join(lines)

    __repr__ = __str__


# --------------------------------------------------------------------------------------------------
# what a check starts, so that a check that gives up can stop it


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)
_started: dict[str, list[Stoppable]] = {}  # challenge key -> what its running check started
_started_lock = threading.Lock()


def started_for(key: str, thing: S) -> S:
    """Note that the check of `key` started `thing` (a server, an nginx, a child process); returns it.

    A check stops what it starts itself (use `with`); this is for the check that gives up (see Registry.check)."""
    with _started_lock:
        _started.setdefault(key, []).append(thing)
    return thing


def serve_for(app: Any, key: str, **server_options: Any) -> ThreadServer:
    """Serve `app` with uvicorn as the server of challenge `key` (named `challenge-<key>`; re-serving replaces it)."""
    server = serve(app, name=f"challenge-{key}", **server_options)
    started_for(key, server)
    return server


def _forget_started(key: str) -> None:
    """A check that ended by itself has stopped what it started (its `with` blocks did)."""
    with _started_lock:
        _started.pop(key, None)


def _stop_started(key: str) -> None:
    with _started_lock:
        things = _started.pop(key, [])
    for thing in reversed(things):
        thing.stop()  # each stop() is idempotent: what the check stopped already is left as it is


# --------------------------------------------------------------------------------------------------
# registry

Checker = Callable[..., Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Challenge:
    key: str
    number: int
    title: str
    targets: tuple[str, ...]  # names the starter and the solution define, passed to check() in this order
    starter_fails: tuple[int, ...]  # requirement numbers (1-based) the starter is meant to fail
    checker: Checker

    @property
    def file(self) -> str:
        return self.key.replace("-", "_") + ".py"


class Registry:
    """One part's challenges, by key, and the functions a notebook and the tests call on them.

    `prepare` runs before a file written for a challenge is imported (Part 1's consumers need Django's settings).
    """

    def __init__(self, prepare: Callable[[], object] | None = None) -> None:
        self.challenges: dict[str, Challenge] = {}
        self._prepare = prepare

    def challenge(
        self, number: int, title: str, targets: Sequence[str], starter_fails: Sequence[int]
    ) -> Callable[[Checker], Checker]:
        """Register a checker under its function name (underscores become dashes)."""

        def register(fn: Checker) -> Checker:
            key = fn.__name__.lstrip("_").replace("_", "-")
            self.challenges[key] = Challenge(key, number, title, tuple(targets), tuple(starter_fails), fn)
            return fn

        return register

    def get(self, key: str) -> Challenge:
        if key not in self.challenges:
            raise ChallengeError(f"no challenge {key!r}; the challenges are: {', '.join(self.challenges)}")
        return self.challenges[key]

    def check(self, key: str, *targets: Any, timeout: float = CHECK_TIMEOUT) -> Report:
        """Serve the learner's code, run live clients against it, and return the checklist."""
        spec = self.get(key)
        if len(targets) != len(spec.targets):
            names = ", ".join(spec.targets)
            raise ChallengeError(f"check({key!r}, ...) needs {len(spec.targets)} argument(s) after the key: {names}")
        report = Report(spec.number, spec.title)
        try:
            run_on_private_loop(spec.checker(report, *targets), timeout=timeout, name=f"challenge-{key}")
        except ThreadTimeout:
            # Its loop may be blocked by the learner's code: stop what it started without waiting here.
            threading.Thread(target=_stop_started, args=(key,), name=f"stop-challenge-{key}", daemon=True).start()
            raise ChallengeError(
                f"the check for {key!r} did not finish within {timeout:g} s (does your code block or wait forever?); "
                f"its server is being stopped. Fix the code and run the check again, or restart the kernel"
            ) from None
        except ChallengeError:
            _forget_started(key)
            raise
        except Exception as exc:
            _forget_started(key)
            raise ChallengeError(f"the check for {key!r} could not run: {type(exc).__name__}: {exc}") from None
        _forget_started(key)
        return report

    def path(self, key: str, kind: str = "starters") -> Path:
        """challenges/starters/<key>.py or challenges/solutions/<key>.py."""
        if kind not in KINDS:
            raise ChallengeError("kind is 'starters' or 'solutions'")
        return CHALLENGE_DIR / kind / self.get(key).file

    def source(self, key: str, kind: str = "starters") -> str:
        return self.path(key, kind).read_text()

    def load(self, key: str, kind: str = "solutions") -> tuple[Any, ...]:
        """Import a starter or solution file and return its targets, ready for check(key, *targets)."""
        return self.load_file(key, self.path(key, kind))

    def load_file(self, key: str, file: Path) -> tuple[Any, ...]:
        """Import any file written for challenge `key` (a starter, a solution, a known-wrong solution): its targets."""
        spec_ = self.get(key)
        if self._prepare is not None:
            self._prepare()
        module_name = f"challenge_{file.parent.name}_{file.stem}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        missing = [name for name in spec_.targets if not hasattr(module, name)]
        if missing:
            raise ChallengeError(f"{file.name} must define {', '.join(missing)}")
        return tuple(getattr(module, name) for name in spec_.targets)

    def wrong_solutions(self, key: str) -> list[Path]:
        """The known-wrong solutions of `key` (challenges/wrong/<key>__<mistake>.py) that its check must fail."""
        return sorted((CHALLENGE_DIR / "wrong").glob(self.get(key).file.removesuffix(".py") + "__*.py"))


# --------------------------------------------------------------------------------------------------
# small pieces the checkers share


def json_or_none(message: str | bytes) -> Any:
    """The JSON value of a text message; None for bytes or text that is not JSON."""
    if not isinstance(message, str):
        return None
    try:
        return json.loads(message)
    except ValueError:
        return None


async def listen(ws: ClientConnection, quiet: float = 0.3) -> tuple[list[str | bytes], bool]:
    """Messages until `quiet` s of silence, and whether the connection is still open."""
    heard: list[str | bytes] = []
    try:
        await collect(ws, heard, quiet=quiet)
    except ConnectionClosed:
        return heard, False
    return heard, True


async def connect_or_none(url: str, **options: Any) -> ClientConnection | None:
    """A client connection with a 1 s handshake timeout, or None when the handshake fails."""
    try:
        return await connect(url, open_timeout=1, **options)
    except (InvalidHandshake, TimeoutError, OSError):
        return None
