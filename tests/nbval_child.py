"""Support for testing this project's nbval plugins: notebooks written for a test, and nbval run on them in a child.

The child pytest starts in pytester's temporary folder and loads only nbval and the plugins asked for (no other
plugin: hypothesis, xdist, anyio and the rest cost about 2 s of start-up per run). Use the fixture
`repo_on_pythonpath` (tests/conftest.py) so that the child can import the plugins from this repository.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest


def notebook(path: Path, *sources: str, tags: dict[int, list[str]] | None = None) -> Path:
    """Write a notebook whose code cells are `sources`, executed-looking, with no stored outputs."""
    nb = nbformat.v4.new_notebook()
    for index, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source, execution_count=index + 1)
        cell.metadata["tags"] = (tags or {}).get(index, [])
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def run_nbval(pytester: pytest.Pytester, plugin: str, *args: str) -> pytest.RunResult:
    """nbval with `plugin` (a module of tests/) over the notebooks in pytester's folder."""
    return pytester.runpytest_subprocess(
        "--disable-plugin-autoload",
        "-p", "nbval.plugin",
        "-p", plugin,
        "--nbval", "--nbval-current-env", "-o", "filterwarnings=default",
        *args,
    )  # fmt: skip


__all__ = ["notebook", "run_nbval"]
