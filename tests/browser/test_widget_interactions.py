"""Widgets respond to a person in the browser: chat messages typed in one widget arrive in the others."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import Lab, save_screenshot
from tests.browser.test_notebooks_in_lab import open_notebook, wait_until_done

MESSAGE = "hello from the browser"


def run_all_above(page: Any, cell_text: str) -> None:
    """Select the cell containing `cell_text`, then Run > Run All Above Selected Cell."""
    page.locator(".jp-Cell", has_text=cell_text).last.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Above Selected Cell", exact=True).click()


@pytest.mark.timeout(240)
def test_typed_chat_message_reaches_the_other_students(page: Any, lab: Lab) -> None:
    """In 09, a message typed into ada's chat widget (Enter) shows up in bob's widget too."""
    open_notebook(page, lab, "09_chat_widgets_and_classroom.ipynb")
    run_all_above(page, "Clean up")
    wait_until_done(page)
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
