"""Tests for tools/site.py: what the static site is built from (its browser test is tests/browser/test_site.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import ROOT, load_script

site = load_script("tools/site.py", "site_tool")


def widget_state() -> dict[str, Any]:
    return {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_title", "IPY_MODEL_url", "IPY_MODEL_go"]}},
        "title": {"model_name": "HTMLModel", "state": {"value": "<b>ada</b> connected"}},
        "url": {"model_name": "TextModel", "state": {"description": "URL", "value": "ws://x/<chat>"}},
        "go": {"model_name": "ButtonModel", "state": {"description": "Send"}},
    }


def test_links_to_headings_in_other_notebooks_use_mysts_anchors() -> None:
    """A JupyterLab heading anchor becomes MyST's slug, parentheses and colons included; other links stay."""
    text = "[a](00_start_here.ipynb#The-series) [b](04_await_pitfalls.ipynb#Experiment-1:-self.accept()-without-await)."
    assert site.fix_links(text) == (
        "[a](00_start_here.ipynb#the-series) [b](04_await_pitfalls.ipynb#experiment-1-selfaccept-without-await)."
    )
    assert site.fix_links("[c](01_handshake_and_accept.ipynb) [d](https://example.org/#X)") == (
        "[c](01_handshake_and_accept.ipynb) [d](https://example.org/#X)"
    )


def test_a_widget_snapshot_draws_its_saved_state_with_inputs_disabled() -> None:
    """The snapshot keeps the HTML the widget showed, shows text values escaped and draws controls disabled."""
    snapshot = site.widget_snapshot("box", widget_state())
    assert "<b>ada</b> connected" in snapshot
    assert 'value="ws://x/&lt;chat&gt;"' in snapshot and "disabled" in snapshot
    assert "<button disabled>Send</button>" in snapshot
    assert site.widget_snapshot("missing", widget_state()) == ""


def test_the_static_notebook_replaces_widgets_and_wraps_markdown_outputs() -> None:
    """Widget outputs become one HTML output with the run-live line; markdown outputs get one container each."""
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    nb = {
        "metadata": {"widgets": {site.WIDGET_STATE: {"state": widget_state()}}},
        "cells": [
            {"cell_type": "markdown", "source": "see [x](00_start_here.ipynb#The-series)", "metadata": {}},
            {
                "cell_type": "code",
                "source": "w",
                "metadata": {},
                "outputs": [
                    {"output_type": "execute_result", "data": {site.WIDGET_VIEW: view, "text/plain": "Chat(ada)"}},
                    {"output_type": "display_data", "data": {"text/markdown": "| a |\n|---|\n| 1 |"}},
                ],
            },
        ],
    }
    static = site.static_notebook(nb)
    assert "widgets" not in static["metadata"] and "widgets" in nb["metadata"]  # the original is untouched
    assert static["cells"][0]["source"] == "see [x](00_start_here.ipynb#the-series)"
    widget, markdown = static["cells"][1]["outputs"]
    assert set(widget["data"]) == {"text/html", "text/plain"}
    assert site.RUN_LIVE in widget["data"]["text/html"] and "Chat(ada)" in widget["data"]["text/html"]
    assert markdown["data"]["text/markdown"].startswith(":::{container} output text_markdown\n| a |")


def test_the_toc_lists_existing_notebooks_in_series_order_under_their_parts() -> None:
    """_toc.yml has the landing page as root and one caption per part, each with its notebooks in order."""
    series = site.load_series()
    toc = site.toc(series)
    assert toc.startswith("format: jb-book\nroot: index\nparts:\n")
    files = [line.split("file: ")[1] for line in toc.splitlines() if "file: " in line]
    assert files == [Path(lesson.file).stem for lesson in series if lesson.exists]
    captions = [json.loads(line.split("caption: ")[1]) for line in toc.splitlines() if "caption: " in line]
    assert captions == list(dict.fromkeys(lesson.part for lesson in series if lesson.exists))


def test_the_landing_page_is_the_readme_opening_and_its_map() -> None:
    """index.md starts with the README's title and holds the generated map with links to the notebooks."""
    series = site.load_series()
    page = site.landing_page((ROOT / "README.md").read_text(), series)
    assert page.startswith("# Live WebSocket lab")
    assert site.map_markdown(series) in page
    assert "(screenshots/" in page and "docs/screenshots" not in page
    assert "## Run it anywhere, or read it" in page
    assert ".svg)" not in page and "[Binder](https://mybinder.org/" in page  # the badge's link, not its outside image


def test_staging_writes_every_existing_notebook_and_the_book_config(tmp_path: Path) -> None:
    """stage() writes each existing notebook (no widget state left), index.md, _toc.yml and an execute-off config."""
    pages = site.stage(tmp_path / "src")
    assert pages and all((tmp_path / "src" / lesson.file).exists() for lesson in pages)
    for lesson in pages:
        assert "widgets" not in json.loads((tmp_path / "src" / lesson.file).read_text())["metadata"]
    config = (tmp_path / "src" / "_config.yml").read_text()
    assert 'execute_notebooks: "off"' in config
    assert {"index.md", "_toc.yml", "screenshots"} <= {p.name for p in (tmp_path / "src").iterdir()}


def test_a_widgets_text_form_is_shown_once() -> None:
    """When the snapshot already shows the widget's text form (the quiz does), it is not repeated below it."""
    state = {"quiz": {"model_name": "HTMLModel", "state": {"value": "<pre>Quiz: 2 questions.\nNot started.</pre>"}}}
    view = {"model_id": "quiz", "version_major": 2, "version_minor": 0}
    output = {
        "output_type": "execute_result",
        "data": {site.WIDGET_VIEW: view, "text/plain": "Quiz: 2 questions.\nNot started."},
    }
    assert site.static_widget_output(output, state)["data"]["text/html"].count("<pre>") == 1
    state["quiz"]["state"]["value"] = "<b>something else</b>"
    assert site.static_widget_output(output, state)["data"]["text/html"].count("<pre>") == 1
    assert "<b>something else</b>" in site.static_widget_output(output, state)["data"]["text/html"]
