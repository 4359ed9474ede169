"""Tests for helpers.live_quiz.widgets: StudentQuiz and InstructorQuiz against a real live quiz server, no browser.

Each test starts `start_live_quiz()` on loopback and drives real widgets through their programmatic API and their
buttons (`button.click()` runs the same handler a browser click does). Every wait is bounded (`wait_for`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers.faults.relay import start_relay
from helpers.live_quiz import STUDENT_PATH, LiveQuiz, LiveQuizUsageError, start_live_quiz
from helpers.live_quiz.widgets import InstructorQuiz, StudentQuiz
from helpers.usage import UsageError
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(30)

CODE = "maple-42"
QUIZ = "broadcasting"
Q1, Q2 = "late-subscriber", "disconnect-codes"  # both keyed A
WAIT = 3.0
SAME_TIME = 0.5  # how far apart two clients' remaining times may be (s)


@dataclass
class Room:
    live: LiveQuiz
    teacher: InstructorQuiz
    students: dict[str, StudentQuiz]


def start(name: str, port: int = 0) -> LiveQuiz:
    return start_live_quiz(CODE, quizzes=[QUIZ], name=name, chat=False, port=port, show_me=False)


@pytest.fixture
def room(no_leaks: Snapshot) -> Iterator[Room]:
    live = start("test-live-quiz-widgets")
    teacher = InstructorQuiz(live)
    students = {name: StudentQuiz(live.student_url, name) for name in ("ada", "bob", "cy")}
    try:
        assert teacher.connect() == "open"
        for student in students.values():
            assert student.connect() == "open"
        teacher.wait_for(lambda v: v.room == 3, WAIT)
        yield Room(live, teacher, students)
    finally:
        for widget in [teacher, *students.values()]:
            widget.close()
        live.stop()


def pushed(room: Room, question: str = Q1, seconds: float = 20) -> None:
    room.teacher.push(QUIZ, question, seconds=seconds)
    for student in room.students.values():
        student.wait_for(lambda v: v.question_id == question and v.open, WAIT)


def test_a_push_reaches_every_student_with_the_same_remaining_time(room: Room) -> None:
    """A pushed question shows on all three student widgets, prompt and buttons, with the same time left."""
    pushed(room, seconds=20)
    left = [student.view.remaining() or 0.0 for student in room.students.values()]
    assert max(left) - min(left) < SAME_TIME and 18.5 < min(left) <= 20
    ada = room.students["ada"]
    assert list(ada.letter_buttons) == ["A", "B", "C", "D"] and not ada.letter_buttons["A"].disabled
    assert "Question 1" in ada.question_html.value and "<pre" in ada.question_html.value
    assert "left" in ada.clock.value and repr(ada) == "StudentQuiz('ada', open, question 1, to answer)"


def test_answers_update_the_histogram_and_the_count_without_a_rerun(room: Room) -> None:
    """A click and an answer() move the instructor's bars and its "answered N of M" as they arrive."""
    pushed(room)
    room.students["ada"].letter_buttons["A"].click()
    room.teacher.wait_for(lambda v: v.answered == 1, WAIT)
    assert room.teacher.histogram.bars["A"].value == 1 and room.teacher.histogram.bars["A"].max == 3
    assert room.students["bob"].answer("D").startswith("answered D at ")
    room.teacher.wait_for(lambda v: v.answered == 2, WAIT)
    assert {letter: bar.value for letter, bar in room.teacher.histogram.bars.items()} == {
        "A": 1,
        "B": 0,
        "C": 0,
        "D": 1,
    }
    assert "answered 2 of 3" in room.teacher.progress.value
    assert repr(room.teacher) == "InstructorQuiz(open, question 1, 2 of 3 answered)"


def test_a_second_answer_shows_the_refusal_reason(room: Room) -> None:
    """The server refuses a second answer; the student's widget says why and keeps the first answer."""
    pushed(room)
    ada = room.students["ada"]
    assert ada.answer("A").startswith("answered A")
    assert ada.letter_buttons["B"].disabled  # answered: the buttons are locked
    line = ada.answer("B")
    assert line.startswith("refused: ") and "already answered" in line
    assert "refused: " in ada.record_html.value and ada.view.answer == ["A"]
    assert repr(ada) == "StudentQuiz('ada', open, question 1, answered)"


