"""Widgets respond to a person in the browser: chat messages typed in one widget arrive in the others."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Lab, save_screenshot
from tests.browser.test_notebooks_in_lab import opened, wait_until_done
from tests.support import ROOT

MESSAGE = "hello from the browser"


def run_all_above(page: Any, cell_text: str) -> None:
    """Select the cell containing `cell_text`, then Run > Run All Above Selected Cell."""
    page.locator(".jp-Cell", has_text=cell_text).last.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Above Selected Cell", exact=True).click()


@contextlib.contextmanager
def run_up_to(page: Any, lab: Lab, name: str, cell_text: str) -> Iterator[None]:
    """`name` open in the worker's JupyterLab page, every cell above the one containing `cell_text` run, for the
    with-block; then closed with its kernel shut down (test_notebooks_in_lab.opened)."""
    with opened(page, lab, name):
        run_all_above(page, cell_text)
        wait_until_done(page)
        yield


@pytest.mark.timeout(240)
def test_typed_chat_message_reaches_the_other_students(lab_page: Any, lab: Lab) -> None:
    """In 09, a message typed into ada's chat widget (Enter) shows up in bob's widget too."""
    page = lab_page
    with run_up_to(page, lab, "09_chat_widgets_and_classroom.ipynb", "Clean up"):
        students = page.locator(".jp-CodeCell", has_text="students = ChatPanel(").first
        students.scroll_into_view_if_needed()
        inputs = students.locator("input[placeholder='type a message, press Enter']")
        assert inputs.count() == 3, "the students' panel should show three chat widgets"
        inputs.nth(0).fill(MESSAGE)
        inputs.nth(0).press("Enter")
        deadline = time.monotonic() + 15
        while students.inner_text().count(MESSAGE) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        save_screenshot(page, "09-chat-interaction")
        assert students.inner_text().count(MESSAGE) >= 2, "ada's message did not reach bob's widget"


QUIZZES = [
    ("10_quiz_channels.ipynb", "channels_quiz = quiz.QuizWidget(channels)", "A", "B"),
    ("11_quiz_broadcasting.ipynb", "broadcasting_quiz = quiz.QuizWidget(broadcasting)", "C", "A"),
]


def click_button(scope: Any, label: str) -> None:
    scope.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click()


def wait_for_text(scope: Any, predicate: Any, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    text = scope.inner_text()
    while not predicate(text) and time.monotonic() < deadline:
        time.sleep(0.2)
        text = scope.inner_text()
    return text


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("name", "cell", "wrong", "right"), QUIZZES, ids=[q[0][:2] for q in QUIZZES])
def test_quiz_answers_change_attempts_explanation_and_score(
    lab_page: Any, lab: Lab, name: str, cell: str, wrong: str, right: str
) -> None:
    """Wrong then right shows the attempt, then the answer, explanation and a higher score; Show me runs."""
    page = lab_page
    with run_up_to(page, lab, name, "Clean up"):
        widget = page.locator(".jp-CodeCell", has_text=cell).first
        widget.scroll_into_view_if_needed()
        click_button(widget, "Start")
        # The header (score) and the question are separate widgets, synced one after the other: wait for both.
        text = wait_for_text(widget, lambda t: "Score so far: 0 of" in t and "Question 1 of" in t)
        assert "Question 1 of" in text and "Score so far: 0 of" in text
        click_button(widget, wrong)
        click_button(widget, "Submit")
        text = wait_for_text(widget, lambda t: f"Attempt 1: {wrong}" in t)
        assert f"Attempt 1: {wrong}: not right" in text and "Score so far: 0 of" in text
        click_button(widget, right)
        click_button(widget, "Submit")
        text = wait_for_text(widget, lambda t: f"Answer: {right}" in t)
        assert "Why:" in text and "Score so far: 1 of" in text
        click_button(widget, "Show me")
        text = wait_for_text(widget, lambda t: "Running experiment" not in t and "Show me" in t, timeout=30)
        save_screenshot(page, f"{name[:2]}-quiz-interaction")
        assert "Running experiment" not in text


@pytest.mark.timeout(240)
def test_fixing_a_challenge_in_the_browser_turns_its_checklist_green(lab_page: Any, lab: Lab) -> None:
    """In 12, the first check fails for the starter; after typing the fix into the cell, the check passes."""
    page = lab_page
    with run_up_to(page, lab, "12_coding_challenges.ipynb", "Challenge 2"):
        check_cell = page.locator(".jp-CodeCell", has_text='check("echo-json", EchoJson)').first
        assert "1 of 4 requirements met" in check_cell.inner_text()
        starter = page.locator(".jp-CodeCell", has_text="class EchoJson(AsyncWebsocketConsumer)").first
        starter.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text((ROOT / "challenges" / "solutions" / "echo_json.py").read_text())
        page.keyboard.press("Shift+Enter")  # run the fixed starter; the selection moves to the check cell
        wait_until_done(page)
        page.keyboard.press("Shift+Enter")  # run the check
        wait_until_done(page)
        text = wait_for_text(check_cell, lambda t: "4 of 4 requirements met" in t)
        save_screenshot(page, "12-challenge-interaction")
        assert "4 of 4 requirements met" in text
