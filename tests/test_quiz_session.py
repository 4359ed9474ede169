"""Tests for helpers.quiz.session (with helpers.quiz.scoring): the engine's rules, attempts, hints, Show me and the
badge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import evidence, quiz
from helpers.quiz import QuizSession, QuizUsageError
from tests.test_quiz import point_progress_at, tiny_quiz

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def progress_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the progress folder at a temporary one, so tests never touch a learner's .progress/."""
    return point_progress_at(tmp_path / ".progress", monkeypatch)


def test_the_quiz_must_be_started_before_answering() -> None:
    """answer() before start() raises an error that says to call start()."""
    session = QuizSession(tiny_quiz("A"))
    with pytest.raises(QuizUsageError, match=r"call start\(\) first"):
        session.answer("A")


def test_a_right_first_answer_scores_two_and_shows_the_explanation() -> None:
    """Right at the first attempt: 'Right!', the question is over, its explanation shows, 2 points."""
    session = QuizSession(tiny_quiz("B"))
    session.start()
    assert "Why:" not in str(session)
    assert session.answer("b") == "Right!"
    assert session.record.finished
    assert "Why: because 1" in str(session) and "Answer: B (you got it)" in str(session)
    assert session.results().score == 2


def test_two_attempts_then_the_answer_and_explanation_appear() -> None:
    """A wrong answer leaves one attempt; a second wrong one ends the question and reveals answer and explanation."""
    session = QuizSession(tiny_quiz("C"))
    session.start()
    assert session.answer("A") == "Not right. 1 attempt left."
    assert "Why:" not in str(session) and "Attempts left: 1 of 2" in str(session)
    assert session.answer("B") == "Not right. No attempts left: the answer is C."
    assert "Answer: C" in str(session) and "Why: because 1" in str(session)
    with pytest.raises(QuizUsageError, match=r"call next\(\)"):
        session.answer("C")
    assert session.results().score == 0


def test_a_right_second_attempt_scores_one() -> None:
    """Wrong, then right: the explanation shows and the question is worth 1 point."""
    session = QuizSession(tiny_quiz("D"))
    session.start()
    session.answer("A")
    assert session.answer("D") == "Right!"
    assert "Why:" in str(session)
    assert session.results().score == 1


def test_time_running_out_counts_as_an_attempt() -> None:
    """expire() uses an attempt like a wrong answer; two expiries end the question with 0 points."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    assert session.expire() == "Time ran out. 1 attempt left."
    assert "Attempt 1: time ran out" in str(session)
    assert session.record.attempts_left == 1
    assert session.expire() == "Time ran out. No attempts left: the answer is A."
    results = session.results()
    assert results.score == 0 and results.timeouts == 2


def test_an_expiry_then_a_right_answer_scores_one() -> None:
    """After a time-out the second attempt can still be right, for 1 point."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    session.expire()
    assert session.answer("A") == "Right!"
    assert session.results().score == 1


