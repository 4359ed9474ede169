"""Tests for helpers.quiz.data: the time rule, reading quiz files, and the table of field checks that validates them."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from helpers import quiz
from helpers.quiz import QuizDataError
from helpers.quiz.data import QUESTION_FIELDS, VALUE_CHECKS, Entry, FieldCheck, problems_in_question
from tests.support import ROOT

pytestmark = pytest.mark.timeout(30)


def test_time_limits_follow_the_rule_not_the_file() -> None:
    """A question's time grows with its words, its code lines and its level, in steps of 15 s, capped at the maximum."""
    short = quiz.time_limit_for("intermediate", "Why?", "", ["yes", "no"])
    assert short == 45  # 30 s to think, under a second to read, rounded up to 15 s
    assert quiz.time_limit_for("expert", "Why?", "", ["yes", "no"]) == 105
    assert quiz.time_limit_for("intermediate", "Why?", "x = 1\n\ny = 2\n", ["yes", "no"]) == 45
    assert quiz.time_limit_for("intermediate", "word " * 89, "", ["yes"]) == 60
    assert quiz.time_limit_for("expert", "word " * 5000, "", []) == quiz.MAX_TIME_LIMIT
    with pytest.raises(QuizDataError, match="level 'easy' is not one of"):
        quiz.time_limit_for("easy", "Why?", "", [])


def test_a_time_limit_in_a_quiz_file_is_refused() -> None:
    """Quiz files cannot choose their own time: a time_limit field is reported as unknown."""
    entry = tomllib.loads((ROOT / "quizzes" / "channels.toml").read_text())
    entry["question"][0]["time_limit"] = 60
    with pytest.raises(QuizDataError, match="unknown field 'time_limit'"):
        quiz.parse_quiz(entry)


def test_missing_fields_and_bad_values_are_all_reported() -> None:
    """parse_quiz lists every problem: missing fields, an unknown category, a level and a bad answer letter."""
    data = {
        "quiz": {"id": "x", "title": "X", "badge": "B"},
        "question": [
            {"id": "one", "category": "trivia"},
            {
                "id": "two",
                "category": "debug",
                "level": "beginner",
                "prompt": "?",
                "code": "",
                "options": [{"text": "a", "claim": "a"}, {"text": "b", "claim": "b"}],
                "correct": ["E"],
                "hint": "h",
                "explanation": "e",
                "link": "not a link",
                "evidence": "accept_opens",
            },
        ],
    }
    with pytest.raises(QuizDataError) as caught:
        quiz.parse_quiz(data)
    text = str(caught.value)
    assert "question 1 (one): missing field 'level'" in text
    assert "level 'beginner' is not one of" in text
    assert "correct must list letters among ['A', 'B']" in text
    assert "link must look like" in text


def test_an_unknown_quiz_name_lists_the_available_ones() -> None:
    """load_quiz('nope') says which quizzes exist."""
    with pytest.raises(QuizDataError, match="available quizzes: broadcasting, channels"):
        quiz.load_quiz("nope")


# -- the table of field checks


def valid_entry(**changes: Any) -> dict[str, Any]:
    """One well-formed [[question]] table, with the given fields changed."""
    entry: dict[str, Any] = {
        "id": "one",
        "category": "debug",
        "level": "advanced",
        "prompt": "Why?",
        "code": "",
        "options": [{"text": "a", "claim": "a"}, {"text": "b", "claim": "b"}],
        "correct": ["A"],
        "hint": "h",
        "explanation": "e",
        "link": "04_await_pitfalls.ipynb#Summary",
        "evidence": "accept_opens",
    }
    return entry | changes


def problems(*entries: dict[str, Any]) -> list[str]:
    """The problems of these questions, checked in order as parse_quiz checks them."""
    seen: set[str] = set()
    return [p for number, entry in enumerate(entries, 1) for p in problems_in_question(number, entry, seen)]


