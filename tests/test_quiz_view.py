"""Tests for helpers.quiz.view: one QuestionView of a question, rendered as text (what nbval compares) and as HTML
(what the widget shows)."""

from __future__ import annotations

import pytest

from helpers import quiz
from helpers.quiz import QuestionView, QuizSession
from helpers.quiz.view import (
    feedback_html,
    format_time,
    header_html,
    inline_html,
    paragraphs_html,
    prompt_html,
    question_text,
    screen_html,
)
from tests.test_quiz import tiny_quiz

pytestmark = pytest.mark.timeout(30)


def test_text_view_is_deterministic_and_free_of_timings() -> None:
    """Rendering the same state twice gives the same text, with the time limit but no running clock."""
    session = QuizSession(quiz.load_quiz("channels"))
    assert "Not started" in str(session)
    session.start()
    first = str(session)
    assert first == str(session)
    q = session.current
    assert f"[{q.category} · {q.level} · {quiz.format_time(q.time_limit)} per attempt]" in first
    assert "Time left" not in first  # the running clock belongs to the widget only


def finished_session() -> QuizSession:
    """A one-question run that used the hint and an early Show me, missed once, then answered right."""
    session = QuizSession(tiny_quiz("B"))
    session.start()
    session.hint()
    session.note_show_me()
    session.answer("A")
    session.answer("B")
    return session


def test_the_view_holds_the_answer_and_hint_only_once_they_are_due() -> None:
    """Before anything happens the view has no attempts, no hint and no answer; then each appears when due."""
    session = QuizSession(tiny_quiz("B"))
    session.start()
    view = session.view()
    assert (view.number, view.total, view.attempts, view.hint, view.answer) == (1, 1, (), None, None)
    assert not view.finished and (view.attempts_left, view.attempt_limit) == (2, 2)
    session.hint()
    session.answer("A")
    view = session.view()
    assert (view.hint, view.attempts, view.answer) == ("hint 1", ("A: not right",), None)
    session.answer("B")
    view = session.view()
    assert view.finished and view.answer == "B" and view.solved and view.attempts_left == 0


def test_the_text_view_is_the_text_rendering_of_the_sessions_view() -> None:
    """str(session) and question_lines() are question_text() of the same QuestionView, in every state."""
    session = QuizSession(tiny_quiz("A", "BC"))
    session.start()
    for step in (session.hint, lambda: session.answer("B"), session.note_show_me, lambda: session.answer("A")):
        step()
        lines = question_text(session.view())
        assert str(session) == "\n".join(lines)
        assert session.question_lines(session.record, session.index + 1) == lines
    session.next()
    assert str(session) == "\n".join(question_text(QuestionView.of(session.record, 2, 2, "Quiz: tiny")))


def test_text_rendering_of_a_finished_question() -> None:
    """The text renderer's exact lines for a question that is over (what nbval compares in the notebooks)."""
    assert question_text(finished_session().view()) == [
        "Quiz: tiny · question 1 of 1",
        "[debug · advanced · 1:00 per attempt]",
        "",
        "Question 1?",
        "",
        "    print('hi')",
        "",
        "  A) option A",
        "  B) option B",
        "  C) option C",
        "  D) option D",
        "",
        "Attempt 1: A: not right",
        "Attempt 2: B: right",
        "Hint: hint 1",
        quiz.EARLY_NOTE,
        "Answer: B (you got it)",
        "Why: because 1",
        "Evidence: Show me runs experiment 'accept_opens' · lesson: 04_await_pitfalls.ipynb#Summary",
    ]


def test_html_rendering_of_the_same_view() -> None:
    """The HTML renderer's exact markup for the same state: the prompt, and the feedback with the verdict."""
    view = finished_session().view()
    assert prompt_html(view) == (
        "<b>Question 1 of 1</b> · debug · advanced · 1:00 per attempt<p>Question 1?</p>"
        "<pre>print(&#x27;hi&#x27;)</pre><ul style='list-style: none; padding-left: 0'>"
        "<li><b>A)</b> option A</li><li><b>B)</b> option B</li><li><b>C)</b> option C</li><li><b>D)</b> option D</li>"
        "</ul>"
    )
    assert feedback_html(view, "Right!") == (
        "<b>Right!</b><br>Attempt 1: A: not right<br>Attempt 2: B: right<br><b>Hint:</b> hint 1<br>"
        f"<i>{quiz.EARLY_NOTE}</i><br><b>Answer: B</b><br><b>Why:</b> <p>because 1</p><br>"
        "Seen in the lesson: <code>04_await_pitfalls.ipynb#Summary</code>"
    )


def test_an_open_question_shows_attempts_left_in_both_renderings() -> None:
    """While attempts remain, both renderings say how many, and neither shows the answer or the explanation."""
    session = QuizSession(tiny_quiz("AB"))
    session.start()
    session.answer("A")
    view = session.view()
    text, markup = "\n".join(question_text(view)), prompt_html(view) + feedback_html(view)
    assert "Attempts left: 1 of 2" in text and "Attempts left: 1 of 2" in markup
    assert "Select all that apply:" in text and "<i>Select all that apply.</i>" in markup
    assert "because 1" not in text and "because 1" not in markup


def test_html_escapes_text_and_marks_code_spans() -> None:
    """Text goes into HTML escaped, `backticks` become <code>, and blank lines separate paragraphs."""
    assert inline_html("a < b and `x & y`") == "a &lt; b and <code>x &amp; y</code>"
    assert paragraphs_html("one\ntwo\n\nthree") == "<p>one two</p><p>three</p>"
    assert screen_html("<done>") == "<pre>&lt;done&gt;</pre>"


def test_the_header_shows_the_score_only_during_a_run() -> None:
    """The title alone before and after a run; with the score so far while it is under way."""
    session = QuizSession(tiny_quiz("A", "B"))
    assert header_html("Quiz: <tiny>", None) == "<h3>Quiz: &lt;tiny&gt;</h3>"
    session.start()
    session.answer("A")
    assert header_html("Quiz: tiny", session.results()) == (
        "<h3>Quiz: tiny</h3><p class='wslab-quiz-score'>Score so far: 2 of 4 points</p>"
    )


def test_format_time_rounds_up_to_the_second() -> None:
    """m:ss, rounded up, never below zero."""
    assert [format_time(s) for s in (0, 0.2, 59.5, 60, 600, -3)] == ["0:00", "0:01", "1:00", "1:00", "10:00", "0:00"]
