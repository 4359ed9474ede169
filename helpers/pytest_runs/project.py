"""A throwaway pytest project: the notebook writes an app and its tests here and runs the real `pytest`.

The folder is on `sys.path` while the project lives, so the kernel can import the same modules the child
`pytest` tests. `stop()` (also at interpreter exit) takes it off `sys.path`, forgets the modules imported
from it, so a second run of the notebook imports the new files, and deletes the folder.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from helpers.pytest_runs.record import Run, clean_paths
from helpers.pytest_runs.terminal import terminal_env
from helpers.usage import UsageError, check_positive

__all__ = ["CliRun", "Project", "ProjectError"]

RECORD = "helpers.pytest_runs.record"


class ProjectError(RuntimeError):
    """The project was used after `stop()`, or its pytest did not finish in time; the message says what to do."""


@dataclass(frozen=True)
class CliRun:
    """One `pytest` command: what was typed (`command`), its exit code, its output (paths cleaned), its outcomes."""

    command: str
    exit_code: int
    output: str
    run: Run

    def __str__(self) -> str:
        return f"$ {self.command}\n{self.output.rstrip()}\n(exit code {self.exit_code})"


def _env() -> dict[str, str]:
    # The lesson's terminal (lines cut the same on every machine, CI or not); no .pyc files in the project folder.
    return {**terminal_env(os.environ), "PYTHONDONTWRITEBYTECODE": "1"}


class Project:
    """A temporary folder for a copyable project; `path / "name.py"` is where `%%writefile` puts a file.

    `folders` are made inside it at once (`%%writefile` makes no folders)."""

    def __init__(self, folders: Sequence[str] = (), prefix: str = "ws-tests-") -> None:
        if isinstance(folders, str):
            raise UsageError(f"folders must be a list of names, like ['tests'], not the string {folders!r}")
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._stopped = False
        try:
            for folder in folders:
                self._inside(folder).mkdir(parents=True, exist_ok=True)
        except BaseException:  # a bad name: leave no folder behind
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        sys.path.insert(0, str(self.path))
        atexit.register(self.stop)

    def write(self, name: str, text: str) -> Path:
        """Write `text` to `name` inside the project (sub-folders are made); returns the file's path."""
        target = self._inside(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def register_cell_magic(self, magic: str = "project_file") -> str:
        """Make `%%project_file NAME` (in IPython) write the cell's text to NAME in this project.

        Unlike `%%writefile`, it names the file relative to the project, so a stored output shows no machine
        path: it prints `wrote NAME (N lines)`. Registering again points the magic at the newest project."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise ProjectError("register_cell_magic() needs IPython (a notebook); elsewhere call write(name, text)")

        def project_file(line: str, cell: str) -> None:
            name = line.strip()
            self.write(name, cell if cell.endswith("\n") else cell + "\n")
            print(f"wrote {name} ({len(cell.splitlines())} lines)")

        shell.register_magic_function(project_file, "cell", magic)
        return f"%%{magic}"

    def files(self) -> list[str]:
        """The project's files, relative to its folder, sorted; caches and hidden files (the run record) left out."""
        self._check_open()
        names = (p.relative_to(self.path) for p in self.path.rglob("*") if p.is_file())
        return sorted(str(n) for n in names if not any(part.startswith((".", "__pycache__")) for part in n.parts))

    def pytest(self, *args: str, timeout: float = 60.0) -> CliRun:
        """Run `python -m pytest *args` in the project folder, in a child process, and record every test.

        The child gets `-p helpers.pytest_runs.record` (and a file to write to) on top of `args`; `command`
        shows only what a learner would type. Raises ProjectError if it runs longer than `timeout` seconds.
        """
        self._check_open()
        timeout = check_positive(timeout, "timeout")
        bad = [arg for arg in args if not isinstance(arg, str)]
        if bad:
            raise UsageError(f"pytest arguments must be strings, like '-q' or 'tests/test_chat.py'; got {bad!r}")
        record = self.path / ".record.json"
        record.unlink(missing_ok=True)
        # Not what a learner types. This lab's own test plugins (nbval, which imports jsonschema, and hypothesis)
        # are no part of the project's tests and cost ~4.5 s of start-up per run.
        hidden = ["-p", "no:cacheprovider", "-p", "no:nbval", "-p", "no:hypothesispytest"]
        hidden += ["-p", RECORD, f"--record-json={record}"]
        done, output = self._child(
            ["-m", "pytest", *hidden, *args], timeout, f"pytest ran longer than {timeout} s; give each test a timeout"
        )
        run = Run.from_json(record.read_text()) if record.exists() else Run(exit_code=done.returncode)
        return CliRun(shlex.join(["pytest", *args]), done.returncode, output, run)

    def python(self, code: str, timeout: float = 30.0) -> CliRun:
        """Run `code` with this interpreter in a child process, in the project folder (paths cleaned)."""
        self._check_open()
        timeout = check_positive(timeout, "timeout")
        if not isinstance(code, str):
            raise UsageError(f"code must be Python source text, not {type(code).__name__}")
        done, output = self._child(["-c", code], timeout, f"the child ran longer than {timeout} s")
        return CliRun("python -c ...", done.returncode, output, Run(exit_code=done.returncode))

    def _child(
        self, arguments: list[str], timeout: float, too_long: str
    ) -> tuple[subprocess.CompletedProcess[str], str]:
        """Run this interpreter with `arguments` in the project folder: the result, and its output paths cleaned."""
        try:
            done = subprocess.run(
                [sys.executable, *arguments], cwd=self.path, capture_output=True, text=True, timeout=timeout, env=_env()
            )
        except subprocess.TimeoutExpired as exc:
            raise ProjectError(too_long) from exc
        return done, clean_paths(done.stdout + done.stderr, cwd=self.path)

    def stop(self) -> None:
        """Take the folder off sys.path, forget the modules imported from it, delete it. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        folder = str(self.path)
        while folder in sys.path:
            sys.path.remove(folder)
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(folder + os.sep):
                del sys.modules[name]
        shutil.rmtree(self.path, ignore_errors=True)

    def _inside(self, name: str) -> Path:
        self._check_open()
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise UsageError(f"name must be a relative path in the project, like 'tests/test_chat.py'; got {name!r}")
        return self.path / name

    def _check_open(self) -> None:
        if self._stopped:
            raise ProjectError("this project was stopped; make a new one with Project()")

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self._stopped:
            return "<Project stopped>"
        return f"<Project with {len(self.files())} files>"
