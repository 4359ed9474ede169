"""Tests for helpers.live_quiz.session: the rules of a class quiz, driven by calls and a fake clock (no server)."""

from __future__ import annotations

import pytest

from helpers.live_quiz.session import AnswerRefused, LiveQuizError, LiveSession, QuestionBank, Standing

pytestmark = pytest.mark.timeout(10)

BANK = QuestionBank(["broadcasting"])
SINGLE = "late-subscriber"  # one right answer: A
MULTIPLE = "startup-code"  # two right answers: B and D


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def session(clock: Clock) -> LiveSession:
    quiz = LiveSession(BANK, clock=clock, wall_clock=lambda: 1_700_000_000.0)
    for name in ("ada", "bob", "cy"):
        quiz.join(name)
    return quiz


def refusal(session: LiveSession, name: str, question: str, *letters: str) -> str:
    with pytest.raises(AnswerRefused) as refused:
        session.answer(name, question, letters)
    return refused.value.reason


def test_a_student_answers_once_per_question(session: LiveSession) -> None:
    """The first answer counts; a second one, even a different one, is refused with a reason."""
    session.push("broadcasting", SINGLE, 30)
    first = session.answer("ada", SINGLE, ["B"])
    assert (first.letters, first.correct, first.points) == (frozenset("B"), False, 0)
    assert refusal(session, "ada", SINGLE, "A") == "you already answered this question (B): one answer per question"
    assert refusal(session, "ADA", SINGLE, "A").startswith("you already answered")  # a name is case-insensitive
    assert session.current is not None and list(session.current.answers) == ["ada"]


def test_an_answer_at_or_after_the_deadline_is_refused_even_before_the_timer(
    session: LiveSession, clock: Clock
) -> None:
    """Just before the deadline an answer counts; at it, it is refused though nobody called close_round yet."""
    session.push("broadcasting", SINGLE, 10)
    clock.now += 9.999
    assert session.answer("ada", SINGLE, ["A"]).seconds == pytest.approx(9.999)
    clock.now += 0.001
    assert refusal(session, "bob", SINGLE, "A") == "too late: the time for this question is up"


def test_after_the_reveal_answers_are_refused_and_points_count(session: LiveSession) -> None:
    """Points show only once the round is revealed; an answer after the reveal is refused."""
    session.push("broadcasting", SINGLE, 30)
    session.answer("ada", SINGLE, ["A"])
    assert session.score("ada") == 0  # right, but not revealed: nothing shows yet
    session.reveal(SINGLE)
    assert session.score("ada") == 2
    assert refusal(session, "bob", SINGLE, "A") == "too late: the answer to this question has been revealed"


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("no-such-question", "unknown question: the current question is 'disconnect-codes'"),
        (SINGLE, "that question is over: the current question is 'disconnect-codes'"),
    ],
)
def test_an_answer_to_another_question_is_refused(session: LiveSession, question: str, reason: str) -> None:
    """An unknown id and an earlier question's id are both refused, naming the current question."""
    session.push("broadcasting", SINGLE, 30)
    session.reveal()
    session.push("broadcasting", "disconnect-codes", 30)
    assert refusal(session, "ada", question, "A") == reason


def test_before_any_push_there_is_nothing_to_answer(session: LiveSession) -> None:
    """An answer before the first question is refused with what to wait for."""
    assert refusal(session, "ada", SINGLE, "A") == "no question yet: wait for the instructor to push one"


def test_letters_must_be_the_questions_and_single_questions_take_one(session: LiveSession) -> None:
    """A letter the question does not have, or two for a one-answer question, is refused saying what is valid."""
    session.push("broadcasting", SINGLE, 30)
    assert refusal(session, "ada", SINGLE, "E") == "choose among A, B, C, D"
    assert refusal(session, "ada", SINGLE, "A", "B") == "this question has one right answer: choose a single letter"
    assert session.current is not None and session.current.answers == {}


