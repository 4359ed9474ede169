"""The ipywidgets a quiz is drawn with: the layout, the buttons and the row of answer letters.

Kept apart from `widget.py` so the quiz widget's behaviour (what each button does, the timer, what to show when)
reads without layout code, and the keyboard rules of the letter row sit next to the buttons they govern.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from helpers.quiz.data import Option

__all__ = ["BUTTONS", "KEYS_HELP", "Controls", "LetterRow"]

KEYS_HELP = (
    "Keyboard: Tab / Shift+Tab move between the answer letters and the buttons; Space or Enter presses the focused one."
)
BUTTONS = {  # key: (label, tooltip, primary)
    "start": ("Start", "Start the quiz", True),
    "submit": ("Submit", "Submit your answer", True),
    "hint": ("Hint", "Show a hint (free)", False),
    "show": (
        "Show me",
        "Run the live experiment behind this question (before you answer, it no longer counts toward the badge)",
        False,
    ),
    "next": ("Next", "Go to the next question", False),
    "restart": ("Restart", "Start again from question 1", False),
}


class LetterRow:
    """One toggle button per answer letter.

    Not RadioButtons: in JupyterLab the arrow keys on a radio input move the notebook's cell selection, while a
    button takes Tab, Space and Enter like any other button. While `exclusive()` holds (a one-answer question is
    open), pressing a letter releases the others.
    """

    def __init__(self, exclusive: Callable[[], bool]) -> None:
        import ipywidgets as w

        self.exclusive = exclusive
        self.label = w.HTML("Your answer:")
        self.buttons: list[Any] = []
        self.box = w.HBox([self.label])
        self._syncing = False
        self._shown: Any = None  # the key (question, attempt) the toggles were last reset for

    def selected(self) -> frozenset[str]:
        return frozenset(button.description for button in self.buttons if button.value)

    def draw(self, options: Iterable[Option], key: Any, *, disabled: bool) -> None:
        """Show a button per option; a new `key` (a new question or attempt) starts with nothing pressed."""
        import ipywidgets as w

        options = tuple(options)
        if [b.description for b in self.buttons] != [o.letter for o in options]:
            for button in self.buttons:
                button.close()
            self.buttons = []
            for option in options:
                button = w.ToggleButton(
                    description=option.letter, value=False, tooltip=option.text, layout=w.Layout(width="3.5em")
                )
                button.observe(self._on_toggle, names="value")
                self.buttons.append(button)
            self.box.children = [self.label, *self.buttons]
        if key != self._shown:
            self._shown = key
            self._release()
        for button in self.buttons:
            button.disabled = disabled

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if self._syncing or not change["new"] or not self.exclusive():
            return
        self._release(keep=change["owner"])

    def _release(self, keep: Any = None) -> None:
        self._syncing = True
        try:
            for button in self.buttons:
                if button is not keep:
                    button.value = False
        finally:
            self._syncing = False


class Controls:
    """Every widget of one quiz on screen, laid out; `show()` picks the buttons that fit the moment."""

    def __init__(self, handlers: dict[str, Callable[[], None]], letters: LetterRow) -> None:
        import ipywidgets as w

        full = w.Layout(width="100%")
        self.header = w.HTML()
        self.clock = w.HTML()
        self.timebar = w.FloatProgress(value=1.0, min=0.0, max=1.0, layout=w.Layout(width="40%"))
        self.prompt = w.HTML(layout=full)
        self.letters = letters
        self.feedback = w.HTML(layout=full)
        self.evidence_view = w.HTML(layout=full)
        self.buttons: dict[str, Any] = {}
        for key, (label, tooltip, primary) in BUTTONS.items():
            button = w.Button(description=label, tooltip=tooltip, button_style="primary" if primary else "")
            button.on_click(lambda _button, handler=handlers[key]: handler())
            self.buttons[key] = button
        self.help = w.HTML(f"<small>{html.escape(KEYS_HELP)}</small>")
        self.clock_row = w.HBox([self.clock, self.timebar])
        self.button_row = w.HBox(list(self.buttons.values()))
        self.box = w.VBox(
            [
                self.header,
                self.clock_row,
                self.prompt,
                letters.box,
                self.button_row,
                self.feedback,
                self.evidence_view,
                self.help,
            ]
        )

    def show(self, *keys: str) -> None:
        """Show only these buttons."""
        for key, button in self.buttons.items():
            button.layout.display = None if key in keys else "none"

    def all_widgets(self) -> list[Any]:
        return [
            self.box,
            self.clock_row,
            self.button_row,
            self.help,
            self.header,
            self.clock,
            self.timebar,
            self.prompt,
            self.letters.box,
            self.letters.label,
            *self.letters.buttons,
            self.feedback,
            self.evidence_view,
            *self.buttons.values(),
        ]
