"""Tests for tools/test_stages.py: stages run in order, stop at the first failure, and end with a timing line each."""

from __future__ import annotations

import sys

import pytest

from tests.support import load_script

tool = load_script("tools/test_stages.py", "test_stages_tool")


def fake_stages(monkeypatch: pytest.MonkeyPatch, **exit_codes: int) -> None:
    """Replace the real stages by ones whose single command exits with the given code."""
    stages = {
        name: tool.Stage(name, f"exits {code}", ((sys.executable, "-c", f"raise SystemExit({code})"),))
        for name, code in exit_codes.items()
    }
    monkeypatch.setattr(tool, "STAGES", stages)


def test_make_test_runs_lint_unit_notebooks_and_browser_in_that_order() -> None:
    """The default stages are the four the README describes, in order."""
    assert list(tool.STAGES) == ["lint", "unit", "notebooks", "browser"]


def test_the_nbval_stage_keeps_strict_mode_and_the_second_run() -> None:
    """The notebooks stage is strict nbval (not lax) with the sanitize file, loadfile scheduling and the plugin."""
    (command,) = tool.STAGES["notebooks"].commands
    assert "--nbval" in command and "--nbval-lax" not in command
    assert "tests/nbval_sanitize.cfg" in command and "tests.nbval_second_run" in command
    assert command[command.index("--dist") + 1] == "loadfile"


def test_every_stage_passing_exits_zero_with_a_line_per_stage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When every stage passes the exit code is 0 and the summary has one timed 'passed' line per stage."""
    fake_stages(monkeypatch, first=0, second=0)
    assert tool.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    summary = lines[lines.index(next(line for line in lines if line.startswith("stage"))) :]
    assert [line.split()[0] for line in summary] == ["stage", "first", "second", "total"]
    assert all(line.split()[2] == "passed" for line in summary[1:3])


def test_a_failed_stage_stops_the_run_and_the_rest_show_as_not_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing stage makes the exit code 1; later stages do not run and say so in the summary."""
    fake_stages(monkeypatch, first=0, second=3, third=0)
    assert tool.main([]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in next(line for line in out.splitlines() if line.startswith("second"))
    assert "not run" in next(line for line in out.splitlines() if line.startswith("third"))


def test_an_unknown_stage_name_says_which_names_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for a stage that does not exist exits 2 and lists the stages to choose from."""
    fake_stages(monkeypatch, first=0)
    assert tool.main(["nope"]) == 2
    assert "unknown stage nope: choose from first" in capsys.readouterr().err


def test_the_browser_stage_runs_every_browser_test_in_one_loadgroup_run() -> None:
    """The browser stage is one xdist run over tests/browser with --dist loadgroup (the site's group stays whole)."""
    (command,) = tool.STAGES["browser"].commands
    assert "tests/browser" in command and "--ignore" not in " ".join(command)
    assert command[command.index("--dist") + 1] == "loadgroup" and "-n" in command
