"""How a run is scored: attempts, one question's record, and the results with the badge.

Kept apart from the session so the scoring rule (2 points at the first attempt, 1 at the second, a badge only for
a perfect run without an early "Show me") reads in one place, and the renderers can show records without the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from helpers.quiz.data import Question

__all__ = ["ATTEMPTS", "Attempt", "QuestionRecord", "Results", "plural"]

ATTEMPTS = 2


@dataclass(frozen=True)
class Attempt:
    """One attempt: the letters chosen (None when time ran out) and whether that was right."""

    choice: frozenset[str] | None
    correct: bool

    def describe(self) -> str:
        if self.choice is None:
            return "time ran out"
        return f"{', '.join(sorted(self.choice))}: {'right' if self.correct else 'not right'}"


@dataclass
class QuestionRecord:
    """How one question of a run is going: its attempts, whether the hint or an early Show me was used."""

    question: Question
    attempts: list[Attempt] = field(default_factory=list)
    hint_shown: bool = False
    limit: int = ATTEMPTS
    evidence_early: bool = False  # "Show me" ran before the question was over: it no longer counts for the badge

    @property
    def solved(self) -> bool:
        return any(a.correct for a in self.attempts)

    @property
    def finished(self) -> bool:
        """Over: answered right, or every attempt used (a time-out is an attempt)."""
        return self.solved or len(self.attempts) >= self.limit

    @property
    def attempts_left(self) -> int:
        return 0 if self.finished else self.limit - len(self.attempts)

    @property
    def points(self) -> int:
        for number, attempt in enumerate(self.attempts, 1):
            if attempt.correct:
                return 2 if number == 1 else 1
        return 0

    def verdict(self) -> str:
        """One line on the last attempt: right, or not (and what is left)."""
        last = self.attempts[-1]
        if last.correct:
            return "Right!"
        prefix = "Time ran out." if last.choice is None else "Not right."
        if self.finished:
            return f"{prefix} No attempts left: the answer is {', '.join(sorted(self.question.correct))}."
        left = self.attempts_left
        return f"{prefix} {left} attempt{'s' if left != 1 else ''} left."


@dataclass(frozen=True)
class Results:
    """The end of a run: score, how each question went, and the badge if the run was perfect."""

    title: str
    badge_name: str
    points: tuple[tuple[str, int], ...]  # (question id, points)
    timeouts: int
    hints: int
    evidence_early: int = 0  # questions whose "Show me" ran before they were over

    @property
    def score(self) -> int:
        return sum(p for _, p in self.points)

    @property
    def max_score(self) -> int:
        return 2 * len(self.points)

    @property
    def perfect(self) -> bool:
        return self.score == self.max_score

    @property
    def badge(self) -> str | None:
        """The badge's name on a perfect run (every question right at the first attempt, and no "Show me"
        before a question was over), else None."""
        return self.badge_name if self.perfect and not self.evidence_early else None

    def count(self, points: int) -> int:
        return sum(1 for _, p in self.points if p == points)

    def __str__(self) -> str:
        lines = [
            f"Score: {self.score} of {self.max_score} points "
            "(2 for a question right at the first attempt, 1 at the second)",
            f"Right at the first attempt: {self.count(2)} · at the second: {self.count(1)} · missed: {self.count(0)}"
            f" · time-outs: {self.timeouts} · hints used: {self.hints}",
            f"Show me before answering: {plural(self.evidence_early, 'question')}",
        ]
        if self.badge:
            lines.append(f"Badge earned: {self.badge} 🏅")
        elif self.perfect:
            lines.append(
                f"Badge: not this time ({self.badge_name!r} needs a perfect run without Show me before answering; "
                "Show me gives the answer away)"
            )
        else:
            lines.append(f"Badge: not this time ({self.badge_name!r} needs every question right at the first attempt)")
        return "\n".join(lines)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
