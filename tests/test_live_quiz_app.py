"""Tests for helpers.live_quiz.app: the quiz protocol with real `websockets` clients against a real server.

Each test starts the server with `helpers.servers.serve` (through start_live_quiz) on loopback and checks what
clients receive, frame by frame. Deadlines are short, and every wait is a bounded receive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from helpers.classroom import Limits
from helpers.live_quiz import LiveQuiz, StudentView, start_live_quiz
from tests.live_quiz_support import QuizClient, client, closed_with
from tests.support import Snapshot

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")
CODE = "maple-42"
LIMITS = Limits(max_message_bytes=300, rate=5.0, burst=6, max_participants=3)
Q1, Q2 = "late-subscriber", "disconnect-codes"  # both keyed A
# Fields that give an answer away, and may appear in nothing a student receives before the reveal.
SECRET_FIELDS = {"correct", "explanation", "claim", "hint", "evidence", "link", "you"}


@pytest.fixture
def live(no_leaks: Snapshot) -> Iterator[LiveQuiz]:
    quiz = start_live_quiz(
        CODE, quizzes=["broadcasting"], name="test-live-quiz", limits=LIMITS, chat=False, show_me=False
    )
    try:
        yield quiz
    finally:
        quiz.stop()


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


async def push(instructor: QuizClient, question: str, seconds: float = 5.0, auto_reveal: bool = True) -> None:
    """Push a question and wait until the instructor's connection has it back."""
    await instructor.send(
        {"type": "push", "quiz": "broadcasting", "question": question, "seconds": seconds, "auto_reveal": auto_reveal}
    )
    await instructor.until("question", lambda frame: frame["question"] == question)


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def test_students_need_the_join_code_and_a_text_only_name(live: LiveQuiz) -> None:
    """No code 4401, a wrong one 4403, a name with markup or the reserved one 4400, each with what to do."""

    async def scenario() -> list[tuple[int | None, str]]:
        return [
            await closed_with(live.url_for("ada", code="")),
            await closed_with(live.url_for("ada", code="maple-43")),
            await closed_with(live.url_for("<b>ada</b>")),
            await closed_with(live.url_for("Instructor")),
        ]

    assert run(scenario()) == [
        (4401, "join code required: add ?code=... (ask your instructor) to the URL"),
        (4403, "wrong join code: check it with your instructor"),
        (4400, "name not allowed: up to 24 letters, digits, spaces or _.'-"),
        (4400, "the name 'instructor' is reserved: pick another"),
    ]


def test_the_instructor_needs_the_key_and_gets_the_catalogue(live: LiveQuiz) -> None:
    """No key 4401, a wrong key 4403; the key opens with the quizzes to pick from; a fourth connection gets 4503."""

    async def scenario() -> tuple[list[tuple[int | None, str]], dict[str, Any], tuple[int | None, str]]:
        refused = [
            await closed_with(live.instructor_url_with("")),
            await closed_with(live.instructor_url_with(live.key[:-1] + "x")),
        ]
        async with client(live.instructor_url) as one, client(live.instructor_url), client(live.instructor_url):
            welcome = await one.next()
            one_too_many = await closed_with(live.instructor_url)
        return refused, welcome, one_too_many

    refused, welcome, one_too_many = run(scenario())
    assert refused == [
        (4401, "instructor key required: add ?key=... (the live quiz's key) to the URL"),
        (4403, "wrong instructor key: use the live quiz's instructor_url"),
    ]
    assert (welcome["type"], welcome["role"], welcome["asked"], welcome["room"]) == ("welcome", "instructor", [], 0)
    assert [quiz["id"] for quiz in welcome["quizzes"]] == ["broadcasting"]
    assert welcome["quizzes"][0]["questions"][0]["id"] == Q1
    assert one_too_many == (4503, "3 instructor connections are open already: close one first")


