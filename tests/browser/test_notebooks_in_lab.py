"""Every notebook runs in real JupyterLab in real Chromium: no unexpected errors, widgets rendered, no page errors."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.browser.conftest import Lab, load_lab, save_screenshot, stop_kernels_of
from tests.support import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_TIMEOUT = 120.0
WIDGET_FAILURES = ("Error displaying widget", "Loading widget...")
WIDGET_LOAD_SECONDS = 5.0  # how long a widget may still show "Loading widget..." once its cell has run
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook tab in front
# How often a wait looks at the page. Each look costs a few ms of CPU (Python, Playwright's driver, the page):
# short waits look often, a wait for a whole notebook's run less often.
POLL_SECONDS = 0.1
RUN_POLL_SECONDS = 0.25
KERNEL_SETTLE_SECONDS = 0.5  # how long a just-opened notebook's kernel must stay idle to count as ready


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Load JupyterLab in `page` with `name` open and wait until its kernel is idle."""
    # ?reset: start from an empty workspace, not from the tabs an earlier test left open.
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    wait_for_kernel(page)


def open_from_file_browser(page: Any, name: str) -> None:
    """In a page where JupyterLab is already loaded, open `name` by double-clicking it in the file browser and
    wait until its kernel is idle (loading JupyterLab again for each notebook costs seconds of CPU)."""
    page.locator(".jp-DirListing-itemText").get_by_text(name, exact=True).dblclick()
    wait_for_kernel(page)


def wait_for_kernel(page: Any) -> None:
    """Bounded wait until the notebook shown has its Python kernel, idle for a moment, with no dialog asking."""
    page.wait_for_selector(f"{SHOWN} .jp-Notebook", timeout=60_000)
    deadline = time.monotonic() + 60
    settled_since: float | None = None
    while True:
        kernel_dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if kernel_dialog.count():  # JupyterLab sometimes asks even though the notebook names its kernel
            kernel_dialog.locator("button.jp-mod-accept").click()
        ready = (
            page.locator(f"{SHOWN} .jp-KernelName", has_text="Python 3").count()
            and kernel_idle(page)
            and not kernel_dialog.count()
        )
        if ready:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since > KERNEL_SETTLE_SECONDS:
                return
        else:
            settled_since = None
        assert time.monotonic() < deadline, "the notebook's kernel did not become idle"
        time.sleep(POLL_SECONDS)


def menu(page: Any, menu_name: str, item: str) -> None:
    """Click `menu_name` in the menu bar, then its entry `item`, as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu_name).first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()


def run_all(page: Any) -> None:
    """Edit > Clear Outputs of All Cells, then Run > Run All Cells: every prompt shows [ ] until its cell has run,
    so wait_until_done can tell a finished run from the stored outputs."""
    menu(page, "Edit", "Clear Outputs of All Cells")
    menu(page, "Run", "Run All Cells")


# Each code cell's prompt in the notebook shown: "[ ]:" never run (or cleared), "[*]:" queued or running, "[7]:" ran.
PROMPTS = f"""() => [...document.querySelectorAll('{SHOWN} .jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim())"""


def kernel_idle(page: Any) -> bool:
    """The notebook in front shows its kernel idle."""
    return bool(page.locator(f"{SHOWN} .jp-Notebook-ExecutionIndicator[data-status='idle']").count())


def wait_until_done(page: Any, timeout: float = RUN_TIMEOUT, cleared: bool = False) -> None:
    """Bounded wait until no cell is queued or running and the kernel has stayed idle for a moment; with `cleared`
    (run_all cleared every prompt first, so a number means "ran in this kernel"), at once when every code cell
    shows a number."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS)
        busy = any("*" in prompt for prompt in prompts)
        if not busy and kernel_idle(page):
            if cleared and prompts and all(any(ch.isdigit() for ch in prompt) for prompt in prompts):
                return
            idle_since = idle_since or time.monotonic()
            # Between two cells the kernel is briefly idle; a run that stopped early leaves "[ ]" prompts.
            if time.monotonic() - idle_since > 1.5:
                return
        else:
            idle_since = None
        time.sleep(RUN_POLL_SECONDS)
    raise AssertionError(f"notebook still running after {timeout} s")


def close_and_shut_down(page: Any) -> None:
    """File > Close and Shut Down Notebook…, confirmed: the tab closes and its kernel stops."""
    menu(page, "File", "Close and Shut Down Notebook…")
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    page.wait_for_selector(".jp-NotebookPanel", state="detached", timeout=30_000)


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


def notebook_text(page: Any) -> str:
    """The text of the notebook shown, once no widget says "Loading widget..." (or WIDGET_LOAD_SECONDS passed):
    a run is done when its last cell is, and the widget manager may still be drawing that cell's views."""
    notebook = page.locator(f"{SHOWN} .jp-Notebook")
    deadline = time.monotonic() + WIDGET_LOAD_SECONDS
    text = notebook.inner_text()
    while "Loading widget..." in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = notebook.inner_text()
    return text


def unexpected_errors(notebook: dict[str, Any]) -> list[str]:
    """Error outputs in cells that are not tagged raises-exception."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and "raises-exception" not in tags:
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


@contextlib.contextmanager
def opened(page: Any, lab: Lab, name: str) -> Iterator[None]:
    """`name` open in the worker's JupyterLab page (conftest's lab_page) for the with-block, then closed with its
    kernel shut down; when the block failed, the kernel is stopped and the page reloaded for the next test."""
    try:
        open_from_file_browser(page, name)
        yield
        close_and_shut_down(page)
    finally:
        stop_kernels_of(lab, name)  # a no-op after close_and_shut_down
        if page.locator(".jp-NotebookPanel, .jp-Dialog").count():
            load_lab(page, lab)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab_page: Any, lab: Lab, name: str) -> None:
    """Run All in JupyterLab finishes with no unexpected error output, every widget rendered and no page errors."""
    page = lab_page
    page_errors: list[str] = []

    def record(error: Any) -> None:
        page_errors.append(str(error))

    page.on("pageerror", record)
    try:
        with opened(page, lab, name):
            run_all(page)
            wait_until_done(page, cleared=True)
            notebook = save(page, lab.root / name)
            save_screenshot(page, Path(name).stem)
            text = notebook_text(page)
            rendered_widgets = page.locator(".jp-OutputArea-output .jupyter-widgets").count()
    finally:
        page.remove_listener("pageerror", record)
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
