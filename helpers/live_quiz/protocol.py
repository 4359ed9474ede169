"""The live quiz's wire format: a small set of JSON messages, parsed strictly and built in one place.

Every message is one JSON object in a text frame, with a "type". What clients send:

    student     {"type": "answer", "question": "<id>", "answer": ["B"]}
    instructor  {"type": "push", "quiz": "<quiz id>", "question": "<id>", "seconds": 30, "auto_reveal": true}
                    ("seconds": the question's own time limit if left out; "auto_reveal": true if left out)
    instructor  {"type": "reveal", "question": "<id>"}

What the server sends (S: to students, I: to the instructor's connections):

    welcome     S,I  on joining: the student's name, score and rank, and whether the instructor is connected;
                     the instructor's catalogue of quizzes and questions, those asked already, the room size
    question    S,I  a round: prompt, code, options (letter and text), "seconds", "deadline" and "now" on the
                     server's clock, "open", and the student's own answer if they gave one (after a reconnect)
    answered    S    your answer was recorded (never whether it is right: that waits for the reveal)
    refused     S    your answer does not count, and why (a second answer, too late, another question, ...)
    progress    I    answers so far, per letter, and how many students are connected
    time_up     S,I  the deadline passed; the round takes no more answers (sent when it is not revealed at once)
    revealed    S,I  the key, the explanation, the lesson link, the counts and the top of the leaderboard;
                     a student's copy adds "you": their answer, whether it was right, points, score and rank
    evidence    S,I  after the reveal, once per round: the question's "Show me" experiment, run once by the server
                     for the whole room: its title, fact lines, the letters it demonstrated and refuted (or "error")
    instructor  S    the instructor connected or went away (the round runs on to its deadline either way)
    error       S,I  a message the server could not use, and what to send instead; the connection stays open

Nothing a student receives before "revealed" holds the key, the explanation, the options' claims, the hint or
the evidence (tests/test_live_quiz_app.py reads every frame to check). Remaining time is `deadline - now`, both
the server's: a client counts down from there on its own monotonic clock and never compares its wall clock with
the server's. A student is who their connection says (the name they joined with), so no client message carries
a name, and a message with fields other than its own is refused.

Close codes are the classroom's (`helpers.classroom`): 4401 join code or key missing, 4403 wrong, 4400 name not
allowed, 4409 name taken, 4503 room full, 4429 too many messages, 1009 too big, 1003 binary, 1001 quiz over,
1013 fell behind.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from helpers.evidence.core import Evidence
from helpers.evidence.judging import judge
from helpers.live_quiz.session import Round, Standing, StudentAnswer
from helpers.quiz.data import LETTERS, MAX_TIME_LIMIT

__all__ = [
    "ANSWER",
    "ANSWERED",
    "CLIENT_TYPES",
    "ERROR",
    "EVIDENCE",
    "INSTRUCTOR",
    "LEADERBOARD_SIZE",
    "PROGRESS",
    "PUSH",
    "QUESTION",
    "REFUSED",
    "REVEAL",
    "REVEALED",
    "SERVER_TYPES",
    "TIME_UP",
    "WELCOME",
    "AnswerMessage",
    "ClientMessage",
    "FieldSpec",
    "ProtocolError",
    "PushMessage",
    "RevealMessage",
    "Role",
    "answer_text",
    "answered_message",
    "encode",
    "error_message",
    "evidence_message",
    "instructor_message",
    "instructor_welcome",
    "parse",
    "progress_message",
    "push_text",
    "question_message",
    "read_server_message",
    "refused_message",
    "reveal_text",
    "revealed_message",
    "student_welcome",
    "time_up_message",
    "you_part",
]

Role = Literal["student", "instructor"]

# client -> server
ANSWER = "answer"
PUSH = "push"
REVEAL = "reveal"
# server -> client
WELCOME = "welcome"
QUESTION = "question"
ANSWERED = "answered"
REFUSED = "refused"
PROGRESS = "progress"
TIME_UP = "time_up"
REVEALED = "revealed"
INSTRUCTOR = "instructor"
EVIDENCE = "evidence"
ERROR = "error"

CLIENT_TYPES: dict[Role, tuple[str, ...]] = {"student": (ANSWER,), "instructor": (PUSH, REVEAL)}
SERVER_TYPES = (WELCOME, QUESTION, ANSWERED, REFUSED, PROGRESS, TIME_UP, REVEALED, EVIDENCE, INSTRUCTOR, ERROR)
LEADERBOARD_SIZE = 10
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ProtocolError(ValueError):
    """A message that breaks the protocol; `reason` says what to send instead (it never quotes the message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------------
# what clients send


@dataclass(frozen=True)
class AnswerMessage:
    question: str
    letters: tuple[str, ...]


@dataclass(frozen=True)
class PushMessage:
    quiz: str
    question: str
    seconds: float | None
    auto_reveal: bool


@dataclass(frozen=True)
class RevealMessage:
    question: str


ClientMessage = AnswerMessage | PushMessage | RevealMessage


def _is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _is_letters(value: object) -> bool:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= len(LETTERS)
        and all(isinstance(letter, str) and len(letter) == 1 and letter in LETTERS for letter in value)
        and len(set(value)) == len(value)
    )


