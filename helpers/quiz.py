"""Timed quizzes whose answers are backed by running code.

Questions are data (`quizzes/*.toml`, read with the standard library's `tomllib`). Three layers:

- `load_quiz("channels")` reads and validates a quiz file and returns a `Quiz` of `Question`s.
- `QuizSession` is the engine, with no widgets and no clock: one question at a time, two attempts each,
  a hint on request, the explanation once the question is over (answered right, or attempts used up), a
  score and, only for a perfect run, a badge. `expire()` is "time ran out", which costs an attempt, so
  tests and notebooks can drive every path without waiting. `str(session)` is a deterministic text view.
- `QuizWidget` puts a session on screen with ipywidgets: a visible countdown (a bounded background thread
  that never blocks the kernel), the buttons, and "Show me", which runs the question's live experiment
  from `helpers.evidence` in a background thread and shows what happened.

Scoring: 2 points for a question answered right at the first attempt, 1 at the second, 0 otherwise. The
badge needs every question right at the first attempt; hints are free. "Show me" gives the answer away, so a
question whose experiment was run before the question was over no longer counts toward the badge (its
points still count, and the results say how many questions it happened to).

Keyboard use: every control is a button. Tab / Shift+Tab move between the answer letters (A, B, C, ...) and
the buttons; Space or Enter presses the focused one (a letter stays pressed until pressed again or, in a
one-answer question, until another letter is pressed). After Start, Submit, Next and a time-out the focus moves
to where the next step is: the first letter, or the Next button.
"""

from __future__ import annotations

import html
import json
import math
import re
import textwrap
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUIZ_DIR = ROOT / "quizzes"
PROGRESS_DIR = ROOT / ".progress"  # listed in .gitignore: progress never ends up in a commit

CATEGORIES = ("component behaviour", "state/output", "syntax", "debug", "conceptual")
LEVELS = ("intermediate", "advanced", "expert")
ATTEMPTS = 2
MAX_TIME_LIMIT = 600
# The time rule: every question gets time to read and time to think, so the limit is derived, not chosen.
# Reading: READ_WORDS_PER_SECOND words of prompt and options, CODE_SECONDS_PER_LINE per line of code.
# Thinking: THINK_SECONDS by level. The sum is rounded up to a multiple of 15 s and capped at MAX_TIME_LIMIT.
READ_WORDS_PER_SECOND = 3.0
CODE_SECONDS_PER_LINE = 3.0
THINK_SECONDS = {"intermediate": 30, "advanced": 60, "expert": 90}
LETTERS = "ABCDEFGH"
WIDTH = 100
EARLY_NOTE = "Show me ran before this question was over: it still scores, but no longer counts toward the badge."
KEYS_HELP = (
    "Keyboard: Tab / Shift+Tab move between the answer letters and the buttons; Space or Enter presses the focused one."
)


class QuizDataError(ValueError):
    """A quiz file is malformed; the message lists every problem found."""


