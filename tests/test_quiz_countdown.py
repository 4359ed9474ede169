"""Tests for helpers.quiz.countdown: the background thread that times an attempt."""

from __future__ import annotations

import time

import pytest

from helpers.quiz import Countdown
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(30)


def test_countdown_expires_once_and_a_stopped_one_stays_silent(no_leaks: Snapshot) -> None:
    """A countdown calls on_expire exactly once; stop() before the deadline means no expiry at all."""
    expired: list[int] = []
    countdown = Countdown(lambda generation, remaining: None, expired.append, tick=0.02)
    generation = countdown.start(0.1)
    deadline = time.monotonic() + 2
    while not expired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert expired == [generation]
    countdown.start(0.2)
    countdown.stop(wait=True)
    time.sleep(0.3)
    assert expired == [generation]
    assert not countdown.running
