"""A live class quiz in real JupyterLab pages: one instructor and three students, each in their own page and kernel.

The test process serves the quiz (loopback); each page runs a one-cell notebook that shows its widget, so what is
checked is what a person sees and clicks: the pushed question, the letter buttons, the bars, the reveal, and a
student page that is reloaded (its kernel restarted) in the middle of a question and joins again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers.live_quiz import LiveQuiz, start_live_quiz
from tests.browser.conftest import Lab, new_page, save_screenshot
from tests.browser.test_notebooks_in_lab import open_notebook, wait_until_done
from tests.browser.test_widget_interactions import click_button, run_all_above, wait_for_text

STUDENTS = {"ada": "A", "bob": "A", "cy": "C"}  # who answers which letter of the first question
END = "End of this page."
SECONDS = 120


@pytest.fixture
def live() -> Iterator[LiveQuiz]:
    quiz = start_live_quiz("maple-42", quizzes=["production"], name="browser-live-quiz")
    try:
        yield quiz
    finally:
        quiz.stop()


def _page_notebook(folder: Path, name: str, source: str) -> str:
    """Write a notebook of one code cell (the widget) and an end marker; returns its file name."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source), nbformat.v4.new_markdown_cell(END)]
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    file = f"live-quiz-{name}.ipynb"
    nbformat.write(notebook, folder / file)
    return file


def _open_page(browser: Any, lab: Lab, file: str) -> tuple[Any, Any]:
    """A browser context and page with `file` open and its cell run; returns (context, page)."""
    context, page = new_page(browser, width=1200)
    open_notebook(page, lab, file)
    run_all_above(page, END)
    wait_until_done(page, cleared=True)  # a new notebook: its one prompt shows a number once it has run here
    return context, page


def _widget(page: Any) -> Any:
    return page.locator(".jp-CodeCell .jp-OutputArea").first


def _remaining(text: str) -> int | None:
    """Seconds left as a widget's clock shows them ("0:47 left"), or None."""
    found = re.search(r"(\d+):(\d\d)\s*left", text)
    return None if found is None else int(found[1]) * 60 + int(found[2])


def _counts(widget: Any) -> dict[str, int]:
    """The instructor's bars as drawn: letter -> the count shown beside its bar."""
    rows = widget.locator(".widget-hbox", has=widget.page.locator(".widget-hprogress"))
    counts = {}
    for index in range(rows.count()):
        cells = [part.strip() for part in rows.nth(index).inner_text().split("\n") if part.strip()]
        counts[cells[0]] = int(cells[-1])
    return counts


def _restart_and_run_all(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel and Run All Cells").first.click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()


@pytest.mark.timeout(300)
def test_instructor_and_three_students_in_lab(browser: Any, lab: Lab, live: LiveQuiz) -> None:
    """The instructor's Push reaches three student pages, their clicks fill the bars, the reveal reaches all three,
    and a student page reloaded mid-question (kernel restarted) shows the question, the time left and the score."""
    teacher_file = _page_notebook(
        lab.root,
        "instructor",
        "from helpers.live_quiz.widgets import InstructorQuiz\n\n"
        f"teacher = InstructorQuiz({live.instructor_url!r}, seconds={SECONDS})\nteacher.connect()\nteacher",
    )
    files = {
        name: _page_notebook(
            lab.root,
            name,
            "from helpers.live_quiz.widgets import StudentQuiz\n\n"
            f"me = StudentQuiz({live.student_url!r}, {name!r})\nme.connect()\nme",
        )
        for name in STUDENTS
    }
    contexts = []
    try:
        context, teacher = _open_page(browser, lab, teacher_file)
        contexts.append(context)
        pages = {}
        for name, file in files.items():
            context, pages[name] = _open_page(browser, lab, file)
            contexts.append(context)
        board = _widget(teacher)
        text = wait_for_text(board, lambda t: "answered 0 of 3" in t)
        assert "answered 0 of 3" in text, f"the instructor's page should see three students: {text!r}"

        # 1. Push the first question of the production quiz from the instructor's page.
        click_button(board, "Push")
        for name, page in pages.items():
            text = wait_for_text(_widget(page), lambda t: "Question 1" in t and _remaining(t) is not None)
            assert "Question 1" in text, f"{name}'s page did not show the pushed question: {text!r}"
        # 2. Each student clicks a letter; the instructor's bars count them.
        for name, letter in STUDENTS.items():
            click_button(_widget(pages[name]), letter)
            text = wait_for_text(_widget(pages[name]), lambda t, letter=letter: f"answered {letter} at" in t)
            assert f"answered {letter} at" in text, f"{name}'s click was not recorded: {text!r}"
        wait_for_text(board, lambda t: "answered 3 of 3" in t)
        assert _counts(board) == {"A": 2, "B": 0, "C": 1, "D": 0}
        save_screenshot(teacher, "live-quiz-instructor-answers")
        # 3. Reveal: every student page shows the key and its own verdict.
        click_button(board, "Reveal")
        for name, letter in STUDENTS.items():
            verdict = "✓ right" if letter == "A" else "✗ wrong"
            text = wait_for_text(
                _widget(pages[name]), lambda t, verdict=verdict: verdict in t and "the answer is A" in t
            )
            assert verdict in text and "the answer is A" in text, f"{name}'s page missed the reveal: {text!r}"
        # 4. A second question; ada answers, then her page is reloaded and her kernel restarted mid-question.
        click_button(board, "Push")
        ada = pages["ada"]
        text = wait_for_text(_widget(ada), lambda t: "Question 2" in t and _remaining(t) is not None)
        assert "Question 2" in text, f"the second Push (the menu's next question) did not reach ada: {text!r}"
        click_button(_widget(ada), "B")  # question 2 takes several letters: toggle B, then Submit
        click_button(_widget(ada), "Submit")
        text = wait_for_text(_widget(ada), lambda t: "answered B at" in t)
        assert "answered B at" in text, f"ada's answer to question 2 was not recorded: {text!r}"
        open_notebook(ada, lab, files["ada"])  # the page loaded afresh (the browser's reload goes to the workspace)
        _restart_and_run_all(ada)
        wait_until_done(ada)
        text = wait_for_text(
            _widget(ada), lambda t: "Question 2" in t and "recorded before you reconnected" in t, timeout=30
        )
        save_screenshot(ada, "live-quiz-student-rejoined")
        assert "Question 2" in text and "answered B (recorded before you reconnected)" in text, text
        assert "2 points" in text, f"ada's score from question 1 should survive the reload: {text!r}"
        session = live.room.session
        left = live.server.run(live.room.call(lambda: session.rounds[-1].deadline - session.clock()))
        shown = _remaining(text)
        assert shown is not None and abs(shown - left) <= 3, f"ada's clock shows {shown} s, the server has {left:.1f} s"
    finally:
        for context in contexts:
            context.close()
