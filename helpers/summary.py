"""A lesson's Summary table, built from what its experiments recorded and checked row by row.

A notebook's Summary states what the lesson showed. Writing it as prose lets it drift from the code; here
every row carries the value an experiment observed (`seen`) and the value the row's words promise
(`expect`). `row()` raises `SummaryMismatch` the moment they differ, so a summary cannot state what the
experiments did not show, and a library upgrade that changes a behaviour fails the notebook at its Summary.

    summary = Summary("The app", "What the client sees", on="uvicorn 0.54 (websockets-sansio)")
    summary.row("sends `websocket.accept`", "HTTP 101, open", seen=accepted.kind, expect="opened")
    summary            # renders the table, with the checked value of each row in its own column

`tests/test_summaries.py` checks that every notebook's Summary is one of these (no hand-written table) and
that no row's `seen` is a literal.
"""

from __future__ import annotations

__all__ = [
    "CHECK_HEADER",
    "MAX_SEEN_WIDTH",
    "Summary",
    "SummaryMismatch",
    "SummaryUsageError",
]

CHECK_HEADER = "Checked: seen"
MAX_SEEN_WIDTH = 70


class SummaryMismatch(AssertionError):
    """A Summary row's words no longer match what the experiment observed; the message names the row."""


class SummaryUsageError(ValueError):
    """A Summary was built wrongly (no columns, a row of the wrong width); the message says what to pass."""


def _cell(value: object) -> str:
    """A table cell: the value as text, on one line, with the pipe escaped and long text shortened."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split()).replace("|", "\\|").replace("`", "'")
    if len(text) > MAX_SEEN_WIDTH:
        text = text[: MAX_SEEN_WIDTH - 1] + "…"
    return text


class Summary:
    """A Markdown table whose every row was checked against an observed value when it was added."""

    def __init__(self, *headers: str, on: str) -> None:
        if not headers or not all(isinstance(h, str) and h.strip() for h in headers):
            raise SummaryUsageError("give the table's column headers as strings: Summary('The app', 'The client sees')")
        if not isinstance(on, str) or not on.strip():
            raise SummaryUsageError("say where the rows were observed: on='uvicorn 0.54 (websockets-sansio)'")
        self.headers = headers
        self.on = on
        self.rows: list[tuple[tuple[str, ...], object]] = []

    def row(self, *cells: str, seen: object, expect: object) -> None:
        """Add one row of `cells` if `seen` (computed by the experiments) equals `expect` (what the row says).

        Raises SummaryMismatch naming the row and both values when they differ.
        """
        if len(cells) != len(self.headers):
            raise SummaryUsageError(
                f"this Summary has {len(self.headers)} columns {list(self.headers)}; the row {list(cells)} has "
                f"{len(cells)} cells"
            )
        if not all(isinstance(c, str) for c in cells):
            raise SummaryUsageError("row cells are the table's words: pass strings, and the observed value as seen=")
        if seen != expect:
            raise SummaryMismatch(
                f"Summary row {cells[0]!r} no longer holds: the experiment saw {seen!r}, the row expects {expect!r}. "
                "Re-read the experiment's output above, then correct the row's words and its expect= value."
            )
        self.rows.append((cells, seen))

    def markdown(self) -> str:
        """The table as Markdown: the row's words, then the value that was checked."""
        lines = [
            f"*Every row below was checked by this notebook's code when it ran, on {self.on}.*",
            "",
            "| " + " | ".join((*self.headers, CHECK_HEADER)) + " |",
            "|" + "---|" * (len(self.headers) + 1),
        ]
        for cells, seen in self.rows:
            lines.append("| " + " | ".join((*(c.replace("|", "\\|") for c in cells), f"`{_cell(seen)}`")) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()