def test_the_reveal_reaches_every_student_and_the_leaderboard_the_instructor(room: Room) -> None:
    """At the reveal each student sees right or wrong, the key, the explanation and points; the instructor the board."""
    pushed(room)
    room.students["ada"].answer("A")
    room.students["bob"].answer("C")
    room.teacher.reveal()
    for student in room.students.values():
        student.wait_for(lambda v: v.revealed is not None, WAIT)
        assert "the answer is <b>A</b>" in student.result_html.value and "points" in student.result_html.value
    assert "✓ right" in room.students["ada"].result_html.value and "+2 points" in room.students["ada"].result_html.value
    assert (
        "✗ wrong" in room.students["bob"].result_html.value
        and "did not answer" in room.students["cy"].result_html.value
    )
    assert "<td>1</td><td>ada</td><td>2</td>" in room.teacher.leaderboard_html.value
    assert "the answer is <b>A</b>" in room.teacher.reveal_html.value
    assert repr(room.students["bob"]) == "StudentQuiz('bob', open, question 1, revealed: wrong)"
    assert [(row["name"], row["points"]) for row in room.teacher.export()] == [("ada", 2), ("bob", 0)]


def test_the_buttons_push_and_reveal_as_the_methods_do(room: Room) -> None:
    """The instructor's menus come from the welcome catalogue; Push and Reveal clicks run a round; a pushed question
    is ticked and the menu moves on to one not asked yet."""
    teacher = room.teacher
    assert teacher.quiz_menu.value == QUIZ and Q1 in teacher.question_menu.options[0][0]
    teacher.question_menu.value, teacher.seconds.value = Q2, 15
    teacher.push_button.click()
    room.students["cy"].wait_for(lambda v: v.question_id == Q2, WAIT)
    assert 13.5 < (room.students["cy"].view.remaining() or 0) <= 15
    teacher.wait_for(lambda v: v.question_id == Q2, WAIT)
    # Once pushed, Q2 is ticked and the menu moves on to the first question not asked, so Push goes on through the quiz.
    labels = dict((value, label) for label, value in teacher.question_menu.options)
    assert labels[Q2].startswith(f"✓ {Q2}: ") and not labels[Q1].startswith("✓")
    assert teacher.question_menu.value == Q1
    teacher.reveal_button.click()
    room.students["cy"].wait_for(lambda v: v.revealed is not None, WAIT)


def test_a_student_cut_off_reconnects_to_the_current_question_time_and_score(no_leaks: Snapshot) -> None:
    """After its connection is cut, a student's widget reconnects and shows the round, the time left and its score."""
    live = start("test-live-quiz-widgets-cut")
    relay = start_relay(live.server.port)
    teacher = InstructorQuiz(live)
    ada = StudentQuiz(relay.ws_url(f"{STUDENT_PATH}?code={CODE}&name={{name}}"), "ada")
    try:
        teacher.connect(), ada.connect()
        teacher.push(QUIZ, Q1, seconds=20)
        ada.wait_for(lambda v: v.question_id == Q1, WAIT)
        ada.answer("A")
        teacher.reveal()
        ada.wait_for(lambda v: v.score == 2, WAIT)
        teacher.push(QUIZ, Q2, seconds=20)
        ada.wait_for(lambda v: v.question_id == Q2, WAIT)
        welcomed = ada.kinds["welcome"]
        assert relay.cut() == 1
        ada.wait_for(lambda v: ada.kinds["welcome"] > welcomed and v.question_id == Q2, WAIT)
        assert ada.status == "open (reconnected, attempt 1)" and ada.view.score == 2
        assert abs((ada.view.remaining() or 0) - (teacher.view.remaining() or 0)) < SAME_TIME
        assert "2 points, rank 1" in ada.header.value and not ada.letter_buttons["B"].disabled
    finally:
        ada.close(), teacher.close()
        relay.stop()
        live.stop()


def test_a_student_reconnects_after_the_server_restarts_on_the_same_port(no_leaks: Snapshot) -> None:
    """A restarted server (a new session) gets the student back on its own, and its next push reaches the widget."""
    live = start("test-live-quiz-widgets-restart")
    port, ada = live.server.port, StudentQuiz(live.student_url, "ada")
    again: LiveQuiz | None = None
    try:
        ada.connect()
        teacher_before = InstructorQuiz(live)
        teacher_before.connect()
        teacher_before.push(QUIZ, Q1, seconds=20)
        ada.wait_for(lambda v: v.question_id == Q1, WAIT)
        teacher_before.close()
        live.stop()
        ada.wait_for(lambda _: ada.state == "reconnecting", WAIT)
        again = start("test-live-quiz-widgets-restart", port=port)
        ada.wait_for(lambda _: ada.status.startswith("open (reconnected"), WAIT)
        ada.wait_for(lambda v: v.question is None, WAIT)  # the old session's round is gone with it
        teacher = InstructorQuiz(again.instructor_url)
        try:
            teacher.connect()
            teacher.push(QUIZ, Q2, seconds=10)
            ada.wait_for(lambda v: v.question_id == Q2 and v.open, WAIT)
            with pytest.raises(LiveQuizUsageError, match="LiveQuiz handle"):
                teacher.export()
        finally:
            teacher.close()
    finally:
        ada.close()
        if again is not None:
            again.stop()


