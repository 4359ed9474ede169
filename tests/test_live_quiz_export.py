"""Tests for helpers.live_quiz.export: one row per answer, which csv (and so pandas) takes as it is."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from helpers.live_quiz.export import ROW_FIELDS, csv_text, result_rows, write_csv
from helpers.live_quiz.session import LiveSession, QuestionBank
from helpers.usage import UsageTypeError

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def session() -> LiveSession:
    """Two rounds: ada and bob answer the first (revealed), ada the second (still open)."""
    now = [10.0]
    quiz = LiveSession(QuestionBank(["broadcasting"]), clock=lambda: now[0], wall_clock=lambda: 1_700_000_000.25)
    quiz.push("broadcasting", "late-subscriber", 30)
    now[0] = 12.5
    quiz.answer("ada", "late-subscriber", ["A"])
    quiz.answer("Bob", "late-subscriber", ["C"])
    quiz.reveal()
    quiz.push("broadcasting", "startup-code", 30)
    quiz.answer("ada", "startup-code", ["B", "D"])
    return quiz


def test_rows_say_who_answered_what_and_when(session: LiveSession) -> None:
    """Each accepted answer is a row with the fields in ROW_FIELDS order, letters joined, UTC time, revealed flag."""
    rows = result_rows(session)
    assert [tuple(row) for row in rows] == [ROW_FIELDS] * 3
    assert rows[0] == {
        "round": 1,
        "quiz": "broadcasting",
        "question": "late-subscriber",
        "name": "ada",
        "answer": "A",
        "correct": True,
        "points": 2,
        "seconds": 2.5,
        "answered_at": "2023-11-14T22:13:20.250+00:00",
        "revealed": True,
    }
    assert [(r["name"], r["answer"], r["correct"], r["revealed"]) for r in rows[1:]] == [
        ("Bob", "C", False, True),
        ("ada", "B,D", True, False),
    ]


def test_csv_text_and_files_read_back_with_the_csv_module(session: LiveSession, tmp_path: Path) -> None:
    """The CSV has a header and one line per row; the file holds the same text; an empty export is the header."""
    text = csv_text(result_rows(session))
    read = list(csv.DictReader(io.StringIO(text)))
    assert [(r["name"], r["answer"], r["points"]) for r in read] == [
        ("ada", "A", "2"),
        ("Bob", "C", "0"),
        ("ada", "B,D", "2"),
    ]
    path = write_csv(result_rows(session), tmp_path / "results.csv")
    assert path.read_bytes().decode("utf-8") == text
    assert csv_text([]) == ",".join(ROW_FIELDS) + "\r\n"


def test_write_csv_refuses_a_path_that_is_not_one() -> None:
    """A path of the wrong type raises UsageTypeError saying what to pass."""
    with pytest.raises(UsageTypeError, match=r"path must be a str or Path such as 'results\.csv', not int"):
        write_csv([], 3)  # type: ignore[arg-type]