def test_a_late_joiner_sees_the_current_question_with_the_time_left_on_the_servers_clock(live: LiveQuiz) -> None:
    """A student joining 0.25 s into a 5 s question gets it open with deadline - now <= 4.75 s, whatever their clock."""

    async def scenario() -> list[dict[str, Any]]:
        async with client(live.instructor_url) as instructor:
            await push(instructor, Q1, seconds=5.0)
            pushed = time.monotonic()
            # Time passing is the scenario here (the student comes in late), not a wait for something to happen.
            await asyncio.sleep(0.25)
            async with client(live.url_for("bob")) as bob:
                await bob.until("question")
                assert time.monotonic() - pushed < 4.0, "the machine is too busy for this test's timing"
                return bob.frames

    frames = run(scenario())
    assert [frame["type"] for frame in frames] == ["welcome", "question"]
    question = frames[1]
    assert (question["question"], question["open"], question["answer"]) == (Q1, True, None)
    assert 1.0 < question["deadline"] - question["now"] <= 4.75
    view = StudentView(clock=lambda: 1e9)  # a student's clock nowhere near the server's
    view.apply_all(frames)
    remaining = view.remaining()
    assert remaining is not None and remaining == pytest.approx(question["deadline"] - question["now"])


def test_a_student_who_reconnects_keeps_score_answer_and_clock(live: LiveQuiz) -> None:
    """Rejoining as 'ADA' is ada again: her score, the open question with her answer and time left; no second go."""

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with client(live.instructor_url) as instructor:
            async with client(live.url_for("ada")) as ada:
                await push(instructor, Q1)
                assert (await ada.answer(Q1, "A"))["type"] == "answered"
                await instructor.send({"type": "reveal", "question": Q1})
                await ada.until("revealed")
                await push(instructor, Q2)
                assert (await ada.answer(Q2, "B"))["type"] == "answered"
            await instructor.until("progress", lambda frame: frame["room"] == 0)  # the server saw her go
            async with client(live.url_for("ADA")) as again:
                welcome, question = await again.next(), await again.next()
                return welcome, question, await again.answer(Q2, "A")

    welcome, question, second_go = run(scenario())
    assert (welcome["name"], welcome["score"], welcome["rank"]) == ("ada", 2, 1)
    assert (question["question"], question["answer"], question["open"]) == (Q2, ["B"], True)
    assert 0 < question["deadline"] - question["now"] < 5.0
    assert second_go == {
        "type": "refused",
        "question": Q2,
        "reason": "you already answered this question (B): one answer per question",
    }


def test_one_answer_each_as_themselves_and_only_letters(live: LiveQuiz) -> None:
    """A second answer is refused; a message naming someone else or holding markup is an error; rows show one answer."""

    async def scenario() -> list[dict[str, Any]]:
        async with (
            client(live.instructor_url) as instructor,
            client(live.url_for("ada")) as ada,
            client(live.url_for("bob")),
        ):
            await push(instructor, Q1)
            replies = [await ada.answer(Q1, "B"), await ada.answer(Q1, "A")]
            await ada.send({"type": "answer", "question": Q1, "answer": ["A"], "name": "bob"})
            replies.append(await ada.reply())
            replies.append(await ada.answer(Q1, "<b>A</b>"))
            return replies

    answered, again, as_bob, markup = run(scenario())
    assert (answered["type"], answered["answer"]) == ("answered", ["B"])
    assert "correct" not in answered and "points" not in answered  # right or not waits for the reveal
    assert (again["type"], again["reason"]) == (
        "refused",
        "you already answered this question (B): one answer per question",
    )
    assert as_bob == {
        "type": "error",
        "reason": "the 'answer' message takes only answer, question, type, not 'name' "
        "(you answer as the name you joined with)",
    }
    assert markup["type"] == "error" and "<" not in markup["reason"]
    assert [(row["name"], row["answer"]) for row in live.rows()] == [("ada", "B")]