def test_hint_on_request_is_shown_and_counted_but_free() -> None:
    """hint() returns the hint, the text view shows it, and a perfect run with hints still earns the badge."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    assert "Hint:" not in str(session)
    assert session.hint() == "hint 1"
    assert "Hint: hint 1" in str(session)
    session.answer("A")
    session.next()
    results = session.results()
    assert results.hints == 1 and results.badge == "Tiny Master"


def test_badge_only_on_a_perfect_run() -> None:
    """All right at the first attempt earns the badge; one second-attempt answer does not."""
    perfect = QuizSession(tiny_quiz("A", "B", "C"))
    perfect.start()
    for letter in "ABC":
        perfect.answer(letter)
        perfect.next()
    assert perfect.finished
    assert perfect.results().badge == "Tiny Master"
    assert "Badge earned: Tiny Master" in str(perfect)

    almost = QuizSession(tiny_quiz("A", "B", "C"))
    almost.start()
    for letter, first in zip("ABC", "ABD", strict=True):
        almost.answer(first)
        if not almost.record.finished:
            almost.answer(letter)
        almost.next()
    results = almost.results()
    assert (results.score, results.max_score, results.badge) == (5, 6, None)
    assert "Badge: not this time" in str(almost)


def test_show_me_before_answering_costs_the_badge_but_not_the_points(progress_dir: Path) -> None:
    """Show me while a question is open is recorded (and saved): a run that is otherwise perfect scores full
    points but earns no badge, and the results and the text view say why; after the question it is free."""
    session = QuizSession(tiny_quiz("A", "B"), progress=True)
    session.start()
    assert session.note_show_me() is True
    assert session.record.evidence_early and quiz.EARLY_NOTE in str(session)
    session.answer("A")
    session.next()
    session.answer("B")
    assert session.note_show_me() is False  # the question is over: the answer is already on screen
    session.next()
    results = session.results()
    assert (results.score, results.max_score, results.perfect) == (4, 4, True)
    assert results.evidence_early == 1 and results.badge is None
    text = str(results)
    assert "Show me before answering: 1 question" in text
    assert "'Tiny Master' needs a perfect run without Show me before answering" in text
    saved = json.loads((progress_dir / "tiny.json").read_text())
    assert [r["show_me_early"] for r in saved["records"]] == [True, False]
    assert saved["best"] == {"score": 4, "max": 4, "badge": False}
    assert QuizSession(tiny_quiz("A", "B"), progress=True).records[0].evidence_early  # survives a resume

    clean = QuizSession(tiny_quiz("A"))
    clean.start()
    clean.answer("A")
    clean.note_show_me()
    clean.next()
    assert clean.results().badge == "Tiny Master"
    assert "Show me before answering: 0 questions" in str(clean.results())


def test_session_show_me_records_an_early_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """QuizSession.show_me() on an open question runs the experiment and marks the question as looked at early."""
    ran: list[str] = []
    monkeypatch.setattr(evidence, "run", lambda name, timeout: ran.append(name) or name)
    session = QuizSession(tiny_quiz("A"))
    session.start()
    assert session.show_me() == "accept_opens" and ran == ["accept_opens"]
    assert session.record.evidence_early
    session.answer("A")
    session.next()
    assert session.results().badge is None


def test_next_refuses_an_open_question_and_ends_after_the_last() -> None:
    """next() before the question is over raises; after the last question it returns None and the run is over."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    with pytest.raises(QuizUsageError, match="not over yet"):
        session.next()
    session.answer("A")
    assert session.next() is None
    assert session.finished
    assert str(session).startswith("Quiz: tiny · finished")
    with pytest.raises(QuizUsageError, match=r"restart\(\)"):
        session.hint()


def test_restart_begins_a_fresh_run() -> None:
    """restart() clears every attempt and goes back to question 1."""
    session = QuizSession(tiny_quiz("A", "B"))
    session.start()
    session.answer("C")
    session.answer("D")
    session.next()
    session.restart()
    assert session.index == 0 and all(not r.attempts for r in session.records)
    assert session.answer("A") == "Right!"


def test_invalid_choices_say_what_is_valid() -> None:
    """A letter that is not an option, or two letters for a one-answer question, are refused with a clear message."""
    session = QuizSession(tiny_quiz("A"))
    session.start()
    with pytest.raises(QuizUsageError, match="choose among A, B, C, D"):
        session.answer("E")
    with pytest.raises(QuizUsageError, match="single letter"):
        session.answer("A,B")
    assert session.record.attempts == []


def test_select_all_that_apply_needs_exactly_the_right_set() -> None:
    """A multi-answer question accepts 'a, b' in any order and counts a partial set as wrong."""
    session = QuizSession(tiny_quiz("AB"))
    session.start()
    assert "Select all that apply:" in str(session)
    assert session.answer(["A"]) == "Not right. 1 attempt left."
    assert session.answer("b, a") == "Right!"
