"""Tests for helpers.live_quiz.show_me: at the reveal the server runs the question's real experiment once, for
everyone, and a student who joins later gets the same copy."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from helpers.evidence import Evidence, EvidenceError
from helpers.live_quiz import LiveQuiz, StudentView, start_live_quiz
from helpers.live_quiz.show_me import ShowMe, run_evidence
from tests.live_quiz_support import QuizClient, client
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(40)

CODE = "maple-42"
QUESTION = "late-subscriber"  # keyed A; its experiment serves a broadcaster chat with three clients


class CountingRunner:
    """The real `run_evidence`, counting its calls and the threads they ran on."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threads: list[str] = []

    def __call__(self, name: str) -> Evidence:
        self.calls.append(name)
        self.threads.append(threading.current_thread().name)
        return run_evidence(name)


@pytest.fixture
def live(no_leaks: Snapshot) -> Iterator[LiveQuiz]:
    quiz = start_live_quiz(CODE, quizzes=["broadcasting"], name="test-live-quiz-show-me", chat=False)
    try:
        yield quiz
    finally:
        quiz.stop()


async def drain(who: QuizClient) -> None:
    """Receive (and keep in `frames`) whatever has arrived, until nothing comes for 0.1 s."""
    with contextlib.suppress(TimeoutError):
        while True:
            await who.next(timeout=0.1)


async def push_and_reveal(instructor: QuizClient, students: list[QuizClient]) -> None:
    await instructor.send({"type": "push", "quiz": "broadcasting", "question": QUESTION, "seconds": 30})
    await instructor.until("question")
    for student in students:
        await student.until("question")
    await students[0].answer(QUESTION, "A")
    await students[1].answer(QUESTION, "C")
    await instructor.send({"type": "reveal", "question": QUESTION})


def test_the_reveal_runs_the_experiment_once_and_everyone_gets_the_same_evidence(live: LiveQuiz) -> None:
    """Two students and the instructor each receive one evidence frame after 'revealed', from one run off the loop;
    it demonstrates the key (A) and refutes the rest, and a student who joins afterwards gets it without a rerun."""
    runner = CountingRunner()
    live.room.show_me = ShowMe(runner)

    async def scenario() -> tuple[list[QuizClient], QuizClient]:
        async with (
            client(live.instructor_url) as instructor,
            client(live.url_for("ada")) as ada,
            client(live.url_for("bob")) as bob,
        ):
            await push_and_reveal(instructor, [ada, bob])
            for who in (instructor, ada, bob):
                await who.until("evidence", timeout=15)
            async with client(live.url_for("cy")) as late:
                await late.until("evidence")
                await asyncio.sleep(0.2)  # room for a second evidence frame, if the server wrongly sent one
                for who in (instructor, ada, bob, late):
                    await drain(who)
            return [instructor, ada, bob], late

    everyone, late = asyncio.run(scenario())
    assert runner.calls == ["late_subscriber"]
    assert runner.threads[0].startswith("asyncio_")  # the loop's default executor: the quiz's loop kept serving
    frames = [[f for f in who.frames if f["type"] == "evidence"] for who in [*everyone, late]]
    assert all(len(mine) == 1 for mine in frames)
    first = frames[0][0]
    assert all(mine[0] == first for mine in frames)
    assert (first["demonstrated"], first["refuted"], first["error"]) == (["A"], ["B", "C", "D"], "")
    assert first["lines"] and first["title"].startswith("broadcaster chat (memory://)")
    for who in everyone:
        kinds = [f["type"] for f in who.frames]
        assert kinds.index("revealed") < kinds.index("evidence")
    view = StudentView()
    view.apply_all(late.frames)
    assert view.evidence_text().startswith("Show me: broadcaster chat")
    assert view.evidence_text().endswith("demonstrated: A · refuted: B, C, D")


def test_an_experiment_that_cannot_run_reaches_the_room_as_its_reason(live: LiveQuiz) -> None:
    """An experiment that raises EvidenceError still gives one evidence frame, with the reason and no letters."""

    def missing(name: str) -> Evidence:
        raise EvidenceError(f"{name} needs redis-server: apt-get install redis-server")

    live.room.show_me = ShowMe(missing)

    async def scenario() -> QuizClient:
        async with (
            client(live.instructor_url) as instructor,
            client(live.url_for("ada")) as ada,
            client(live.url_for("bob")) as bob,
        ):
            await push_and_reveal(instructor, [ada, bob])
            await bob.until("evidence")
            return bob

    bob = asyncio.run(scenario())
    frame = bob.frames[-1]
    assert frame["error"] == "late_subscriber needs redis-server: apt-get install redis-server"
    assert (frame["demonstrated"], frame["refuted"], frame["lines"]) == ([], [], [])
    view = StudentView()
    view.apply_all(bob.frames)
    assert view.evidence_text() == f"Show me could not run: {frame['error']}"


def test_stopping_the_quiz_mid_experiment_waits_for_it(live: LiveQuiz) -> None:
    """live.stop() while the experiment runs returns only after it finished, so its servers are stopped too."""
    started, runner = threading.Event(), CountingRunner()

    def slow(name: str) -> Evidence:
        started.set()
        return runner(name)

    live.room.show_me = ShowMe(slow)

    async def scenario() -> None:
        async with (
            client(live.instructor_url) as instructor,
            client(live.url_for("ada")) as ada,
            client(live.url_for("bob")) as bob,
        ):
            await push_and_reveal(instructor, [ada, bob])
            await instructor.until("revealed")

    asyncio.run(scenario())
    assert started.wait(5)
    live.stop()
    assert runner.calls == ["late_subscriber"]
    assert live.room.show_me.running() == []
