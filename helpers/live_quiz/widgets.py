"""The live quiz on screen: `StudentQuiz` for each student, `InstructorQuiz` for the instructor.

    live = start_live_quiz(quizzes=["broadcasting"])
    teacher = InstructorQuiz(live)                 # or InstructorQuiz(live.instructor_url): no export then
    ada = StudentQuiz(live.student_url, "ada")     # `{name}` in the URL is filled in
    teacher.connect(); ada.connect()
    teacher.push("broadcasting", "late-subscriber", seconds=30)
    ada.answer("A")                                # or click the A button
    teacher.reveal(); teacher.export()

Both are ipywidgets boxes drawn from the server's messages alone (`helpers.live_quiz.views`), on a connection that
reconnects after a server restart or a network fault (`helpers.live_quiz.widget_base`). What the server sends is
shown as text, escaped, never as HTML. The countdown counts from the server's `deadline - now`.

Each has a programmatic API for notebooks and tests (`connect()`, `answer()` / `push()`, `reveal()`,
`wait_for(predicate)`, `status`, `disconnect()`, `close()`) and a short deterministic repr, which nbval compares:
`StudentQuiz('ada', open, question 2, answered)`, `InstructorQuiz(open, question 2, 1 of 3 answered)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from helpers.chat_connection import MAX_RECONNECT_DELAY, RECONNECT_ATTEMPTS, RECONNECT_DELAY
from helpers.clients import OPEN_TIMEOUT, WAIT_TIMEOUT
from helpers.live_quiz import protocol as wire
from helpers.live_quiz.export import Row
from helpers.live_quiz.handle import LiveQuiz
from helpers.live_quiz.views import InstructorView, LiveQuizUsageError, StudentView
from helpers.live_quiz.widget_base import LiveQuizWidget, escape
from helpers.quiz.data import MAX_TIME_LIMIT
from helpers.quiz.view import format_time
from helpers.usage import UsageError, UsageTypeError, check_text

__all__ = ["InstructorQuiz", "StudentQuiz"]

_FULL = {"width": "98%"}
_LETTER = {"width": "3.5em"}


def _question_html(question: dict[str, Any] | None) -> str:
    """The question as a student reads it: number, quiz, prompt, code as preformatted text, the options."""
    if question is None:
        return "<i>No question yet: the instructor will push one.</i>"
    options = "".join(
        f"<li><b>{escape(o['letter'])}</b>. {escape(o['text'])}</li>" for o in question.get("options", [])
    )
    code = question.get("code") or ""
    many = " (choose every right answer)" if question.get("multiple") else ""
    return (
        f"<b>Question {escape(question['number'])}</b> · {escape(question.get('quiz_title', ''))}{many}"
        f'<div style="white-space:pre-wrap">{escape(question.get("prompt", ""))}</div>'
        + (f'<pre style="font-size:12px">{escape(code)}</pre>' if code else "")
        + f'<ul style="list-style:none;padding-left:0">{options}</ul>'
    )


def _clock_html(view: StudentView | InstructorView) -> str:
    remaining = view.remaining()
    if view.question is None or remaining is None:
        return ""
    if view.revealed is not None:
        return "<b>revealed</b>"
    if not view.open:
        return "<b>time is up</b>"
    return f"<b>{format_time(remaining)}</b> left"


def _evidence_html(view: StudentView | InstructorView) -> str:
    """The room's "Show me" under the reveal: waiting for it, or its facts (escaped, preformatted)."""
    if view.revealed is None or not view.revealed.get("evidence"):
        return ""
    if view.evidence is None:
        return "<i>Show me: the server is running this question's experiment for the room...</i>"
    return f'<pre style="font-size:12px;white-space:pre-wrap">{escape(view.evidence_text())}</pre>'


def _pick_first(menu: widgets.Dropdown) -> None:
    """Select a menu's first option when nothing is selected (new options leave a Dropdown without a value)."""
    if menu.value is None and menu.options:
        menu.value = menu.options[0][1]


