"""The quiz on screen: a session driven by buttons, with a visible countdown and "Show me".

What each button does and when the countdown runs lives here; the widgets themselves are in `controls.py`, the
markup in `view.py`. The countdown and "Show me" run in background threads, so no click ever blocks the kernel.
After Start, Submit, Next and a time-out the keyboard focus moves to where the next step is: the first letter, or
the Next button.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Any

from helpers.quiz.controls import BUTTONS, Controls, LetterRow
from helpers.quiz.countdown import Countdown
from helpers.quiz.data import Quiz
from helpers.quiz.session import QuizSession
from helpers.quiz.view import feedback_html, format_time, header_html, prompt_html, screen_html

__all__ = ["QuizWidget"]


class QuizWidget:
    """The quiz on screen. Display it as a cell's last expression; `close()` stops its timer and widgets.

    `time_scale` shortens every time limit (tests use it); `progress=True` saves to .progress/<quiz>.json.
    """

    def __init__(
        self,
        quiz: Quiz | QuizSession | str,
        *,
        progress: bool | str | Path = False,
        time_scale: float = 1.0,
        tick: float = 0.25,
        evidence_timeout: float = 20.0,
    ) -> None:
        self.session = quiz if isinstance(quiz, QuizSession) else QuizSession(quiz, progress=progress)
        self.time_scale = time_scale
        self.evidence_timeout = evidence_timeout
        self._limit = 0.0  # seconds of the running attempt, for the progress bar
        self._lock = threading.RLock()
        self._evidence_thread: threading.Thread | None = None
        self.countdown = Countdown(self._on_tick, self._on_expire, tick=tick)
        self.letters = LetterRow(self._exclusive)
        handlers = {key: getattr(self, "show_me" if key == "show" else key) for key in BUTTONS}  # what a click runs
        self.controls = c = Controls(handlers, self.letters)
        self.header, self.clock, self.timebar, self.prompt = c.header, c.clock, c.timebar, c.prompt
        self.feedback, self.evidence_view, self.buttons, self.box = c.feedback, c.evidence_view, c.buttons, c.box
        self.choice_row, self.choice_label, self.help = self.letters.box, self.letters.label, c.help
        self.clock_row, self.button_row = c.clock_row, c.button_row
        self._refresh()

    @property
    def letter_buttons(self) -> list[Any]:
        return self.letters.buttons

    # -- display

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.box._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.session.render()  # deterministic, for nbval and text front-ends
        return bundle

    def __repr__(self) -> str:
        return self.session.render()

    # -- actions (also what the buttons call)

    def start(self) -> None:
        with self._lock:
            self.session.start()
            self._new_step()

    def restart(self) -> None:
        with self._lock:
            self.countdown.stop()
            self.session.restart()
            self._new_step()

    def submit(self) -> None:
        with self._lock:
            if not self._answerable():
                return
            choice = self.letters.selected()
            if not choice:
                self.feedback.value = "<b>Choose an option first.</b>"
                return
            self.countdown.stop()
            self._after(self.session.answer(choice))

    def hint(self) -> None:
        with self._lock:
            if self.session.started and not self.session.finished:
                self.session.hint()
                self._refresh()

    def next(self) -> None:
        with self._lock:
            if not self.session.started or self.session.finished or not self.session.record.finished:
                return
            self.countdown.stop()
            self.session.next()
            self._new_step()

    def show_me(self) -> None:
        """Run the current question's experiment in a background thread; the result appears in the widget."""
        with self._lock:
            if not self.session.started or self.session.finished:
                return
            if self._evidence_thread is not None and self._evidence_thread.is_alive():
                return
            name = self.session.current.evidence
            if self.session.note_show_me():
                self._refresh()
            self.buttons["show"].disabled = True
            self.evidence_view.value = f"<i>Running experiment {html.escape(name)!s}: a real server and clients...</i>"
            self._evidence_thread = threading.Thread(
                target=self._run_evidence, args=(name,), name="quiz-show-me", daemon=True
            )
            self._evidence_thread.start()

    def _run_evidence(self, name: str) -> None:
        from helpers import evidence

        try:
            text = evidence.run(name, timeout=self.evidence_timeout).fact
        except Exception as exc:  # shown in the widget: a thread has nobody else to tell
            text = f"Show me could not run: {exc}"
        self.evidence_view.value = f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"
        self.buttons["show"].disabled = False

    def stop(self) -> None:
        """Stop the countdown and wait (bounded) for a running experiment; the widget stays on screen.

        The next Submit, Next or Restart starts the countdown again.
        """
        self.countdown.stop(wait=True)
        if self._evidence_thread is not None:
            self._evidence_thread.join(self.evidence_timeout)
        if self._answerable():
            self.clock.value = "Time: paused"

    def close(self) -> None:
        """stop(), then close every widget (the quiz disappears from the page)."""
        self.stop()
        for widget in self.controls.all_widgets():
            widget.close()

    def _new_step(self) -> None:
        """A new run or a new question: no experiment output yet, then as after an attempt."""
        self.evidence_view.value = ""
        self._after()

    def _after(self, verdict: str = "") -> None:
        """Redraw (with the verdict of an attempt, if any), time the next attempt, move the focus to it."""
        self._refresh(verdict)
        self._arm()
        self._focus()

    def _focus(self) -> None:
        """Put the keyboard focus where the next step happens (a button that hides itself would lose it)."""
        if not self.session.started or self.session.finished:
            self.buttons["restart" if self.session.finished else "start"].focus()
        elif self.session.record.finished:
            self.buttons["next"].focus()
        elif self.letters.buttons:
            self.letters.buttons[0].focus()

    # -- timer

    def _answerable(self) -> bool:
        return self.session.started and not self.session.finished and not self.session.record.finished

    def _exclusive(self) -> bool:
        """Pressing a letter releases the others: a one-answer question is on screen."""
        return self.session.started and not self.session.finished and not self.session.current.multiple

    def _arm(self) -> None:
        """Start the countdown for the current attempt, if an attempt is open."""
        if self._answerable():
            self._limit = self.session.current.time_limit * self.time_scale
            self.countdown.start(self._limit)

    def _on_tick(self, generation: int, remaining: float) -> None:
        if not self.countdown.is_current(generation):
            return
        limit = self._limit or 1.0
        self.clock.value = f"Time left: <b>{format_time(remaining / self.time_scale)}</b>"
        self.timebar.value = max(0.0, min(1.0, remaining / limit))

    def _on_expire(self, generation: int) -> None:
        with self._lock:
            if not self.countdown.is_current(generation) or not self._answerable():
                return
            self._after(self.session.expire())

    # -- drawing

    def _refresh(self, verdict: str = "") -> None:
        session, c = self.session, self.controls
        running = session.started and not session.finished
        c.header.value = header_html(session.quiz.title, session.results() if running else None)
        if not running:
            self.letters.box.layout.display = "none"
            c.clock.value, c.timebar.layout.visibility = "", "hidden"
            c.prompt.value = screen_html(str(session.results()) if session.finished else session.render())
            c.show("restart" if session.finished else "start")
            c.feedback.value = ""
            return
        view = session.view()
        c.timebar.layout.visibility = "visible"
        c.prompt.value = prompt_html(view)
        self.letters.box.layout.display = None
        self.letters.draw(view.options, (session.index, len(view.attempts)), disabled=view.finished)
        c.feedback.value = feedback_html(view, verdict)
        if view.finished:
            c.clock.value = "Time: stopped"
            c.buttons["next"].description = "Next" if view.number < view.total else "Finish"
            c.show("next", "show", "restart")
        else:
            c.show("submit", "hint", "show", "restart")
