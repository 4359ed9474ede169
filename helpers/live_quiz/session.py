"""The live quiz's state on the server: the question bank, the rounds, one answer per student per question, the scores.

No sockets and no event loop here: `LiveSession` is driven by calls (`join`, `push`, `answer`, `close_round`,
`reveal`) and reads time from the `clock` it is given, so every rule is tested without a server or a wait.
`helpers.live_quiz.app` calls it from the server's loop and turns what it returns into messages.

The rules:

- A round is one question pushed by the instructor, with a deadline on the server's clock. It accepts answers
  until the deadline or until it is revealed, whichever comes first; `close_round` is "the deadline passed"
  (the server's timer), and an answer that arrives after the deadline is refused even if the timer is late.
- One answer per student per round; a student is their name, case-insensitive (`Ada` and `ada` are one), so a
  student who reconnects with the same name keeps their answers and score.
- Points as in the single-player engine (`helpers.quiz.scoring`), with one attempt: 2 for a right answer,
  0 otherwise. They count, and show, only once the round is revealed: a score that rose right after an
  answer would tell the student (and their neighbours) that it was right.
- A question is asked at most once per session (its id names the round in answers), and a new round can
  start only once the current one is revealed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from helpers.quiz.data import MAX_TIME_LIMIT, Question, Quiz, available_quizzes, load_quiz
from helpers.quiz.scoring import Attempt, QuestionRecord

__all__ = [
    "AnswerRefused",
    "LiveQuizError",
    "LiveSession",
    "QuestionBank",
    "Round",
    "Standing",
    "StudentAnswer",
    "StudentRecord",
    "name_key",
]


class LiveQuizError(RuntimeError):
    """An instructor's command that cannot work in the quiz's state; the message says what to do."""


class AnswerRefused(ValueError):
    """A student's answer that does not count; `reason` is what the student is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def name_key(name: str) -> str:
    """The key a student is known by: their name, case-insensitive."""
    return name.casefold()


class QuestionBank:
    """The quizzes a session may ask from, by quiz id (each a validated `helpers.quiz.data.Quiz`)."""

    def __init__(self, quizzes: Iterable[Quiz | str] | None = None) -> None:
        chosen = available_quizzes() if quizzes is None else list(quizzes)
        loaded = [quiz if isinstance(quiz, Quiz) else load_quiz(quiz) for quiz in chosen]
        if not loaded:
            raise LiveQuizError(f"a live quiz needs at least one quiz; available: {', '.join(available_quizzes())}")
        self.quizzes: dict[str, Quiz] = {quiz.id: quiz for quiz in loaded}

    def find(self, quiz_id: str, question_id: str) -> tuple[Quiz, Question]:
        quiz = self.quizzes.get(quiz_id)
        if quiz is None:
            raise LiveQuizError(f"no quiz {quiz_id!r} in this session: pick one of {', '.join(self.quizzes)}")
        for question in quiz.questions:
            if question.id == question_id:
                return quiz, question
        ids = ", ".join(q.id for q in quiz.questions)
        raise LiveQuizError(f"quiz {quiz_id!r} has no question {question_id!r}: pick one of {ids}")


@dataclass(frozen=True)
class StudentAnswer:
    """One accepted answer: who, which letters, and when (seconds into the round, and the wall-clock time)."""

    name: str
    letters: frozenset[str]
    correct: bool
    points: int
    seconds: float
    at: float  # wall-clock time.time() when it arrived, for the results export


@dataclass
class Round:
    """One pushed question: its deadline on the server's clock, and the answers so far (by name key)."""

    quiz: Quiz
    question: Question
    number: int
    seconds: float
    opened_at: float
    auto_reveal: bool
    answers: dict[str, StudentAnswer] = field(default_factory=dict)
    closed: bool = False  # the deadline passed (set by close_round, or found by is_open)
    revealed: bool = False
    revealed_by: str = ""  # "time" or "instructor"

    @property
    def deadline(self) -> float:
        return self.opened_at + self.seconds

    def is_open(self, now: float) -> bool:
        """Still taking answers: not revealed, not closed, and `now` before the deadline."""
        return not (self.revealed or self.closed) and now < self.deadline

    def counts(self) -> dict[str, int]:
        """How many answers chose each letter (a multiple-answer question counts every letter chosen)."""
        counts = dict.fromkeys(self.question.letters, 0)
        for answer in self.answers.values():
            for letter in answer.letters:
                counts[letter] += 1
        return counts


@dataclass
class StudentRecord:
    """A student as the session knows them, connected or not: kept across reconnections, by name key."""

    name: str  # as first given
    connected: bool = False


@dataclass(frozen=True)
class Standing:
    """A leaderboard row: rank (equal scores share one), name, points over revealed rounds, answers, right ones."""

    rank: int
    name: str
    score: int
    answered: int
    right: int


