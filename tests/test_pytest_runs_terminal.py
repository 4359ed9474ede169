"""Tests for helpers.pytest_runs.terminal: a fixed width and no CI mode, in a child's environment and in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.pytest_runs.terminal import TERMINAL_COLUMNS, lesson_terminal, terminal_env

pytestmark = pytest.mark.timeout(30)

LONG_FAILURE = 'def test_long():\n    assert False, "' + "why " * 60 + '"\n'
FLAGS = ["-c", os.devnull, "-q", "--color=no", "-p", "no:cacheprovider", "--disable-plugin-autoload"]


def summary_line(output: str) -> str:
    """The short test summary's FAILED line of a run's output."""
    return next(line for line in output.splitlines() if line.startswith("FAILED "))


def test_terminal_env_fixes_the_width_and_drops_the_ci_variables() -> None:
    """terminal_env copies the mapping without CI and BUILD_NUMBER, with COLUMNS set, and leaves the input alone."""
    base = {"CI": "true", "BUILD_NUMBER": "7", "COLUMNS": "250", "HOME": "/home/x"}
    assert terminal_env(base) == {"COLUMNS": str(TERMINAL_COLUMNS), "HOME": "/home/x"}
    assert base["CI"] == "true"


def test_lesson_terminal_sets_the_environment_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the block CI is gone and COLUMNS is fixed; after it, even after an error, each is as before."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    with pytest.raises(RuntimeError), lesson_terminal():
        assert "CI" not in os.environ and os.environ["COLUMNS"] == str(TERMINAL_COLUMNS)
        raise RuntimeError("inside")
    assert os.environ["CI"] == "true" and "COLUMNS" not in os.environ and "BUILD_NUMBER" not in os.environ


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_child_with_terminal_env_cuts_the_summary_line_as_off_ci(tmp_path: Path, ci: str) -> None:
    """A child pytest given terminal_env cuts a long FAILED line to the fixed width, whether CI was set or not."""
    (tmp_path / "test_long.py").write_text(LONG_FAILURE)
    env = terminal_env({**os.environ, "CI": ci})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *FLAGS, "test_long.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=25,
        env=env,
    )
    line = summary_line(done.stdout)
    assert line.endswith("...") and len(line) <= TERMINAL_COLUMNS, line


def test_as_a_plugin_it_holds_for_one_in_process_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loaded with -p in this process under CI=true, a run cuts its FAILED line; afterwards CI is set again."""
    (tmp_path / "test_long.py").write_text(LONG_FAILURE)
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    code = pytest.main([*FLAGS, "-p", "helpers.pytest_runs.terminal", "test_long.py"])
    line = summary_line(capsys.readouterr().out)
    assert code == 1 and line.endswith("...") and len(line) <= TERMINAL_COLUMNS, line
    assert os.environ["CI"] == "true" and "COLUMNS" not in os.environ
    sys.modules.pop("test_long", None)
