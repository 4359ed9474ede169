"""helpers/ stays in pieces a reader can hold: no class over 200 lines, no function over 60, unless it says why."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

CLASS_LINES = 200
FUNCTION_LINES = 60


def definitions(path: Path) -> Iterator[tuple[str, int, int, str]]:
    """(kind, line, length without the docstring, the definition's first line) for each class and function."""
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                length -= (first.end_lineno or first.lineno) - first.lineno + 1
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            yield kind, node.lineno, length, lines[node.lineno - 1]


def test_no_class_or_function_in_helpers_is_over_the_limit_without_a_reason() -> None:
    """A class over 200 lines or a function over 60 (docstring aside) needs a `# ~N lines: why` comment on its line."""
    too_long = []
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        for kind, line, length, text in definitions(path):
            limit = CLASS_LINES if kind == "class" else FUNCTION_LINES
            if length > limit and "lines:" not in text:
                too_long.append(f"{path.relative_to(ROOT)}:{line} {kind} of {length} lines (limit {limit})")
    assert not too_long, "split these, or say why on the definition line (# ~N lines: reason):\n" + "\n".join(too_long)


def test_the_length_leaves_out_the_docstring(tmp_path: Path) -> None:
    """A function whose docstring is long but whose body is short is measured by its body."""
    path = tmp_path / "m.py"
    path.write_text('def f() -> None:\n    """Doc.\n\n    More.\n    """\n    return None\n')
    assert [(kind, length) for kind, _, length, _ in definitions(path)] == [("function", 2)]
