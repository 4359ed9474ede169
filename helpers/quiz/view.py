"""One view of a question, drawn two ways: as text (the session's `str()`, which nbval compares) and as HTML
(the widget).

Both renderers read the same `QuestionView`, so what a question shows (attempts, hint, the early Show me note,
answer and explanation once it is over) is decided once; the renderers only choose words and markup.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass

from helpers.quiz.data import Option
from helpers.quiz.scoring import QuestionRecord, Results

__all__ = [
    "EARLY_NOTE",
    "WIDTH",
    "QuestionView",
    "feedback_html",
    "format_time",
    "header_html",
    "inline_html",
    "paragraphs_html",
    "prompt_html",
    "question_text",
    "screen_html",
    "wrap",
]

WIDTH = 100
EARLY_NOTE = "Show me ran before this question was over: it still scores, but no longer counts toward the badge."


def format_time(seconds: float) -> str:
    """m:ss, rounded up to the whole second (a clock never shows 0:00 while time is left)."""
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 60}:{whole % 60:02d}"


@dataclass(frozen=True)
class QuestionView:
    """What there is to show of one question at one moment of a run."""

    quiz_title: str
    number: int  # 1-based position in the run
    total: int
    category: str
    level: str
    time_limit: int
    prompt: str
    code: str
    options: tuple[Option, ...]
    multiple: bool
    attempts: tuple[str, ...]  # each attempt described: "A: not right", "time ran out"
    hint: str | None  # None until the hint is asked for
    early: bool  # Show me ran before the question was over
    answer: str | None  # the right letters ("A, C") once the question is over, else None
    solved: bool
    explanation: str
    link: str
    evidence: str
    attempts_left: int
    attempt_limit: int

    @classmethod
    def of(cls, record: QuestionRecord, number: int, total: int, quiz_title: str) -> QuestionView:
        q = record.question
        return cls(
            quiz_title=quiz_title,
            number=number,
            total=total,
            category=q.category,
            level=q.level,
            time_limit=q.time_limit,
            prompt=q.prompt,
            code=q.code,
            options=q.options,
            multiple=q.multiple,
            attempts=tuple(a.describe() for a in record.attempts),
            hint=q.hint if record.hint_shown else None,
            early=record.evidence_early,
            answer=", ".join(sorted(q.correct)) if record.finished else None,
            solved=record.solved,
            explanation=q.explanation,
            link=q.link,
            evidence=q.evidence,
            attempts_left=record.attempts_left,
            attempt_limit=record.limit,
        )

    @property
    def finished(self) -> bool:
        return self.answer is not None

    @property
    def limit_text(self) -> str:
        return f"{format_time(self.time_limit)} per attempt"


# -- text


def wrap(text: str, indent: str = "") -> list[str]:
    """Lines of at most WIDTH characters; paragraphs (blank-line separated) stay apart."""
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        joined = " ".join(paragraph.split())
        out += textwrap.wrap(joined, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]
        out.append("")
    return out[:-1]


def question_text(view: QuestionView) -> list[str]:
    """The question as lines of text: deterministic, no running clock."""
    lines = [
        f"{view.quiz_title} · question {view.number} of {view.total}",
        f"[{view.category} · {view.level} · {view.limit_text}]",
        "",
        *wrap(view.prompt),
    ]
    if view.code:
        lines += ["", *("    " + line if line else "" for line in view.code.splitlines())]
    lines.append("")
    if view.multiple:
        lines.append("Select all that apply:")
    for option in view.options:
        wrapped = wrap(option.text, "     ")
        lines.append(f"  {option.letter}) {wrapped[0].strip()}")
        lines += wrapped[1:]
    lines.append("")
    lines += [f"Attempt {n}: {attempt}" for n, attempt in enumerate(view.attempts, 1)]
    if view.hint is not None:
        lines += wrap(f"Hint: {view.hint}")
    if view.early:
        lines += wrap(EARLY_NOTE)
    if view.answer is not None:
        lines.append(f"Answer: {view.answer}" + (" (you got it)" if view.solved else ""))
        lines += wrap(f"Why: {view.explanation}")
        lines.append(f"Evidence: Show me runs experiment {view.evidence!r} · lesson: {view.link}")
    else:
        lines.append(f"Attempts left: {view.attempts_left} of {view.attempt_limit}")
    return lines


# -- HTML


def inline_html(text: str) -> str:
    """Escape text for HTML and show `code` spans in a monospace font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def paragraphs_html(text: str) -> str:
    return "".join(f"<p>{inline_html(' '.join(p.split()))}</p>" for p in text.split("\n\n"))


def header_html(title: str, so_far: Results | None) -> str:
    """The quiz title, with the score so far while a run is under way."""
    header = f"<h3>{html.escape(title)}</h3>"
    if so_far is not None:
        header += f"<p class='wslab-quiz-score'>Score so far: {so_far.score} of {so_far.max_score} points</p>"
    return header


def screen_html(text: str) -> str:
    """A text screen (before the start, after the end) as preformatted HTML."""
    return f"<pre>{html.escape(text)}</pre>"


def prompt_html(view: QuestionView) -> str:
    """The question itself: where it stands, its prompt, code and options."""
    code = f"<pre>{html.escape(view.code)}</pre>" if view.code else ""
    options = "".join(f"<li><b>{o.letter})</b> {inline_html(o.text)}</li>" for o in view.options)
    return (
        f"<b>Question {view.number} of {view.total}</b> · {html.escape(view.category)} · "
        f"{html.escape(view.level)} · {view.limit_text}{paragraphs_html(view.prompt)}{code}"
        f"<ul style='list-style: none; padding-left: 0'>{options}</ul>"
        + ("<p><i>Select all that apply.</i></p>" if view.multiple else "")
    )


def feedback_html(view: QuestionView, verdict: str = "") -> str:
    """What happened so far: the last verdict, the attempts, the hint, and the answer once the question is over."""
    parts = [f"<b>{html.escape(verdict)}</b>"] if verdict else []
    parts += [f"Attempt {n}: {html.escape(attempt)}" for n, attempt in enumerate(view.attempts, 1)]
    if view.hint is not None:
        parts.append(f"<b>Hint:</b> {inline_html(view.hint)}")
    if view.early:
        parts.append(f"<i>{html.escape(EARLY_NOTE)}</i>")
    if view.answer is not None:
        parts.append(f"<b>Answer: {view.answer}</b>")
        parts.append(f"<b>Why:</b> {paragraphs_html(view.explanation)}")
        parts.append(f"Seen in the lesson: <code>{html.escape(view.link)}</code>")
    else:
        parts.append(f"Attempts left: {view.attempts_left} of {view.attempt_limit}")
    return "<br>".join(parts)
