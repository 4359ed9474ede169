"""Tests for tools/upgrade_check.py (the upgrade radar) and its nbval recorder, without building a venv.

The real run (a venv with redis 8.1.0, strict nbval over lesson 07) is tests/upgrade/, in `make upgrade-check-test`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import nbval_recorder
from tests.support import ROOT, load_script

tool = load_script("tools/upgrade_check.py", "upgrade_check_tool")


def cell(notebook: str, index: int, outcome: str = "failed", **extra: object) -> dict[str, object]:
    """A recorder line as tests/nbval_recorder.py writes it."""
    record: dict[str, object] = {"notebook": notebook, "cell": index, "code_cell": index // 2, "outcome": outcome}
    record.update({"first_line": f"line of {index}", "stored": "", "now": "", "error": None} | extra)
    return record


def test_packages_are_name_equals_version_items_in_canonical_form() -> None:
    """PKG="Redis==8.1.0 channels_redis==4.4.0" reads as canonical names with their versions."""
    assert tool.parse_packages("Redis==8.1.0  channels_redis==4.4.0") == {"redis": "8.1.0", "channels-redis": "4.4.0"}


@pytest.mark.parametrize("item", ["redis>=8", "redis", "==8.1.0", "redis==8.1.0,uvicorn==0.55.0"])
def test_a_package_item_in_another_form_is_refused_with_the_form_to_use(item: str) -> None:
    """Anything but name==version is a CheckError that shows the accepted form and the bad item."""
    with pytest.raises(tool.CheckError, match=r'PKG takes name==version items .* PKG="redis==8.1.0'):
        tool.parse_packages(item)


def test_pins_are_read_from_exact_lines_only(tmp_path: Path) -> None:
    """read_pins takes name==version lines (comments, -r lines and ranges are not pins)."""
    pins = tmp_path / "constraints.txt"
    pins.write_text("# a comment\n-r requirements.txt\nPyJWT==2.15.1\nredis==7.4.1  # why\nanyio>=4\n")
    assert tool.read_pins(pins) == {"pyjwt": "2.15.1", "redis": "7.4.1"}


def test_named_versions_are_tried_exactly_and_nothing_else_moves() -> None:
    """With PKG given, the plan is those packages at those versions, and no index lookup happens."""
    moves = tool.plan({"redis": "7.4.1", "uvicorn": "0.54.0"}, {"redis": "8.1.0"}, newest=None)
    assert [str(m) for m in moves] == ["redis 7.4.1 -> 8.1.0"]


def test_a_package_the_project_does_not_pin_is_refused() -> None:
    """A name not in the pins (a typo) is a CheckError naming it, instead of a check that tries nothing."""
    with pytest.raises(tool.CheckError, match=r"the project pins no reddis"):
        tool.plan({"redis": "7.4.1"}, {"reddis": "8.1.0"}, newest=None)


def test_without_names_every_pinned_lesson_library_goes_to_its_newest_release() -> None:
    """Each lesson library the project pins is looked up; machinery (jupyterlab) keeps its pin."""
    pins = {"redis": "7.4.1", "uvicorn": "0.54.0", "jupyterlab": "4.6.6"}
    newest = {"redis": "8.1.0", "uvicorn": "0.54.0"}
    moves = tool.plan(pins, {}, newest=newest.__getitem__)
    assert {m.name: (m.old, m.new, m.moved) for m in moves} == {
        "uvicorn": ("0.54.0", "0.54.0", False),
        "redis": ("7.4.1", "8.1.0", True),
    }


def test_the_pin_files_are_copied_with_only_the_moved_pins_changed(tmp_path: Path) -> None:
    """moved_files rewrites the moved package's pin in all three files and leaves every other line as it was."""
    requirements = tool.moved_files([tool.Move("redis", "7.4.1", "8.1.0")], tmp_path)
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt"):
        original = (ROOT / name).read_text().splitlines()
        copied = (tmp_path / name).read_text().splitlines()
        changed = [(a, b) for a, b in zip(original, copied, strict=True) if a != b]
        assert changed == ([("redis==7.4.1", "redis==8.1.0")] if "redis==7.4.1" in original else [])
    assert requirements == tmp_path / "requirements-dev.txt"


def test_each_set_of_versions_gets_its_own_cached_venv() -> None:
    """The cache key changes with the moves and stays the same for the same moves."""
    redis = [tool.Move("redis", "7.4.1", "8.1.0")]
    assert tool.venv_key(redis) == tool.venv_key(list(redis))
    assert tool.venv_key(redis) != tool.venv_key([tool.Move("uvicorn", "0.54.0", "0.55.0")])


def test_changes_are_the_failed_cells_grouped_by_notebook_in_order() -> None:
    """Passed cells drop out; failed ones are grouped per notebook, notebooks and cells in order."""
    records = [cell("07.ipynb", 44), cell("06.ipynb", 3), cell("07.ipynb", 2), cell("07.ipynb", 9, "passed")]
    found = tool.changes(records)
    assert [(c.notebook, [x["cell"] for x in c.cells]) for c in found] == [("06.ipynb", [3]), ("07.ipynb", [2, 44])]