def _letters(letters: tuple[str | Iterable[str], ...]) -> list[str]:
    """answer("B"), answer("A", "C") and answer(["A", "C"]) as a list of letters."""
    flat: list[str] = []
    for item in letters:
        if isinstance(item, str):
            flat.append(item)
        elif isinstance(item, Iterable):
            flat.extend(item)
        else:
            raise UsageTypeError(f'answer() takes letters such as "B" or ["A", "C"], not {type(item).__name__}')
    if not flat or not all(isinstance(letter, str) for letter in flat):
        raise UsageTypeError('answer() takes letters such as "B" or ["A", "C"]')
    return [letter.strip().upper() for letter in flat]


class StudentQuiz(LiveQuizWidget):
    """One student's live quiz: status, question, countdown, what was recorded, and the result at the reveal."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        open_timeout: float = OPEN_TIMEOUT,
        max_attempts: int = RECONNECT_ATTEMPTS,
        reconnect_delay: float = RECONNECT_DELAY,
        max_reconnect_delay: float = MAX_RECONNECT_DELAY,
        tick: float = 0.25,
        width: str = "360px",
    ) -> None:
        self.view = StudentView()
        self.recorded = ""  # what the last answer did: "answered B at 3.2 s", or why it was refused
        super().__init__(
            url,
            check_text(name, "name", example="ada"),
            self.view,
            open_timeout=open_timeout,
            max_attempts=max_attempts,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            tick=tick,
        )
        self.layout.width = width
        self.header, self.question_html, self.clock = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.record_html, self.result_html = widgets.HTML(), widgets.HTML()
        self.letter_buttons: dict[str, widgets.Button | widgets.ToggleButton] = {}
        self.submit_button = widgets.Button(description="Submit", button_style="primary")
        self.submit_button.on_click(lambda _: self._ui_answer(self._toggled()))
        self.letter_row = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self._drawn_for: tuple[Any, ...] | None = None  # (question, number, multiple) the letter buttons are for
        self.parts = [self.header, self.question_html, self.clock, self.letter_row, self.submit_button]
        self.parts += [self.record_html, self.result_html]
        self.children = [
            self.header,
            self.clock,
            self.question_html,
            self.letter_row,
            self.record_html,
            self.result_html,
        ]
        with self._lock:
            self.render()

    @property
    def name(self) -> str:
        return self.connection.name

    def owned_parts(self) -> list[widgets.Widget]:
        return [*self.parts, *self.letter_buttons.values()]

    # -- drawing

    def received(self, kind: str, data: dict[str, Any]) -> None:
        if kind == wire.ANSWERED:
            self.recorded = f"answered {', '.join(data['answer'])} at {float(data['seconds']):.1f} s"
        elif kind == wire.REFUSED:
            self.recorded = f"refused: {data['reason']}"
        elif kind == wire.ERROR:
            self.recorded = f"the server could not use that: {data['reason']}"
        elif kind == wire.QUESTION:
            answer = data.get("answer")
            self.recorded = "" if not answer else f"answered {', '.join(answer)} (recorded before you reconnected)"

    def render(self) -> None:
        view = self.view
        place = "" if view.rank is None else f", rank {view.rank}"
        away = "" if view.instructor_here or self.state != "open" else " · the instructor is away"
        self.header.value = (
            self.status_html(self.name) + f"<br><small>{view.score} points{escape(place)}{escape(away)}</small>"
        )
        self.question_html.value = _question_html(view.question)
        self.render_clock()
        self._draw_letters()
        colour = "#c62828" if self.recorded.startswith(("refused", "the server")) else "#333"
        self.record_html.value = f'<span style="color:{colour}">{escape(self.recorded)}</span>' if self.recorded else ""
        self.result_html.value = self._result_html()

    def render_clock(self) -> None:
        self.clock.value = _clock_html(self.view)

    def _draw_letters(self) -> None:
        question = self.view.question
        key = None if question is None else (question["question"], question["number"], bool(question["multiple"]))
        if key != self._drawn_for:
            self._drawn_for = key
            for button in self.letter_buttons.values():
                button.close()
            self.letter_buttons = {}
            for option in [] if question is None else question["options"]:
                letter = str(option["letter"])
                if key is not None and key[2]:
                    self.letter_buttons[letter] = widgets.ToggleButton(description=letter, layout=_LETTER)
                else:
                    button = widgets.Button(description=letter, layout=_LETTER)
                    button.on_click(lambda _, chosen=letter: self._ui_answer([chosen]))
                    self.letter_buttons[letter] = button
            extra = [self.submit_button] if key is not None and key[2] else []
            self.letter_row.children = [*self.letter_buttons.values(), *extra]
        locked = not self.view.open or self.view.answer is not None or self.state != "open"
        for button in [*self.letter_buttons.values(), self.submit_button]:
            button.disabled = locked

    def _result_html(self) -> str:
        revealed, result = self.view.revealed, self.view.result
        if revealed is None:
            return ""
        if result is None or result.get("answer") is None:
            verdict = "<b>you did not answer</b>"
        else:
            verdict = (
                '<b style="color:#1a7f37">✓ right</b>' if result["correct"] else '<b style="color:#c62828">✗ wrong</b>'
            )
        points = "" if result is None else f"<br>+{escape(result['points'])} points · score {escape(result['score'])}"
        rank = "" if result is None or result.get("rank") is None else f" · rank {escape(result['rank'])}"
        return (
            f"{verdict} · the answer is <b>{escape(', '.join(revealed['correct']))}</b>"
            f'<div style="white-space:pre-wrap">{escape(revealed.get("explanation", ""))}</div>{points}{rank}'
            + _evidence_html(self.view)
        )

    def _toggled(self) -> list[str]:
        return [letter for letter, button in self.letter_buttons.items() if getattr(button, "value", False)]

    def _ui_answer(self, letters: list[str]) -> None:
        if not letters:
            self.note = "choose at least one letter, then Submit"
            with self._lock:
                self.render()
            return
        self.click(self.view.answer_text(letters))

    # -- programmatic API

    def answer(self, *letters: str | Iterable[str], timeout: float = WAIT_TIMEOUT) -> str:
        """Answer the current question (`answer("B")`, `answer("A", "C")`) and wait for the server's reply.

        Returns the line the widget shows: "answered B at 3.2 s", or "refused: ..." with the server's reason.
        """
        chosen = _letters(letters)
        with self._lock:
            if self.view.question is None:
                raise LiveQuizUsageError("no question to answer yet: wait for the instructor to push one")
            offered = [str(option["letter"]) for option in self.view.question["options"]]
            text = self.view.answer_text(chosen)
        wrong = [letter for letter in chosen if letter not in offered]
        if wrong or len(set(chosen)) != len(chosen):
            raise UsageError(
                f"answer with different letters of this question's options ({', '.join(offered)}), not {chosen}"
            )
        self._request(text, (wire.ANSWERED, wire.REFUSED, wire.ERROR), timeout)
        return self.recorded

    def phase(self) -> str:
        """Where this student is: no question, to answer, answered, time up, or revealed: right / wrong / no answer."""
        view = self.view
        if view.question is None:
            return "no question"
        if view.revealed is not None:
            result = view.result or {}
            verdict = "no answer" if result.get("answer") is None else "right" if result.get("correct") else "wrong"
            return f"question {view.question['number']}, revealed: {verdict}"
        step = "answered" if view.answer is not None else "to answer" if view.open else "time up"
        return f"question {view.question['number']}, {step}"

    def __repr__(self) -> str:
        return f"StudentQuiz({self.name!r}, {self.state}, {self.phase()})"


class _Histogram:
    """One bar per option (an IntProgress each), updated in place as answers arrive."""

    def __init__(self) -> None:
        self.box = widgets.VBox()
        self.bars: dict[str, widgets.IntProgress] = {}
        self.counts: dict[str, widgets.HTML] = {}
        self.parts: list[widgets.Widget] = [self.box]
        self._letters: list[str] = []

    def draw(self, counts: dict[str, int], total: int) -> None:
        letters = list(counts)
        if letters != self._letters:
            for part in self.parts[1:]:
                part.close()
            self.parts, self._letters, self.bars, self.counts, rows = [self.box], letters, {}, {}, []
            for letter in letters:
                label = widgets.HTML(f"<b>{escape(letter)}</b>", layout={"width": "2em"})
                self.bars[letter] = widgets.IntProgress(min=0, max=1, layout={"width": "60%"})
                self.counts[letter] = widgets.HTML(layout={"width": "4em"})
                row = widgets.HBox([label, self.bars[letter], self.counts[letter]])
                self.parts += [label, self.bars[letter], self.counts[letter], row]
                rows.append(row)
            self.box.children = rows
        for letter in letters:
            bar, count = self.bars[letter], int(counts[letter])
            bar.max = max(total, count, 1)
            bar.value = count
            self.counts[letter].value = str(count)


class InstructorQuiz(LiveQuizWidget):
    """The instructor's live quiz: pick and push a question, watch the answers arrive, reveal, see the leaderboard.

    Give it the `LiveQuiz` handle (or its `instructor_url`, which holds the key; then `export()` is not available).
    """

    def __init__(
        self,
        live: LiveQuiz | str,
        *,
        seconds: int = 30,
        open_timeout: float = OPEN_TIMEOUT,
        tick: float = 0.25,
        width: str = "520px",
    ) -> None:
        if not isinstance(live, (LiveQuiz, str)):
            raise UsageTypeError(
                f"InstructorQuiz takes the LiveQuiz handle or its instructor_url, not {type(live).__name__}"
            )
        self.live = live if isinstance(live, LiveQuiz) else None
        self.view = InstructorView()
        url = live.instructor_url if isinstance(live, LiveQuiz) else live
        super().__init__(url, "instructor", self.view, open_timeout=open_timeout, tick=tick)
        self.layout.width = width
        self.header, self.clock, self.progress = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.question_html, self.reveal_html, self.leaderboard_html = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.quiz_menu = widgets.Dropdown(description="quiz", layout=_FULL)
        self.question_menu = widgets.Dropdown(description="question", layout=_FULL)
        self.seconds = widgets.BoundedIntText(value=seconds, min=1, max=MAX_TIME_LIMIT, description="seconds")
        self.push_button = widgets.Button(description="Push", button_style="primary")
        self.reveal_button = widgets.Button(description="Reveal")
        self.histogram = _Histogram()
        self._catalogue: list[dict[str, Any]] = []
        self._asked_drawn: list[str] = []
        self.quiz_menu.observe(lambda _: self._fill_questions(), names="value")
        self.push_button.on_click(lambda _: self._ui_push())
        self.reveal_button.on_click(lambda _: self._ui_reveal())
        buttons = widgets.HBox([self.seconds, self.push_button, self.reveal_button])
        self.parts = [self.header, self.clock, self.progress, self.question_html, self.reveal_html, buttons]
        self.parts += [self.leaderboard_html, self.quiz_menu, self.question_menu, self.seconds]
        self.parts += [self.push_button, self.reveal_button]
        self.children = [self.header, self.quiz_menu, self.question_menu, buttons, self.question_html, self.clock]
        self.children = [*self.children, self.histogram.box, self.progress, self.reveal_html, self.leaderboard_html]
        with self._lock:
            self.render()

    # -- drawing

    def render(self) -> None:
        view = self.view
        self.header.value = self.status_html("Instructor")
        if view.quizzes != self._catalogue:
            self._catalogue = list(view.quizzes)
            self.quiz_menu.options = [(str(q["title"]), str(q["id"])) for q in view.quizzes]
            _pick_first(self.quiz_menu)
            self._fill_questions()
        elif view.asked != self._asked_drawn:  # a push went out: tick it, and move on to a question not asked yet
            self._fill_questions()
        question = view.question
        self.question_html.value = (
            "<i>No question pushed yet.</i>"
            if question is None
            else f"<b>Question {escape(question['number'])}</b>: {escape(question['prompt'])}"
        )
        self.render_clock()
        self.histogram.draw(view.counts, view.room)
        self.progress.value = f"<b>answered {view.answered} of {view.room}</b>"
        self.reveal_html.value = self._reveal_text()
        self.leaderboard_html.value = self._leaderboard_table()
        live = self.state == "open"
        self.push_button.disabled = not live or self.question_menu.value is None
        self.reveal_button.disabled = not live or question is None or view.revealed is not None

    def render_clock(self) -> None:
        self.clock.value = _clock_html(self.view)

    def owned_parts(self) -> list[widgets.Widget]:
        return [*self.parts, *self.histogram.parts]

    def _fill_questions(self) -> None:
        """The chosen quiz's questions, those asked ticked, the first one not asked selected (else the first)."""
        self._asked_drawn = list(self.view.asked)
        for quiz in self._catalogue:
            if quiz["id"] == self.quiz_menu.value:
                asked = set(self.view.asked)
                self.question_menu.options = [
                    (f"{'✓ ' if q['id'] in asked else ''}{q['id']}: {q['prompt'][:50]}", str(q["id"]))
                    for q in quiz["questions"]
                ]
                fresh = [str(q["id"]) for q in quiz["questions"] if q["id"] not in asked]
                if fresh:
                    self.question_menu.value = fresh[0]
                _pick_first(self.question_menu)
                return
        self.question_menu.options = []

    def _reveal_text(self) -> str:
        revealed = self.view.revealed
        if revealed is None:
            return ""
        return (
            f"the answer is <b>{escape(', '.join(revealed['correct']))}</b>"
            f'<div style="white-space:pre-wrap">{escape(revealed.get("explanation", ""))}</div>'
            + _evidence_html(self.view)
        )

    def _leaderboard_table(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(s['rank'])}</td><td>{escape(s['name'])}</td><td>{escape(s['score'])}</td></tr>"
            for s in self.view.leaderboard
        )
        return f"<b>Leaderboard</b><table><tr><th>#</th><th>name</th><th>points</th></tr>{rows}</table>" if rows else ""

    def _ui_push(self) -> None:
        if self.quiz_menu.value is None or self.question_menu.value is None:
            self.note = "pick a quiz and a question first"
            with self._lock:
                self.render()
            return
        self.click(self.view.push_text(str(self.quiz_menu.value), str(self.question_menu.value), self.seconds.value))

    def _ui_reveal(self) -> None:
        try:
            text = self.view.reveal_text()
        except LiveQuizUsageError as exc:
            self.note = str(exc)
            with self._lock:
                self.render()
            return
        self.click(text)

    # -- programmatic API

    def push(
        self,
        quiz: str,
        question: str,
        seconds: float | None = None,
        *,
        auto_reveal: bool = True,
        timeout: float = WAIT_TIMEOUT,
    ) -> None:
        """Push `question` of `quiz` to the room (`seconds`: its own time limit if None) and wait until it is on."""
        check_text(quiz, "quiz", example="broadcasting")
        check_text(question, "question", example="late-subscriber")
        kind = self._request(
            self.view.push_text(quiz, question, seconds, auto_reveal=auto_reveal), (wire.QUESTION, wire.ERROR), timeout
        )
        if kind == wire.ERROR:
            raise LiveQuizUsageError(f"the server refused the push: {self.view.error}")

    def reveal(self, *, timeout: float = WAIT_TIMEOUT) -> None:
        """Reveal the current question to everyone now, and wait until the reveal is back."""
        with self._lock:
            text = self.view.reveal_text()
        kind = self._request(text, (wire.REVEALED, wire.ERROR), timeout)
        if kind == wire.ERROR:
            raise LiveQuizUsageError(f"the server refused the reveal: {self.view.error}")

    def export(self) -> list[Row]:
        """Who answered what and when, one row per answer (helpers.live_quiz.export; `pandas.DataFrame` takes them)."""
        if self.live is None:
            raise LiveQuizUsageError("export() needs the LiveQuiz handle: create the widget with InstructorQuiz(live)")
        return self.live.rows()

    def __repr__(self) -> str:
        view = self.view
        where = "no question" if view.question is None else f"question {view.question['number']}"
        return f"InstructorQuiz({self.state}, {where}, {view.answered} of {view.room} answered)"
