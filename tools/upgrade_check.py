"""The upgrade radar (`make upgrade-check`): which lessons would the newest lesson libraries change?

    python tools/upgrade_check.py                          # every lesson library at its newest release
    python tools/upgrade_check.py --pkg "redis==8.1.0"     # exactly these versions, the rest as pinned
    python tools/upgrade_check.py --notebooks 07_fastapi_broadcasting.ipynb

It builds a throwaway venv under .upgrade-check/ (ignored; one per set of versions, kept as a cache) from the
project's pins with the lesson libraries moved, runs strict nbval over the notebooks in that venv (the
committed notebooks are only read) with tests/nbval_recorder.py noting every changed cell, and prints a
report: the versions moved, per notebook the cells whose output changed (a short sanitized before/after), the
Summary rows that no longer hold and the cells that now raise, and one line per moved package. When several
packages moved and lessons changed, each moved package is tried alone on the changed notebooks, so every line
names the package that did it. The same report is written to .upgrade-check/report.md.

Exit status: 0 when no lesson changed, 1 when one did, 2 when the check could not run (a version that does
not exist or cannot be installed with the other pins: pip's own words are shown).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name as canonical  # names as pip compares them

sys.path.insert(0, str(Path(__file__).resolve().parent))
# a script beside this one: its folder is on sys.path when run as a script, and is put there when loaded
from test_stages import NOTEBOOK_WORKERS, ROOT, STRICT_NBVAL

CACHE = ROOT / ".upgrade-check"
REPORT = CACHE / "report.md"
RECORDER = "tests.nbval_recorder"
RECORD_ENV = "NBVAL_RECORD"  # the variable tests/nbval_recorder.py reads
# The libraries whose behaviour the lessons teach (the ASGI servers, frameworks, WebSocket stacks, layers and
# the libraries lessons 16 and 17 demonstrate). Jupyter, matplotlib and the test tools are the course's
# machinery: they keep their pins unless named in --pkg.
LESSON_LIBRARIES = (
    "starlette",
    "fastapi",
    "uvicorn",
    "wsproto",
    "hypercorn",
    "websockets",
    "django",
    "channels",
    "daphne",
    "channels-redis",
    "broadcaster",
    "redis",
    "httpx-ws",
    "trustme",
    "itsdangerous",
    "pyjwt",
    "nest-asyncio",
)
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
PKG_ITEM = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)")  # one exact release, PEP 440
DIFF_LINES = 4  # changed lines shown per side of a before/after
LINE_CHARS = 150


class CheckError(RuntimeError):
    """The check cannot run as asked; the message says what to do."""


@dataclass(frozen=True)
class Move:
    name: str
    old: str
    new: str

    @property
    def moved(self) -> bool:
        return self.old != self.new

    def __str__(self) -> str:
        return f"{self.name} {self.old} -> {self.new}"


@dataclass
class NotebookChange:
    """What one notebook's run found: changed cells (index, first source line, before, after, error)."""

    notebook: str
    cells: list[dict[str, object]] = field(default_factory=list)

    @property
    def summary_rows(self) -> list[str]:
        return [str(c["error"]).removeprefix("SummaryMismatch: ") for c in self.cells if _is_summary(c)]


def _is_summary(cell: dict[str, object]) -> bool:
    return str(cell.get("error") or "").startswith("SummaryMismatch")


