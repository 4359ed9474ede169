"""A pytest plugin that records each test's outcome, so a notebook can assert what its test run showed.

pytest's own report is text for people. A lesson that says "this test failed because the receive timed
out" must check it, so this plugin keeps, for every test of a run: its outcome, the time its set-up, call
and tear-down took together, and the first line of its failure (with machine paths replaced by `<venv>`,
`<python>` and `<tmp>`, so stored outputs name no machine). Load it with `-p helpers.pytest_runs.record`:

- in the kernel (ipytest), `last_run()` returns the run that finished last;
- in a child pytest, `--record-json=PATH` also writes the run to PATH, which `Project.pytest` reads back;
- `--clean-paths` passes pytest's own terminal output through `clean_paths` too (the kernel's runs use it:
  their tracebacks would otherwise store this machine's paths in the notebook).
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Outcome", "Run", "RunMissing", "clean_paths", "last_run", "test_name"]

OUTCOMES = ("passed", "failed", "error", "skipped")


class RunMissing(RuntimeError):
    """No recorded run: pytest ran without `-p helpers.pytest_runs.record`, or has not run yet."""


@dataclass(frozen=True)
class Outcome:
    """One test: `outcome` is one of OUTCOMES ("error" when set-up or tear-down failed), `message` the
    first line of the failure ("" when it passed), `seconds` its set-up + call + tear-down, and `properties`
    what the test recorded with pytest's `record_property(name, value)` fixture (values as text)."""

    name: str
    outcome: str
    seconds: float
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """The outcomes of one pytest run, by test name (see `test_name`)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    exit_code: int | None = None

    def names(self, outcome: str) -> list[str]:
        """The tests that ended with `outcome`, in the order they ran."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        return [name for name, result in self.outcomes.items() if result.outcome == outcome]

    def properties(self) -> dict[str, str]:
        """Every test's recorded properties merged, in the order the tests ran."""
        merged: dict[str, str] = {}
        for result in self.outcomes.values():
            merged.update(result.properties)
        return merged

    @property
    def passed(self) -> list[str]:
        return self.names("passed")

    @property
    def failed(self) -> list[str]:
        return self.names("failed")

    def __getitem__(self, name: str) -> Outcome:
        if name not in self.outcomes:
            raise KeyError(f"no test named {name!r} in this run; it ran {sorted(self.outcomes)}")
        return self.outcomes[name]

    def to_json(self) -> str:
        return json.dumps({"exit_code": self.exit_code, "outcomes": [asdict(o) for o in self.outcomes.values()]})

    @classmethod
    def from_json(cls, text: str) -> Run:
        data = json.loads(text)
        run = cls(exit_code=data["exit_code"])
        for item in data["outcomes"]:
            run.outcomes[item["name"]] = Outcome(**item)
        return run


def _path_names(cwd: str | None = None) -> list[tuple[str, str]]:
    """(prefix, placeholder) pairs, longest first, for the places a traceback or repr can name.

    Each place is listed absolute and relative to `cwd` (default: the working folder), since pytest prints a
    file's path relative to the folder it runs in when that is shorter (`../.venv/lib/...`)."""
    places = {
        sysconfig.get_paths()["purelib"]: "<venv>/site-packages",
        sys.prefix: "<venv>",
        sysconfig.get_paths()["stdlib"]: "<python>/lib",
        sys.base_prefix: "<python>",
        tempfile.gettempdir(): "<tmp>",
    }
    names = dict(places)
    for place, placeholder in places.items():
        relative = os.path.relpath(place, cwd)
        # Only a path that climbs out and names something: a place inside the working folder is the
        # project's own, and a bare "../.." would match every "..".
        if relative.startswith("..") and set(relative.split(os.sep)) != {".."}:
            names.setdefault(relative, placeholder)
    return sorted(names.items(), key=lambda item: -len(item[0]))


def clean_paths(text: str, cwd: str | os.PathLike[str] | None = None) -> str:
    """`text` with the interpreter's, the venv's and the temp folder's paths replaced by placeholders.

    `cwd` is the folder the text's relative paths start from: the working folder of the process that wrote it
    (default: this one's)."""
    for prefix, placeholder in _path_names(None if cwd is None else os.fspath(cwd)):
        text = text.replace(prefix, placeholder)
    return re.sub(r"<tmp>/[A-Za-z0-9_.-]+", "<tmp>", text)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    return clean_paths(text.strip().splitlines()[0] if text.strip() else "")


_LAST: Run | None = None
_CURRENT = Run()


def last_run() -> Run:
    """The run that finished last in this process; raises RunMissing (saying what to do) before any."""
    if _LAST is None:
        raise RunMissing("no pytest run was recorded here: run pytest with -p helpers.pytest_runs.record first")
    return _LAST


class _CleaningFile:
    """A text stream that writes through `clean_paths`; everything else goes to the stream it wraps."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(clean_paths(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-json", default=None, help="also write the recorded run to this file, as JSON")
    parser.addoption("--clean-paths", action="store_true", help="replace machine paths in the terminal output")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--clean-paths") and config.pluginmanager.get_plugin("terminalreporter") is not None:
        writer = config.get_terminal_writer()
        # TerminalWriter keeps its stream in `_file` (pytest 9.2, _pytest/_io/terminalwriter.py); every
        # line of pytest's report, and pytest-timeout's stack dump, is written through it.
        writer._file = _CleaningFile(writer._file)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _CURRENT
    _CURRENT = Run()


def test_name(nodeid: str) -> str:
    """A node id as the run's key: `file.py::test` for a file's tests, `test` for a notebook cell's.

    ipytest gives a cell's tests a module of a random name (t_ and 32 hex digits): that part is dropped."""
    file, _, rest = nodeid.partition("::")
    return rest if re.fullmatch(r"t_[0-9a-f]{32}\.py", file) else nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = test_name(report.nodeid)
    before = _CURRENT.outcomes.get(name)
    seconds = report.duration + (before.seconds if before else 0.0)
    outcome, message = (before.outcome, before.message) if before else ("passed", "")
    properties = dict(before.properties) if before else {}
    properties.update((str(key), str(value)) for key, value in report.user_properties)
    if report.failed and outcome in ("passed", "skipped"):  # the first failure is the one that explains
        outcome, message = ("failed" if report.when == "call" else "error"), _first_line(report)
    elif report.skipped and outcome == "passed":
        outcome = "skipped"
    _CURRENT.outcomes[name] = Outcome(name, outcome, seconds, message, properties)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _LAST
    _CURRENT.exit_code = int(exitstatus)
    _LAST = _CURRENT
    target: Any = session.config.getoption("--record-json")
    if target:
        Path(target).write_text(_CURRENT.to_json())
