"""The quiz engine: one learner's run, with no widgets and no clock.

One question at a time, a limited number of attempts each, a hint on request, the explanation once the question is
over, a score and, only for a perfect run, a badge. `expire()` is "time ran out" (it costs an attempt), so tests and
notebooks drive every path without waiting; `str(session)` is the deterministic text view nbval compares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from helpers.quiz import progress as progress_file
from helpers.quiz.data import Question, Quiz, QuizUsageError, load_quiz
from helpers.quiz.scoring import ATTEMPTS, Attempt, QuestionRecord, Results
from helpers.quiz.view import QuestionView, question_text

__all__ = ["QuizSession"]


class QuizSession:
    """One learner's run through a quiz: state, scoring, text view, optional progress file."""

    def __init__(self, quiz: Quiz | str, *, attempts: int = ATTEMPTS, progress: bool | str | Path = False) -> None:
        self.quiz = load_quiz(quiz) if isinstance(quiz, str) else quiz
        if attempts < 1:
            raise QuizUsageError("attempts must be at least 1")
        self.attempts = attempts
        self.progress_path = progress_file.progress_path(self.quiz, progress)
        self.records = [QuestionRecord(q, limit=attempts) for q in self.quiz.questions]
        self.index = 0
        self.started = False
        self.best: dict[str, Any] | None = None
        self.resumed = False
        if self.progress_path is not None:
            self._load_progress()

    # -- state

    @property
    def finished(self) -> bool:
        """True once the learner has moved past the last question."""
        return self.started and self.index >= len(self.records)

    @property
    def record(self) -> QuestionRecord:
        self._require_question()
        return self.records[self.index]

    @property
    def current(self) -> Question:
        return self.record.question

    def _require_question(self) -> None:
        if not self.started:
            raise QuizUsageError("the quiz has not started: call start() first")
        if self.finished:
            raise QuizUsageError("the quiz is over: look at results(), or restart() for another run")

    def _require_open(self) -> QuestionRecord:
        record = self.record
        if record.finished:
            raise QuizUsageError(f"question {self.index + 1} is over: call next() to go on")
        return record

    # -- actions

    def start(self, *, fresh: bool = False) -> Question | None:
        """Begin the run (or resume a saved one unless fresh=True); returns the current question."""
        if fresh or not self.resumed:
            self._reset()
        self.started = True
        self._save()
        return None if self.finished else self.current

    def restart(self) -> Question:
        """Throw the current run away and begin again at question 1 (the best result is kept)."""
        self._reset()
        self.started = True
        self._save()
        return self.current

    def _reset(self) -> None:
        self.records = [QuestionRecord(q, limit=self.attempts) for q in self.quiz.questions]
        self.index = 0
        self.resumed = False

    def choice(self, option: str | Iterable[str]) -> frozenset[str]:
        """Normalise "b", "B", ["a", "c"] or "A,C" to a set of valid letters, or explain what is valid."""
        question = self.current
        raw = re.split(r"[\s,]+", option.strip()) if isinstance(option, str) else list(option)
        letters = frozenset(str(x).strip().upper() for x in raw if str(x).strip())
        valid = question.letters
        if not letters or not letters <= set(valid):
            raise QuizUsageError(f"choose among {', '.join(valid)} (got {option!r})")
        if len(letters) > 1 and not question.multiple:
            raise QuizUsageError("this question has one right answer: choose a single letter")
        return letters

    def answer(self, option: str | Iterable[str]) -> str:
        """Submit an answer for the current question; returns a one-line verdict."""
        record = self._require_open()
        letters = self.choice(option)
        correct = letters == record.question.correct
        record.attempts.append(Attempt(letters, correct))
        self._save()
        return record.verdict()

    def expire(self) -> str:
        """Time ran out for the current attempt: it counts as a wrong attempt."""
        record = self._require_open()
        record.attempts.append(Attempt(None, False))
        self._save()
        return record.verdict()

    def note_show_me(self) -> bool:
        """Record that the current question's experiment is being run; True when that happens before the
        question is over (the question then no longer counts toward the badge)."""
        record = self.record
        if record.finished:
            return False
        record.evidence_early = True
        self._save()
        return True

    def hint(self) -> str:
        """Show the current question's hint (free of charge)."""
        record = self.record
        record.hint_shown = True
        self._save()
        return record.question.hint

    def next(self) -> Question | None:
        """Move to the next question once this one is over; None after the last one."""
        record = self.record
        if not record.finished:
            raise QuizUsageError(f"question {self.index + 1} is not over yet: answer it (or let the time run out)")
        self.index += 1
        self._save()
        if self.finished:
            self._remember_best()
            return None
        return self.current

    def results(self) -> Results:
        """Score so far (all questions count; unanswered ones score 0) and the badge on a perfect run."""
        return Results(
            self.quiz.title,
            self.quiz.badge,
            tuple((r.question.id, r.points) for r in self.records),
            sum(1 for r in self.records for a in r.attempts if a.choice is None),
            sum(1 for r in self.records if r.hint_shown),
            sum(1 for r in self.records if r.evidence_early),
        )

    def show_me(self, timeout: float = 20.0) -> Any:
        """Run the current question's live experiment (helpers.evidence) and return its Evidence.

        Before the question is over this is recorded (note_show_me): the question no longer counts toward the badge.
        """
        from helpers import evidence

        name = self.current.evidence
        self.note_show_me()
        return evidence.run(name, timeout=timeout)

    # -- text view

    def view(self) -> QuestionView:
        """What there is to show of the current question (both the text and the widget draw this)."""
        return QuestionView.of(self.record, self.index + 1, len(self.records), self.quiz.title)

    def question_lines(self, record: QuestionRecord, number: int) -> list[str]:
        """The text view of one question's record, `number` being its position in the run."""
        return question_text(QuestionView.of(record, number, len(self.records), self.quiz.title))

    def render(self) -> str:
        """The deterministic text view of where the run is."""
        if not self.started:
            return "\n".join(
                [
                    f"{self.quiz.title}: {len(self.records)} questions, {self.attempts} attempts each, timed.",
                    f"Badge for a perfect run: {self.quiz.badge}",
                    "Not started: press Start (or call start()).",
                ]
            )
        if self.finished:
            return f"{self.quiz.title} · finished\n{self.results()}"
        return "\n".join(question_text(self.view()))

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        where = "not started" if not self.started else "finished" if self.finished else f"question {self.index + 1}"
        return f"<QuizSession {self.quiz.id!r}: {where} of {len(self.records)}>"

    # -- progress file (helpers.quiz.progress)

    def _remember_best(self) -> None:
        results = self.results()
        if self.best is None or results.score > self.best.get("score", -1):
            self.best = {"score": results.score, "max": results.max_score, "badge": results.badge is not None}
        self._save()

    def _save(self) -> None:
        if self.progress_path is not None:
            state = progress_file.state(self.quiz.id, self.records, self.index, self.best)
            progress_file.save(self.progress_path, state)

    def _load_progress(self) -> None:
        assert self.progress_path is not None
        saved = progress_file.load(self.progress_path, self.quiz, self.records)
        if saved is not None:
            self.index, self.best, self.resumed = saved.index, saved.best, saved.resumed
