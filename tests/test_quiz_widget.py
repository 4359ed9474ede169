"""Tests for helpers.quiz.widget (with helpers.quiz.controls): the quiz on screen, its timer, letters, focus and
Show me."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from helpers import evidence, quiz
from helpers.quiz import QuizWidget
from tests.support import Snapshot
from tests.test_quiz import tiny_quiz

pytestmark = pytest.mark.timeout(30)


def wait_until(condition: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def widget(no_leaks: Snapshot) -> Iterator[QuizWidget]:
    """A quiz widget whose time limits are scaled down to a fraction of a second."""
    shown = QuizWidget(tiny_quiz("A", "B"), time_scale=0.005, tick=0.02)
    yield shown
    shown.close()


def test_widget_text_is_the_sessions_text_and_it_starts_idle(widget: QuizWidget) -> None:
    """Displayed, the widget's text/plain is the session's deterministic text; no timer runs before Start."""
    bundle = widget._repr_mimebundle_()
    assert bundle["text/plain"] == widget.session.render()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not widget.countdown.running


def test_widget_timer_expiry_costs_an_attempt_without_blocking(widget: QuizWidget) -> None:
    """Started, the countdown runs in a thread; each expiry is an attempt; after two the question is over."""
    started = time.monotonic()
    widget.start()
    assert time.monotonic() - started < 0.5  # start() returns at once: the timer is a background thread
    assert widget.countdown.running
    assert wait_until(lambda: widget.session.record.finished)
    record = widget.session.record
    assert [a.choice for a in record.attempts] == [None, None]
    assert "Time ran out. No attempts left" in widget.feedback.value
    assert not widget.countdown.running  # nothing to time once the question is over


def test_widget_focus_moves_to_the_next_step_after_a_time_out(widget: QuizWidget) -> None:
    """After a time-out the keyboard focus goes to the first letter (an attempt is left), then to Next (none left)."""
    focused: list[str] = []
    widget.start()
    for button in [*widget.letter_buttons, widget.buttons["next"]]:
        button.focus = lambda name=button.description: focused.append(name)  # type: ignore[method-assign]
    assert wait_until(lambda: widget.session.record.finished)
    assert wait_until(lambda: focused == ["A", "Next"]), focused


def test_widget_submit_hint_next_and_finish(widget: QuizWidget) -> None:
    """Choosing an option and pressing the buttons drives the same engine, up to the badge."""
    widget.time_scale = 1.0  # plenty of time
    widget.buttons["start"].click()
    widget.buttons["hint"].click()
    assert "hint 1" in widget.feedback.value
    widget.letter_buttons[0].value = True
    widget.buttons["submit"].click()
    assert "Right!" in widget.feedback.value and "Why:" in widget.feedback.value
    widget.buttons["next"].click()
    widget.letter_buttons[1].value = True
    widget.buttons["submit"].click()
    widget.buttons["next"].click()
    assert widget.session.finished
    assert "Badge earned: Tiny Master" in widget.prompt.value
    widget.buttons["restart"].click()
    assert widget.session.index == 0 and widget.countdown.running


def test_letters_are_exclusive_unless_the_question_has_several_answers(no_leaks: Snapshot) -> None:
    """Pressing a letter releases the others for one-answer questions; 'select all' questions keep several pressed."""
    shown = QuizWidget(tiny_quiz("A", "BC"), time_scale=1.0, tick=0.02)
    try:
        shown.start()
        a, b, c, _ = shown.letter_buttons
        a.value, b.value = True, True
        assert [x.value for x in shown.letter_buttons] == [False, True, False, False]
        shown.submit()
        assert "Not right" in shown.feedback.value
        assert not any(x.value for x in shown.letter_buttons)  # a new attempt starts with nothing pressed
        a.value = True
        shown.submit()
        shown.next()
        b, c = shown.letter_buttons[1:3]
        b.value, c.value = True, True
        shown.submit()
        assert "Right!" in shown.feedback.value
    finally:
        shown.close()


def test_closing_the_widget_stops_its_timer(no_leaks: Snapshot) -> None:
    """close() stops the countdown thread, so nothing keeps running after the widget is gone."""
    shown = QuizWidget(tiny_quiz("A"), time_scale=1.0, tick=0.02)
    shown.start()
    thread = shown.countdown._thread
    assert thread is not None and thread.is_alive()
    shown.close()
    assert not thread.is_alive()


def test_show_me_runs_the_experiment_in_the_background() -> None:
    """The Show me button returns at once and the experiment's fact appears in the widget when it is done;
    pressed before answering, it is recorded and the widget says the question no longer counts for the badge."""
    shown = QuizWidget(quiz.load_quiz("channels").subset(["anonymous-user"]), tick=0.05)
    try:
        shown.start()
        started = time.monotonic()
        shown.buttons["show"].click()
        assert time.monotonic() - started < 0.5
        assert shown.session.record.evidence_early
        assert "no longer counts toward the badge" in shown.feedback.value
        assert wait_until(lambda: "Show me:" in shown.evidence_view.value, timeout=20)
        assert "AnonymousUser" in shown.evidence_view.value
        assert not shown.buttons["show"].disabled
    finally:
        shown.close()
    assert not any(t.name == "quiz-show-me" for t in threading.enumerate())


def test_show_me_after_the_question_is_over_keeps_the_badge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show me pressed once the question is answered runs as before and a perfect run still earns the badge."""
    monkeypatch.setattr(evidence, "run", lambda name, timeout: evidence.Evidence(name, "stub", ("ran",), frozenset()))
    shown = QuizWidget(tiny_quiz("A"), tick=0.05)
    try:
        shown.start()
        shown.letter_buttons[0].value = True
        shown.submit()
        shown.buttons["show"].click()
        assert wait_until(lambda: "Show me: stub" in shown.evidence_view.value)
        assert not shown.session.record.evidence_early
        assert "no longer counts" not in shown.feedback.value
        shown.next()
        assert "Badge earned: Tiny Master" in shown.prompt.value
    finally:
        shown.close()
