"""Tests for helpers.quiz.progress: the optional progress file, where it may live, and resuming from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import quiz
from helpers.quiz import QuizSession, QuizUsageError
from tests.support import ROOT
from tests.test_quiz import point_progress_at, tiny_quiz

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def progress_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the progress folder at a temporary one, so tests never touch a learner's .progress/."""
    return point_progress_at(tmp_path / ".progress", monkeypatch)


def test_progress_is_off_by_default(progress_dir: Path) -> None:
    """Without progress=..., a whole run writes no file."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    session.answer("A")
    session.next()
    assert not progress_dir.exists()


def test_progress_file_lets_a_learner_resume(progress_dir: Path) -> None:
    """With progress=True the run is saved under .progress/ and a new session continues where it stopped."""
    session = QuizSession(tiny_quiz("A", "B"), progress=True)
    session.start()
    session.hint()
    session.answer("C")
    session.answer("A")
    session.next()
    saved = json.loads((progress_dir / "tiny.json").read_text())
    assert saved["index"] == 1
    assert saved["records"][0] == {"attempts": [["C"], ["A"]], "hint": True, "show_me_early": False}

    again = QuizSession(tiny_quiz("A", "B"), progress=True)
    assert again.resumed
    assert again.start() is not None and again.current.id == "q2"
    again.answer("B")
    again.next()
    assert again.results().score == 3
    assert json.loads((progress_dir / "tiny.json").read_text())["best"] == {"score": 3, "max": 4, "badge": False}


def test_progress_outside_the_ignored_folder_is_refused(progress_dir: Path, tmp_path: Path) -> None:
    """A progress path outside .progress/ is refused with a message that says where progress lives."""
    with pytest.raises(QuizUsageError, match="progress files are kept in"):
        QuizSession(tiny_quiz("A"), progress=tmp_path / "elsewhere.json")


def test_the_real_progress_folder_is_ignored_by_git() -> None:
    """.progress/ is listed in .gitignore, so saved progress never ends up in a commit."""
    assert ".progress/" in (ROOT / ".gitignore").read_text().splitlines()
    assert Path(quiz.PROGRESS_DIR).name == ".progress" and Path(quiz.PROGRESS_DIR).parent == ROOT
