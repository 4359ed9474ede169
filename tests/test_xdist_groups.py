"""Tests for tests/xdist_groups.py: under --dist loadgroup, the tests of one xdist_group run on one worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import ROOT

GROUPED = textwrap.dedent(
    """
    import os
    import pytest

    @pytest.mark.xdist_group("heavy")
    @pytest.mark.parametrize("i", range(4))
    def test_grouped(i):
        print("ran on", os.environ["PYTEST_XDIST_WORKER"])

    @pytest.mark.parametrize("i", range(4))
    def test_free(i):
        pass
    """
)


@pytest.mark.timeout(120)
def test_a_group_runs_on_one_worker_with_loadgroup(tmp_path: Path) -> None:
    """Four tests of one group on two loadgroup workers all report the same worker (they did not, before the hook)."""
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "conftest.py").write_text("from tests.xdist_groups import pytest_collection_modifyitems  # noqa\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rP", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
         "--disable-plugin-autoload", "-p", "xdist.plugin"],  # no other plugin: each worker starts faster
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    workers = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("ran on")]
    assert len(workers) == 4 and len(set(workers)) == 1, workers
