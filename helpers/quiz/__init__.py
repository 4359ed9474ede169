"""Timed quizzes whose answers are backed by running code.

Questions are data (`quizzes/*.toml`); one module per concept, every public name re-exported here, so
`from helpers import quiz` then `quiz.load_quiz(...)`, `quiz.QuizSession`, `quiz.QuizWidget` is all a notebook needs:

- `data`: the rules of a quiz file, `load_quiz("channels")` reading and validating one into a `Quiz` of `Question`s.
- `scoring`: attempts, one question's record, the results and the badge.
- `session`: `QuizSession`, the engine, with no widgets and no clock; `expire()` is "time ran out".
- `view`: one `QuestionView` of a question, rendered as text (the session's `str()`) and as HTML (the widget).
- `progress`: the optional progress file under `.progress/`.
- `countdown`: the bounded background thread that times an attempt.
- `controls`, `widget`: `QuizWidget`, the session on screen with ipywidgets, a visible countdown and "Show me",
  which runs the question's live experiment from `helpers.evidence` in a background thread.

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

from helpers.quiz.controls import KEYS_HELP, Controls, LetterRow
from helpers.quiz.countdown import Countdown
from helpers.quiz.data import (
    CATEGORIES,
    CODE_SECONDS_PER_LINE,
    LETTERS,
    LEVELS,
    MAX_TIME_LIMIT,
    QUIZ_DIR,
    READ_WORDS_PER_SECOND,
    ROOT,
    THINK_SECONDS,
    FieldCheck,
    Option,
    Question,
    Quiz,
    QuizDataError,
    QuizUsageError,
    available_quizzes,
    load_quiz,
    parse_quiz,
    quiz_path,
    time_limit_for,
)
from helpers.quiz.progress import PROGRESS_DIR
from helpers.quiz.scoring import ATTEMPTS, Attempt, QuestionRecord, Results
from helpers.quiz.session import QuizSession
from helpers.quiz.view import EARLY_NOTE, WIDTH, QuestionView, format_time
from helpers.quiz.widget import QuizWidget

__all__ = [
    "ATTEMPTS",
    "CATEGORIES",
    "CODE_SECONDS_PER_LINE",
    "EARLY_NOTE",
    "KEYS_HELP",
    "LETTERS",
    "LEVELS",
    "MAX_TIME_LIMIT",
    "PROGRESS_DIR",
    "QUIZ_DIR",
    "READ_WORDS_PER_SECOND",
    "ROOT",
    "THINK_SECONDS",
    "WIDTH",
    "Attempt",
    "Controls",
    "Countdown",
    "FieldCheck",
    "LetterRow",
    "Option",
    "Question",
    "QuestionRecord",
    "QuestionView",
    "Quiz",
    "QuizDataError",
    "QuizSession",
    "QuizUsageError",
    "QuizWidget",
    "Results",
    "available_quizzes",
    "format_time",
    "load_quiz",
    "parse_quiz",
    "quiz_path",
    "time_limit_for",
]
