"""What a client of the live quiz knows, built from the server's messages alone: a student's view, an instructor's.

No sockets and no widgets: feed each received text to `apply()` (a widget does it from its connection's
callback, a test from its client's frames) and read the fields, or `status()` for one line. Unknown message
types are counted in `ignored` and otherwise skipped, so an older view keeps working with a newer server.

Remaining time never mixes clocks: a `question` message carries the server's `deadline` and the server's
`now`, so `deadline - now` is the time left when the server sent it; the view notes when it received that
on its own monotonic clock and counts down from there (`ServerDeadline`). A laptop whose clock is minutes
off shows the same countdown as the rest of the room.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.live_quiz import protocol as wire
from helpers.quiz.view import format_time

__all__ = ["InstructorView", "LiveQuizUsageError", "ServerDeadline", "StudentView"]


class LiveQuizUsageError(RuntimeError):
    """A view asked for something its state cannot give (no question yet, say); the message says what to do."""


@dataclass(frozen=True)
class ServerDeadline:
    """The time left in a round: `left` seconds when received at `received_at` on this machine's monotonic clock."""

    left: float
    received_at: float

    @classmethod
    def of(cls, message: Mapping[str, Any], received_at: float) -> ServerDeadline:
        return cls(max(0.0, float(message["deadline"]) - float(message["now"])), received_at)

    def remaining(self, now: float) -> float:
        return max(0.0, self.left - (now - self.received_at))


@dataclass
class _View:
    """What both views keep: the current question, its countdown, the reveal, the leaderboard, the last error."""

    clock: Callable[[], float] = time.monotonic
    question: dict[str, Any] | None = None
    open: bool = False
    deadline: ServerDeadline | None = None
    revealed: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None  # the room's "Show me", after the reveal
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    received: int = 0
    ignored: int = 0

    def apply(self, message: str | Mapping[str, Any]) -> str:
        """Update the view from one server message (its text, or the parsed dict); returns its type."""
        data = wire.read_server_message(message) if isinstance(message, str) else dict(message)
        self.received += 1
        kind = str(data.get("type"))
        handler = getattr(self, f"_on_{kind}", None)
        if kind not in wire.SERVER_TYPES or handler is None:
            self.ignored += 1
        else:
            handler(data)
        return kind

    def apply_all(self, messages: Iterable[str | Mapping[str, Any]]) -> None:
        for message in messages:
            self.apply(message)

    @property
    def question_id(self) -> str | None:
        return None if self.question is None else str(self.question["question"])

    def remaining(self) -> float | None:
        """Seconds left to answer (0 once closed or revealed), None before the first question."""
        if self.deadline is None:
            return None
        return self.deadline.remaining(self.clock()) if self.open else 0.0

    def _forget_round(self) -> None:
        """A welcome starts afresh: the server sends the current round after it, if there is one (a server that
        restarted has none, and what the view held came from the session that ended)."""
        self.question, self.open, self.deadline, self.revealed, self.evidence = None, False, None, None, None

    def _on_question(self, data: dict[str, Any]) -> None:
        self.question, self.revealed, self.evidence = data, None, None
        self.deadline = ServerDeadline.of(data, self.clock())
        self.open = bool(data["open"])

    def _on_time_up(self, data: dict[str, Any]) -> None:
        if data["question"] == self.question_id:
            self.open = False

    def _on_revealed(self, data: dict[str, Any]) -> None:
        if data["question"] == self.question_id:
            self.open, self.revealed = False, data
        self.leaderboard = list(data["leaderboard"])

    def _on_evidence(self, data: dict[str, Any]) -> None:
        if data["question"] == self.question_id:
            self.evidence = data

    def evidence_text(self) -> str:
        """The room's "Show me" as lines to print: the experiment's facts, then what it demonstrated and refuted."""
        shown = self.evidence
        if shown is None:
            return ""
        if shown["error"]:
            return f"Show me could not run: {shown['error']}"
        lines = [f"Show me: {shown['title']}", *(f"  {line}" for line in shown["lines"])]
        lines.append(
            f"demonstrated: {', '.join(shown['demonstrated']) or '-'} · refuted: {', '.join(shown['refuted']) or '-'}"
        )
        return "\n".join(lines)

    def _on_error(self, data: dict[str, Any]) -> None:
        self.error = str(data["reason"])

    def _clock_text(self) -> str:
        remaining = self.remaining()
        if self.question is None or remaining is None:
            return "no question yet"
        if self.revealed is not None:
            return f"question {self.question['number']}: revealed, the answer is {', '.join(self.revealed['correct'])}"
        if not self.open:
            return f"question {self.question['number']}: time is up"
        return f"question {self.question['number']}: {format_time(remaining)} left"


