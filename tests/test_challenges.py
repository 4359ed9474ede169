"""Tests for helpers.challenges: every reference solution passes; every starter and known-wrong solution fails."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import nbformat
import pytest

from helpers import challenges
from helpers.challenges import ChallengeError, Report
from helpers.servers import running_servers
from tests.support import ROOT, Snapshot

pytestmark = pytest.mark.timeout(60)

KEYS = list(challenges.CHALLENGES)
NOTEBOOK = ROOT / "notebooks" / "12_coding_challenges.ipynb"


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """Check two solutions first: Django's set-up, asgiref's shared worker thread and its database connection
    stay for the whole process, and must not count as leaks of the first test that happens to create them."""
    for key in ("echo-json", "reject-anonymous"):
        challenges.check(key, *challenges.load(key, "solutions"))


def test_the_challenges_cover_the_required_topics() -> None:
    """At least six challenges, covering JSON echo, refusals, awaits, groups, manager clean-up and slow clients."""
    required = {"echo-json", "reject-anonymous", "missing-awaits", "group-chat", "fastapi-manager", "slow-client"}
    assert required <= set(KEYS)
    assert [c.number for c in challenges.CHALLENGES.values()] == list(range(1, len(KEYS) + 1))


@pytest.mark.parametrize("key", KEYS)
def test_the_reference_solution_passes_every_requirement(key: str, no_leaks: Snapshot) -> None:
    """Served and checked by live clients, the reference solution meets every requirement."""
    report = challenges.check(key, *challenges.load(key, "solutions"))
    assert report.passed and all(item.passed for item in report.items), str(report)
    assert str(report).endswith("All done: well solved!")


@pytest.mark.parametrize("key", KEYS)
def test_the_starter_fails_the_requirements_it_is_meant_to_fail(key: str, no_leaks: Snapshot) -> None:
    """The starter code fails the check (so the checker can fail), on the requirements the challenge is about."""
    report = challenges.check(key, *challenges.load(key, "starters"))
    assert not report.passed, str(report)
    for number in challenges.CHALLENGES[key].starter_fails:
        assert report.items[number - 1].passed is False, f"requirement {number} should fail:\n{report}"
    for item in report.items:
        if item.passed is False:
            assert item.hint, f"no hint for {item.requirement!r}"


WRONG = [(key, file) for key in KEYS for file in challenges.wrong_solutions(key)]
MIN_WRONG = 2


def declared_failures(file: Path) -> tuple[int, ...]:
    """The requirement numbers a known-wrong solution says it must fail (its FAILS constant)."""
    match = re.search(r"^FAILS = \(([\d, ]+)\)$", file.read_text(), re.M)
    assert match, f"{file.name} must declare FAILS = (n, ...): the requirements its check must fail"
    return tuple(int(n) for n in match.group(1).replace(" ", "").strip(",").split(","))


@pytest.mark.parametrize("key", KEYS)
def test_every_challenge_has_known_wrong_solutions(key: str) -> None:
    """Each challenge has at least two known-wrong solutions in challenges/wrong/, each declaring what it fails."""
    files = challenges.wrong_solutions(key)
    assert len(files) >= MIN_WRONG, f"{key}: only {[f.name for f in files]}"
    for file in files:
        assert declared_failures(file)


@pytest.mark.parametrize(("key", "file"), WRONG, ids=[f.stem for _, f in WRONG])
def test_a_known_wrong_solution_fails_exactly_the_requirements_it_gets_wrong(
    key: str, file: Path, no_leaks: Snapshot
) -> None:
    """Checked by live clients, a known-wrong solution fails the requirements it declares and passes the others."""
    report = challenges.check(key, *challenges.load_file(key, file))
    assert not report.passed, f"{file.name} passed the check:\n{report}"
    failed = tuple(number for number, item in enumerate(report.items, 1) if item.passed is False)
    assert failed == declared_failures(file), f"{file.name}:\n{report}"
    assert all(item.hint for item in report.items if item.passed is False)


BOUNDED = "a client that never reads loses messages or is disconnected"


def unbounded_slow_client() -> object:
    """The reference solution of challenge 6 with one change: each client's queue has no bound."""
    source = challenges.source("slow-client", "solutions")
    unbounded = source.replace("asyncio.Queue(maxsize=MAX_QUEUE)", "asyncio.Queue()")
    assert unbounded != source, "the reference solution no longer creates asyncio.Queue(maxsize=MAX_QUEUE)"
    namespace: dict[str, object] = {}
    exec(compile(unbounded, "unbounded_slow_client.py", "exec"), namespace)
    return namespace["fanout_app"]


