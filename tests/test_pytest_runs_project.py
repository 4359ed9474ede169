"""Tests for helpers.pytest_runs.project: a throwaway folder on sys.path, a real child pytest, and a clean stop."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.pytest_runs.project import Project, ProjectError
from helpers.usage import UsageError, UsageTypeError
from tests.support import child_pids

pytestmark = pytest.mark.timeout(30)

# No installed plugins in the child (a faster start), as lesson 14's project does too.
CONFIG = '[tool.pytest.ini_options]\naddopts = "--disable-plugin-autoload"\n'

CHAT_TESTS = """
from packaging.version import Version


def test_ok(record_property):
    record_property("checked", "yes")


def test_bad_version():
    Version("not a version")
"""


@pytest.fixture
def project() -> Iterator[Project]:
    """A Project with a tests/ folder, stopped after the test whatever happened."""
    made = Project(folders=["tests"])
    try:
        yield made
    finally:
        made.stop()


def test_a_project_is_a_new_temp_folder_on_sys_path_with_its_folders(project: Project) -> None:
    """Project(folders=["tests"]) makes a ws-tests-* temp folder, first on sys.path, with an empty tests/ in it."""
    assert project.path.parent == Path(tempfile.gettempdir()) and project.path.name.startswith("ws-tests-")
    assert sys.path[0] == str(project.path)
    assert (project.path / "tests").is_dir()
    assert project.files() == [] and repr(project) == "<Project with 0 files>"


def test_folders_given_as_one_string_is_refused() -> None:
    """folders="tests" raises UsageError showing the list to pass, before any folder is made."""
    with pytest.raises(UsageError, match=r"like \['tests'\], not the string 'tests'"):
        Project(folders="tests")


def test_a_bad_folder_name_leaves_no_folder_behind() -> None:
    """Project(folders=["../up"]) raises UsageError and deletes the folder it had made (nothing on sys.path)."""
    prefix = f"ws-tests-bad-{os.getpid()}-"
    path_before = list(sys.path)
    with pytest.raises(UsageError, match="must be a relative path in the project"):
        Project(folders=["../up"], prefix=prefix)
    assert list(Path(tempfile.gettempdir()).glob(prefix + "*")) == []
    assert sys.path == path_before


@pytest.mark.parametrize("name", ["/etc/chat.py", "../chat.py", "tests/../../chat.py", ""])
def test_write_refuses_a_path_outside_the_project(project: Project, name: str) -> None:
    """write() with an absolute path, a ".." part or an empty name raises UsageError and writes nothing."""
    with pytest.raises(UsageError, match=r"must be a relative path in the project, like 'tests/test_chat\.py'"):
        project.write(name, "x = 1\n")
    assert project.files() == []


def test_write_makes_sub_folders_and_files_lists_relative_names_sorted(project: Project) -> None:
    """write() makes missing folders and returns the path; files() lists relative names, sorted, caches left out."""
    written = project.write("traps/test_b.py", "")
    assert written == project.path / "traps" / "test_b.py" and written.is_file()
    project.write("chat_app.py", "")
    project.write("tests/test_a.py", "")
    (project.path / "tests" / "__pycache__").mkdir()
    (project.path / "tests" / "__pycache__" / "test_a.cpython-311.pyc").write_bytes(b"")
    assert project.files() == ["chat_app.py", "tests/test_a.py", "traps/test_b.py"]


def test_pytest_runs_a_child_pytest_in_the_folder_and_records_it(project: Project) -> None:
    """pytest(*args) runs in the project; the CliRun shows the command typed, the cleaned output and the outcomes."""
    project.write("pyproject.toml", CONFIG)
    project.write("tests/test_chat.py", CHAT_TESTS)
    done = project.pytest("-q", "--color=no", "tests/test_chat.py")
    assert done.command == "pytest -q --color=no tests/test_chat.py"
    assert done.exit_code == 1 and done.run.exit_code == 1
    assert done.run.passed == ["tests/test_chat.py::test_ok"]
    assert done.run.failed == ["tests/test_chat.py::test_bad_version"]
    assert done.run.properties() == {"checked": "yes"}
    assert "1 failed, 1 passed" in done.output
    # The traceback goes through site-packages, and the output names no machine path.
    assert sys.prefix not in done.output and "<venv>/site-packages/packaging/version.py" in done.output
    assert str(done).startswith("$ pytest -q --color=no tests/test_chat.py\n")
    assert str(done).endswith("\n(exit code 1)")
    assert project.files() == ["pyproject.toml", "tests/test_chat.py"]  # the run's record file is not listed
    # A run that records nothing (pytest refuses its options) does not return the previous run's outcomes.
    refused = project.pytest("--no-such-option")
    assert refused.exit_code == 4 and refused.run.exit_code == 4 and refused.run.outcomes == {}
    assert "unrecognized arguments: --no-such-option" in refused.output


def test_pytest_refuses_arguments_that_are_not_text_and_a_bad_timeout(project: Project) -> None:
    """A number among the arguments raises UsageError; timeout=0 and timeout="5" are refused by helpers.usage."""
    with pytest.raises(UsageError, match=r"pytest arguments must be strings, like '-q'.*got \[3\]"):
        project.pytest("-q", 3)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="timeout must be above zero"):
        project.pytest("-q", timeout=0)
    with pytest.raises(UsageTypeError, match="timeout must be a number of seconds"):
        project.pytest("-q", timeout="5")  # type: ignore[arg-type]


def test_python_runs_code_in_the_project_folder(project: Project) -> None:
    """python(code) runs it in a child in the project's folder: its exit code and its output, paths cleaned."""
    done = project.python("import os, sys\nprint(os.getcwd())\nprint(sys.executable)\nsys.exit(3)")
    assert done.exit_code == 3 and done.command == "python -c ..."
    assert done.output.splitlines() == ["<tmp>", "<venv>/bin/python"]
    with pytest.raises(UsageError, match="code must be Python source text, not int"):
        project.python(3)  # type: ignore[arg-type]