def read_pins(path: Path) -> dict[str, str]:
    """name -> version for every `name==version` line of a requirements or constraints file."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def parse_packages(text: str) -> dict[str, str]:
    """PKG="a==1.0 b==2.0" as {"a": "1.0", "b": "2.0"}; anything else is a CheckError saying the form."""
    wanted: dict[str, str] = {}
    for item in text.split():
        match = PKG_ITEM.fullmatch(item)
        if not match:
            raise CheckError(
                f'PKG takes name==version items separated by spaces, like PKG="redis==8.1.0 uvicorn==0.55.0"; '
                f"got {item!r}"
            )
        wanted[canonical(match.group(1))] = match.group(2)
    return wanted


def newest_release(name: str, python: str = sys.executable) -> str:
    """The newest release of `name` on the configured package index (`pip index versions`)."""
    done = subprocess.run([python, "-m", "pip", "index", "versions", name], capture_output=True, text=True, timeout=120)
    match = re.search(rf"^{re.escape(name)} \(([^)]+)\)", done.stdout, re.IGNORECASE | re.MULTILINE)
    if done.returncode != 0 or not match:
        raise CheckError(f"could not find the newest release of {name} on the package index: {_pip_words(done)}")
    return match.group(1)


def plan(pins: dict[str, str], wanted: dict[str, str], newest: Callable[[str], str] | None) -> list[Move]:
    """The versions to try: `wanted` as given; without it, each lesson library at `newest(name)`.

    A name in `wanted` that the project does not pin is a CheckError (a typo would otherwise try nothing)."""
    unknown = sorted(set(wanted) - set(pins))
    if unknown:
        raise CheckError(f"the project pins no {', '.join(unknown)}: name a package from constraints.txt")
    if wanted:
        return [Move(name, pins[name], version) for name, version in wanted.items()]
    if newest is None:
        raise CheckError("nothing to try: give PKG=name==version or let the check look up the newest releases")
    return [Move(name, pins[name], newest(name)) for name in LESSON_LIBRARIES if name in pins]


def moved_files(moves: Sequence[Move], folder: Path) -> Path:
    """Copies of the requirements and constraints files with the moves applied; returns requirements-dev.txt."""
    versions = {m.name: m.new for m in moves if m.moved}

    def rewrite(text: str) -> str:
        lines = []
        for line in text.splitlines():
            match = PIN.match(line)
            if match and canonical(match.group(1)) in versions:
                line = f"{match.group(1)}=={versions[canonical(match.group(1))]}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt"):
        (folder / name).write_text(rewrite((ROOT / name).read_text()))
    return folder / "requirements-dev.txt"


def venv_key(moves: Sequence[Move]) -> str:
    """One cache folder per set of versions (and per version of the pin files and of Python)."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    digest.update(repr(sorted(str(m) for m in moves if m.moved)).encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def build_venv(moves: Sequence[Move], log: Callable[[str], None] = print) -> Path:
    """A venv with the project's pins and `moves`, cached under .upgrade-check/; returns its python."""
    folder = CACHE / f"venv-{venv_key(moves)}"
    python = folder / "bin" / "python"
    if (folder / ".installed").exists():
        log(f"reusing {folder.relative_to(ROOT)}")
        return python
    shutil.rmtree(folder, ignore_errors=True)
    log(f"building {folder.relative_to(ROOT)} ...")
    requirements = moved_files(moves, folder / "pins")
    steps = [
        [sys.executable, "-m", "venv", str(folder)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            str(requirements),
            "-c",
            str(requirements.with_name("constraints.txt")),
        ],
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            tried = ", ".join(str(m) for m in moves if m.moved)
            raise CheckError(f"{tried} cannot be installed with the project's other pins: {_pip_words(done)}")
    (folder / ".installed").touch()
    return python


def _pip_words(done: subprocess.CompletedProcess[str]) -> str:
    """pip's error lines, without the noise of ignored index locations."""
    lines = [
        line.strip()
        for line in (done.stderr + done.stdout).splitlines()
        if line.strip() and "is ignored: it is neither a file nor a directory" not in line
    ]
    wanted = [line for line in lines if line.startswith("ERROR") or "conflict" in line.lower()] or lines[-3:]
    return " | ".join(wanted[:6]) or f"exit status {done.returncode}"


def run_notebooks(
    python: Path, notebooks: Sequence[str], log: Callable[[str], None] = print
) -> list[dict[str, object]]:
    """Strict nbval over `notebooks` with `python`; the recorder's lines, one per code cell."""
    with tempfile.TemporaryDirectory(prefix="upgrade-records-") as records:
        paths = [f"notebooks/{name}" for name in notebooks]
        command = [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            RECORDER,
            *STRICT_NBVAL,
            "-n",
            str(NOTEBOOK_WORKERS),
            "--dist",
            "loadfile",
            *paths,
        ]
        log(f"strict nbval over {len(paths)} notebook(s) ...")
        env = {**os.environ, RECORD_ENV: records}
        env.pop("VIRTUAL_ENV", None)
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        lines = [line for path in sorted(Path(records).glob("*.jsonl")) for line in path.read_text().splitlines()]
    found = [json.loads(line) for line in lines if line.strip()]
    # pytest exits 1 when cells failed (what the check looks for); anything else, or no cell recorded at all, or
    # a failure no cell accounts for (a notebook that did not even collect), means the check itself broke.
    failed_cells = sum(1 for record in found if record["outcome"] == "failed")
    if done.returncode not in (0, 1) or not found or (done.returncode == 1 and not failed_cells):
        tail = " | ".join(line for line in done.stdout.splitlines()[-8:] if line.strip())
        raise CheckError(f"strict nbval did not run the notebooks (pytest exit status {done.returncode}): {tail}")
    return found


def changes(records: Iterable[dict[str, object]]) -> list[NotebookChange]:
    """The failed cells grouped by notebook, both in notebook order."""
    found: dict[str, NotebookChange] = {}
    for record in sorted(records, key=lambda r: (str(r["notebook"]), int(str(r["cell"])))):
        if record["outcome"] == "failed":
            found.setdefault(str(record["notebook"]), NotebookChange(str(record["notebook"]))).cells.append(record)
    return list(found.values())


def before_after(stored: str, now: str) -> list[str]:
    """A short before/after of two sanitized outputs: the changed lines only, a few of each, shortened."""
    before = [line[2:] for line in difflib.ndiff(stored.splitlines(), now.splitlines()) if line.startswith("- ")]
    after = [line[2:] for line in difflib.ndiff(stored.splitlines(), now.splitlines()) if line.startswith("+ ")]

    def short(lines: list[str], mark: str) -> list[str]:
        shown = [f"{mark} {_cut(line)}" for line in lines[:DIFF_LINES]]
        if len(lines) > DIFF_LINES:
            shown.append(f"{mark} ... {len(lines) - DIFF_LINES} more line(s)")
        return shown

    return short(before, "before:") + short(after, "after: ")


def _cut(text: str) -> str:
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 3] + "..."


