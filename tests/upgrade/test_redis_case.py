"""The upgrade radar's known case, for real: redis-py 8.1.0 breaks broadcaster 0.3.1, and the radar names lesson 07.

Slow (it builds a venv with redis 8.1.0, cached under .upgrade-check/, and runs lesson 07 under strict nbval in it),
so it is not in `make test`: `make upgrade-check-test` runs it, and .ci/run calls that after `make test`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

LESSON = "07_fastapi_broadcasting.ipynb"


@pytest.mark.timeout(1800)
def test_redis_8_1_is_reported_as_changing_lesson_07s_redis_cells() -> None:
    """With PKG="redis==8.1.0" the check exits 1 and names 07's Redis cells, its Summary row and the package."""
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("redis==")
    )
    done = subprocess.run(
        [sys.executable, "tools/upgrade_check.py", "--pkg", "redis==8.1.0", "--notebooks", LESSON],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    report = (ROOT / ".upgrade-check" / "report.md").read_text()
    assert report in done.stdout
    assert f"Moved: `redis {pinned} -> 8.1.0`" in report
    assert f"## {LESSON}" in report
    assert "`async def connected_in_lifespan(url: str):`: now raises" in report
    assert "Summary row no longer holds" in report and "`redis://`" in report
    assert f"- redis {pinned} -> 8.1.0: {LESSON}" in report
