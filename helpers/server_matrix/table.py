"""The behaviour matrix of lesson 13: rows are behaviours, columns are servers, cells are what a probe saw.

A row also says whether the ASGI servers agreed ("same on every ASGI server") or not ("differs"), computed
from the cells themselves, so the verdict cannot drift from the observations. The reference column (the
`websockets` library's own server) is shown but left out of that verdict: it is not an ASGI server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DIFFERS",
    "SAME",
    "Matrix",
    "Row",
]

SAME = "same on every ASGI server"
DIFFERS = "differs"


@dataclass(frozen=True)
class Row:
    """One behaviour and what each server did."""

    behaviour: str
    cells: Mapping[str, str]

    def verdict(self, asgi_servers: Sequence[str]) -> str:
        """SAME if every ASGI server's cell is the same text, else DIFFERS."""
        return SAME if len({self.cells[name] for name in asgi_servers}) == 1 else DIFFERS


@dataclass
class Matrix:
    """Rows added in order; `markdown()` renders them as one table with a verdict column."""

    columns: Sequence[str]
    reference: str
    rows: list[Row] = field(default_factory=list)

    def add(self, behaviour: str, cells: Mapping[str, str]) -> Row:
        """Add a row; `cells` must name exactly the matrix's columns (a missing server is a mistake, not a blank)."""
        if set(cells) != set(self.columns):
            raise ValueError(f"row {behaviour!r} has cells for {sorted(cells)}, the matrix has {sorted(self.columns)}")
        row = Row(behaviour, dict(cells))
        self.rows = [r for r in self.rows if r.behaviour != behaviour] + [row]  # re-running a cell replaces it
        return row

    @property
    def asgi_servers(self) -> list[str]:
        return [name for name in self.columns if name != self.reference]

    def verdicts(self) -> dict[str, str]:
        """Behaviour -> SAME or DIFFERS."""
        return {row.behaviour: row.verdict(self.asgi_servers) for row in self.rows}

    def cells(self) -> dict[str, dict[str, str]]:
        """Behaviour -> server -> cell, for asserting the whole table at once."""
        return {row.behaviour: dict(row.cells) for row in self.rows}

    def markdown(self) -> str:
        names = (f"{name} (reference)" if name == self.reference else name for name in self.columns)
        headers = ["Behaviour", *names, "ASGI servers"]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in self.rows:
            cells = [row.behaviour, *(row.cells[name] for name in self.columns), row.verdict(self.asgi_servers)]
            lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