def _is_seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_TIME_LIMIT
    )


@dataclass(frozen=True)
class FieldSpec:
    """One field of a client message: the check its value must pass, and the words for what it should be."""

    name: str
    check: Callable[[object], bool]
    expect: str
    required: bool = True


_QUESTION = FieldSpec("question", _is_id, "the question's id, a str such as 'late-subscriber'")
_SPECS: dict[str, tuple[FieldSpec, ...]] = {
    ANSWER: (_QUESTION, FieldSpec("answer", _is_letters, f'a list of different capital letters from {LETTERS}: ["B"]')),
    PUSH: (
        FieldSpec("quiz", _is_id, "a quiz id, a str such as 'broadcasting'"),
        _QUESTION,
        FieldSpec("seconds", _is_seconds, f"a number of seconds above 0, at most {MAX_TIME_LIMIT}", required=False),
        FieldSpec("auto_reveal", lambda value: isinstance(value, bool), "true or false", required=False),
    ),
    REVEAL: (_QUESTION,),
}


def _loads(text: str) -> object:
    def refuse_constant(name: str) -> object:
        raise ProtocolError(f"{name} is not a JSON number: send finite numbers only")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError:
        raise ProtocolError('not JSON: send one JSON object per message, such as {"type": "answer", ...}') from None


def _fields(data: Mapping[str, Any], message_type: str) -> dict[str, Any]:
    specs = _SPECS[message_type]
    known = {"type", *(spec.name for spec in specs)}
    extra = sorted(str(name) for name in data if name not in known)
    if extra:
        extra_shown = ", ".join(repr(name[:20]) for name in extra[:3])
        takes = ", ".join(sorted(known))
        raise ProtocolError(
            f"the {message_type!r} message takes only {takes}, not {extra_shown}"
            + (" (you answer as the name you joined with)" if message_type == ANSWER else "")
        )
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in data:
            if spec.required:
                raise ProtocolError(f"the {message_type!r} message needs {spec.name!r}: {spec.expect}")
            continue
        if not spec.check(data[spec.name]):
            raise ProtocolError(f"{spec.name!r} must be {spec.expect}")
        values[spec.name] = data[spec.name]
    return values


def parse(text: str, role: Role) -> ClientMessage:
    """The message a student's or the instructor's text frame holds; ProtocolError says what is wrong with it."""
    data = _loads(text)
    allowed = CLIENT_TYPES[role]
    if not isinstance(data, dict):
        raise ProtocolError(f'send a JSON object with a "type" ({", ".join(allowed)}), not a bare value or list')
    message_type = data.get("type")
    if message_type not in allowed:
        raise ProtocolError(f'unknown message type: a {role} sends {{"type": ...}} with one of {", ".join(allowed)}')
    values = _fields(data, message_type)
    if message_type == ANSWER:
        return AnswerMessage(values["question"], tuple(values["answer"]))
    if message_type == PUSH:
        seconds = values.get("seconds")
        return PushMessage(
            values["quiz"],
            values["question"],
            None if seconds is None else float(seconds),
            values.get("auto_reveal", True),
        )
    return RevealMessage(values["question"])


def answer_text(question: str, letters: Iterable[str]) -> str:
    """A student's answer message, as text to send."""
    return encode({"type": ANSWER, "question": question, "answer": sorted(letters)})


def push_text(quiz: str, question: str, seconds: float | None = None, *, auto_reveal: bool = True) -> str:
    """The instructor's push message, as text to send."""
    message: dict[str, Any] = {"type": PUSH, "quiz": quiz, "question": question, "auto_reveal": auto_reveal}
    if seconds is not None:
        message["seconds"] = seconds
    return encode(message)


