"""Tests for helpers.quiz as a whole: the quiz files in quizzes/ (valid, linked to lessons, backed by experiments),
the package's public names, and the helpers the other tests/test_quiz_*.py files share."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest

import helpers.quiz
from helpers import evidence, quiz
from helpers.quiz import Question, Quiz
from helpers.quiz import progress as quiz_progress
from tests.support import ROOT, load_script

pytestmark = pytest.mark.timeout(30)

QUIZZES = ["channels", "broadcasting", "production"]
SERIES = {lesson.file for lesson in load_script("tools/notebooks.py", "notebook_tools").load_series()}
# Every name the notebooks (and tests/test_evidence.py) reach through `quiz.` or `from helpers.quiz import`.
NOTEBOOK_NAMES = [
    "QuizSession",
    "QuizWidget",
    "Question",
    "load_quiz",
    "format_time",
    "CATEGORIES",
    "LEVELS",
    "MAX_TIME_LIMIT",
    "READ_WORDS_PER_SECOND",
    "THINK_SECONDS",
    "CODE_SECONDS_PER_LINE",
]


def all_questions() -> list[tuple[str, Question]]:
    return [(name, q) for name in QUIZZES for q in quiz.load_quiz(name).questions]


def heading_anchors(notebook: Path) -> set[str]:
    """The anchors JupyterLab gives a notebook's headings: rendered heading text with spaces as dashes."""
    anchors = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"#{1,6}\s+(.*)", line)
            if match:
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # links keep their text
                text = text.replace("`", "").replace("**", "")
                anchors.add(text.strip().replace(" ", "-"))
    return anchors


def tiny_quiz(*correct: str) -> Quiz:
    """A quiz with one question per entry of `correct` (four options each, one right answer)."""
    questions = tuple(
        Question(
            id=f"q{i}",
            category="debug",
            level="advanced",
            time_limit=60,
            prompt=f"Question {i}?",
            code="print('hi')",
            options=tuple(quiz.Option(letter, f"option {letter}", f"claim-{letter}") for letter in "ABCD"),
            correct=frozenset(answer),
            hint=f"hint {i}",
            explanation=f"because {i}",
            link="04_await_pitfalls.ipynb#Summary",
            evidence="accept_opens",
        )
        for i, answer in enumerate(correct, 1)
    )
    return Quiz("tiny", "Quiz: tiny", "Tiny Master", questions)


def point_progress_at(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make sessions save progress under `folder` (a test's fixture passes a temporary one)."""
    monkeypatch.setattr(quiz_progress, "PROGRESS_DIR", folder)
    return folder


# -- the package


def test_the_names_the_notebooks_use_are_on_the_package() -> None:
    """`from helpers import quiz` still offers every name the notebooks use, and the widget's stop()."""
    missing = [name for name in NOTEBOOK_NAMES if not hasattr(quiz, name)]
    assert missing == []
    assert callable(quiz.QuizWidget.stop)
    assert set(quiz.__all__) >= set(NOTEBOOK_NAMES)


def test_every_module_of_the_package_declares_what_it_exports() -> None:
    """Each module of helpers.quiz has a docstring and an __all__ whose names all exist."""
    names = ["helpers.quiz"] + [f"helpers.quiz.{m.name}" for m in pkgutil.iter_modules(helpers.quiz.__path__)]
    assert len(names) >= 6
    for name in names:
        module = importlib.import_module(name)
        assert module.__doc__, name
        assert module.__all__, name
        assert [n for n in module.__all__ if not hasattr(module, n)] == [], name


# -- the quiz files


@pytest.mark.parametrize("name", QUIZZES)
def test_quiz_files_load_with_at_least_fourteen_valid_questions(name: str) -> None:
    """Each quiz file parses, has a title and badge, and at least 14 questions with valid categories and levels."""
    loaded = quiz.load_quiz(name)
    assert loaded.id == name and loaded.title and loaded.badge
    assert len(loaded) >= 14
    for question in loaded.questions:
        assert question.category in quiz.CATEGORIES
        assert question.level in quiz.LEVELS
        assert 10 <= question.time_limit <= quiz.MAX_TIME_LIMIT
        assert all([question.prompt, question.hint, question.explanation, question.code, question.evidence])
        assert question.correct <= set(question.letters)


def test_quizzes_use_every_category_and_level() -> None:
    """Across both quizzes every category and every level appears at least once per quiz."""
    for name in QUIZZES:
        questions = quiz.load_quiz(name).questions
        assert {q.category for q in questions} == set(quiz.CATEGORIES), name
        assert {q.level for q in questions} == set(quiz.LEVELS), name


@pytest.mark.parametrize(("name", "question"), all_questions(), ids=lambda v: getattr(v, "id", v))
def test_links_point_to_an_existing_lesson_heading(name: str, question: Question) -> None:
    """A question's link names a notebook in series.toml that exists, and a heading anchor inside it."""
    assert question.notebook in SERIES, f"{question.notebook} is not in notebooks/series.toml"
    notebook = ROOT / "notebooks" / question.notebook
    assert notebook.exists(), f"{question.notebook} does not exist"
    assert question.anchor in heading_anchors(notebook), f"no heading {question.anchor!r} in {question.notebook}"


@pytest.mark.parametrize(("name", "question"), all_questions(), ids=lambda v: getattr(v, "id", v))
def test_every_question_names_a_registered_experiment(name: str, question: Question) -> None:
    """The evidence field names an experiment that helpers.evidence provides."""
    assert question.evidence in evidence.EXPERIMENTS
