"""The registry of evidence experiments, the Evidence record, the Trial each experiment runs in, and the runner.

Every experiment serves a server under its own name and ends by settling its claims into an Evidence; `Trial`
does both, so an experiment's code states only what it sets up and observes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.loops import ThreadTimeout, run_on_private_loop
from helpers.servers import ProcessServer, ThreadServer, serve, serve_process
from helpers.usage import check_positive

__all__ = [
    "EXPERIMENTS",
    "RUN_TIMEOUT",
    "Evidence",
    "EvidenceError",
    "Experiment",
    "Trial",
    "experiment",
    "from_verdicts",
    "names",
    "run",
]

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


@dataclass(frozen=True)
class Trial:
    """One run of an experiment: its name and title, the lines its facts start with, and what every run repeats."""

    name: str
    title: str
    head: tuple[str, ...] = ()

    @property
    def server_name(self) -> str:
        """The name its servers run under: "evidence-<name>", so they are recognisable in `running_servers()`."""
        return f"evidence-{self.name}"

    def serve(self, app: Any, **options: Any) -> ThreadServer:
        """Serve `app` on loopback under this trial's name; `with trial.serve(app) as server:` stops it after."""
        return serve(app, name=self.server_name, **options)

    def serve_process(self, app: str, place: str) -> ProcessServer:
        """Serve the import string `app` in a child process named "evidence-<name>-<place>"."""
        return serve_process(app, name=f"{self.server_name}-{place}")

    def settle(self, lines: Iterable[str], verdicts: Mapping[str, bool], **value: Any) -> Evidence:
        """The run's Evidence (see `from_verdicts`): `head`, then `lines`; `value` keeps what was observed."""
        return from_verdicts(self.name, self.title, (*self.head, *lines), verdicts, value)


Experiment = Callable[[], Coroutine[Any, Any, Evidence]]
EXPERIMENTS: dict[str, tuple[str, Experiment]] = {}


def experiment(
    title: str, *, setup: Callable[[], object] | None = None, head: Sequence[str] = ()
) -> Callable[[Callable[[Trial], Awaitable[Evidence]]], Experiment]:
    """Register an async experiment under its function name; it receives its `Trial`.

    `setup` runs first, on the experiment's thread (Django's, for Channels); `head` starts every fact.
    """

    def register(fn: Callable[[Trial], Awaitable[Evidence]]) -> Experiment:
        name = fn.__name__.lstrip("_")
        trial = Trial(name, title, tuple(head))

        async def bound() -> Evidence:
            if setup is not None:
                setup()
            return await fn(trial)

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
    try:
        return run_on_private_loop(fn(), timeout=timeout, name=f"evidence-{name}")
    except ThreadTimeout:
        raise EvidenceError(
            f"experiment {name!r} did not finish within {timeout:g} s; run it again, or restart the kernel"
        ) from None
    except EvidenceError:
        raise
    except Exception as exc:
        raise EvidenceError(f"experiment {name!r} failed: {type(exc).__name__}: {exc}") from exc
