"""Quiz questions as data: the rules a quiz file must follow, and reading one from `quizzes/*.toml`.

Kept apart from the engine so a quiz file can be checked (and its time limits derived) without a session or a
widget: a malformed file is refused at load time with every problem listed, never halfway through a run.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CATEGORIES",
    "CODE_SECONDS_PER_LINE",
    "LETTERS",
    "LEVELS",
    "LINK",
    "MAX_TIME_LIMIT",
    "MAY_BE_EMPTY",
    "QUESTION_FIELDS",
    "QUIZ_DIR",
    "READ_WORDS_PER_SECOND",
    "ROOT",
    "THINK_SECONDS",
    "VALUE_CHECKS",
    "Entry",
    "FieldCheck",
    "Option",
    "Question",
    "Quiz",
    "QuizDataError",
    "QuizUsageError",
    "available_quizzes",
    "load_quiz",
    "parse_quiz",
    "problems_in_question",
    "quiz_path",
    "time_limit_for",
]

ROOT = Path(__file__).resolve().parent.parent.parent
QUIZ_DIR = ROOT / "quizzes"

CATEGORIES = ("component behaviour", "state/output", "syntax", "debug", "conceptual")
LEVELS = ("intermediate", "advanced", "expert")
MAX_TIME_LIMIT = 600
# The time rule: every question gets time to read and time to think, so the limit is derived, not chosen.
# Reading: READ_WORDS_PER_SECOND words of prompt and options, CODE_SECONDS_PER_LINE per line of code.
# Thinking: THINK_SECONDS by level. The sum is rounded up to a multiple of 15 s and capped at MAX_TIME_LIMIT.
READ_WORDS_PER_SECOND = 3.0
CODE_SECONDS_PER_LINE = 3.0
THINK_SECONDS = {"intermediate": 30, "advanced": 60, "expert": 90}
LETTERS = "ABCDEFGH"


class QuizDataError(ValueError):
    """A quiz file is malformed; the message lists every problem found."""


class QuizUsageError(RuntimeError):
    """The quiz was asked to do something that does not fit its state; the message says what to do."""


@dataclass(frozen=True)
class Option:
    """One answer option: its letter, the text learners see, and the claim an experiment can demonstrate."""

    letter: str
    text: str
    claim: str


@dataclass(frozen=True)
class Question:
    """One validated question, its time limit already derived by the time rule."""

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
    """A titled, badged sequence of questions, as read from one quiz file."""

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


# --------------------------------------------------------------------------------------------------
# validation: first the shape of a [[question]] table (QUESTION_FIELDS), then its values (VALUE_CHECKS)

QUESTION_FIELDS: dict[str, type] = {
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
MAY_BE_EMPTY = frozenset({"code"})  # every other string field needs some text
LINK = re.compile(r"\d\d_[a-z0-9_]+\.ipynb#\S+")


@dataclass(frozen=True)
class Entry:
    """A well-shaped [[question]] table, with what its value checks need to know beyond one field."""

    fields: dict[str, Any]
    seen: frozenset[str]  # the ids of the questions before it

    @property
    def letters(self) -> str:
        """The letters its options get: A, B, ... one per option."""
        return LETTERS[: len(self.fields["options"])]


@dataclass(frozen=True)
class FieldCheck:
    """One rule for one field: `ok(value, entry)` must hold, else `message` (formatted) is a problem.

    The message may use {value} (the field's value), {letters} (the entry's letters as a list) and {number}
    (with `each`: the 1-based position of the item that failed). With `each`, `ok` sees every item of the
    field's list in turn instead of the whole list.
    """

    field: str
    ok: Callable[[Any, Entry], object]
    message: str
    each: bool = False

    def problems(self, entry: Entry) -> list[str]:
        value = entry.fields[self.field]
        items = list(enumerate(value, 1)) if self.each else [(0, value)]
        return [
            self.message.format(value=item, letters=list(entry.letters), number=number)
            for number, item in items
            if not self.ok(item, entry)
        ]


def _claims_differ(options: list[Any], _: Entry) -> bool:
    claims = [option.get("claim") for option in options if isinstance(option, dict)]
    return len(set(claims)) == len(claims)


VALUE_CHECKS: tuple[FieldCheck, ...] = (
    FieldCheck("id", lambda value, entry: value not in entry.seen, "duplicate id"),
    FieldCheck("category", lambda value, _: value in CATEGORIES, f"category {{value!r}} is not one of {CATEGORIES}"),
    FieldCheck("level", lambda value, _: value in LEVELS, f"level {{value!r}} is not one of {LEVELS}"),
    FieldCheck("options", lambda value, _: 2 <= len(value) <= len(LETTERS), f"needs 2 to {len(LETTERS)} options"),
    FieldCheck(
        "options",
        lambda option, _: isinstance(option, dict) and set(option) == {"text", "claim"},
        "option {number} must be a table with exactly 'text' and 'claim'",
        each=True,
    ),
    FieldCheck("options", _claims_differ, "two options share a claim"),
    FieldCheck(
        "correct",
        lambda value, entry: value and all(c in entry.letters for c in value),
        "correct must list letters among {letters}",
    ),
    FieldCheck("link", lambda value, _: LINK.fullmatch(value), "link must look like 'NN_topic.ipynb#Heading-anchor'"),
)


def _shape_problems(entry: dict[str, Any]) -> list[str]:
    """Missing and unknown fields, values of the wrong type, and empty text."""
    problems = [f"missing field {name!r}" for name in QUESTION_FIELDS if name not in entry]
    problems += [f"unknown field {name!r}" for name in entry if name not in QUESTION_FIELDS]
    for name, kind in QUESTION_FIELDS.items():
        value = entry.get(name)
        if name in entry and not isinstance(value, kind):
            problems.append(f"{name!r} must be a {kind.__name__}, not {type(value).__name__}")
        elif isinstance(value, str) and not value.strip() and name not in MAY_BE_EMPTY:
            problems.append(f"{name!r} is empty")
    return problems


def problems_in_question(number: int, entry: dict[str, Any], seen: set[str]) -> list[str]:
    """Every problem of one [[question]] table; a well-shaped one's id joins `seen`."""
    problems = _shape_problems(entry)
    if not problems:  # the value checks may rely on every field being there with its type
        checked = Entry(entry, frozenset(seen))
        problems = [problem for check in VALUE_CHECKS for problem in check.problems(checked)]
        seen.add(entry["id"])
    where = f"question {number} ({entry.get('id', 'no id')})"
    return [f"{where}: {problem}" for problem in problems]


# --------------------------------------------------------------------------------------------------
# reading


def _question(entry: dict[str, Any]) -> Question:
    options = entry["options"]
    return Question(
        id=entry["id"],
        category=entry["category"],
        level=entry["level"],
        time_limit=time_limit_for(entry["level"], entry["prompt"], entry["code"], (o["text"] for o in options)),
        prompt=entry["prompt"].strip(),
        code=entry["code"].strip("\n"),
        options=tuple(Option(LETTERS[i], o["text"].strip(), o["claim"]) for i, o in enumerate(options)),
        correct=frozenset(entry["correct"]),
        hint=entry["hint"].strip(),
        explanation=entry["explanation"].strip(),
        link=entry["link"],
        evidence=entry["evidence"],
    )


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
        problems += problems_in_question(number, entry, seen)
    if problems:
        raise QuizDataError(f"{source} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return Quiz(meta["id"], meta["title"], meta["badge"], tuple(_question(e) for e in entries))


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
