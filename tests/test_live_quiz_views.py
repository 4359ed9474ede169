"""Tests for helpers.live_quiz.views: a student's and an instructor's state, built from server messages alone."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.live_quiz import protocol as wire
from helpers.live_quiz.session import LiveSession, QuestionBank
from helpers.live_quiz.views import InstructorView, LiveQuizUsageError, ServerDeadline, StudentView

pytestmark = pytest.mark.timeout(10)


class Clock:
    """A local clock the test moves by hand, deliberately nowhere near the server's."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def messages() -> dict[str, dict[str, Any]]:
    """Real server messages for one round that ada answers right, as the server builds them (server clock at 500)."""
    server_now = [500.0]
    session = LiveSession(QuestionBank(["broadcasting"]), clock=lambda: server_now[0])
    session.join("ada")
    played = session.push("broadcasting", "late-subscriber", 30)
    server_now[0] = 510.0  # the message is sent 10 s into the round: 20 s left
    question = wire.question_message(played, server_now[0])
    answer = session.answer("ada", "late-subscriber", ["A"])
    progress = wire.progress_message(played, 3)
    session.reveal()
    revealed = wire.revealed_message(played, session.leaderboard())
    return {
        "welcome": wire.student_welcome("ada", 0, 1, True),
        "question": question,
        "answered": wire.answered_message(answer, "late-subscriber"),
        "progress": progress,
        "revealed": revealed,
        "mine": {**revealed, "you": wire.you_part(answer, 2, 1)},
    }


def test_remaining_time_comes_from_the_servers_deadline_and_now_not_the_local_clock() -> None:
    """A view whose clock reads 10**9 still shows 20 s left, then counts down locally, and 0 once time is up."""
    local = Clock(1e9)
    view = StudentView(clock=local)
    view.apply(wire.encode(messages()["question"]))
    assert view.remaining() == pytest.approx(20.0)
    local.now += 5.5
    assert view.remaining() == pytest.approx(14.5)
    view.apply({"type": "time_up", "question": "late-subscriber"})
    assert (view.open, view.remaining()) == (False, 0.0)
    assert ServerDeadline(3.0, 10.0).remaining(20.0) == 0.0


def test_a_student_view_follows_a_round_from_welcome_to_result() -> None:
    """Welcome, question, answered, refused and the reveal set the name, answer, notice, result and score."""
    seen = messages()
    view = StudentView(clock=Clock(0.0))
    assert view.status() == "(not joined) · 0 points · no question yet"
    for kind in ("welcome", "question", "answered"):
        view.apply(wire.encode(seen[kind]))
    assert (view.name, view.instructor_here, view.answer, view.question_id) == ("ada", True, ["A"], "late-subscriber")
    assert view.status() == "ada · 0 points · question 1: 0:20 left · you answered A"
    view.apply(wire.encode(wire.refused_message("you already answered this question (A)", "late-subscriber")))
    assert view.notice == "you already answered this question (A)"
    view.apply(wire.encode(seen["mine"]))
    assert view.result is not None and (view.result["correct"], view.score, view.rank) == (True, 2, 1)
    assert view.leaderboard == [{"rank": 1, "name": "ada", "score": 2}]
    assert view.status() == "ada · 2 points · question 1: revealed, the answer is A · you answered A"
    view.apply({"type": "instructor", "connected": False})
    assert view.instructor_here is False


def test_an_instructor_view_keeps_the_histogram_and_the_room() -> None:
    """Progress sets answered, room and the bars; a question resets them; the reveal's counts are final."""
    seen = messages()
    view = InstructorView(clock=Clock(0.0))
    view.apply(wire.encode(wire.instructor_welcome([], [], 2)))
    view.apply(seen["question"])
    assert (view.counts, view.asked, view.room) == ({"A": 0, "B": 0, "C": 0, "D": 0}, ["late-subscriber"], 2)
    view.apply(seen["progress"])
    assert (view.answered, view.room, view.counts["A"]) == (1, 3, 1)
    assert view.status() == "1 of 3 answered · A:1 B:0 C:0 D:0 · question 1: 0:20 left"
    view.apply(seen["revealed"])
    assert view.revealed is not None and view.remaining() == 0.0
    assert view.reveal_text() == wire.reveal_text("late-subscriber")


def test_unknown_types_are_ignored_and_errors_kept() -> None:
    """A message type the view does not know is counted and skipped; an error's reason is kept."""
    view = InstructorView()
    assert view.apply('{"type": "from-a-newer-server"}') == "from-a-newer-server"
    view.apply(wire.encode(wire.error_message("question 'x' is not revealed yet")))
    assert (view.received, view.ignored, view.error) == (2, 1, "question 'x' is not revealed yet")


def test_a_view_asked_for_what_it_cannot_give_says_what_to_wait_for() -> None:
    """Answering or revealing before any question raises LiveQuizUsageError; non-JSON text raises ProtocolError."""
    with pytest.raises(LiveQuizUsageError, match="no question to answer yet: wait for the instructor"):
        StudentView().answer_text(["A"])
    with pytest.raises(LiveQuizUsageError, match="nothing to reveal yet: push a question first"):
        InstructorView().reveal_text()
    with pytest.raises(wire.ProtocolError, match="not JSON"):
        StudentView().apply("<html>")


def test_a_welcome_forgets_the_round_of_a_session_that_ended() -> None:
    """A new welcome (a reconnect, maybe to a restarted server) clears the round; the server resends the current one."""
    round_messages = messages()
    student = StudentView(clock=Clock(3.0))
    student.apply_all(round_messages[kind] for kind in ("welcome", "question", "answered"))
    student.apply(wire.student_welcome("ada", 0, None, False))
    assert (student.question, student.open, student.remaining(), student.answer) == (None, False, None, None)
    instructor = InstructorView(clock=Clock(3.0))
    instructor.apply_all([wire.instructor_welcome([], [], 3), round_messages["question"], round_messages["progress"]])
    instructor.apply(wire.instructor_welcome([], [], 0))
    assert (instructor.question, instructor.answered, instructor.counts) == (None, 0, {})