def test_an_unbounded_queue_fails_only_the_bounded_memory_requirement(no_leaks: Snapshot) -> None:
    """With unbounded per-client queues every other requirement of challenge 6 passes, but the memory one fails
    (with what the slow client saw and a hint), while the bounded reference solution passes it."""
    report = challenges.check("slow-client", unbounded_slow_client())
    assert [item.passed for item in report.items] == [True, True, True, False], str(report)
    memory = report.items[3]
    assert memory.requirement.startswith(BOUNDED)
    assert "received every message published while it did not read" in memory.saw
    assert "maxsize" in memory.hint
    reference = challenges.check("slow-client", *challenges.load("slow-client", "solutions"))
    assert reference.items[3].requirement.startswith(BOUNDED) and reference.items[3].passed, str(reference)


def test_the_slow_client_starter_says_what_it_saw_for_every_failure(no_leaks: Snapshot) -> None:
    """The starter of challenge 6 fails the stall, late-join and memory requirements, each with a `saw:` line."""
    report = challenges.check("slow-client", *challenges.load("slow-client", "starters"))
    failed = [item for item in report.items if item.passed is False]
    assert [report.items.index(item) + 1 for item in failed] == [2, 3, 4], str(report)
    assert all(item.saw for item in failed), str(report)
    assert "saw: nothing arrived for the late client" in str(report)


@pytest.mark.parametrize("key", KEYS)
def test_the_notebook_shows_each_starter_verbatim(key: str) -> None:
    """Notebook 12 has a code cell whose source is exactly the starter file, so the two cannot drift apart."""
    cells = [cell.source.strip() for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert challenges.source(key).strip() in cells


def test_solutions_are_not_in_the_notebook() -> None:
    """No reference solution appears in the learner's notebook."""
    text = NOTEBOOK.read_text()
    for key in KEYS:
        body = challenges.source(key, "solutions").split('"""', 2)[-1].strip()
        assert body not in text, key


def test_check_says_what_to_pass() -> None:
    """Wrong arguments give errors that name what the check needs."""
    with pytest.raises(ChallengeError, match="needs 2 argument"):
        challenges.check("fastapi-manager", object())
    with pytest.raises(ChallengeError, match="the challenges are: echo-json"):
        challenges.check("nope")
    with pytest.raises(ChallengeError, match="consumer class itself"):
        challenges.check("echo-json", object())


def test_report_text_is_a_checklist_with_hints_for_failures() -> None:
    """A report prints one line per requirement, and a 'saw' and a 'hint' line under each failure only."""
    report = Report(9, "Demo")
    report.add("first thing", True, "never shown")
    report.add("second thing", False, "do this", "that happened")
    assert str(report).splitlines() == [
        "Challenge 9 · Demo: 1 of 2 requirements met",
        "  ✔ first thing",
        "  ✘ second thing",
        "      saw: that happened",
        "      hint: do this",
        "Not yet: fix the first ✘ and run the check again.",
    ]
    assert repr(report) == str(report)


def test_a_check_that_gives_up_stops_its_server() -> None:
    """A check past its timeout raises ChallengeError saying so, and its server is stopped soon after anyway."""
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Sleeper(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            time.sleep(1.5)  # blocks the server's loop, so the check cannot finish in time

    with pytest.raises(ChallengeError, match=r"did not finish within 0.5 s .* its server is being stopped"):
        challenges.check("blocking-call", Sleeper, timeout=0.5)
    deadline = time.monotonic() + 15
    while "challenge-blocking-call" in running_servers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "challenge-blocking-call" not in running_servers()
    while any(t.name == "challenge-blocking-call" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the abandoned check finishes on its own once the server is gone
