"""The behaviour matrix of lesson 13: rows are behaviours, columns are servers, cells are what a probe saw.

A row also says whether the ASGI servers agreed ("same on every ASGI server") or not ("differs"), computed
from the cells themselves, so the verdict cannot drift from the observations. The reference column (the
`websockets` library's own server) is shown but left out of that verdict: it is not an ASGI server.

And a row says what the ASGI specification decides about it (`SPEC`): the HTTP & WebSocket message format,
version 2.5 (specs/www.rst in the asgiref repository), in a few words, "must"/"should" as the spec writes them,
or "not covered". Every row must have its entry, so a new row cannot leave the question open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DIFFERS",
    "NOT_COVERED",
    "SAME",
    "SPEC",
    "Matrix",
    "Row",
]

SAME = "same on every ASGI server"
DIFFERS = "differs"
NOT_COVERED = "not covered"

# What ASGI's HTTP & WebSocket spec 2.5 says per behaviour (the keys are the notebook's row names).
SPEC: dict[str, str] = {
    "close before accept": "must: HTTP 403, handshake not completed",
    "raises after accept": "the socket should be closed (no code named)",
    "closes with 4003 + reason": "must: close with the code sent; `reason` is in the close event since 2.3",
    "message over the default limit": NOT_COVERED,
    "invalid UTF-8 text": NOT_COVERED,
    "app's disconnect code after a TCP abort": "should: 1005 if the close frame had no code; no frame: not said",
    "subprotocol (app picks the 2nd offered)": "the app names it in `websocket.accept`",
    "permessage-deflate": NOT_COVERED,
    "scope['client'] with X-Forwarded-For": "`client` is the remote host's address; proxies not mentioned",
    "flood, app never reads: server memory": NOT_COVERED,
    "keepalive pings (defaults)": "servers should send pings as necessary",
    "returns without accepting": "the app must answer connect (accept or close)",
    "never accepts": "must not complete the handshake until the app answers",
    "graceful shutdown: what the client sees, and when": NOT_COVERED,
    "scope['asgi']['spec_version']": "optional; missing means 2.0",
}


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
        if behaviour not in SPEC:
            raise ValueError(f"row {behaviour!r} has no entry in SPEC: say what the ASGI spec decides about it")
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

    def differences(self, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
        """One line per cell that is not what `expected` says (and per row missing on either side); [] if none."""
        seen = self.cells()
        lines = [f"row {b!r} expected, not measured" for b in expected if b not in seen]
        lines += [f"row {b!r} measured, not expected" for b in seen if b not in expected]
        for behaviour, cells in expected.items():
            for server, text in cells.items():
                got = seen.get(behaviour, {}).get(server, text)
                if got != text:
                    lines.append(f"{behaviour} / {server}: expected {text!r}, saw {got!r}")
        return lines

    def markdown(self) -> str:
        names = (f"{name} (reference)" if name == self.reference else name for name in self.columns)
        headers = ["Behaviour", *names, "ASGI servers", "ASGI spec 2.5"]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in self.rows:
            verdict = row.verdict(self.asgi_servers)
            cells = [row.behaviour, *(row.cells[name] for name in self.columns), verdict, SPEC[row.behaviour]]
            lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
