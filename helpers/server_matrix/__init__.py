"""Lesson 13's live behaviour matrix: one ASGI app on every server, probed side by side.

- `apps`: the ASGI apps (one behaviour per path), importable by string for `helpers.servers.serve_process`;
- `reference`: the `websockets` library's own server doing the same, in a child process;
- `lineup`: which servers, started together with their libraries' defaults, and those defaults;
- `probes`: one behaviour against one server, as a short deterministic table cell;
- `table`: the matrix, with a verdict per row: the same on every ASGI server, or not.
"""

from __future__ import annotations

__all__: list[str] = []
