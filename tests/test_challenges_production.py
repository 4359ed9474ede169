"""Tests for helpers.challenges.production, Part 2's checks: every reference solution passes, and every known-wrong
solution fails exactly the requirements it declares (the checks can fail, each for its own reason).

Notebook 19 and the starters are still to come (issue #23); the tests for them will join these then.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.challenges import production
from tests.support import Snapshot, require_binary
from tests.test_challenges import MIN_WRONG, declared_failures

pytestmark = pytest.mark.timeout(60)

KEYS = list(production.CHALLENGES)
WRONG = [(key, file) for key in KEYS for file in production.wrong_solutions(key)]
NEEDS_NGINX = {"nginx-location"}


def needs(key: str) -> None:
    if key in NEEDS_NGINX:
        require_binary("nginx", "apt-get install nginx")


def test_part_two_has_its_five_challenges_in_order() -> None:
    """Dead clients, resume, the nginx block, the auth deadline and the missing test, numbered 1 to 5."""
    assert KEYS == ["dead-client", "resume-chat", "nginx-location", "auth-deadline", "missing-test"]
    assert [c.number for c in production.CHALLENGES.values()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("key", KEYS)
def test_the_reference_solution_passes_every_requirement(key: str, no_leaks: Snapshot) -> None:
    """Served and checked by live clients (and a real nginx, a frozen child client, a child pytest), the reference
    solution meets every requirement."""
    needs(key)
    report = production.check(key, *production.load(key, "solutions"))
    assert report.passed and all(item.passed for item in report.items), str(report)


@pytest.mark.parametrize("key", KEYS)
def test_every_challenge_has_known_wrong_solutions(key: str) -> None:
    """Each challenge has at least two known-wrong solutions in challenges/wrong/, each declaring what it fails."""
    files = production.wrong_solutions(key)
    assert len(files) >= MIN_WRONG, f"{key}: only {[f.name for f in files]}"
    for file in files:
        assert declared_failures(file)


@pytest.mark.parametrize(("key", "file"), WRONG, ids=[f.stem for _, f in WRONG])
def test_a_known_wrong_solution_fails_exactly_the_requirements_it_gets_wrong(
    key: str, file: Path, no_leaks: Snapshot
) -> None:
    """Checked by live clients, a known-wrong solution fails the requirements it declares, with a hint for each."""
    needs(key)
    report = production.check(key, *production.load_file(key, file))
    assert not report.passed, f"{file.name} passed the check:\n{report}"
    failed = tuple(number for number, item in enumerate(report.items, 1) if item.passed is False)
    assert failed == declared_failures(file), f"{file.name}:\n{report}"
    assert all(item.hint for item in report.items if item.passed is False)
