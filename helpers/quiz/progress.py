"""The optional progress file: a run saved under `.progress/` so a learner can close the notebook and resume.

Kept apart from the engine because it is the only part that touches the disk, and it decides where a file may go
(only inside the git-ignored folder, so saved progress never ends up in a commit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.quiz.data import ROOT, Quiz, QuizUsageError
from helpers.quiz.scoring import Attempt, QuestionRecord

__all__ = ["PROGRESS_DIR", "Saved", "load", "progress_path", "save", "state"]

PROGRESS_DIR = ROOT / ".progress"  # listed in .gitignore: progress never ends up in a commit


def progress_path(quiz: Quiz, progress: bool | str | Path) -> Path | None:
    """Where `progress=` saves: nowhere (False), .progress/<quiz>.json (True), or a file inside .progress/."""
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


def state(quiz_id: str, records: list[QuestionRecord], index: int, best: dict[str, Any] | None) -> dict[str, Any]:
    """A run as JSON-ready data."""
    return {
        "quiz": quiz_id,
        "questions": [r.question.id for r in records],
        "index": index,
        "records": [
            {
                "attempts": [None if a.choice is None else sorted(a.choice) for a in r.attempts],
                "hint": r.hint_shown,
                "show_me_early": r.evidence_early,
            }
            for r in records
        ],
        "best": best,
    }


def save(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then a rename), so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    temporary.replace(path)


@dataclass(frozen=True)
class Saved:
    """A saved run read back: where it was and the best result so far."""

    index: int
    best: dict[str, Any] | None
    resumed: bool  # something had happened in it (so start() continues rather than begins afresh)


def load(path: Path, quiz: Quiz, records: list[QuestionRecord]) -> Saved | None:
    """Replay a saved run into fresh `records`; None when there is none for this very quiz."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # an unreadable progress file is ignored (and overwritten on the next save)
    if data.get("quiz") != quiz.id or data.get("questions") != [q.id for q in quiz.questions]:
        return None  # the quiz changed since: start afresh
    for record, saved in zip(records, data.get("records", []), strict=False):
        for choice in saved.get("attempts", []):
            letters = None if choice is None else frozenset(choice)
            record.attempts.append(Attempt(letters, letters == record.question.correct))
        record.hint_shown = bool(saved.get("hint"))
        record.evidence_early = bool(saved.get("show_me_early"))
    index = min(int(data.get("index", 0)), len(records))
    return Saved(index, data.get("best"), index > 0 or any(r.attempts for r in records))