def test_html_from_the_server_or_in_a_name_is_shown_escaped(no_leaks: Snapshot) -> None:
    """A question, option or explanation holding HTML is drawn as text; a frame that is no quiz message is noted."""
    ada = StudentQuiz("ws://127.0.0.1:1/quiz/student?name={name}", "ada")
    evil = "<img src=x onerror=alert(1)>"
    question = {
        "type": "question", "question": "q", "quiz": "z", "quiz_title": evil, "number": 1, "prompt": evil,
        "code": evil, "options": [{"letter": "A", "text": evil}], "multiple": False, "seconds": 9,
        "deadline": 9.0, "now": 0.0, "open": True, "answer": None,
    }  # fmt: skip
    revealed = {
        "type": "revealed", "question": "q", "by": "time", "correct": ["A"], "explanation": evil, "link": "",
        "evidence": "", "counts": {}, "answered": 0, "leaderboard": [{"rank": 1, "name": evil, "score": 0}],
    }  # fmt: skip
    try:
        with ada._lock:
            for message in (question, revealed):
                ada._apply(json.dumps(message))
            ada.render()
        shown = ada.question_html.value + ada.result_html.value
        assert "<img" not in shown and shown.count("&lt;img src=x onerror=alert(1)&gt;") == 5
        with ada._lock:
            ada._apply(b"\x00")
            ada._apply("<html>not json</html>")
        assert ada.problem is not None and "not JSON" in ada.problem and ada.view.revealed is not None
    finally:
        ada.close()


def test_a_name_with_markup_is_refused_by_the_server_and_shown_as_text(room: Room) -> None:
    """The server closes a name with markup (4400); the widget's header shows the name escaped, and why."""
    eve = StudentQuiz(room.live.student_url, "<b>eve</b>")
    try:
        eve.connect()
        assert eve.state == "closed" and "4400" in eve.status
        assert "&lt;b&gt;eve&lt;/b&gt;" in eve.header.value and "<b>eve" not in eve.header.value
    finally:
        eve.close()


def test_wrong_use_gets_one_clear_error(room: Room) -> None:
    """Answering before a push, with a letter not offered, or pushing an unknown question each raise what to do."""
    ada = room.students["ada"]
    with pytest.raises(LiveQuizUsageError, match="no question to answer yet"):
        ada.answer("A")
    with pytest.raises(LiveQuizUsageError, match="nothing to reveal yet"):
        room.teacher.reveal()
    with pytest.raises(LiveQuizUsageError, match="has no question 'nope'"):
        room.teacher.push(QUIZ, "nope")
    pushed(room)
    with pytest.raises(UsageError, match="options"):
        ada.answer("Z")
    with pytest.raises(TimeoutError, match=r"0\.05 s passed"):
        ada.wait_for(lambda v: v.revealed is not None, 0.05)


def test_disconnect_and_close_leave_no_thread(no_leaks: Snapshot) -> None:
    """After disconnect() a widget does not reconnect; after close() its connection and countdown threads are gone."""
    live = start("test-live-quiz-widgets-close")
    teacher, ada = InstructorQuiz(live), StudentQuiz(live.student_url, "ada")
    try:
        teacher.connect(), ada.connect()
        teacher.push(QUIZ, Q1, seconds=20)
        ada.wait_for(lambda v: v.open, WAIT)
        assert ada.countdown.running
        assert ada.disconnect().startswith("closed") and not ada.countdown.running
        with pytest.raises(LiveQuizUsageError, match="not connected"):
            ada.answer("A")
    finally:
        ada.close(), teacher.close()
        live.stop()
    with pytest.raises(LiveQuizUsageError, match="closed"):
        ada.connect()


def test_a_question_with_several_answers_shows_toggles_and_a_submit_button(no_leaks: Snapshot) -> None:
    """For a `multiple` question each letter is a toggle and Submit sends them; a click that cannot send says why."""
    ada = StudentQuiz("ws://127.0.0.1:1/quiz/student?name={name}", "ada")
    question = {
        "type": "question", "question": "q", "quiz": "z", "quiz_title": "t", "number": 1, "prompt": "p", "code": "",
        "options": [{"letter": x, "text": x} for x in "ABC"], "multiple": True, "seconds": 9, "deadline": 9.0,
        "now": 0.0, "open": True, "answer": None,
    }  # fmt: skip
    try:
        with ada._lock:
            ada._apply(json.dumps(question))
            ada.render()
        assert ada.submit_button in ada.letter_row.children and "choose every right answer" in ada.question_html.value
        ada.submit_button.click()
        assert ada.note == "choose at least one letter, then Submit"
        ada.letter_buttons["A"].value = ada.letter_buttons["C"].value = True
        ada.submit_button.click()
        assert ada.note.startswith("not connected") and "not connected" in ada.header.value
    finally:
        ada.close()
