"""Tests for helpers.live_quiz.protocol: strict parsing of client messages and what server messages hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.live_quiz import protocol as wire
from helpers.live_quiz.session import LiveSession, QuestionBank

pytestmark = pytest.mark.timeout(10)

# Fields that give an answer away, and may appear in nothing a student receives before the reveal.
SECRET_FIELDS = {"correct", "explanation", "claim", "hint", "evidence", "link"}


def all_keys(value: Any) -> set[str]:
    """Every dict key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def test_valid_messages_parse_into_their_dataclasses() -> None:
    """An answer, a push (with and without its optional fields) and a reveal parse to what they say."""
    assert wire.parse('{"type": "answer", "question": "q-1", "answer": ["B", "D"]}', "student") == (
        wire.AnswerMessage("q-1", ("B", "D"))
    )
    assert wire.parse('{"type": "push", "quiz": "broadcasting", "question": "q-1"}', "instructor") == (
        wire.PushMessage("broadcasting", "q-1", None, True)
    )
    assert wire.parse(wire.push_text("broadcasting", "q-1", 2, auto_reveal=False), "instructor") == (
        wire.PushMessage("broadcasting", "q-1", 2.0, False)
    )
    assert wire.parse(wire.reveal_text("q-1"), "instructor") == wire.RevealMessage("q-1")
    assert wire.parse(wire.answer_text("q-1", ["D", "B"]), "student") == wire.AnswerMessage("q-1", ("B", "D"))


ANSWER_ONE_OF = 'a list of different capital letters from ABCDEFGH: ["B"]'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", 'not JSON: send one JSON object per message, such as {"type": "answer", ...}'),
        ('["answer"]', 'send a JSON object with a "type" (answer), not a bare value or list'),
        ('{"question": "q"}', 'unknown message type: a student sends {"type": ...} with one of answer'),
        ('{"type": "push", "quiz": "b", "question": "q"}', 'unknown message type: a student sends {"type": ...}'),
        ('{"type": "answer", "answer": ["A"]}', "the 'answer' message needs 'question': the question's id, a str"),
        (
            '{"type": "answer", "question": "q", "answer": ["A"], "name": "bob"}',
            "the 'answer' message takes only answer, question, type, not 'name' "
            "(you answer as the name you joined with)",
        ),
        ('{"type": "answer", "question": "q", "answer": "A"}', f"'answer' must be {ANSWER_ONE_OF}"),
        ('{"type": "answer", "question": "q", "answer": ["<b>A</b>"]}', f"'answer' must be {ANSWER_ONE_OF}"),
        ('{"type": "answer", "question": "q", "answer": ["a"]}', f"'answer' must be {ANSWER_ONE_OF}"),
        ('{"type": "answer", "question": "q", "answer": ["A", "A"]}', f"'answer' must be {ANSWER_ONE_OF}"),
        ('{"type": "answer", "question": "q", "answer": []}', f"'answer' must be {ANSWER_ONE_OF}"),
        ('{"type": "answer", "question": "<script>", "answer": ["A"]}', "'question' must be the question's id"),
        ('{"type": "answer", "question": 7, "answer": ["A"]}', "'question' must be the question's id"),
    ],
)
def test_a_bad_student_message_is_refused_with_what_to_send(text: str, reason: str) -> None:
    """Not JSON, not an object, an unknown type, a missing, extra or malformed field: a reason saying what to send."""
    with pytest.raises(wire.ProtocolError) as error:
        wire.parse(text, "student")
    assert error.value.reason.startswith(reason)
    assert "<" not in error.value.reason and "bob" not in error.value.reason  # it never quotes the message's values


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"seconds": 0}, "'seconds' must be a number of seconds above 0, at most 600"),
        ({"seconds": 601}, "'seconds' must be a number of seconds above 0"),
        ({"seconds": True}, "'seconds' must be a number of seconds above 0"),
        ({"seconds": "30"}, "'seconds' must be a number of seconds above 0"),
        ({"auto_reveal": "yes"}, "'auto_reveal' must be true or false"),
        ({"quiz": 3}, "'quiz' must be a quiz id, a str such as 'broadcasting'"),
    ],
)
def test_a_bad_push_is_refused(fields: dict[str, Any], reason: str) -> None:
    """A push with an impossible time, a non-bool auto_reveal or a non-id quiz is refused with what to send."""
    message = {"type": "push", "quiz": "broadcasting", "question": "q", **fields}
    with pytest.raises(wire.ProtocolError, match="^" + reason.replace("(", r"\(")):
        wire.parse(json.dumps(message), "instructor")


def test_non_finite_numbers_are_refused() -> None:
    """NaN and Infinity are not JSON numbers and are refused as such."""
    with pytest.raises(wire.ProtocolError, match="NaN is not a JSON number: send finite numbers only"):
        wire.parse('{"type": "push", "quiz": "b", "question": "q", "seconds": NaN}', "instructor")


def test_the_question_message_holds_nothing_that_gives_the_answer_away() -> None:
    """A round as sent to students has options' letters and texts, the deadline and now, and no secret field."""
    session = LiveSession(QuestionBank(["broadcasting"]), clock=lambda: 50.0)
    played = session.push("broadcasting", "late-subscriber", 30)
    message = wire.question_message(played, now=60.0)
    assert not all_keys(message) & SECRET_FIELDS
    assert played.question.explanation not in json.dumps(message)
    assert (message["deadline"], message["now"], message["open"]) == (80.0, 60.0, True)
    assert [option["letter"] for option in message["options"]] == ["A", "B", "C", "D"]
    revealed = wire.revealed_message(session.reveal(), session.leaderboard())
    assert {"correct", "explanation", "link", "evidence"} <= set(revealed)
    assert revealed["correct"] == ["A"]


def test_a_server_message_must_be_an_object_with_a_type() -> None:
    """read_server_message refuses text that is not a JSON object with a str type, hinting at the wrong server."""
    assert wire.read_server_message('{"type": "welcome"}') == {"type": "welcome"}
    with pytest.raises(wire.ProtocolError, match="is this the live quiz server"):
        wire.read_server_message('{"kind": "welcome"}')