def test_a_multiple_answer_question_counts_every_letter_and_needs_the_exact_set(session: LiveSession) -> None:
    """Each chosen letter adds to its bar; only exactly B and D is right."""
    session.push("broadcasting", MULTIPLE, 30)
    session.answer("ada", MULTIPLE, ["B", "D"])
    session.answer("bob", MULTIPLE, ["B"])
    played = session.reveal()
    assert played.counts() == {"A": 0, "B": 2, "C": 0, "D": 1}
    assert [(a.name, a.correct, a.points) for a in played.answers.values()] == [("ada", True, 2), ("bob", False, 0)]


def test_the_leaderboard_is_kept_by_name_across_reconnections_and_ties_share_a_rank(session: LiveSession) -> None:
    """A student who leaves and rejoins with the name in another case keeps their points; equal scores rank equal."""
    session.push("broadcasting", SINGLE, 30)
    session.answer("ada", SINGLE, ["A"])
    session.answer("bob", SINGLE, ["A"])
    session.reveal()
    session.leave("ada")
    assert session.room() == 2
    assert session.join("Ada").name == "ada"
    assert session.room() == 3
    assert session.leaderboard() == [
        Standing(1, "ada", 2, 1, 1),
        Standing(1, "bob", 2, 1, 1),
        Standing(3, "cy", 0, 0, 0),
    ]
    assert (session.rank("ADA"), session.rank("cy"), session.rank("zoe")) == (1, 3, None)


@pytest.mark.parametrize(
    ("quiz", "question", "seconds", "message"),
    [
        ("nope", SINGLE, 30, "no quiz 'nope' in this session: pick one of broadcasting"),
        ("broadcasting", "nope", 30, "quiz 'broadcasting' has no question 'nope': pick one of late-subscriber, "),
        ("broadcasting", SINGLE, 0, "seconds must be above 0 and at most 600, got 0"),
        ("broadcasting", SINGLE, 601, "seconds must be above 0 and at most 600, got 601"),
    ],
)
def test_push_refuses_what_the_bank_does_not_hold(
    session: LiveSession, quiz: str, question: str, seconds: float, message: str
) -> None:
    """An unknown quiz or question, or an impossible time, raises LiveQuizError saying what to pick."""
    with pytest.raises(LiveQuizError) as error:
        session.push(quiz, question, seconds)
    assert str(error.value).startswith(message)


def test_push_waits_for_the_reveal_and_asks_each_question_once(session: LiveSession) -> None:
    """A new round needs the current one revealed, and a question already asked is refused."""
    played = session.push("broadcasting", SINGLE)
    assert played.seconds == 120 and played.deadline == 1120.0  # the question's own time limit by default
    with pytest.raises(LiveQuizError, match="question 'late-subscriber' is not revealed yet: reveal it before"):
        session.push("broadcasting", MULTIPLE, 30)
    session.reveal()
    with pytest.raises(LiveQuizError, match="was asked already in this session: pick another"):
        session.push("broadcasting", SINGLE, 30)


def test_close_round_closes_only_the_current_round_once(session: LiveSession) -> None:
    """The deadline of the current round closes it once; a stale round number or a revealed round is left alone."""
    played = session.push("broadcasting", SINGLE, 30)
    assert session.close_round(played.number + 1) is None
    assert session.close_round(played.number) is played and played.closed
    assert session.close_round(played.number) is None
    assert refusal(session, "ada", SINGLE, "A") == "too late: the time for this question is up"


def test_reveal_refuses_what_cannot_be_revealed(session: LiveSession) -> None:
    """Nothing pushed, another question's id, or a second reveal: LiveQuizError saying what to do."""
    with pytest.raises(LiveQuizError, match="nothing to reveal: push a question first"):
        session.reveal()
    session.push("broadcasting", SINGLE, 30)
    with pytest.raises(LiveQuizError, match="the current question is 'late-subscriber', not 'other'"):
        session.reveal("other")
    assert session.reveal(by="time").revealed_by == "time"
    with pytest.raises(LiveQuizError, match="is revealed already: push the next one"):
        session.reveal()


def test_a_bank_needs_a_quiz() -> None:
    """An empty list of quizzes is refused, naming the available ones."""
    with pytest.raises(LiveQuizError, match=r"needs at least one quiz; available: .*broadcasting"):
        QuestionBank([])
