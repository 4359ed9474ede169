"""Tests for helpers.pytest_runs.record: the Run it keeps, the names and paths it cleans, the plugin in real runs."""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from helpers.pytest_runs import record
from helpers.pytest_runs.record import Outcome, Run, RunMissing, clean_paths, last_run

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.timeout(30)

RANDOM_MODULE = "t_" + "0123456789abcdef" * 2 + ".py"  # the shape of ipytest's module for a notebook's tests

SAMPLE = """
import pytest


@pytest.fixture
def database():
    raise RuntimeError("no database here")


def test_passes():
    pass


def test_fails():
    raise ValueError("the first line\\nthe second line")


def test_needs_a_database(database):
    pass


def test_records(record_property):
    record_property("reply", 42)
"""

THROUGH_THE_VENV = """
from packaging.version import Version


def test_parses_a_version():
    Version("not a version")
"""


@pytest.fixture(autouse=True)
def recorder_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test leaves record's module state (the last run, the run in progress) as it found it."""
    monkeypatch.setattr(record, "_LAST", record._LAST)
    monkeypatch.setattr(record, "_CURRENT", record._CURRENT)


def sample_run() -> Run:
    """A run of four tests, made by hand: two passed, one failed, one errored, each with properties."""
    run = Run(exit_code=1)
    for name, outcome, properties in [
        ("a.py::test_one", "passed", {"port": "1", "server": "uvicorn"}),
        ("a.py::test_two", "failed", {}),
        ("a.py::test_three", "passed", {"port": "2"}),
        ("a.py::test_four", "error", {}),
    ]:
        message = "" if outcome == "passed" else f"{outcome}: why"
        run.outcomes[name] = Outcome(name, outcome, 0.25, message, properties)
    return run


