"""Tests for helpers.live_quiz.handle: starting a live quiz, its URLs, its results, the chat beside it, stopping."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.clients import attempt_sync
from helpers.live_quiz import ROW_FIELDS, LiveQuiz, exposure_notice_for_quiz, start_live_quiz
from helpers.usage import UsageError, UsageTypeError
from tests.live_quiz_support import client
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(30)

CODE = "maple-42"
Q1 = "late-subscriber"


@pytest.fixture
def live(no_leaks: Snapshot) -> Iterator[LiveQuiz]:
    quiz = start_live_quiz(CODE, quizzes=["broadcasting"], name="test-live-quiz-handle", show_me=False)
    try:
        yield quiz
    finally:
        quiz.stop()


def test_the_handle_gives_the_urls_and_keeps_the_key_out_of_its_repr(live: LiveQuiz) -> None:
    """Students get a URL with the code and {name}; only instructor_url holds the key, which the repr leaves out."""
    assert live.student_url == live.server.ws_url(f"/quiz/student?code={CODE}&name={{name}}")
    assert live.url_for("ada lovelace").endswith("/quiz/student?code=maple-42&name=ada%20lovelace")
    assert live.instructor_url.endswith(f"/quiz/instructor?key={live.key}") and len(live.key) >= 20
    assert live.key not in repr(live) and live.key not in live.student_url
    assert repr(live) == "<LiveQuiz 'test-live-quiz-handle' running, loopback only, 0 rounds>"


def test_results_and_the_leaderboard_come_back_through_the_handle(live: LiveQuiz, tmp_path: Path) -> None:
    """After a round, rows(), csv(), write_csv() and leaderboard() say who answered what, on the server's data."""

    async def scenario() -> None:
        async with (
            client(live.instructor_url) as instructor,
            client(live.url_for("ada")) as ada,
            client(live.url_for("bob")) as bob,
        ):
            await instructor.send({"type": "push", "quiz": "broadcasting", "question": Q1, "seconds": 5})
            await ada.until("question")
            await ada.answer(Q1, "A")
            await bob.until("question")
            await bob.answer(Q1, "D")
            await instructor.send({"type": "reveal", "question": Q1})
            await ada.until("revealed")

    asyncio.run(scenario())
    rows = live.rows()
    assert [(r["name"], r["answer"], r["correct"], r["points"]) for r in rows] == [
        ("ada", "A", True, 2),
        ("bob", "D", False, 0),
    ]
    assert tuple(next(csv.reader(io.StringIO(live.csv())))) == ROW_FIELDS
    assert live.write_csv(tmp_path / "r.csv").read_bytes().decode() == live.csv()
    assert [(s.rank, s.name, s.score) for s in live.leaderboard()] == [(1, "ada", 2), (2, "bob", 0)]


def test_the_classroom_chat_runs_beside_the_quiz_with_the_same_code(live: LiveQuiz) -> None:
    """With chat (the default), /chat on the same server admits the join code; the handle has its Classroom."""
    classroom = live.classroom
    assert classroom is not None and classroom.code == CODE
    outcome = attempt_sync(classroom.url_for("eve"), receive=1)
    assert outcome.opened and outcome.messages == ["* eve joined (1 here)"]


def test_stop_tells_everyone_the_quiz_is_over_and_can_be_called_twice(no_leaks: Snapshot) -> None:
    """stop() closes students and instructors with 1001 'the quiz is over'; a second stop() does nothing."""
    live = start_live_quiz(quizzes=["broadcasting"], name="test-live-quiz-stop", chat=False, show_me=False)
    assert live.classroom is None and len(live.code) == 6

    async def scenario() -> list[tuple[int | None, str]]:
        async with client(live.url_for("ada")) as ada, client(live.instructor_url) as instructor:
            await ada.next()
            await instructor.next()
            await asyncio.get_running_loop().run_in_executor(None, live.stop)
            return [await ada.closed(), await instructor.closed()]

    try:
        assert asyncio.run(scenario()) == [(1001, "the quiz is over")] * 2
    finally:
        live.stop()
    live.stop()
    assert not live.server.running


def test_start_live_quiz_refuses_arguments_that_cannot_work(no_leaks: Snapshot) -> None:
    """A lone quiz name, a wrong limits type or an empty code raise one clear usage error, and nothing starts."""
    with pytest.raises(UsageTypeError, match=r"quizzes must be a list of names, got a single str; write quizzes=\['b"):
        start_live_quiz(quizzes="broadcasting")
    with pytest.raises(UsageTypeError, match=r"limits must be a helpers\.classroom\.Limits, not dict"):
        start_live_quiz(limits={"rate": 1})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="code is empty"):
        start_live_quiz(" ")


def test_the_notice_for_a_quiz_beyond_loopback_gives_students_their_quiz_cell() -> None:
    """The notice for a quiz on 0.0.0.0 names the address students use, their StudentQuiz cell with the quiz URL,
    the chat URL beside it, and the warning, telling the instructor to stop it with live.stop()."""
    notice = exposure_notice_for_quiz("0.0.0.0", 8765, "maple 42", address="192.0.2.10", dry_run=True)
    assert notice.startswith("DRY RUN: nothing is listening. A real start would listen on ALL network interfaces")
    assert 'StudentQuiz("ws://192.0.2.10:8765/quiz/student?code=maple%2042&name={name}", "<your name>")' in notice
    assert "ws://192.0.2.10:8765/chat?code=maple%2042&name={name}" in notice
    quiz_line, warning = notice.index("StudentQuiz("), notice.index("WARNING: listening on ALL network interfaces")
    assert quiz_line < warning
    assert "call live.stop() when the class ends" in " ".join(notice.split())
    assert "classroom.stop()" not in notice
