"""Tests for helpers.pytest_runs.inline: the ipytest options a lesson uses, and run_file in this process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipytest
import ipytest._config
import pytest

from helpers.pytest_runs import record
from helpers.pytest_runs.inline import INLINE_OPTIONS, run_file, use_ipytest
from helpers.pytest_runs.record import last_run

pytestmark = pytest.mark.timeout(30)

TINY = """
def test_ok():
    pass


def test_bad():
    assert 1 + 1 == 3
"""


def plugins(options: tuple[str, ...] | list[str]) -> list[str]:
    """The plugins `-p NAME` loads in these options, in order."""
    return [options[index + 1] for index, option in enumerate(options) if option == "-p"]


@pytest.fixture
def autoconfig_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """ipytest.autoconfig replaced by a recorder: outside IPython the real one fails registering its magics."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ipytest, "autoconfig", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def inline_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ipytest set as use_ipytest(in_thread=False) sets it; its config, record's last run, sys.path and the
    modules the inner run imports are put back afterwards."""
    config = ipytest._config.current_config
    monkeypatch.setitem(config, "addopts", [*INLINE_OPTIONS, "-p", "pytest_timeout"])
    monkeypatch.setitem(config, "run_in_thread", False)
    monkeypatch.setitem(config, "raise_on_error", False)
    monkeypatch.setattr(ipytest, "exit_code", ipytest.exit_code)
    monkeypatch.setattr(record, "_LAST", record._LAST)
    monkeypatch.setattr(record, "_CURRENT", record._CURRENT)
    path_before, modules_before = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path_before
    for name in set(sys.modules) - modules_before:
        if name.startswith("test_tiny"):
            del sys.modules[name]


@pytest.mark.parametrize("value", [1, None, "yes"])
def test_use_ipytest_wants_a_bool(value: object, autoconfig_calls: list[dict[str, Any]]) -> None:
    """use_ipytest(in_thread=...) with anything but True or False raises TypeError and configures nothing."""
    with pytest.raises(TypeError, match="in_thread must be True or False"):
        use_ipytest(in_thread=value)  # type: ignore[arg-type]
    assert autoconfig_calls == []


def test_the_options_read_no_config_file_and_load_only_the_lessons_plugins() -> None:
    """INLINE_OPTIONS: `-c` the null device, no plugin autoload, record with --clean-paths, pytest-asyncio, terminal."""
    options = INLINE_OPTIONS
    assert options[options.index("-c") + 1] == os.devnull
    assert "--disable-plugin-autoload" in options and "--clean-paths" in options
    assert plugins(options) == [
        "no:cacheprovider",
        "pytest_asyncio.plugin",
        "helpers.pytest_runs.record",
        "helpers.pytest_runs.terminal",
    ]


def test_use_ipytest_on_the_kernels_thread_loads_pytest_timeout(autoconfig_calls: list[dict[str, Any]]) -> None:
    """in_thread=False configures ipytest to run on the calling thread, with INLINE_OPTIONS plus pytest_timeout."""
    assert use_ipytest(in_thread=False) == "the kernel's thread"
    assert autoconfig_calls == [
        {"run_in_thread": False, "addopts": [*INLINE_OPTIONS, "-p", "pytest_timeout"], "raise_on_error": False}
    ]


def test_use_ipytest_in_a_thread_leaves_pytest_timeout_out(autoconfig_calls: list[dict[str, Any]]) -> None:
    """in_thread=True configures ipytest to run on a thread of its own, with INLINE_OPTIONS and no pytest_timeout."""
    assert use_ipytest(in_thread=True) == "a thread of their own (no event loop, no pytest-timeout)"
    assert autoconfig_calls == [{"run_in_thread": True, "addopts": list(INLINE_OPTIONS), "raise_on_error": False}]
    assert "pytest_timeout" not in plugins(autoconfig_calls[0]["addopts"])


def test_run_file_without_the_file_says_to_write_it_first(tmp_path: Path) -> None:
    """run_file on a path with no file raises FileNotFoundError naming the path and suggesting %%writefile."""
    missing = tmp_path / "test_missing.py"
    with pytest.raises(FileNotFoundError, match=r"no test file at .*test_missing.py: write it first"):
        run_file(missing)


@pytest.mark.usefixtures("inline_runs")
def test_run_file_runs_the_file_here_and_returns_its_recorded_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_file runs one file with ipytest in this process, names tests from rootdir, and keeps the working folder."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    test_file = project / "tests" / "test_tiny.py"
    test_file.write_text(TINY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    run = run_file(test_file, rootdir=project)
    assert run is last_run() and run.exit_code == 1 and ipytest.exit_code == 1
    assert run.passed == ["tests/test_tiny.py::test_ok"]
    assert run.failed == ["tests/test_tiny.py::test_bad"]
    assert run["tests/test_tiny.py::test_bad"].message == "assert (1 + 1) == 3"
    assert Path.cwd() == elsewhere

    # Without rootdir the file's folder is the root; extra arguments go to pytest.
    again = run_file(test_file, "-k", "ok")
    assert again.passed == ["test_tiny.py::test_ok"] and again.failed == [] and again.exit_code == 0
    assert Path.cwd() == elsewhere