class LiveSession:
    """A whole class's quiz: who is here, the rounds asked, and the scores (everything by name key)."""

    def __init__(
        self,
        bank: QuestionBank,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.bank = bank
        self.clock = clock
        self.wall_clock = wall_clock
        self.students: dict[str, StudentRecord] = {}
        self.rounds: list[Round] = []

    @property
    def current(self) -> Round | None:
        """The last round pushed (open, closed or revealed), or None before the first push."""
        return self.rounds[-1] if self.rounds else None

    def room(self) -> int:
        """How many students are connected now."""
        return sum(1 for student in self.students.values() if student.connected)

    # -- students

    def join(self, name: str) -> StudentRecord:
        """A student connects: a new record, or their old one (same name, any case) with its answers."""
        record = self.students.setdefault(name_key(name), StudentRecord(name))
        record.connected = True
        return record

    def leave(self, name: str) -> None:
        record = self.students.get(name_key(name))
        if record is not None:
            record.connected = False

    def answer(self, name: str, question_id: str, letters: Iterable[str]) -> StudentAnswer:
        """Record `name`'s answer to the current round, or raise AnswerRefused saying why it does not count."""
        key = name_key(name)
        current = self._round_for(question_id)
        earlier = current.answers.get(key)
        if earlier is not None:
            shown = ", ".join(sorted(earlier.letters))
            raise AnswerRefused(f"you already answered this question ({shown}): one answer per question")
        if current.revealed:
            raise AnswerRefused("too late: the answer to this question has been revealed")
        now = self.clock()
        if not current.is_open(now):
            raise AnswerRefused("too late: the time for this question is up")
        chosen = self._checked_letters(current.question, letters)
        correct = chosen == current.question.correct
        points = QuestionRecord(current.question, [Attempt(chosen, correct)], limit=1).points
        shown_name = self.students[key].name if key in self.students else name
        accepted = StudentAnswer(shown_name, chosen, correct, points, now - current.opened_at, self.wall_clock())
        current.answers[key] = accepted
        return accepted

    def _round_for(self, question_id: str) -> Round:
        current = self.current
        if current is None:
            raise AnswerRefused("no question yet: wait for the instructor to push one")
        if question_id == current.question.id:
            return current
        if any(r.question.id == question_id for r in self.rounds):
            raise AnswerRefused(f"that question is over: the current question is {current.question.id!r}")
        raise AnswerRefused(f"unknown question: the current question is {current.question.id!r}")

    @staticmethod
    def _checked_letters(question: Question, letters: Iterable[str]) -> frozenset[str]:
        chosen = frozenset(letters)
        if not chosen or not chosen <= set(question.letters):
            raise AnswerRefused(f"choose among {', '.join(question.letters)}")
        if len(chosen) > 1 and not question.multiple:
            raise AnswerRefused("this question has one right answer: choose a single letter")
        return chosen

    # -- the instructor

    def push(self, quiz_id: str, question_id: str, seconds: float | None = None, *, auto_reveal: bool = True) -> Round:
        """Start a round: the question from the bank, `seconds` to answer (its own time limit by default)."""
        quiz, question = self.bank.find(quiz_id, question_id)
        current = self.current
        if current is not None and not current.revealed:
            raise LiveQuizError(f"question {current.question.id!r} is not revealed yet: reveal it before the next")
        if any(r.question.id == question_id for r in self.rounds):
            raise LiveQuizError(f"question {question_id!r} was asked already in this session: pick another")
        limit = float(question.time_limit if seconds is None else seconds)
        if not 0 < limit <= MAX_TIME_LIMIT:
            raise LiveQuizError(f"seconds must be above 0 and at most {MAX_TIME_LIMIT}, got {limit:g}")
        started = Round(quiz, question, len(self.rounds) + 1, limit, self.clock(), auto_reveal)
        self.rounds.append(started)
        return started

    def close_round(self, number: int) -> Round | None:
        """The deadline of round `number` passed: it takes no more answers. The round, if that changed it."""
        current = self.current
        if current is None or current.number != number or current.closed or current.revealed:
            return None
        current.closed = True
        return current

    def reveal(self, question_id: str | None = None, *, by: str = "instructor") -> Round:
        """Reveal the current round (it takes no more answers; its points count from now on)."""
        current = self.current
        if current is None:
            raise LiveQuizError("nothing to reveal: push a question first")
        if question_id is not None and question_id != current.question.id:
            raise LiveQuizError(f"the current question is {current.question.id!r}, not {question_id!r}")
        if current.revealed:
            raise LiveQuizError(f"question {current.question.id!r} is revealed already: push the next one")
        current.revealed, current.revealed_by = True, by
        return current

    # -- scores

    def score(self, name: str) -> int:
        """Points over the revealed rounds only."""
        key = name_key(name)
        return sum(r.answers[key].points for r in self.rounds if r.revealed and key in r.answers)

    def leaderboard(self) -> list[Standing]:
        """Everyone who joined, best score first (then by name); equal scores share a rank."""
        revealed = [r for r in self.rounds if r.revealed]
        rows = []
        for key, student in self.students.items():
            answers = [r.answers[key] for r in revealed if key in r.answers]
            rows.append((sum(a.points for a in answers), student.name, len(answers), sum(a.correct for a in answers)))
        rows.sort(key=lambda row: (-row[0], row[1].casefold()))
        standings: list[Standing] = []
        for index, (score, name, answered, right) in enumerate(rows):
            same = bool(standings) and standings[-1].score == score
            standings.append(Standing(standings[-1].rank if same else index + 1, name, score, answered, right))
        return standings

    def rank(self, name: str) -> int | None:
        key = name_key(name)
        return next((s.rank for s in self.leaderboard() if name_key(s.name) == key), None)
