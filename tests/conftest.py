"""Pytest fixtures shared by every test: leak checks, and asyncio left unpatched (their tools are tests/support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Snapshot, assert_back_to


@pytest.fixture
def no_leaks() -> Iterator[Snapshot]:
    """Fail the test if it leaves threads, fds, listening ports or child processes behind."""
    before = Snapshot.take()
    yield before
    assert_back_to(before)


@pytest.fixture
def repo_on_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child Python started by the test (pytester's, say, in a temporary folder) can import this repository."""
    from tests.support import ROOT

    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.fixture(scope="session", autouse=True)
def asyncio_stays_unpatched() -> Iterator[None]:
    """No test may leave nest_asyncio (or any patch) in asyncio for the tests after it."""
    from helpers.loops import asyncio_patches

    yield
    assert asyncio_patches() == [], "a test left asyncio patched"
