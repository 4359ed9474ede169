"""Every helpers module declares its public names, and the notebooks and challenges use only those."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import helpers
from tests.support import ROOT

MODULES = sorted(info.name for info in pkgutil.walk_packages(helpers.__path__, "helpers."))


def code_sources() -> Iterator[tuple[str, str]]:
    """(where, source) for every notebook code cell (magics and shell lines blanked) and every challenge file."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines()]
                yield f"{path.name} cell {index}", "\n".join(lines)
    for path in sorted((ROOT / "challenges").rglob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()


def helper_uses(source: str) -> Iterator[tuple[str, str]]:
    """(module, name) for each name taken from a helpers module: imported from it, or read as module.name."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> helpers module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "helpers":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:  # from helpers import quiz: a module, whose attributes are checked below
                    aliases[alias.asname or alias.name] = submodule
                else:
                    yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "helpers" and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            yield aliases[node.value.id], node.attr


@pytest.mark.parametrize("name", MODULES)
def test_every_helpers_module_declares_all_and_each_listed_name_exists(name: str) -> None:
    """Each module has `__all__`, and every name in it is defined there."""
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__: list its public names"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"


def test_notebooks_and_challenges_use_only_public_names() -> None:
    """A notebook or challenge file that imports or reads a helpers name outside its module's __all__ fails here."""
    offenders = []
    for where, source in code_sources():
        for module_name, name in helper_uses(source):
            module = importlib.import_module(module_name)
            if name not in getattr(module, "__all__", ()):
                offenders.append(f"{where}: {module_name}.{name}")
    assert not offenders, "not in the module's __all__ (make it public or use a public name):\n" + "\n".join(offenders)


def test_the_checker_sees_module_imports_and_attribute_reads(tmp_path: Path) -> None:
    """The use-finder reports names imported from a module and attributes read off an imported helpers module."""
    source = "from helpers.clients import attempt\nfrom helpers import quiz\nquiz.QuizWidget\nquiz._private\n"
    assert sorted(helper_uses(source)) == [
        ("helpers.clients", "attempt"),
        ("helpers.quiz", "QuizWidget"),
        ("helpers.quiz", "_private"),
    ]
