"""Tests for tools/notebooks.py: the generated map and navigation, and stored-notebook normalisation."""

from __future__ import annotations

import nbformat

from tests.support import load_script

tool = load_script("tools/notebooks.py", "notebook_tools")


def test_generated_cells_and_readme_are_up_to_date() -> None:
    """Nothing that `make nav` writes is out of date in the committed tree."""
    assert list(tool.updated_notebooks(tool.load_series())) == []


def test_series_numbers_are_in_order_and_files_are_named_by_number() -> None:
    """series.toml lists 00, 01, 02 ... in order, each file starting with its number."""
    series = tool.load_series()
    assert [lesson.number for lesson in series] == [f"{i:02d}" for i in range(len(series))]


def test_map_marks_missing_notebooks_as_coming() -> None:
    """A notebook without a file is listed as coming, without a link."""
    fake = tool.Lesson(file="99_not_yet.ipynb", title="Not yet", about="later")
    assert "| 99 | Not yet *(coming)* | later |" in tool.map_markdown([fake])


def test_navigation_links_existing_neighbours() -> None:
    """The nav cell links the previous and next notebooks that exist and names the ones to come."""
    series = tool.load_series()
    nav = tool.nav_markdown(series, 0)
    assert "*(this is the first notebook)*" in nav and "Index" in nav


def test_normalise_renumbers_and_strips_machine_metadata() -> None:
    """normalise() leaves only portable metadata and consecutive execution counts."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.99"}
    cell = nbformat.v4.new_code_cell("1")
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    nb.cells.append(cell)
    tool.normalise(nb)
    assert nb.metadata["language_info"] == tool.LANGUAGE_INFO
    assert nb.cells[0].execution_count == 1 and "execution" not in nb.cells[0].metadata


def test_map_names_each_part_before_its_first_lesson() -> None:
    """The map has a row with the part's title right before the first lesson of that part, and only there."""
    lessons = [
        tool.Lesson(file="00_a.ipynb", title="A", about="a", part="Part 1: one"),
        tool.Lesson(file="01_b.ipynb", title="B", about="b", part="Part 1: one"),
        tool.Lesson(file="02_c.ipynb", title="C", about="c", part="Part 2: two"),
    ]
    rows = tool.map_markdown(lessons).splitlines()[2:]
    assert [row.split("|")[2].strip() for row in rows] == [
        "**Part 1: one**",
        "A *(coming)*",
        "B *(coming)*",
        "**Part 2: two**",
        "C *(coming)*",
    ]


def test_the_series_has_two_parts_and_part_2_opens_with_13() -> None:
    """series.toml groups 00-12 as Part 1 and starts Part 2 (production) at 13."""
    series = tool.load_series()
    first_of_part_2 = next(lesson for lesson in series if lesson.part != series[0].part)
    assert first_of_part_2.number == "13" and first_of_part_2.part == "Part 2: production"
    assert {lesson.part for lesson in series} == {series[0].part, "Part 2: production"}