def test_a_child_past_its_timeout_raises_project_error_and_is_ended(project: Project) -> None:
    """python() with a child that outlives its timeout raises ProjectError, and no child process is left."""
    before = child_pids()
    with pytest.raises(ProjectError, match=r"the child ran longer than 0.3 s"):
        project.python("import time\ntime.sleep(20)", timeout=0.3)
    assert child_pids() <= before


def test_stop_deletes_the_folder_leaves_sys_path_and_forgets_its_modules(project: Project) -> None:
    """stop() removes the folder and its sys.path entry and forgets modules imported from it; twice is fine."""
    project.write("pytest_runs_probe.py", "VALUE = 1\n")
    importlib.invalidate_caches()
    assert importlib.import_module("pytest_runs_probe").VALUE == 1
    folder = project.path
    project.stop()
    assert not folder.exists()
    assert str(folder) not in sys.path
    assert "pytest_runs_probe" not in sys.modules
    project.stop()
    assert repr(project) == "<Project stopped>"


def test_a_stopped_project_refuses_to_be_used(project: Project) -> None:
    """After stop(), write, files, pytest and python raise ProjectError saying to make a new Project."""
    project.stop()
    calls = [
        lambda: project.write("a.py", ""),
        project.files,
        lambda: project.pytest("-q"),
        lambda: project.python("pass"),
    ]
    for call in calls:
        with pytest.raises(ProjectError, match=r"this project was stopped; make a new one with Project\(\)"):
            call()


def test_a_project_used_as_a_context_manager_stops_at_the_end() -> None:
    """`with Project() as project:` gives the project and stops it when the block ends."""
    with Project() as project:
        folder = project.path
        assert folder.is_dir()
    assert not folder.exists() and str(folder) not in sys.path


def test_the_cell_magic_needs_ipython(project: Project) -> None:
    """Outside IPython, register_cell_magic() refuses and says to call write() instead."""
    with pytest.raises(ProjectError, match="call write"):
        project.register_cell_magic()