def reveal_text(question: str) -> str:
    """The instructor's reveal message, as text to send."""
    return encode({"type": REVEAL, "question": question})


# --------------------------------------------------------------------------------------------------
# what the server sends


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def read_server_message(text: str) -> dict[str, Any]:
    """A server message as a dict with a str "type" (for the client views); ProtocolError if it is not one."""
    data = _loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError('a server message is a JSON object with a "type": is this the live quiz server?')
    return data


def student_welcome(name: str, score: int, rank: int | None, instructor_here: bool) -> dict[str, Any]:
    return {
        "type": WELCOME,
        "role": "student",
        "name": name,
        "score": score,
        "rank": rank,
        "instructor": instructor_here,
    }


def instructor_welcome(catalogue: list[dict[str, Any]], asked: list[str], room: int) -> dict[str, Any]:
    return {"type": WELCOME, "role": "instructor", "quizzes": catalogue, "asked": asked, "room": room}


def question_message(played: Round, now: float, answer: StudentAnswer | None = None) -> dict[str, Any]:
    """A round as a student sees it: everything but the key, the explanation, the claims, the hint, the evidence."""
    question = played.question
    return {
        "type": QUESTION,
        "question": question.id,
        "quiz": played.quiz.id,
        "quiz_title": played.quiz.title,
        "number": played.number,
        "prompt": question.prompt,
        "code": question.code,
        "options": [{"letter": option.letter, "text": option.text} for option in question.options],
        "multiple": question.multiple,
        "seconds": played.seconds,
        "deadline": played.deadline,
        "now": now,
        "open": played.is_open(now),
        "answer": None if answer is None else sorted(answer.letters),
    }


def answered_message(answer: StudentAnswer, question: str) -> dict[str, Any]:
    return {
        "type": ANSWERED,
        "question": question,
        "answer": sorted(answer.letters),
        "seconds": round(answer.seconds, 3),
    }


def refused_message(reason: str, question: str | None) -> dict[str, Any]:
    return {"type": REFUSED, "question": question, "reason": reason}


def error_message(reason: str) -> dict[str, Any]:
    return {"type": ERROR, "reason": reason}


def progress_message(played: Round | None, room: int) -> dict[str, Any]:
    """Answers so far in the current round (none before the first push), and the room's size."""
    return {
        "type": PROGRESS,
        "question": None if played is None else played.question.id,
        "answered": 0 if played is None else len(played.answers),
        "room": room,
        "counts": {} if played is None else played.counts(),
    }


def time_up_message(played: Round) -> dict[str, Any]:
    return {"type": TIME_UP, "question": played.question.id}


def instructor_message(connected: bool) -> dict[str, Any]:
    return {"type": INSTRUCTOR, "connected": connected}


def revealed_message(played: Round, leaderboard: list[Standing]) -> dict[str, Any]:
    """What everyone sees at the reveal (a student's copy adds `you_part`)."""
    question = played.question
    return {
        "type": REVEALED,
        "question": question.id,
        "by": played.revealed_by,
        "correct": sorted(question.correct),
        "explanation": question.explanation,
        "link": question.link,
        "evidence": question.evidence,
        "counts": played.counts(),
        "answered": len(played.answers),
        "leaderboard": [{"rank": s.rank, "name": s.name, "score": s.score} for s in leaderboard[:LEADERBOARD_SIZE]],
    }


def evidence_message(played: Round, result: Evidence | None, error: str = "") -> dict[str, Any]:
    """The room's "Show me" for a revealed round: what the experiment showed, as letters of this question's options.

    Give `result`, or `error` (why the experiment could not run) when there is none.
    """
    question = played.question
    judgement = None if result is None else judge(question, result)
    return {
        "type": EVIDENCE,
        "question": question.id,
        "title": "" if result is None else result.title,
        "lines": [] if result is None else list(result.lines),
        "demonstrated": [] if judgement is None else list(judgement.demonstrated),
        "refuted": [] if judgement is None else list(judgement.refuted),
        "error": error,
    }


def you_part(answer: StudentAnswer | None, score: int, rank: int | None) -> dict[str, Any]:
    """One student's own result at the reveal."""
    return {
        "answer": None if answer is None else sorted(answer.letters),
        "correct": answer is not None and answer.correct,
        "points": 0 if answer is None else answer.points,
        "score": score,
        "rank": rank,
    }