@dataclass
class StudentView(_View):
    """One student's screen: who they are, their score, the question, their answer, and their result at the reveal."""

    name: str = ""
    score: int = 0
    rank: int | None = None
    instructor_here: bool = False
    answer: list[str] | None = None
    result: dict[str, Any] | None = None  # the reveal's "you": answer, correct, points, score, rank
    notice: str | None = None  # why the last answer was refused

    def answer_text(self, letters: Iterable[str]) -> str:
        """The message that answers the current question with `letters`, as text to send."""
        if self.question_id is None:
            raise LiveQuizUsageError("no question to answer yet: wait for the instructor to push one")
        return wire.answer_text(self.question_id, letters)

    def _on_welcome(self, data: dict[str, Any]) -> None:
        self._forget_round()
        self.answer, self.result, self.notice = None, None, None
        self.name, self.score, self.rank = str(data["name"]), int(data["score"]), data["rank"]
        self.instructor_here = bool(data["instructor"])

    def _on_question(self, data: dict[str, Any]) -> None:
        super()._on_question(data)
        self.answer, self.result, self.notice = data["answer"], None, None

    def _on_answered(self, data: dict[str, Any]) -> None:
        if data["question"] == self.question_id:
            self.answer, self.notice = list(data["answer"]), None

    def _on_refused(self, data: dict[str, Any]) -> None:
        self.notice = str(data["reason"])

    def _on_revealed(self, data: dict[str, Any]) -> None:
        super()._on_revealed(data)
        you = data.get("you")
        if isinstance(you, dict):
            self.result, self.score, self.rank = you, int(you["score"]), you["rank"]

    def _on_instructor(self, data: dict[str, Any]) -> None:
        self.instructor_here = bool(data["connected"])

    def status(self) -> str:
        """One line: name, score, where the question is."""
        mine = "" if self.answer is None else f" · you answered {', '.join(self.answer)}"
        return f"{self.name or '(not joined)'} · {self.score} points · {self._clock_text()}{mine}"


@dataclass
class InstructorView(_View):
    """The instructor's screen: the catalogue, the room, the live histogram of answers, the reveal."""

    quizzes: list[dict[str, Any]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    room: int = 0
    answered: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # letter -> answers choosing it (the histogram's bars)

    def push_text(self, quiz: str, question: str, seconds: float | None = None, *, auto_reveal: bool = True) -> str:
        return wire.push_text(quiz, question, seconds, auto_reveal=auto_reveal)

    def reveal_text(self) -> str:
        """The message that reveals the current question now, as text to send."""
        if self.question_id is None:
            raise LiveQuizUsageError("nothing to reveal yet: push a question first")
        return wire.reveal_text(self.question_id)

    def _on_welcome(self, data: dict[str, Any]) -> None:
        self._forget_round()
        self.answered, self.counts = 0, {}
        self.quizzes, self.asked, self.room = list(data["quizzes"]), list(data["asked"]), int(data["room"])

    def _on_question(self, data: dict[str, Any]) -> None:
        super()._on_question(data)
        self.answered = 0
        self.counts = {option["letter"]: 0 for option in data["options"]}
        if data["question"] not in self.asked:
            self.asked.append(str(data["question"]))

    def _on_progress(self, data: dict[str, Any]) -> None:
        self.room = int(data["room"])
        if data["question"] is not None and data["question"] == self.question_id:
            self.answered, self.counts = int(data["answered"]), dict(data["counts"])

    def _on_revealed(self, data: dict[str, Any]) -> None:
        super()._on_revealed(data)
        if data["question"] == self.question_id:
            self.answered, self.counts = int(data["answered"]), dict(data["counts"])

    def status(self) -> str:
        """One line: answered of the room, the histogram, where the question is."""
        bars = " ".join(f"{letter}:{count}" for letter, count in self.counts.items())
        return f"{self.answered} of {self.room} answered · {bars or 'no answers yet'} · {self._clock_text()}"
