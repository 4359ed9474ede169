"""Tests for helpers.summary, and for every notebook's Summary being built and checked by it."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from helpers.summary import CHECK_HEADER, Summary, SummaryMismatch, SummaryUsageError
from tests.support import ROOT, load_script

LESSONS = [lesson.file for lesson in load_script("tools/notebooks.py", "notebook_tools").load_series()]
EXISTING = [name for name in LESSONS if (ROOT / "notebooks" / name).exists()]
MAX_INTRO_CHARS = 300  # the Summary heading may carry one short sentence introducing the table, no more


# -- the helper


def test_a_row_that_holds_is_rendered_with_the_value_it_was_checked_against() -> None:
    """A row whose seen equals expect appears in the Markdown with its seen value in the last column."""
    summary = Summary("The app", "The client sees", on="uvicorn 0.54 (websockets-sansio)")
    summary.row("sends `websocket.accept`", "HTTP 101", seen=101, expect=101)
    text = summary.markdown()
    assert "uvicorn 0.54 (websockets-sansio)" in text
    assert f"| The app | The client sees | {CHECK_HEADER} |" in text
    assert "| sends `websocket.accept` | HTTP 101 | `101` |" in text
    assert repr(summary) == summary._repr_markdown_() == text


def test_a_row_that_does_not_hold_raises_and_names_the_row() -> None:
    """A row whose seen differs from expect raises SummaryMismatch with the row and both values, and is not kept."""
    summary = Summary("Case", "Result", on="uvicorn")
    with pytest.raises(SummaryMismatch, match=r"'lost connection' no longer holds: the experiment saw 1005, .* 1006"):
        summary.row("lost connection", "1006", seen=1005, expect=1006)
    assert summary.rows == []


def test_long_or_awkward_seen_values_stay_on_one_table_line() -> None:
    """A seen value with newlines, pipes or backticks, or a long one, becomes one safe shortened cell."""
    summary = Summary("Case", "Result", on="uvicorn")
    summary.row("odd", "text", seen="a|b\n`c`" + "x" * 200, expect="a|b\n`c`" + "x" * 200)
    last = summary.markdown().splitlines()[-1]
    assert "a\\|b 'c'" in last and last.endswith("…` |") and "\n" not in last


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Summary(on="uvicorn"), "column headers"),
        (lambda: Summary("A", on=""), "where the rows were observed"),
        (lambda: Summary("A", "B", on="x").row("only one", seen=1, expect=1), "has 2 columns"),
        (lambda: Summary("A", on="x").row(3, seen=1, expect=1), "pass strings"),  # type: ignore[arg-type]
    ],
)
def test_building_a_summary_wrongly_says_what_to_pass(make: object, message: str) -> None:
    """No headers, no `on`, a row of the wrong width or a non-text cell raise SummaryUsageError saying what to pass."""
    with pytest.raises(SummaryUsageError, match=message):
        make()  # type: ignore[operator]


# -- every notebook's Summary


def _summary_cells(name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
    headings = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Summary")]
    assert len(headings) == 1, f"{name}: needs exactly one markdown cell starting with '## Summary'"
    index = headings[0]
    assert index + 1 < len(cells) and cells[index + 1].cell_type == "code", (
        f"{name}: the cell after '## Summary' must be the code cell that builds the checked Summary"
    )
    return cells[index], cells[index + 1]


def _row_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "row"
    ]


def _is_literal(node: ast.expr) -> bool:
    """True when the expression reads nothing the experiments computed (only constants and operators)."""
    return not any(isinstance(n, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)) for n in ast.walk(node))


@pytest.mark.parametrize("name", EXISTING)
def test_the_summary_heading_states_no_facts_of_its_own(name: str) -> None:
    """The '## Summary' markdown holds no table and no list; at most one short sentence introduces the table."""
    heading, _ = _summary_cells(name)
    body = heading.source.split("\n", 1)[1] if "\n" in heading.source else ""
    assert not re.search(r"^\s*(\||[-*] |\d+\. )", body, re.M), f"{name}: Summary facts belong in the checked table"
    assert len(body.strip()) <= MAX_INTRO_CHARS, f"{name}: the Summary's prose is a claim nothing checks; make it a row"


@pytest.mark.parametrize("name", EXISTING)
def test_every_summary_row_is_checked_against_an_observed_value(name: str) -> None:
    """The Summary cell builds a helpers.summary.Summary whose rows each compare a computed seen= with expect=."""
    _, code = _summary_cells(name)
    tree = ast.parse(code.source)
    assert any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Summary" for n in ast.walk(tree)), (
        f"{name}: the Summary cell must build helpers.summary.Summary"
    )
    calls = _row_calls(tree)
    assert len(calls) >= 3, f"{name}: a Summary needs at least 3 checked rows"
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        assert {"seen", "expect"} <= set(keywords), f"{name} line {call.lineno}: row() needs seen= and expect="
        assert not _is_literal(keywords["seen"]), (
            f"{name} line {call.lineno}: seen= is a literal; pass the value an experiment recorded"
        )


@pytest.mark.parametrize("name", EXISTING)
def test_the_stored_summary_shows_every_row_checked(name: str) -> None:
    """The stored output of the Summary cell is the rendered table, with no error, and a row per row() call."""
    _, code = _summary_cells(name)
    assert not [o for o in code.outputs if o.output_type == "error"], f"{name}: the stored Summary raised"
    tables = [o.data["text/markdown"] for o in code.outputs if "text/markdown" in o.get("data", {})]
    assert len(tables) == 1 and CHECK_HEADER in tables[0], f"{name}: the Summary cell must display the table last"
    rows = [line for line in tables[0].splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) - 1 >= len(_row_calls(ast.parse(code.source))), f"{name}: a row() call left no row in the table"