def test_answers_after_the_deadline_or_the_reveal_are_refused(live: LiveQuiz) -> None:
    """Past the deadline (not revealed yet) an answer is too late, after the reveal too; auto-reveal reveals in time."""

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with client(live.instructor_url) as instructor, client(live.url_for("ada")) as ada:
            await push(instructor, Q1, seconds=0.3, auto_reveal=False)
            await ada.until("time_up")
            late = await ada.answer(Q1, "A")
            await instructor.send({"type": "reveal", "question": Q1})
            await ada.until("revealed")
            after_reveal = await ada.answer(Q1, "A")
            await push(instructor, Q2, seconds=0.3)  # auto-reveal: the deadline reveals it
            return late, after_reveal, await ada.until("revealed")

    late, after_reveal, by_time = run(scenario())
    assert (late["type"], late["reason"]) == ("refused", "too late: the time for this question is up")
    assert after_reveal["reason"] == "too late: the answer to this question has been revealed"
    assert (by_time["question"], by_time["by"], by_time["you"]["answer"]) == (Q2, "time", None)


def test_an_answer_to_an_unknown_question_or_before_any_is_refused(live: LiveQuiz) -> None:
    """Before a push there is nothing to answer; after it, another id is refused naming the current question."""

    async def scenario() -> list[dict[str, Any]]:
        async with client(live.instructor_url) as instructor, client(live.url_for("ada")) as ada:
            replies = [await ada.answer(Q1, "A")]
            await push(instructor, Q1)
            replies.append(await ada.answer("no-such-question", "A"))
            return replies

    before, unknown = run(scenario())
    assert before["reason"] == "no question yet: wait for the instructor to push one"
    assert unknown == {
        "type": "refused",
        "question": "no-such-question",
        "reason": "unknown question: the current question is 'late-subscriber'",
    }


def test_the_round_runs_on_without_the_instructor_who_gets_it_all_back_on_reconnecting(live: LiveQuiz) -> None:
    """The instructor leaves mid-question: students are told, answer, get the reveal in time; the key rejoins."""

    async def scenario() -> tuple[QuizClient, list[dict[str, Any]]]:
        async with client(live.url_for("ada")) as ada:
            async with client(live.instructor_url) as instructor:
                await push(instructor, Q1, seconds=0.6)
            await ada.until("instructor", lambda frame: frame["connected"] is False)
            assert (await ada.answer(Q1, "A"))["type"] == "answered"
            await ada.until("revealed")
            async with client(live.instructor_url) as again:
                await again.until("revealed")
                await ada.until("instructor", lambda frame: frame["connected"] is True)
                return ada, again.frames

    ada, instructor_frames = run(scenario())
    assert [frame["type"] for frame in ada.frames] == [
        "welcome", "instructor", "question", "instructor", "answered", "revealed", "instructor",
    ]  # fmt: skip
    assert ada.frames[5]["you"] == {"answer": ["A"], "correct": True, "points": 2, "score": 2, "rank": 1}
    assert [frame["type"] for frame in instructor_frames] == ["welcome", "question", "progress", "revealed"]
    welcome, _, progress, revealed = instructor_frames
    assert (welcome["asked"], progress["answered"], progress["room"]) == ([Q1], 1, 1)
    assert (revealed["by"], revealed["counts"], revealed["leaderboard"]) == (
        "time",
        {"A": 1, "B": 0, "C": 0, "D": 0},
        [{"rank": 1, "name": "ada", "score": 2}],
    )


