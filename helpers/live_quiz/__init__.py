"""A live quiz for a whole class: the instructor pushes a question, every student answers on their own connection.

One module per concept, the public names re-exported here (`from helpers import live_quiz`):

- `session`: `LiveSession`, the rules with no sockets and no clock of their own: rounds with a server-time
  deadline, one answer per student per question, the reveal, the leaderboard kept by name across reconnections.
- `protocol`: the JSON message set (its docstring is the reference), strict parsing of what clients send and
  the builders of what the server sends; nothing before the reveal carries the key or the explanation.
- `app`: `QuizRoom`, the Starlette WebSocket endpoints for students and the instructor, with the classroom's
  join code, name rule, limits and close codes; `live_quiz_app` serves it, with the classroom chat beside it.
- `handle`: `start_live_quiz()` and the instructor's `LiveQuiz` handle (URLs, results, stop), and the notice
  for a quiz that listens beyond loopback.
- `export`: the results as rows for `csv` or `pandas.DataFrame`.
- `views`: `StudentView` and `InstructorView`, what a client knows from the messages it received (the state a
  widget draws), with the remaining time from the server's clock.
- `widgets`: `StudentQuiz` and `InstructorQuiz`, the ipywidgets that draw those views, on a connection that
  reconnects (`widget_base`); imported from `helpers.live_quiz.widgets`, so the server side needs no ipywidgets.

Questions come from `quizzes/*.toml` through `helpers.quiz.data`, and points follow `helpers.quiz.scoring`
(one attempt: 2 points for a right answer), counted once a question is revealed.
"""

from __future__ import annotations

from helpers.live_quiz.app import INSTRUCTOR_PATH, MAX_INSTRUCTORS, STUDENT_PATH, QuizRoom, live_quiz_app, quiz_routes
from helpers.live_quiz.export import ROW_FIELDS, csv_text, result_rows, write_csv
from helpers.live_quiz.handle import LiveQuiz, exposure_notice_for_quiz, start_live_quiz
from helpers.live_quiz.protocol import (
    AnswerMessage,
    ProtocolError,
    PushMessage,
    RevealMessage,
    answer_text,
    parse,
    push_text,
    reveal_text,
)
from helpers.live_quiz.session import (
    AnswerRefused,
    LiveQuizError,
    LiveSession,
    QuestionBank,
    Round,
    Standing,
    StudentAnswer,
)
from helpers.live_quiz.views import InstructorView, LiveQuizUsageError, ServerDeadline, StudentView

__all__ = [
    "INSTRUCTOR_PATH",
    "MAX_INSTRUCTORS",
    "ROW_FIELDS",
    "STUDENT_PATH",
    "AnswerMessage",
    "AnswerRefused",
    "InstructorView",
    "LiveQuiz",
    "LiveQuizError",
    "LiveQuizUsageError",
    "LiveSession",
    "ProtocolError",
    "PushMessage",
    "QuestionBank",
    "QuizRoom",
    "RevealMessage",
    "Round",
    "ServerDeadline",
    "Standing",
    "StudentAnswer",
    "StudentView",
    "answer_text",
    "csv_text",
    "exposure_notice_for_quiz",
    "live_quiz_app",
    "parse",
    "push_text",
    "quiz_routes",
    "result_rows",
    "reveal_text",
    "start_live_quiz",
    "write_csv",
]