# One case per row of VALUE_CHECKS: the questions, and the one problem they must produce.
VALUE_CASES = [
    ([valid_entry(), valid_entry()], "question 2 (one): duplicate id"),
    (
        [valid_entry(category="trivia")],
        "question 1 (one): category 'trivia' is not one of "
        "('component behaviour', 'state/output', 'syntax', 'debug', 'conceptual')",
    ),
    (
        [valid_entry(level="beginner")],
        "question 1 (one): level 'beginner' is not one of ('intermediate', 'advanced', 'expert')",
    ),
    ([valid_entry(options=[{"text": "a", "claim": "a"}])], "question 1 (one): needs 2 to 8 options"),
    (
        [valid_entry(options=[{"text": "a", "claim": "a"}, {"text": "b"}])],
        "question 1 (one): option 2 must be a table with exactly 'text' and 'claim'",
    ),
    (
        [valid_entry(options=[{"text": "a", "claim": "x"}, {"text": "b", "claim": "x"}])],
        "question 1 (one): two options share a claim",
    ),
    ([valid_entry(correct=["C"])], "question 1 (one): correct must list letters among ['A', 'B']"),
    ([valid_entry(link="lesson 4")], "question 1 (one): link must look like 'NN_topic.ipynb#Heading-anchor'"),
]


def test_a_valid_question_passes_every_check_and_its_id_is_remembered() -> None:
    """A well-formed question has no problems, and its id joins the ids seen for the duplicate check."""
    seen: set[str] = set()
    assert problems_in_question(1, valid_entry(), seen) == []
    assert seen == {"one"}


@pytest.mark.parametrize(("entries", "expected"), VALUE_CASES, ids=[c[1].split(": ", 1)[1][:24] for c in VALUE_CASES])
def test_each_value_check_reports_its_own_message(entries: list[dict[str, Any]], expected: str) -> None:
    """Breaking one rule of the table produces exactly that rule's message, prefixed by the question."""
    assert problems(*entries) == [expected]


def test_every_row_of_the_check_table_has_a_case() -> None:
    """VALUE_CASES above covers each row of VALUE_CHECKS exactly once, and each row names a known field."""
    reported = [expected.split(": ", 1)[1] for _, expected in VALUE_CASES]
    for check in VALUE_CHECKS:
        assert check.field in QUESTION_FIELDS
        start = check.message.split("{", 1)[0]
        assert sum(problem.startswith(start) for problem in reported) == 1, check.message
    assert len(VALUE_CASES) == len(VALUE_CHECKS)


def test_an_empty_answer_list_is_refused_like_a_wrong_letter() -> None:
    """correct = [] is reported with the same message as a letter that is not an option."""
    assert problems(valid_entry(correct=[])) == ["question 1 (one): correct must list letters among ['A', 'B']"]


def test_shape_problems_come_first_and_stop_the_value_checks() -> None:
    """A missing, unknown, mistyped or empty field is reported, and the value checks (and the duplicate id) wait."""
    broken = valid_entry(category="trivia", prompt="  ", options="a, b", extra=1)
    del broken["level"]
    seen: set[str] = set()
    assert problems_in_question(3, broken, seen) == [
        "question 3 (one): missing field 'level'",
        "question 3 (one): unknown field 'extra'",
        "question 3 (one): 'prompt' is empty",
        "question 3 (one): 'options' must be a list, not str",
    ]
    assert seen == set()


def test_code_is_the_one_field_that_may_be_empty() -> None:
    """An empty code field is fine; an empty hint is not."""
    assert problems(valid_entry(code="")) == []
    assert problems(valid_entry(hint="")) == ["question 1 (one): 'hint' is empty"]


def test_a_check_on_each_item_numbers_the_items_that_fail() -> None:
    """A FieldCheck with each=True tests every item of the list and reports each failing one by its position."""
    check = FieldCheck("options", lambda item, _: item > 1, "item {number} is {value}", each=True)
    entry = Entry({"options": [1, 2, 0]}, frozenset())
    assert check.problems(entry) == ["item 1 is 1", "item 3 is 0"]
    whole = FieldCheck("options", lambda value, entry: len(value) == len(entry.letters), "never {letters}")
    assert whole.problems(entry) == []