def run_inline(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in this process with only the record plugin (no installed plugins, no configuration file)."""
    return pytester.runpytest_inprocess(
        "-p", "helpers.pytest_runs.record", "-p", "no:cacheprovider", "--disable-plugin-autoload",
        "-c", os.devnull, "--rootdir", str(pytester.path), *args,
    )  # fmt: skip


def test_names_passed_and_failed_list_the_tests_in_the_order_they_ran() -> None:
    """names(outcome), .passed and .failed give the tests with that outcome, in insertion (run) order."""
    run = sample_run()
    assert run.passed == ["a.py::test_one", "a.py::test_three"]
    assert run.failed == ["a.py::test_two"]
    assert run.names("error") == ["a.py::test_four"] and run.names("skipped") == []


def test_an_unknown_outcome_is_refused_with_the_known_ones() -> None:
    """names() with an outcome outside OUTCOMES (a typo like "fail") raises ValueError listing the four."""
    with pytest.raises(ValueError, match=r"outcome must be one of \('passed', 'failed', 'error', 'skipped'\)"):
        sample_run().names("fail")


def test_properties_are_merged_in_run_order() -> None:
    """properties() merges every test's recorded properties; a later test's value for a name wins."""
    assert sample_run().properties() == {"port": "2", "server": "uvicorn"}


def test_a_test_is_looked_up_by_name_and_a_missing_one_names_those_that_ran() -> None:
    """run[name] is that test's Outcome; an unknown name raises KeyError listing the tests the run has."""
    run = sample_run()
    assert run["a.py::test_two"].message == "failed: why"
    with pytest.raises(KeyError, match=r"no test named 'test_two' in this run; it ran \['a.py::test_four', "):
        run["test_two"]


def test_a_run_survives_a_json_round_trip() -> None:
    """from_json(to_json()) gives an equal Run: exit code, order, outcomes, messages, seconds and properties."""
    run = sample_run()
    again = Run.from_json(run.to_json())
    assert again == run and list(again.outcomes) == list(run.outcomes)
    assert Run.from_json(Run().to_json()) == Run()


@pytest.mark.parametrize(
    ("nodeid", "name"),
    [
        (f"{RANDOM_MODULE}::test_a", "test_a"),
        (f"{RANDOM_MODULE}::TestChat::test_b[1]", "TestChat::test_b[1]"),
        ("tests/test_chat.py::test_a", "tests/test_chat.py::test_a"),
        ("t_chat.py::test_a", "t_chat.py::test_a"),
        (f"tests/{RANDOM_MODULE}::test_a", f"tests/{RANDOM_MODULE}::test_a"),
    ],
)
def test_test_name_drops_only_ipytests_random_module_name(nodeid: str, name: str) -> None:
    """A notebook cell's module (t_ and 32 hex digits) is dropped from the id; a real file's id is kept whole."""
    assert record.test_name(nodeid) == name  # not imported by name: pytest would collect it as a test


def test_clean_paths_replaces_the_venv_the_interpreter_and_the_temp_folder() -> None:
    """sys.prefix, site-packages, the stdlib folder and a temp folder become <venv>, <python> and <tmp>."""
    site = sysconfig.get_paths()["purelib"]
    stdlib = sysconfig.get_paths()["stdlib"]
    text = "\n".join(
        [
            f"{site}/packaging/version.py",
            f"{sys.prefix}/bin/python",
            f"{stdlib}/json/decoder.py",
            f'File "{tempfile.gettempdir()}/ws-tests-k2x_9a/tests/test_chat.py", line 3',
        ]
    )
    assert clean_paths(text).splitlines() == [
        "<venv>/site-packages/packaging/version.py",
        "<venv>/bin/python",
        "<python>/lib/json/decoder.py",
        'File "<tmp>/tests/test_chat.py", line 3',
    ]


def test_clean_paths_replaces_a_relative_path_that_climbs_to_the_venv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From another folder, pytest may print the venv as ../../<...>/.venv: that form is replaced as well."""
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(sysconfig.get_paths()["purelib"])
    assert relative.startswith(".." + os.sep)
    assert clean_paths(f"{relative}/packaging/version.py:207: InvalidVersion") == (
        "<venv>/site-packages/packaging/version.py:207: InvalidVersion"
    )


def test_clean_paths_reads_relative_paths_from_the_folder_given_as_cwd(tmp_path: Path) -> None:
    """Text written by a child in another folder has paths relative to that folder: cwd= makes them replaced."""
    relative = os.path.relpath(sysconfig.get_paths()["purelib"], tmp_path)
    text = f"{relative}/packaging/version.py:452: InvalidVersion"
    assert clean_paths(text, cwd=tmp_path) == "<venv>/site-packages/packaging/version.py:452: InvalidVersion"


def test_clean_paths_leaves_dots_in_prose_alone() -> None:
    """Run from a folder in the temp folder (as run_file does), ".." in a shortened message is not the temp folder."""
    with tempfile.TemporaryDirectory(prefix="ws-tests-") as folder, contextlib.chdir(folder):
        assert os.path.relpath(tempfile.gettempdir()) == ".."  # the case that must not match
        prose = "FAILED tests/test_x.py::test_edges - RuntimeError: Runner.run() cannot be called from a ru..."
        assert clean_paths(prose) == prose
        assert clean_paths("cd .. && ls ../..") == "cd .. && ls ../.."


def test_last_run_before_any_run_says_how_to_record_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no recorded run in the process, last_run() raises RunMissing naming the -p option to add."""
    monkeypatch.setattr(record, "_LAST", None)
    with pytest.raises(RunMissing, match=r"run pytest with -p helpers\.pytest_runs\.record first"):
        last_run()


def test_a_real_run_records_each_outcome_its_first_line_and_properties(pytester: pytest.Pytester) -> None:
    """A pytest run with the plugin keeps passed, failed (first line of the error), set-up error and properties."""
    pytester.makepyfile(test_sample=SAMPLE)
    result = run_inline(pytester, "test_sample.py")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    run = last_run()
    assert run.exit_code == 1
    assert run.passed == ["test_sample.py::test_passes", "test_sample.py::test_records"]
    assert run.failed == ["test_sample.py::test_fails"]
    assert run.names("error") == ["test_sample.py::test_needs_a_database"]
    assert run["test_sample.py::test_fails"].message == "ValueError: the first line"
    assert run["test_sample.py::test_needs_a_database"].message == "RuntimeError: no database here"
    assert run["test_sample.py::test_passes"].message == ""
    assert run.properties() == {"reply": "42"}
    assert all(outcome.seconds >= 0 for outcome in run.outcomes.values())


def test_clean_paths_option_cleans_the_terminal_output_and_record_json_writes_the_run(
    pytester: pytest.Pytester,
) -> None:
    """With --clean-paths a traceback through site-packages shows <venv>, not sys.prefix; --record-json is readable."""
    pytester.makepyfile(test_venv=THROUGH_THE_VENV)
    plain = run_inline(pytester, "--tb=long", "test_venv.py")
    assert f"{sys.prefix}{os.sep}" in plain.stdout.str()  # without the option the machine's path shows
    saved = pytester.path / "run.json"
    cleaned = run_inline(pytester, "--tb=long", "--clean-paths", f"--record-json={saved}", "test_venv.py")
    output = cleaned.stdout.str()
    assert sys.prefix not in output and "<venv>/site-packages/packaging/version.py" in output
    assert Run.from_json(saved.read_text()) == last_run()
    assert last_run().failed == ["test_venv.py::test_parses_a_version"]
    assert last_run()["test_venv.py::test_parses_a_version"].message.startswith("packaging.version.InvalidVersion")