class QuizUsageError(RuntimeError):
    """The quiz was asked to do something that does not fit its state; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Option:
    """One answer option: its letter, the text learners see, and the claim an experiment can demonstrate."""

    letter: str
    text: str
    claim: str


@dataclass(frozen=True)
class Question:
    id: str
    category: str
    level: str
    time_limit: int  # seconds per attempt
    prompt: str
    code: str
    options: tuple[Option, ...]
    correct: frozenset[str]
    hint: str
    explanation: str
    link: str  # "NN_topic.ipynb#Heading-anchor": the lesson section that demonstrates the answer
    evidence: str  # the helpers.evidence experiment behind "Show me"

    @property
    def multiple(self) -> bool:
        """True when more than one option is correct ("select all that apply")."""
        return len(self.correct) > 1

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(option.letter for option in self.options)

    @property
    def notebook(self) -> str:
        return self.link.split("#", 1)[0]

    @property
    def anchor(self) -> str:
        return self.link.split("#", 1)[1] if "#" in self.link else ""


@dataclass(frozen=True)
class Quiz:
    id: str
    title: str
    badge: str
    questions: tuple[Question, ...]

    def __len__(self) -> int:
        return len(self.questions)

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise QuizUsageError(f"quiz {self.id!r} has no question {question_id!r}; ids: {[q.id for q in self.questions]}")

    def subset(self, ids: Iterable[str]) -> Quiz:
        """The same quiz with only the given questions, in the given order (for worked examples)."""
        return Quiz(self.id, self.title, self.badge, tuple(self.question(i) for i in ids))


def time_limit_for(level: str, prompt: str, code: str, options: Iterable[str]) -> int:
    """Seconds per attempt under the time rule above (reading time plus thinking time for the level)."""
    if level not in THINK_SECONDS:
        raise QuizDataError(f"level {level!r} is not one of {LEVELS}")
    words = len(prompt.split()) + sum(len(text.split()) for text in options)
    lines = len([line for line in code.splitlines() if line.strip()])
    seconds = words / READ_WORDS_PER_SECOND + lines * CODE_SECONDS_PER_LINE + THINK_SECONDS[level]
    return min(MAX_TIME_LIMIT, 15 * math.ceil(seconds / 15))


_QUESTION_FIELDS = {
    "id": str,
    "category": str,
    "level": str,
    "prompt": str,
    "code": str,
    "options": list,
    "correct": list,
    "hint": str,
    "explanation": str,
    "link": str,
    "evidence": str,
}


def _problems_in_question(number: int, entry: dict[str, Any], seen: set[str]) -> list[str]:
    where = f"question {number} ({entry.get('id', 'no id')})"
    problems = [f"{where}: missing field {name!r}" for name in _QUESTION_FIELDS if name not in entry]
    problems += [f"{where}: unknown field {name!r}" for name in entry if name not in _QUESTION_FIELDS]
    for name, kind in _QUESTION_FIELDS.items():
        if name in entry and not isinstance(entry[name], kind):
            problems.append(f"{where}: {name!r} must be a {kind.__name__}, not {type(entry[name]).__name__}")
        elif kind is str and name in entry and not entry[name].strip() and name != "code":
            problems.append(f"{where}: {name!r} is empty")
    if problems:
        return problems
    if entry["id"] in seen:
        problems.append(f"{where}: duplicate id")
    seen.add(entry["id"])
    if entry["category"] not in CATEGORIES:
        problems.append(f"{where}: category {entry['category']!r} is not one of {CATEGORIES}")
    if entry["level"] not in LEVELS:
        problems.append(f"{where}: level {entry['level']!r} is not one of {LEVELS}")
    options = entry["options"]
    if not 2 <= len(options) <= len(LETTERS):
        problems.append(f"{where}: needs 2 to {len(LETTERS)} options")
    for index, option in enumerate(options):
        if not isinstance(option, dict) or set(option) != {"text", "claim"}:
            problems.append(f"{where}: option {index + 1} must be a table with exactly 'text' and 'claim'")
    claims = [o.get("claim") for o in options if isinstance(o, dict)]
    if len(set(claims)) != len(claims):
        problems.append(f"{where}: two options share a claim")
    letters = LETTERS[: len(options)]
    if not entry["correct"] or any(c not in letters for c in entry["correct"]):
        problems.append(f"{where}: correct must list letters among {list(letters)}")
    if not re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb#\S+", entry["link"]):
        problems.append(f"{where}: link must look like 'NN_topic.ipynb#Heading-anchor'")
    return problems


def parse_quiz(data: dict[str, Any], source: str = "quiz data") -> Quiz:
    """Build a Quiz from parsed TOML; raise QuizDataError listing every problem."""
    problems: list[str] = []
    meta = data.get("quiz")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in ("id", "title", "badge")):
        problems.append("a [quiz] table with string fields id, title and badge is required")
        meta = {}
    entries = data.get("question")
    if not isinstance(entries, list) or not entries:
        problems.append("at least one [[question]] is required")
        entries = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        problems += _problems_in_question(number, entry, seen)
    if problems:
        raise QuizDataError(f"{source} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    questions = tuple(
        Question(
            id=e["id"],
            category=e["category"],
            level=e["level"],
            time_limit=time_limit_for(e["level"], e["prompt"], e["code"], (o["text"] for o in e["options"])),
            prompt=e["prompt"].strip(),
            code=e["code"].strip("\n"),
            options=tuple(Option(LETTERS[i], o["text"].strip(), o["claim"]) for i, o in enumerate(e["options"])),
            correct=frozenset(e["correct"]),
            hint=e["hint"].strip(),
            explanation=e["explanation"].strip(),
            link=e["link"],
            evidence=e["evidence"],
        )
        for e in entries
    )
    return Quiz(meta["id"], meta["title"], meta["badge"], questions)


def quiz_path(name: str | Path) -> Path:
    """`quizzes/<name>.toml` for a bare name, else the path itself."""
    path = Path(name)
    if path.suffix != ".toml" and len(path.parts) == 1:
        path = QUIZ_DIR / f"{name}.toml"
    return path


def available_quizzes() -> list[str]:
    return sorted(p.stem for p in QUIZ_DIR.glob("*.toml"))


def load_quiz(name: str | Path) -> Quiz:
    """Read and validate a quiz: a bare name ("channels") means quizzes/channels.toml."""
    path = quiz_path(name)
    if not path.exists():
        raise QuizDataError(f"no quiz file {path}; available quizzes: {', '.join(available_quizzes())}")
    with path.open("rb") as file:
        try:
            data = tomllib.load(file)
        except tomllib.TOMLDecodeError as exc:
            raise QuizDataError(f"{path.name} is not valid TOML: {exc}") from exc
    return parse_quiz(data, path.name)


# --------------------------------------------------------------------------------------------------
# engine


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
            f"Show me before answering: {_plural(self.evidence_early, 'question')}",
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _wrap(text: str, indent: str = "") -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        joined = " ".join(paragraph.split())
        out += textwrap.wrap(joined, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]
        out.append("")
    return out[:-1]


def format_time(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 60}:{whole % 60:02d}"


class QuizSession:
    """One learner's run through a quiz: state, scoring, text view, optional progress file."""

    def __init__(self, quiz: Quiz | str, *, attempts: int = ATTEMPTS, progress: bool | str | Path = False) -> None:
        self.quiz = load_quiz(quiz) if isinstance(quiz, str) else quiz
        if attempts < 1:
            raise QuizUsageError("attempts must be at least 1")
        self.attempts = attempts
        self.progress_path = _progress_path(self.quiz, progress)
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
        return self._verdict(record)

    def expire(self) -> str:
        """Time ran out for the current attempt: it counts as a wrong attempt."""
        record = self._require_open()
        record.attempts.append(Attempt(None, False))
        self._save()
        return self._verdict(record)

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

    def _verdict(self, record: QuestionRecord) -> str:
        last = record.attempts[-1]
        if last.correct:
            return "Right!"
        prefix = "Time ran out." if last.choice is None else "Not right."
        if record.finished:
            return f"{prefix} No attempts left: the answer is {', '.join(sorted(record.question.correct))}."
        left = record.attempts_left
        return f"{prefix} {left} attempt{'s' if left != 1 else ''} left."

    # -- text view

    def question_lines(self, record: QuestionRecord, number: int) -> list[str]:
        q = record.question
        lines = [
            f"{self.quiz.title} · question {number} of {len(self.records)}",
            f"[{q.category} · {q.level} · {format_time(q.time_limit)} per attempt]",
            "",
            *_wrap(q.prompt),
        ]
        if q.code:
            lines += ["", *("    " + line if line else "" for line in q.code.splitlines())]
        lines.append("")
        if q.multiple:
            lines.append("Select all that apply:")
        for option in q.options:
            wrapped = _wrap(option.text, "     ")
            lines.append(f"  {option.letter}) {wrapped[0].strip()}")
            lines += wrapped[1:]
        lines.append("")
        for n, attempt in enumerate(record.attempts, 1):
            lines.append(f"Attempt {n}: {attempt.describe()}")
        if record.hint_shown:
            lines += _wrap(f"Hint: {q.hint}")
        if record.evidence_early:
            lines += _wrap(EARLY_NOTE)
        if record.finished:
            lines.append(f"Answer: {', '.join(sorted(q.correct))}" + (" (you got it)" if record.solved else ""))
            lines += _wrap(f"Why: {q.explanation}")
            lines.append(f"Evidence: Show me runs experiment {q.evidence!r} · lesson: {q.link}")
        else:
            lines.append(f"Attempts left: {record.attempts_left} of {record.limit}")
        return lines

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
        return "\n".join(self.question_lines(self.record, self.index + 1))

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        where = "not started" if not self.started else "finished" if self.finished else f"question {self.index + 1}"
        return f"<QuizSession {self.quiz.id!r}: {where} of {len(self.records)}>"

    # -- progress file

    def _remember_best(self) -> None:
        results = self.results()
        if self.best is None or results.score > self.best.get("score", -1):
            self.best = {"score": results.score, "max": results.max_score, "badge": results.badge is not None}
        self._save()

    def _state(self) -> dict[str, Any]:
        return {
            "quiz": self.quiz.id,
            "questions": [r.question.id for r in self.records],
            "index": self.index,
            "records": [
                {
                    "attempts": [None if a.choice is None else sorted(a.choice) for a in r.attempts],
                    "hint": r.hint_shown,
                    "show_me_early": r.evidence_early,
                }
                for r in self.records
            ],
            "best": self.best,
        }

    def _save(self) -> None:
        if self.progress_path is None:
            return
        self.progress_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.progress_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._state(), indent=1))
        temporary.replace(self.progress_path)

    def _load_progress(self) -> None:
        assert self.progress_path is not None
        try:
            state = json.loads(self.progress_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            return  # an unreadable progress file is ignored (and overwritten on the next save)
        if state.get("quiz") != self.quiz.id or state.get("questions") != [q.id for q in self.quiz.questions]:
            return  # the quiz changed since: start afresh
        self.best = state.get("best")
        for record, saved in zip(self.records, state.get("records", []), strict=False):
            for choice in saved.get("attempts", []):
                letters = None if choice is None else frozenset(choice)
                record.attempts.append(Attempt(letters, letters == record.question.correct))
            record.hint_shown = bool(saved.get("hint"))
            record.evidence_early = bool(saved.get("show_me_early"))
        self.index = min(int(state.get("index", 0)), len(self.records))
        self.resumed = self.index > 0 or any(r.attempts for r in self.records)


def _progress_path(quiz: Quiz, progress: bool | str | Path) -> Path | None:
    if progress is False:
        return None
    if progress is True:
        return PROGRESS_DIR / f"{quiz.id}.json"
    path = Path(progress)
    path = (PROGRESS_DIR / path if not path.is_absolute() else path).resolve()
    if not path.is_relative_to(PROGRESS_DIR.resolve()):
        raise QuizUsageError(
            f"progress files are kept in {PROGRESS_DIR} (ignored by git); pass progress=True or a file name there"
        )
    return path


# --------------------------------------------------------------------------------------------------
# countdown


class Countdown:
    """A background thread that ticks while an attempt's time runs, then calls `on_expire` once.

    It never blocks the caller and lives at most one attempt. Each `start()` opens a new *generation*;
    the callbacks receive it, and `is_current(generation)` tells a late callback from a stopped countdown
    to do nothing (so an answer submitted at the last moment is never also counted as a time-out).
    """

    def __init__(
        self,
        on_tick: Callable[[int, float], None],
        on_expire: Callable[[int], None],
        *,
        tick: float = 0.25,
    ) -> None:
        self.on_tick = on_tick
        self.on_expire = on_expire
        self.tick = tick
        self.generation = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def is_current(self, generation: int) -> bool:
        return generation == self.generation and not self._stop.is_set()

    def start(self, seconds: float) -> int:
        """(Re)start the countdown for `seconds`; a previous countdown is stopped first."""
        with self._lock:
            self._stop.set()
            self.generation += 1
            stop = self._stop = threading.Event()
            deadline = time.monotonic() + seconds
            thread = threading.Thread(
                target=self._run, args=(self.generation, deadline, stop), name="quiz-countdown", daemon=True
            )
            self._thread = thread
        thread.start()
        return self.generation

    def _run(self, generation: int, deadline: float, stop: threading.Event) -> None:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            self.on_tick(generation, max(0.0, remaining))
            if remaining <= 0:
                self.on_expire(generation)
                return
            stop.wait(min(self.tick, remaining))

    def stop(self, *, wait: bool = False) -> None:
        """Stop ticking; with wait=True also wait (bounded) for the thread to end."""
        with self._lock:
            self._stop.set()
            self.generation += 1
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(self.tick + 1.0)


# --------------------------------------------------------------------------------------------------
# widget


def _inline(text: str) -> str:
    """Escape text for HTML and show `code` spans in a monospace font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{_inline(' '.join(p.split()))}</p>" for p in text.split("\n\n"))


class QuizWidget:
    """The quiz on screen. Display it as a cell's last expression; `close()` stops its timer and widgets.

    `time_scale` shortens every time limit (tests use it); `progress=True` saves to .progress/<quiz>.json.
    """

    def __init__(
        self,
        quiz: Quiz | QuizSession | str,
        *,
        progress: bool | str | Path = False,
        time_scale: float = 1.0,
        tick: float = 0.25,
        evidence_timeout: float = 20.0,
    ) -> None:
        import ipywidgets as w

        self.session = quiz if isinstance(quiz, QuizSession) else QuizSession(quiz, progress=progress)
        self.time_scale = time_scale
        self.evidence_timeout = evidence_timeout
        self._limit = 0.0  # seconds of the running attempt, for the progress bar
        self._lock = threading.RLock()
        self._evidence_thread: threading.Thread | None = None
        self.countdown = Countdown(self._on_tick, self._on_expire, tick=tick)
        full = w.Layout(width="100%")
        self.header = w.HTML()
        self.clock = w.HTML()
        self.timebar = w.FloatProgress(value=1.0, min=0.0, max=1.0, layout=w.Layout(width="40%"))
        self.prompt = w.HTML(layout=full)
        # One toggle button per letter, not RadioButtons: in JupyterLab the arrow keys on a radio input move the
        # notebook's cell selection, while a button takes Tab, Space and Enter like any other button.
        self.choice_label = w.HTML("Your answer:")
        self.letter_buttons: list[Any] = []
        self.choice_row = w.HBox([self.choice_label])
        self._syncing = False
        self._shown: tuple[int, int] | None = None  # (question index, attempts) the toggles were last reset for
        self.feedback = w.HTML(layout=full)
        self.evidence_view = w.HTML(layout=full)
        self.buttons = {
            "start": w.Button(description="Start", button_style="primary", tooltip="Start the quiz"),
            "submit": w.Button(description="Submit", button_style="primary", tooltip="Submit your answer"),
            "hint": w.Button(description="Hint", tooltip="Show a hint (free)"),
            "show": w.Button(
                description="Show me",
                tooltip="Run the live experiment behind this question (before you answer, it no longer counts "
                "toward the badge)",
            ),
            "next": w.Button(description="Next", tooltip="Go to the next question"),
            "restart": w.Button(description="Restart", tooltip="Start again from question 1"),
        }
        handlers = {
            "start": self.start,
            "submit": self.submit,
            "hint": self.hint,
            "show": self.show_me,
            "next": self.next,
            "restart": self.restart,
        }
        for key, button in self.buttons.items():
            button.on_click(lambda _button, handler=handlers[key]: handler())
        self.help = w.HTML(f"<small>{html.escape(KEYS_HELP)}</small>")
        self.clock_row = w.HBox([self.clock, self.timebar])
        self.button_row = w.HBox(list(self.buttons.values()))
        self.box = w.VBox(
            [
                self.header,
                self.clock_row,
                self.prompt,
                self.choice_row,
                self.button_row,
                self.feedback,
                self.evidence_view,
                self.help,
            ]
        )
        self._refresh()

    # -- display

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.box._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.session.render()  # deterministic, for nbval and text front-ends
        return bundle

    def __repr__(self) -> str:
        return self.session.render()

    # -- actions (also what the buttons call)

    def start(self) -> None:
        with self._lock:
            self.session.start()
            self.evidence_view.value = ""
            self._refresh()
            self._arm()
            self._focus()

    def restart(self) -> None:
        with self._lock:
            self.countdown.stop()
            self.session.restart()
            self.evidence_view.value = ""
            self._refresh()
            self._arm()
            self._focus()

    def submit(self) -> None:
        with self._lock:
            if not self._answerable():
                return
            choice = self._selected()
            if not choice:
                self.feedback.value = "<b>Choose an option first.</b>"
                return
            self.countdown.stop()
            verdict = self.session.answer(choice)
            self._refresh(verdict)
            self._arm()
            self._focus()

    def hint(self) -> None:
        with self._lock:
            if self.session.started and not self.session.finished:
                self.session.hint()
                self._refresh()

    def next(self) -> None:
        with self._lock:
            if not self.session.started or self.session.finished or not self.session.record.finished:
                return
            self.countdown.stop()
            self.session.next()
            self.evidence_view.value = ""
            self._refresh()
            self._arm()
            self._focus()

    def show_me(self) -> None:
        """Run the current question's experiment in a background thread; the result appears in the widget."""
        with self._lock:
            if not self.session.started or self.session.finished:
                return
            if self._evidence_thread is not None and self._evidence_thread.is_alive():
                return
            name = self.session.current.evidence
            if self.session.note_show_me():
                self._refresh()
            self.buttons["show"].disabled = True
            self.evidence_view.value = f"<i>Running experiment {html.escape(name)!s}: a real server and clients...</i>"
            self._evidence_thread = threading.Thread(
                target=self._run_evidence, args=(name,), name="quiz-show-me", daemon=True
            )
            self._evidence_thread.start()

    def _run_evidence(self, name: str) -> None:
        from helpers import evidence

        try:
            text = evidence.run(name, timeout=self.evidence_timeout).fact
        except Exception as exc:  # shown in the widget: a thread has nobody else to tell
            text = f"Show me could not run: {exc}"
        self.evidence_view.value = f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"
        self.buttons["show"].disabled = False

    def stop(self) -> None:
        """Stop the countdown and wait (bounded) for a running experiment; the widget stays on screen.

        The next Submit, Next or Restart starts the countdown again.
        """
        self.countdown.stop(wait=True)
        if self._evidence_thread is not None:
            self._evidence_thread.join(self.evidence_timeout)
        if self.session.started and not self.session.finished and not self.session.record.finished:
            self.clock.value = "Time: paused"

    def close(self) -> None:
        """stop(), then close every widget (the quiz disappears from the page)."""
        self.stop()
        for widget in self._all_widgets():
            widget.close()

    def _focus(self) -> None:
        """Put the keyboard focus where the next step happens (a button that hides itself would lose it)."""
        if not self.session.started or self.session.finished:
            self.buttons["restart" if self.session.finished else "start"].focus()
        elif self.session.record.finished:
            self.buttons["next"].focus()
        elif self.letter_buttons:
            self.letter_buttons[0].focus()

    # -- timer

    def _answerable(self) -> bool:
        return self.session.started and not self.session.finished and not self.session.record.finished

    def _arm(self) -> None:
        """Start the countdown for the current attempt, if an attempt is open."""
        if self._answerable():
            self._limit = self.session.current.time_limit * self.time_scale
            self.countdown.start(self._limit)

    def _on_tick(self, generation: int, remaining: float) -> None:
        if not self.countdown.is_current(generation):
            return
        limit = self._limit or 1.0
        self.clock.value = f"Time left: <b>{format_time(remaining / self.time_scale)}</b>"
        self.timebar.value = max(0.0, min(1.0, remaining / limit))

    def _on_expire(self, generation: int) -> None:
        with self._lock:
            if not self.countdown.is_current(generation) or not self._answerable():
                return
            verdict = self.session.expire()
            self._refresh(verdict)
            self._arm()
            self._focus()

    # -- drawing

    def _selected(self) -> frozenset[str]:
        return frozenset(button.description for button in self.letter_buttons if button.value)

    def _on_toggle(self, change: dict[str, Any]) -> None:
        """One-answer questions: pressing a letter releases the others."""
        if self._syncing or not change["new"] or not self.session.started or self.session.finished:
            return
        if self.session.current.multiple:
            return
        self._syncing = True
        try:
            for button in self.letter_buttons:
                if button is not change["owner"]:
                    button.value = False
        finally:
            self._syncing = False

    def _draw_letters(self, question: Question, record: QuestionRecord) -> None:
        import ipywidgets as w

        letters = [o.letter for o in question.options]
        if [b.description for b in self.letter_buttons] != letters:
            for button in self.letter_buttons:
                button.close()
            self.letter_buttons = []
            for option in question.options:
                button = w.ToggleButton(
                    description=option.letter, value=False, tooltip=option.text, layout=w.Layout(width="3.5em")
                )
                button.observe(self._on_toggle, names="value")
                self.letter_buttons.append(button)
            self.choice_row.children = [self.choice_label, *self.letter_buttons]
        shown = (self.session.index, len(record.attempts))
        if shown != self._shown:  # a new question or a new attempt: start with nothing pressed
            self._shown = shown
            self._syncing = True
            try:
                for button in self.letter_buttons:
                    button.value = False
            finally:
                self._syncing = False
        for button in self.letter_buttons:
            button.disabled = record.finished

    def _refresh(self, verdict: str = "") -> None:
        session = self.session
        b = self.buttons
        title = f"<h3>{html.escape(session.quiz.title)}</h3>"
        if session.started and not session.finished:
            so_far = session.results()
            title += f"<p class='wslab-quiz-score'>Score so far: {so_far.score} of {so_far.max_score} points</p>"
        self.header.value = title
        for button in b.values():
            button.layout.display = "none"
        if not session.started or session.finished:
            self.choice_row.layout.display = "none"
            self.clock.value, self.timebar.layout.visibility = "", "hidden"
            if session.finished:
                self.prompt.value = f"<pre>{html.escape(str(session.results()))}</pre>"
                b["restart"].layout.display = None
            else:
                self.prompt.value = f"<pre>{html.escape(session.render())}</pre>"
                b["start"].layout.display = None
            self.feedback.value = ""
            return
        record, q = session.record, session.current
        self.timebar.layout.visibility = "visible"
        code = f"<pre>{html.escape(q.code)}</pre>" if q.code else ""
        options = "".join(f"<li><b>{o.letter})</b> {_inline(o.text)}</li>" for o in q.options)
        self.prompt.value = (
            f"<b>Question {session.index + 1} of {len(session.records)}</b> · {html.escape(q.category)} · "
            f"{html.escape(q.level)} · {format_time(q.time_limit)} per attempt{_paragraphs(q.prompt)}{code}"
            f"<ul style='list-style: none; padding-left: 0'>{options}</ul>"
            + ("<p><i>Select all that apply.</i></p>" if q.multiple else "")
        )
        self.choice_row.layout.display = None
        self._draw_letters(q, record)
        parts = [f"<b>{html.escape(verdict)}</b>"] if verdict else []
        parts += [f"Attempt {n}: {html.escape(a.describe())}" for n, a in enumerate(record.attempts, 1)]
        if record.hint_shown:
            parts.append(f"<b>Hint:</b> {_inline(q.hint)}")
        if record.evidence_early:
            parts.append(f"<i>{html.escape(EARLY_NOTE)}</i>")
        if record.finished:
            parts.append(f"<b>Answer: {', '.join(sorted(q.correct))}</b>")
            parts.append(f"<b>Why:</b> {_paragraphs(q.explanation)}")
            parts.append(f"Seen in the lesson: <code>{html.escape(q.link)}</code>")
            self.clock.value = "Time: stopped"
            b["next"].layout.display = None
            b["next"].description = "Next" if session.index + 1 < len(session.records) else "Finish"
        else:
            parts.append(f"Attempts left: {record.attempts_left} of {record.limit}")
            b["submit"].layout.display = None
            b["hint"].layout.display = None
        b["show"].layout.display = None
        b["restart"].layout.display = None
        self.feedback.value = "<br>".join(parts)

    def _all_widgets(self) -> list[Any]:
        return [
            self.box,
            self.clock_row,
            self.button_row,
            self.help,
            self.header,
            self.clock,
            self.timebar,
            self.prompt,
            self.choice_row,
            self.choice_label,
            *self.letter_buttons,
            self.feedback,
            self.evidence_view,
            *self.buttons.values(),
        ]
