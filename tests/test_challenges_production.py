"""Tests for helpers.challenges.production, Part 2's checks, and notebook 19 that shows them: every reference solution
passes, every starter and known-wrong solution fails exactly the requirements it declares (the checks can fail, each
for its own reason), and the notebook shows each starter verbatim, its failing report, and a link to its lesson.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.challenges import production
from tests.support import ROOT, Snapshot, require_binary
from tests.test_challenges import MIN_WRONG, declared_failures
from tests.test_quiz import heading_anchors

pytestmark = pytest.mark.timeout(60)

KEYS = list(production.CHALLENGES)
WRONG = [(key, file) for key in KEYS for file in production.wrong_solutions(key)]
NEEDS_NGINX = {"nginx-location"}
NOTEBOOK = ROOT / "notebooks" / "19_challenges_production.ipynb"
PART_TWO_LESSONS = ("13_", "14_", "15_", "16_", "17_")
LINK = re.compile(r"\]\((\d\d_[\w.-]+\.ipynb)#([^)\s]+)\)")


def needs(key: str) -> None:
    if key in NEEDS_NGINX:
        require_binary("nginx", "apt-get install nginx")


def test_part_two_has_its_five_challenges_in_order() -> None:
    """Dead clients, resume, the nginx block, the auth deadline and the missing test, numbered 1 to 5."""
    assert KEYS == ["dead-client", "resume-chat", "nginx-location", "auth-deadline", "missing-test"]
    assert [c.number for c in production.CHALLENGES.values()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("key", KEYS)
def test_the_reference_solution_passes_every_requirement(key: str, no_leaks: Snapshot) -> None:
    """Served and checked by live clients (and a real nginx, a frozen child client, a child pytest), the reference
    solution meets every requirement."""
    needs(key)
    report = production.check(key, *production.load(key, "solutions"))
    assert report.passed and all(item.passed for item in report.items), str(report)


@pytest.mark.parametrize("key", KEYS)
def test_every_challenge_has_known_wrong_solutions(key: str) -> None:
    """Each challenge has at least two known-wrong solutions in challenges/wrong/, each declaring what it fails."""
    files = production.wrong_solutions(key)
    assert len(files) >= MIN_WRONG, f"{key}: only {[f.name for f in files]}"
    for file in files:
        assert declared_failures(file)


@pytest.mark.parametrize(("key", "file"), WRONG, ids=[f.stem for _, f in WRONG])
def test_a_known_wrong_solution_fails_exactly_the_requirements_it_gets_wrong(
    key: str, file: Path, no_leaks: Snapshot
) -> None:
    """Checked by live clients, a known-wrong solution fails the requirements it declares, with a hint for each."""
    needs(key)
    report = production.check(key, *production.load_file(key, file))
    assert not report.passed, f"{file.name} passed the check:\n{report}"
    failed = tuple(number for number, item in enumerate(report.items, 1) if item.passed is False)
    assert failed == declared_failures(file), f"{file.name}:\n{report}"
    assert all(item.hint for item in report.items if item.passed is False)


@pytest.mark.parametrize("key", KEYS)
def test_the_starter_fails_exactly_the_requirements_it_is_meant_to_fail(key: str, no_leaks: Snapshot) -> None:
    """Checked by live clients, the starter fails exactly the requirements in its starter_fails, each with a hint."""
    needs(key)
    report = production.check(key, *production.load(key, "starters"))
    assert not report.passed, str(report)
    failed = tuple(number for number, item in enumerate(report.items, 1) if item.passed is False)
    assert failed == production.CHALLENGES[key].starter_fails, str(report)
    assert all(item.hint for item in report.items if item.passed is False)


def notebook_cells() -> list[nbformat.NotebookNode]:
    return list(nbformat.read(NOTEBOOK, as_version=4).cells)


def section(key: str) -> list[nbformat.NotebookNode]:
    """The cells of the challenge's section: from its '## Challenge N:' heading to the next '## ' heading."""
    cells = notebook_cells()
    heading = f"## Challenge {production.CHALLENGES[key].number}: "
    starts = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and cell.source.startswith(heading)]
    assert len(starts) == 1, f"notebook 19 needs exactly one markdown cell starting with {heading!r}"
    end = next(
        (
            i
            for i in range(starts[0] + 1, len(cells))
            if cells[i].cell_type == "markdown" and cells[i].source.startswith("## ")
        ),
        len(cells),
    )
    return cells[starts[0] : end]


@pytest.mark.parametrize("key", KEYS)
def test_the_notebook_shows_each_starter_verbatim(key: str) -> None:
    """The challenge's section in notebook 19 has a code cell whose source is exactly the starter file."""
    sources = [cell.source.strip() for cell in section(key) if cell.cell_type == "code"]
    assert production.source(key).strip() in sources


@pytest.mark.parametrize("key", KEYS)
def test_the_notebook_stores_the_starters_failing_report(key: str) -> None:
    """After the starter comes the check cell, whose stored output is the starter's checklist, one ✘ per requirement
    the starter is meant to fail."""
    cells = [cell for cell in section(key) if cell.cell_type == "code"]
    starter = [cell.source.strip() for cell in cells].index(production.source(key).strip())
    assert starter + 1 < len(cells), f"no check cell after the starter of {key}"
    check_cell = cells[starter + 1]
    assert f'check("{key}", ' in check_cell.source
    texts = [out.data["text/plain"] for out in check_cell.outputs if "text/plain" in out.get("data", {})]
    assert len(texts) == 1, f"the check cell of {key} must show its report"
    spec = production.CHALLENGES[key]
    lines = texts[0].splitlines()
    assert lines[0].startswith(f"Challenge {spec.number} · {spec.title}: ")
    assert lines[-1] == "Not yet: fix the first ✘ and run the check again."
    assert sum(line.startswith("  ✘ ") for line in lines) == len(spec.starter_fails), texts[0]


@pytest.mark.parametrize("key", KEYS)
def test_each_challenge_links_to_the_lesson_heading_it_practises(key: str) -> None:
    """The first paragraph of each challenge links to a heading of one of Part 2's lessons (13 to 17)."""
    links = LINK.findall(section(key)[0].source)
    assert links, f"the section of {key} links to no lesson heading"
    notebook, anchor = links[0]
    assert notebook.startswith(PART_TWO_LESSONS), f"{key} links to {notebook}, not to a Part 2 lesson"
    assert anchor in heading_anchors(ROOT / "notebooks" / notebook), f"no heading {anchor!r} in {notebook}"


def test_every_heading_link_in_the_notebook_points_to_an_existing_heading() -> None:
    """Each link of notebook 19 to a heading (`NN_name.ipynb#Anchor`) names an existing notebook and heading."""
    links = [link for cell in notebook_cells() if cell.cell_type == "markdown" for link in LINK.findall(cell.source)]
    assert len(links) >= len(KEYS)
    for notebook, anchor in links:
        path = ROOT / "notebooks" / notebook
        assert path.exists(), f"{notebook} does not exist"
        assert anchor in heading_anchors(path), f"no heading {anchor!r} in {notebook}"


def test_solutions_are_not_in_the_notebook() -> None:
    """No reference solution's code appears in notebook 19, in a cell or in a stored output."""
    texts = []
    for cell in notebook_cells():
        texts.append(cell.source)
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    text = "\n".join(texts)
    for key in KEYS:
        body = production.source(key, "solutions").split('"""', 2)[-1].strip()
        assert body and body not in text, key