def test_before_and_after_show_only_the_changed_lines_and_only_a_few() -> None:
    """The before/after lists the lines that differ, at most DIFF_LINES a side and a count of the rest."""
    stored = "same\n" + "".join(f"old {i}\n" for i in range(6))
    now = "same\n" + "".join(f"new {i}\n" for i in range(6))
    shown = tool.before_after(stored, now)
    assert shown[0] == "before: old 0" and "before: ... 2 more line(s)" in shown
    assert "after:  new 0" in shown and not any("same" in line for line in shown)


def test_the_report_names_each_changed_cell_the_summary_rows_and_each_package() -> None:
    """The report lists moved versions, each changed cell with its kind, and per package its notebooks or none."""
    moves = [tool.Move("redis", "7.4.1", "8.1.0"), tool.Move("uvicorn", "0.54.0", "0.55.0")]
    found = tool.changes(
        [
            cell("07.ipynb", 4, stored="2 messages\n", now="1 message\n"),
            cell("07.ipynb", 9, now="AssertionError: \n", error="AssertionError: "),
            cell("07.ipynb", 12, error="SummaryMismatch: Summary row 'redis' no longer holds: saw 0"),
        ]
    )
    text = tool.report(moves, ["06.ipynb", "07.ipynb"], found, {"redis": ["07.ipynb"], "uvicorn": []})
    assert "Moved: `redis 7.4.1 -> 8.1.0`, `uvicorn 0.54.0 -> 0.55.0`" in text
    assert "Notebooks checked: 2; changed: 1" in text and "## 07.ipynb" in text
    assert "- cell 4 (nbval's Cell 2), `line of 4`: output changed" in text
    assert "before: 2 messages" in text and "after:  1 message" in text
    assert "cell 9 (nbval's Cell 4), `line of 9`: now raises" in text
    assert "cell 12 (nbval's Cell 6), `line of 12`: Summary row no longer holds" in text
    assert "- redis 7.4.1 -> 8.1.0: 07.ipynb" in text and "- uvicorn 0.54.0 -> 0.55.0: no lesson changed" in text


def test_with_one_package_moved_it_is_blamed_for_every_change_without_a_rerun() -> None:
    """One moved package: every changed notebook is its doing, and nothing is run again."""

    def rerun(moves: list[object], names: list[str]) -> list[object]:
        raise AssertionError("no rerun needed")

    found = tool.changes([cell("07.ipynb", 4)])
    assert tool.attribute([tool.Move("redis", "7.4.1", "8.1.0")], found, rerun) == {"redis": ["07.ipynb"]}


def test_with_several_moved_each_is_tried_alone_on_the_changed_notebooks() -> None:
    """Several moved packages: each is tried alone (the others at their pins) on the changed notebooks only."""
    moves = [tool.Move("redis", "7.4.1", "8.1.0"), tool.Move("uvicorn", "0.54.0", "0.55.0")]
    tried = []

    def rerun(alone: list[object], names: list[str]) -> list[object]:
        moved = [m for m in alone if m.moved]  # type: ignore[attr-defined]
        tried.append(([str(m) for m in moved], names))
        return tool.changes([cell("07.ipynb", 4)]) if moved[0].name == "redis" else []

    found = tool.changes([cell("07.ipynb", 4)])
    assert tool.attribute(moves, found, rerun) == {"redis": ["07.ipynb"], "uvicorn": []}
    assert tried == [(["redis 7.4.1 -> 8.1.0"], ["07.ipynb"]), (["uvicorn 0.54.0 -> 0.55.0"], ["07.ipynb"])]


def test_a_bad_request_ends_with_status_2_and_one_line_saying_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown notebook or a malformed PKG exits 2 before anything is built, with a one-line reason."""
    assert tool.main(["--pkg", "redis==8.1.0", "--notebooks", "99_nothing.ipynb"]) == 2
    assert "no such notebook: 99_nothing.ipynb" in capsys.readouterr().err
    assert tool.main(["--pkg", "redis>=8"]) == 2
    assert "PKG takes name==version items" in capsys.readouterr().err


def test_the_recorder_turns_outputs_into_the_text_nbval_compares() -> None:
    """Streams, results (markdown before plain text) and errors become one text; the first error is named."""
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "printed\n"},
        {"output_type": "execute_result", "data": {"text/plain": "'plain'", "text/markdown": "| table |"}},
        {"output_type": "error", "ename": "SummaryMismatch", "evalue": "row 'x' no longer holds"},
    ]
    assert nbval_recorder.output_text(outputs) == "printed\n| table |\nSummaryMismatch: row 'x' no longer holds\n"
    assert nbval_recorder.raised(outputs) == "SummaryMismatch: row 'x' no longer holds"
    assert nbval_recorder.raised(outputs[:2]) is None
