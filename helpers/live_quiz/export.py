"""The results of a live quiz as rows: who answered what and when, one dict per accepted answer.

Plain dicts of str, int, float and bool with the same keys in the same order (`ROW_FIELDS`), so
`pandas.DataFrame(rows)` and `csv.DictWriter(file, ROW_FIELDS)` both take them as they are; `write_csv`
does the second. Rows include the rounds not yet revealed: the export is the instructor's, never a student's.
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path
from typing import IO

from helpers.live_quiz.session import LiveSession
from helpers.usage import UsageTypeError

__all__ = ["ROW_FIELDS", "Row", "csv_text", "result_rows", "write_csv"]

Row = dict[str, str | int | float | bool]

# round: its number in the session; answer: the letters chosen, comma-separated ("A" or "A,C");
# seconds: from the push to the answer, on the server's clock; answered_at: the server's wall-clock time, UTC.
ROW_FIELDS = (
    "round",
    "quiz",
    "question",
    "name",
    "answer",
    "correct",
    "points",
    "seconds",
    "answered_at",
    "revealed",
)


def result_rows(session: LiveSession) -> list[Row]:
    """One row per accepted answer, round by round in the order the answers arrived."""
    rows: list[Row] = []
    for played in session.rounds:
        for answer in played.answers.values():
            at = datetime.datetime.fromtimestamp(answer.at, datetime.UTC)
            rows.append(
                {
                    "round": played.number,
                    "quiz": played.quiz.id,
                    "question": played.question.id,
                    "name": answer.name,
                    "answer": ",".join(sorted(answer.letters)),
                    "correct": answer.correct,
                    "points": answer.points,
                    "seconds": round(answer.seconds, 3),
                    "answered_at": at.isoformat(timespec="milliseconds"),
                    "revealed": played.revealed,
                }
            )
    return rows


def csv_text(rows: list[Row]) -> str:
    """The rows as CSV text with a header line (an empty export is the header alone)."""
    buffer = io.StringIO()
    _write(rows, buffer)
    return buffer.getvalue()


def write_csv(rows: list[Row], path: str | Path) -> Path:
    """Write the rows to a CSV file (UTF-8, header first) and return its path."""
    if not isinstance(path, (str, Path)):
        raise UsageTypeError(f"path must be a str or Path such as 'results.csv', not {type(path).__name__}")
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as file:
        _write(rows, file)
    return target


def _write(rows: list[Row], file: IO[str]) -> None:
    writer = csv.DictWriter(file, ROW_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
