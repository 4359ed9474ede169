"""The registry of evidence experiments, the Evidence record and the runner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.usage import check_positive

RUN_TIMEOUT = 20.0


class EvidenceError(RuntimeError):
    """An experiment could not run or took too long; the message says why and what to do."""


@dataclass(frozen=True)
class Evidence:
    """What one experiment showed: fact lines for people, and the claims it demonstrated and refuted for tests.

    A claim the run neither demonstrated nor refuted was not tested; a quiz must not rest on one.
    """

    name: str
    title: str
    lines: tuple[str, ...]
    shows: frozenset[str]
    value: dict[str, Any] = field(default_factory=dict, compare=False)
    refutes: frozenset[str] = frozenset()

    @property
    def fact(self) -> str:
        """The printable report: the title, then one fact per line."""
        return "\n".join([f"Show me: {self.title}", *(f"  {line}" for line in self.lines)])

    def __str__(self) -> str:
        return self.fact

    def __post_init__(self) -> None:
        both = self.shows & self.refutes
        if both:
            raise EvidenceError(f"experiment {self.name!r} both demonstrated and refuted {sorted(both)}; fix its logic")


def from_verdicts(
    name: str, title: str, lines: Iterable[str], verdicts: Mapping[str, bool], value: dict[str, Any] | None = None
) -> Evidence:
    """Evidence whose every claim is settled by what the run observed: the claims that held are demonstrated,
    every other one refuted. `verdicts` maps each claim to whether the run saw it hold."""
    shows = frozenset(claim for claim, held in verdicts.items() if held)
    refutes = frozenset(verdicts) - shows
    return Evidence(name, title, tuple(lines), shows, value or {}, refutes=refutes)


Experiment = Callable[[], Awaitable[Evidence]]
EXPERIMENTS: dict[str, tuple[str, Experiment]] = {}


def experiment(title: str) -> Callable[[Callable[[str, str], Awaitable[Evidence]]], Experiment]:
    """Register an async experiment under its function name; it receives (name, title)."""

    def register(fn: Callable[[str, str], Awaitable[Evidence]]) -> Experiment:
        name = fn.__name__.lstrip("_")

        async def bound() -> Evidence:
            return await fn(name, title)

        EXPERIMENTS[name] = (title, bound)
        return bound

    return register


def names() -> list[str]:
    """Every registered experiment name, sorted."""
    return sorted(EXPERIMENTS)


def run(name: str, timeout: float = RUN_TIMEOUT) -> Evidence:
    """Run the experiment `name` on a private loop in a worker thread and return its Evidence.

    Blocks the calling thread for at most `timeout` seconds (the experiments take one or two).
    """
    check_positive(timeout, "timeout")
    if name not in EXPERIMENTS:
        raise EvidenceError(f"no experiment named {name!r}; known experiments: {', '.join(names())}")
    _, fn = EXPERIMENTS[name]
    result: list[Evidence] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(fn()))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"evidence-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise EvidenceError(
            f"experiment {name!r} did not finish within {timeout:g} s; run it again, or restart the kernel"
        )
    if failure:
        exc = failure[0]
        if isinstance(exc, EvidenceError):
            raise exc
        raise EvidenceError(f"experiment {name!r} failed: {type(exc).__name__}: {exc}") from exc
    return result[0]
