"""Run the test suite's stages in order and end with one timing line per stage (what `make test` runs).

    python tools/test_stages.py                  # lint, unit, notebooks, browser
    python tools/test_stages.py unit notebooks   # only these, in this order

Each stage is one or more commands; a stage fails when one of its commands does, and the run stops there
(the stages after it are reported as not run). The tests that wait (servers, kernels, JupyterLab) run
concurrently with pytest-xdist: on a 2-core machine most of their time is waiting, not CPU.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PYTEST = [PYTHON, "-m", "pytest"]

# Workers per pytest stage: each waits most of the time, so more workers than cores pay off, up to the
# point where the CPU is busy and the notebooks' own timing checks would only get noisier.
UNIT_WORKERS = 6  # CPU busy (/proc/stat): 71% on 4 workers (114 s), 87% on 6 (102 s)
NOTEBOOK_WORKERS = 4  # most of a notebook's time is waiting: the stage used 42% of the CPU on 2, 62% on 3, 75% on 4
BROWSER_WORKERS = 2  # 3 made lesson 08 fall behind in the browser once lesson 13 joined the suite

# Strict nbval as the notebooks stage runs it; tools/upgrade_check.py runs the same, without the second run.
STRICT_NBVAL = [
    "-p",
    "tests.nbval_kernel_shutdown",  # kernels get a shutdown request, not nbval's kill, so their atexit clean-up runs
    "--nbval",
    "--nbval-current-env",
    "--nbval-sanitize-with",
    "tests/nbval_sanitize.cfg",
    "--nbval-cell-timeout=60",
    "-o",
    "filterwarnings=default",
]

NBVAL = ["-p", "tests.nbval_second_run", *STRICT_NBVAL]

# Installed pytest plugins a stage does not use: each costs its import in every pytest process and xdist worker
# (hypothesis's plugin imports all of hypothesis, 1.3 s of CPU). Only the unit tests use hypothesis.
NOT_HYPOTHESIS = ["-p", "no:hypothesispytest"]
NOT_NBVAL = ["-p", "no:nbval"]
BROWSER_PLUGINS_OFF = [*NOT_NBVAL, *NOT_HYPOTHESIS]


@dataclass(frozen=True)
class Stage:
    name: str
    about: str
    commands: tuple[tuple[str, ...], ...]


STAGES = {
    stage.name: stage
    for stage in (
        Stage(
            "lint",
            "ruff check, ruff format, mypy and the generated navigation",
            (
                (PYTHON, "-m", "ruff", "check", "."),
                (PYTHON, "-m", "ruff", "format", "--check", "."),
                (PYTHON, "-m", "mypy"),  # helpers/, tools/ and bench/: pyproject.toml's [tool.mypy]
                (PYTHON, "tools/notebooks.py", "nav", "--check"),
            ),
        ),
        Stage(
            "unit",
            "unit tests of the helpers, quizzes, challenges and tools",
            # tests/upgrade builds a venv and runs a lesson in it: `make upgrade-check-test`, after `make test` in CI.
            ((*PYTEST, "tests", "--ignore=tests/browser", "--ignore=tests/upgrade", "-n", str(UNIT_WORKERS)),),
        ),
        Stage(
            "notebooks",
            "strict nbval over every notebook, then a second run of each in the same kernel",
            ((*PYTEST, *NBVAL, *NOT_HYPOTHESIS, "-n", str(NOTEBOOK_WORKERS), "--dist", "loadfile", "notebooks"),),
        ),
        Stage(
            "browser",
            "every notebook and widget in real JupyterLab and Chromium, and the static site",
            # loadgroup: the static site's tests (xdist_group "site") share one worker and one build of the site.
            ((*PYTEST, "tests/browser", *BROWSER_PLUGINS_OFF, "-n", str(BROWSER_WORKERS), "--dist", "loadgroup"),),
        ),
    )
}


@dataclass
class Outcome:
    stage: Stage
    result: str = "not run"
    seconds: float = 0.0


def run_stage(stage: Stage) -> Outcome:
    """Run a stage's commands in order from the repository root; stop at the first that fails."""
    outcome = Outcome(stage, "passed")
    began = time.monotonic()
    for command in stage.commands:
        print(f"\n== {stage.name}: {' '.join(command[1:] if command[0] == PYTHON else command)}", flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            outcome.result = "FAILED"
            break
    outcome.seconds = time.monotonic() - began
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    """One line per stage (name, seconds, result, what it checks) and the total."""
    lines = [f"{'stage':<10} {'seconds':>8}  result   checks"]
    for o in outcomes:
        seconds = f"{o.seconds:8.1f}" if o.result != "not run" else f"{'-':>8}"
        lines.append(f"{o.stage.name:<10} {seconds}  {o.result:<8} {o.stage.about}")
    lines.append(f"{'total':<10} {sum(o.seconds for o in outcomes):8.1f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names = argv or list(STAGES)
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        print(f"unknown stage {', '.join(unknown)}: choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    outcomes = [Outcome(STAGES[name]) for name in names]
    for index, outcome in enumerate(outcomes):
        outcomes[index] = run_stage(outcome.stage)
        if outcomes[index].result != "passed":
            break
    print("\n" + summary(outcomes), flush=True)
    return 0 if all(o.result == "passed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
