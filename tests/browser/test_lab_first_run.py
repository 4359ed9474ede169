"""`make lab` in real Chromium: the printed address opens the first notebook with no "Jupyter news?" toast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_lab import running_lab

NEWS_QUESTION = "official Jupyter news"
NOTIFICATION = Path("@jupyterlab") / "apputils-extension" / "notification.jupyterlab-settings"


def open_and_look_for_the_news_toast(page: Any, url: str) -> bool:
    """Open url, wait for the notebook and the moment JupyterLab asks about news; is the question on screen?"""
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
    try:
        page.get_by_text(NEWS_QUESTION).first.wait_for(timeout=5_000)
    except Exception:  # Playwright's TimeoutError: the question never appeared
        return False
    return True


@pytest.mark.timeout(180)
def test_jupyterlab_opens_from_the_printed_url_without_the_news_toast(tmp_path: Path, page: Any) -> None:
    """The printed URL opens the notebook (no login page) and no news toast shows; with fetchNews unset it would."""
    with running_lab(tmp_path / "ours", None) as (_, first_line):
        url = first_line.split("JupyterLab on ", 1)[1].split()[0]
        assert not open_and_look_for_the_news_toast(page, url)
        assert "/login" not in page.url
    # The control: a settings folder that already says "none" (JupyterLab's default) keeps it, and the toast shows.
    settings = tmp_path / "default" / "jupyterlab_settings_dir" / NOTIFICATION
    settings.parent.mkdir(parents=True)
    settings.write_text('{"fetchNews": "none"}')
    with running_lab(tmp_path / "default", None) as (_, first_line):
        url = first_line.split("JupyterLab on ", 1)[1].split()[0]
        assert open_and_look_for_the_news_toast(page, url)