def test_no_frame_before_the_reveal_holds_the_key_or_the_explanation(live: LiveQuiz) -> None:
    """Every frame two students (and the instructor) receive before 'revealed' lacks the key, explanation and claims."""
    question = live.room.session.bank.quizzes["broadcasting"].question(Q1)

    async def scenario() -> list[QuizClient]:
        async with client(live.instructor_url) as instructor, client(live.url_for("ada")) as ada:
            await push(instructor, Q1)
            async with client(live.url_for("bob")) as bob:  # joins mid-question
                await ada.answer(Q1, "A")
                await bob.answer(Q1, "C")
                await bob.answer(Q1, "A")  # refused: one answer each
                await bob.send("not json")
                await bob.reply()
                await instructor.until("progress", lambda frame: frame["answered"] == 2)
                await instructor.send({"type": "reveal", "question": Q1})
                for who in (ada, bob, instructor):
                    await who.until("revealed")
                return [ada, bob, instructor]

    for who in run(scenario()):
        kinds = [frame["type"] for frame in who.frames]
        before = who.texts[: kinds.index("revealed")]
        assert before, "nothing was received before the reveal"
        for text in before:
            assert not all_keys(json.loads(text)) & SECRET_FIELDS, text
            assert question.explanation not in text and question.options[0].claim not in text
        reveal = who.frames[kinds.index("revealed")]
        assert (reveal["correct"], reveal["explanation"]) == (["A"], question.explanation)


def test_a_student_who_floods_is_closed_with_4429_and_the_room_carries_on(live: LiveQuiz) -> None:
    """Burst 6 at 5/s: ten quick messages close the sender with 4429 and the limit; the instructor is unaffected."""

    async def scenario() -> tuple[tuple[int | None, str], dict[str, Any]]:
        async with client(live.instructor_url) as instructor:
            await push(instructor, Q1)
            flood = [json.dumps({"type": "answer", "question": Q1, "answer": ["A"]})] * 10
            closed = await closed_with(live.url_for("eve"), send=list(flood))
            # eve's first answer counted (answered 1), then she was closed (room 0 again)
            return closed, await instructor.until("progress", lambda f: (f["answered"], f["room"]) == (1, 0))

    closed, progress = run(scenario())
    assert closed == (4429, "too many messages: the limit is 5 per second, 6 at once")
    assert progress["counts"] == {"A": 1, "B": 0, "C": 0, "D": 0}  # the first of the flood counted, once


def test_the_classrooms_size_and_room_limits_apply(live: LiveQuiz) -> None:
    """Over 300 bytes 1009, binary 1003, a connected name 4409, a fourth student in a room of three 4503."""

    async def scenario() -> list[tuple[int | None, str]]:
        seen = [
            await closed_with(live.url_for("eve"), send=["x" * 301]),
            await closed_with(live.url_for("eve"), send=[b"\x00"]),
        ]
        async with client(live.url_for("ada")), client(live.url_for("bob")), client(live.url_for("cy")):
            seen.append(await closed_with(live.url_for("Ada")))
            seen.append(await closed_with(live.url_for("dan")))
        return seen

    assert run(scenario()) == [
        (1009, "message too big: the limit is 300 bytes"),
        (1003, "text messages only"),
        (4409, "the name 'Ada' is connected already: close that connection first, or pick another"),
        (4503, "the room is full (3 people)"),
    ]


def test_an_instructor_command_that_cannot_work_gets_an_error_and_the_connection_stays(live: LiveQuiz) -> None:
    """An unknown quiz, a push before the reveal, revealing another question, bad JSON: an error each, still open."""

    async def scenario() -> list[str]:
        async with client(live.instructor_url) as instructor:
            await instructor.next()
            await instructor.send({"type": "push", "quiz": "nope", "question": Q1})
            reasons = [(await instructor.until("error"))["reason"]]
            await push(instructor, Q1)
            for message in (
                {"type": "push", "quiz": "broadcasting", "question": Q2},
                {"type": "reveal", "question": Q2},
                "{",
            ):
                await instructor.send(message)
                reasons.append((await instructor.until("error"))["reason"])
            return reasons

    assert run(scenario()) == [
        "no quiz 'nope' in this session: pick one of broadcasting",
        "question 'late-subscriber' is not revealed yet: reveal it before the next",
        "the current question is 'late-subscriber', not 'disconnect-codes'",
        'not JSON: send one JSON object per message, such as {"type": "answer", ...}',
    ]
