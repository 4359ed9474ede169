"""Every notebook runs in real JupyterLab in real Chromium: no unexpected errors, widgets rendered, no page errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest

from tests.browser.conftest import Lab, save_screenshot, stop_kernels_of
from tests.support import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_TIMEOUT = 120.0
WIDGET_FAILURES = ("Error displaying widget", "Loading widget...")


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open `name` in JupyterLab and wait until its kernel is idle."""
    # ?reset: start from an empty workspace, not from the tabs an earlier test left open.
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=60_000)
    deadline = time.monotonic() + 60
    settled_since: float | None = None
    while True:
        kernel_dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if kernel_dialog.count():  # JupyterLab sometimes asks even though the notebook names its kernel
            kernel_dialog.locator("button.jp-mod-accept").click()
        ready = (
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelName", has_text="Python 3").count()
            and page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
            and not kernel_dialog.count()
        )
        if ready:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since > 1.0:
                return
        else:
            settled_since = None
        assert time.monotonic() < deadline, "the notebook's kernel did not become idle"
        time.sleep(0.25)


def run_all(page: Any) -> None:
    """Run > Run All Cells, through the menu as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()


def wait_until_done(page: Any, timeout: float = RUN_TIMEOUT) -> None:
    """Bounded wait until no cell is queued or running and the kernel has stayed idle for a moment."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while time.monotonic() < deadline:
        busy = page.locator(".jp-InputPrompt", has_text="[*]").count()
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
        if busy == 0 and idle:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 1.5:  # between two cells the kernel is briefly idle
                return
        else:
            idle_since = None
        time.sleep(0.25)
    raise AssertionError(f"notebook still running after {timeout} s")


def save(page: Any, path: Path) -> dict[str, Any]:
    """File > Save Notebook, then read back what JupyterLab wrote to the temporary copy."""
    before = path.stat().st_mtime_ns
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"JupyterLab shows a dialog: {dialogs.first.inner_text()!r}"
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Save Notebook", exact=True).click()
    # jupyter_server writes in place: it truncates the file (the mtime changes at once), writes, then removes
    # its backup copy `.~<name>`. Read only once the backup is gone and the text parses, or a read can see
    # a half-written (even empty) file.
    backup = path.with_name(".~" + path.name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before and not backup.exists():
            try:
                return cast(dict[str, Any], json.loads(path.read_text()))
            except json.JSONDecodeError:
                pass  # caught between the truncate and the last write; the next look sees it whole
        time.sleep(0.1)
    raise AssertionError("JupyterLab did not finish saving the notebook within 20 s")


def unexpected_errors(notebook: dict[str, Any]) -> list[str]:
    """Error outputs in cells that are not tagged raises-exception."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and "raises-exception" not in tags:
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


# The notebook that loads the machine most and the two that time things run one after the other on one worker
# (the stage uses --dist loadgroup): 08's clients read 100 KB messages from 24 sockets at 80 a second and check
# that none falls behind, 13 starts six server processes and floods them, which made 08's clients fall behind
# when both ran, 15 checks that keepalive timers fire within 0.3 s of their bounds, and 16 that nginx cuts a
# quiet WebSocket between its 0.5 s read timeout and twice that. Under pytest 9.2 the mark is inert
# (pytest-xdist#1386); tests/xdist_groups.py says why its fix is not switched on yet.
HEAVY = {
    "08_broadcast_at_scale.ipynb",
    "13_which_server.ipynb",
    "15_dead_peers_and_reconnect.ipynb",
    "16_proxies_workers_tls.ipynb",
}
NOTEBOOK_PARAMS = [pytest.param(n, marks=pytest.mark.xdist_group("heavy")) if n in HEAVY else n for n in NOTEBOOKS]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NOTEBOOK_PARAMS)
def test_notebook_runs_in_jupyterlab(page: Any, lab: Lab, name: str) -> None:
    """Run All in JupyterLab finishes with no unexpected error output, every widget rendered and no page errors."""
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        open_notebook(page, lab, name)
        run_all(page)
        wait_until_done(page)
        notebook = save(page, lab.root / name)
        save_screenshot(page, Path(name).stem)
        text = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").inner_text()
        rendered_widgets = page.locator(".jp-OutputArea-output .jupyter-widgets").count()
    finally:
        stop_kernels_of(lab, name)
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert unexpected_errors(notebook) == []
    not_run = [i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and not c.get("execution_count")]
    assert not_run == [], f"cells that did not run: {not_run}"
    for failure in WIDGET_FAILURES:
        assert failure not in text, f"a widget shows {failure!r}"
    widget_outputs = sum(
        1
        for cell in code_cells
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    )
    assert rendered_widgets >= min(widget_outputs, 1)
    assert page_errors == []
