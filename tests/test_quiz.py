"""Tests for helpers.quiz: the question files, the engine's rules, the progress file and the widget's timer."""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from helpers import evidence, quiz
from helpers.quiz import Countdown, Question, Quiz, QuizDataError, QuizSession, QuizUsageError, QuizWidget
from tests.conftest import ROOT, Snapshot

pytestmark = pytest.mark.timeout(30)

QUIZZES = ["channels", "broadcasting"]
SERIES = {entry["file"] for entry in tomllib.loads((ROOT / "notebooks" / "series.toml").read_text())["notebook"]}


def all_questions() -> list[tuple[str, Question]]:
    return [(name, q) for name in QUIZZES for q in quiz.load_quiz(name).questions]


def heading_anchors(notebook: Path) -> set[str]:
    """The anchors JupyterLab gives a notebook's headings: rendered heading text with spaces as dashes."""
    anchors = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"#{1,6}\s+(.*)", line)
            if match:
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # links keep their text
                text = text.replace("`", "").replace("**", "")
                anchors.add(text.strip().replace(" ", "-"))
    return anchors


def tiny_quiz(*correct: str) -> Quiz:
    """A quiz with one question per entry of `correct` (four options each, one right answer)."""
    questions = tuple(
        Question(
            id=f"q{i}",
            category="debug",
            level="advanced",
            time_limit=60,
            prompt=f"Question {i}?",
            code="print('hi')",
            options=tuple(quiz.Option(letter, f"option {letter}", f"claim-{letter}") for letter in "ABCD"),
            correct=frozenset(answer),
            hint=f"hint {i}",
            explanation=f"because {i}",
            link="04_await_pitfalls.ipynb#Summary",
            evidence="accept_opens",
        )
        for i, answer in enumerate(correct, 1)
    )
    return Quiz("tiny", "Quiz: tiny", "Tiny Master", questions)


@pytest.fixture
def progress_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the progress folder at a temporary one, so tests never touch a learner's .progress/."""
    folder = tmp_path / ".progress"
    monkeypatch.setattr(quiz, "PROGRESS_DIR", folder)
    return folder


# -- data files


@pytest.mark.parametrize("name", QUIZZES)
def test_quiz_files_load_with_at_least_fourteen_valid_questions(name: str) -> None:
    """Each quiz file parses, has a title and badge, and at least 14 questions with valid categories and levels."""
    loaded = quiz.load_quiz(name)
    assert loaded.id == name and loaded.title and loaded.badge
    assert len(loaded) >= 14
    for question in loaded.questions:
        assert question.category in quiz.CATEGORIES
        assert question.level in quiz.LEVELS
        assert 10 <= question.time_limit <= quiz.MAX_TIME_LIMIT
        assert all([question.prompt, question.hint, question.explanation, question.code, question.evidence])
        assert question.correct <= set(question.letters)


def test_time_limits_follow_the_rule_not_the_file() -> None:
    """A question's time grows with its words, its code lines and its level, in steps of 15 s, capped at the maximum."""
    short = quiz.time_limit_for("intermediate", "Why?", "", ["yes", "no"])
    assert short == 45  # 30 s to think, under a second to read, rounded up to 15 s
    assert quiz.time_limit_for("expert", "Why?", "", ["yes", "no"]) == 105
    assert quiz.time_limit_for("intermediate", "Why?", "x = 1\n\ny = 2\n", ["yes", "no"]) == 45
    assert quiz.time_limit_for("intermediate", "word " * 89, "", ["yes"]) == 60
    assert quiz.time_limit_for("expert", "word " * 5000, "", []) == quiz.MAX_TIME_LIMIT
    with pytest.raises(QuizDataError, match="level 'easy' is not one of"):
        quiz.time_limit_for("easy", "Why?", "", [])


def test_a_time_limit_in_a_quiz_file_is_refused() -> None:
    """Quiz files cannot choose their own time: a time_limit field is reported as unknown."""
    entry = tomllib.loads((ROOT / "quizzes" / "channels.toml").read_text())
    entry["question"][0]["time_limit"] = 60
    with pytest.raises(QuizDataError, match="unknown field 'time_limit'"):
        quiz.parse_quiz(entry)


def test_quizzes_use_every_category_and_level() -> None:
    """Across both quizzes every category and every level appears at least once per quiz."""
    for name in QUIZZES:
        questions = quiz.load_quiz(name).questions
        assert {q.category for q in questions} == set(quiz.CATEGORIES), name
        assert {q.level for q in questions} == set(quiz.LEVELS), name


@pytest.mark.parametrize(("name", "question"), all_questions(), ids=lambda v: getattr(v, "id", v))
def test_links_point_to_an_existing_lesson_heading(name: str, question: Question) -> None:
    """A question's link names a notebook in series.toml that exists, and a heading anchor inside it."""
    assert question.notebook in SERIES, f"{question.notebook} is not in notebooks/series.toml"
    notebook = ROOT / "notebooks" / question.notebook
    assert notebook.exists(), f"{question.notebook} does not exist"
    assert question.anchor in heading_anchors(notebook), f"no heading {question.anchor!r} in {question.notebook}"


@pytest.mark.parametrize(("name", "question"), all_questions(), ids=lambda v: getattr(v, "id", v))
def test_every_question_names_a_registered_experiment(name: str, question: Question) -> None:
    """The evidence field names an experiment that helpers.evidence provides."""
    assert question.evidence in evidence.EXPERIMENTS


def test_missing_fields_and_bad_values_are_all_reported() -> None:
    """parse_quiz lists every problem: missing fields, an unknown category, a level and a bad answer letter."""
    data = {
        "quiz": {"id": "x", "title": "X", "badge": "B"},
        "question": [
            {"id": "one", "category": "trivia"},
            {
                "id": "two",
                "category": "debug",
                "level": "beginner",
                "prompt": "?",
                "code": "",
                "options": [{"text": "a", "claim": "a"}, {"text": "b", "claim": "b"}],
                "correct": ["E"],
                "hint": "h",
                "explanation": "e",
                "link": "not a link",
                "evidence": "accept_opens",
            },
        ],
    }
    with pytest.raises(QuizDataError) as caught:
        quiz.parse_quiz(data)
    text = str(caught.value)
    assert "question 1 (one): missing field 'level'" in text
    assert "level 'beginner' is not one of" in text
    assert "correct must list letters among ['A', 'B']" in text
    assert "link must look like" in text


def test_an_unknown_quiz_name_lists_the_available_ones() -> None:
    """load_quiz('nope') says which quizzes exist."""
    with pytest.raises(QuizDataError, match="available quizzes: broadcasting, channels"):
        quiz.load_quiz("nope")


# -- engine


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


# -- progress file


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


# -- countdown and widget


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