def report(
    moves: Sequence[Move], checked: Sequence[str], found: Sequence[NotebookChange], blame: dict[str, list[str]]
) -> str:
    """The report as Markdown (it reads as plain text in a terminal too)."""
    moved = [m for m in moves if m.moved]
    lines = ["# Upgrade check", ""]
    lines.append(
        "Moved: " + (", ".join(f"`{m}`" for m in moved) if moved else "nothing (every library is at its newest)")
    )
    kept = [m for m in moves if not m.moved]
    if kept:
        lines.append("Already newest: " + ", ".join(f"{m.name} {m.old}" for m in kept))
    lines += ["", f"Notebooks checked: {len(checked)}; changed: {len(found)}", ""]
    if found:
        lines += ["Cells count from 0 over all cells of a notebook; nbval's Cell N counts code cells only.", ""]
    for change in found:
        lines.append(f"## {change.notebook}")
        for cell in change.cells:
            what = (
                "Summary row no longer holds"
                if _is_summary(cell)
                else ("now raises" if cell.get("error") else "output changed")
            )
            where = f"cell {cell['cell']} (nbval's Cell {cell['code_cell']})"
            lines.append(f"- {where}, `{_cut(str(cell['first_line']))}`: {what}")
            if cell.get("error"):
                lines.append(f"    - {_cut(str(cell['error']))}")
            if not _is_summary(cell):
                lines += [
                    f"    - {line}" for line in before_after(str(cell.get("stored", "")), str(cell.get("now", "")))
                ]
        if change.summary_rows:
            lines.append(
                f"- Summary rows that no longer hold: {len(change.summary_rows)} (the first mismatch stops the table)"
            )
        lines.append("")
    lines.append("## By package")
    for move in moved:
        hit = blame.get(move.name, [])
        lines.append(f"- {move}: " + (", ".join(hit) if hit else "no lesson changed"))
    return "\n".join(lines) + "\n"


def attribute(
    moves: Sequence[Move],
    found: Sequence[NotebookChange],
    rerun: Callable[[list[Move], list[str]], list[NotebookChange]],
) -> dict[str, list[str]]:
    """package -> the notebooks it changes. One package moved: all of them; several: each tried alone."""
    moved = [m for m in moves if m.moved]
    changed = [c.notebook for c in found]
    if len(moved) == 1 or not changed:
        return {m.name: list(changed) for m in moved}
    blame = {}
    for move in moved:
        alone = [Move(m.name, m.old, m.new if m is move else m.old) for m in moves]
        blame[move.name] = [c.notebook for c in rerun(alone, changed)]
    return blame


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pkg", default=os.environ.get("PKG", ""), help='versions to try: "name==version ..."')
    parser.add_argument("--notebooks", nargs="*", default=None, help="notebook file names (default: every lesson)")
    options = parser.parse_args(argv)
    notebooks = options.notebooks or sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    try:
        missing = [n for n in notebooks if not (ROOT / "notebooks" / n).exists()]
        if missing:
            raise CheckError(f"no such notebook: {', '.join(missing)} (give file names from notebooks/)")
        wanted = parse_packages(options.pkg)
        moves = plan(read_pins(ROOT / "constraints.txt"), wanted, None if wanted else newest_release)
        what = "the newest release" if not wanted else "as pinned"
        print("\n".join(f"  {m}" if m.moved else f"  {m.name} {m.old} (stays: {what})" for m in moves))

        def run(with_moves: list[Move], names: list[str]) -> list[NotebookChange]:
            return changes(run_notebooks(build_venv(with_moves), names))

        found = run(list(moves), list(notebooks)) if any(m.moved for m in moves) else []
        blame = attribute(moves, found, run)
    except CheckError as error:
        print(f"upgrade-check: {error}", file=sys.stderr)
        return 2
    text = report(moves, notebooks, found, blame)
    CACHE.mkdir(exist_ok=True)
    REPORT.write_text(text)
    print("\n" + text + f"\n(written to {REPORT.relative_to(ROOT)})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
