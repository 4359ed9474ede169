"""The static site (`make site`, tools/site.py) in real Chromium: every page loads cleanly and shows every output.

The site is built from the stored notebooks into a temporary folder, served from a loopback port, and each page
is visited once; the tests below check what those visits recorded.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI, ROOT, load_script

# One xdist group: the module's fixtures build the site and visit each page once, so its tests share one worker
# (tests/xdist_groups.py makes the group hold under pytest 9.2) while the other runs notebooks in JupyterLab.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("site")]

site_tool = load_script("tools/site.py", "site_tool")
SERIES = [lesson for lesson in site_tool.load_series() if lesson.exists]
PAGES = ["index.html", *(f"{Path(lesson.file).stem}.html" for lesson in SERIES)]

# Every output block on a page: each is one direct child of a cell's output area (tools/site.py wraps the
# markdown outputs so that they are too).
COLLECT = """() => ({
    outputs: document.querySelectorAll('.cell_output > *').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    sidebar: [...document.querySelectorAll('.bd-sidebar-primary .caption-text, .bd-sidebar-primary a.reference')]
        .map(e => e.classList.contains('caption-text') ? 'part: ' + e.textContent.trim() : e.getAttribute('href')),
    fallbacks: [...document.querySelectorAll('.widget-fallback')].map(e => e.innerText),
    images: [...document.querySelectorAll('.cell_output img')].map(i => [i.getAttribute('src'), i.naturalWidth]),
})"""


@dataclass
class Visit:
    errors: list[str] = field(default_factory=list)
    outputs: int = 0
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    sidebar: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    images: list[tuple[str, int]] = field(default_factory=list)  # (src, natural width) of each output image


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built by tools/site.py from the stored outputs into a temporary folder."""
    if not (site_tool.SITE_ENV / "bin" / "jupyter-book").exists():
        message = "the site's Jupyter Book is not installed (make site-env)"
        if IN_CI:
            pytest.fail(f"{message}; `make test` should have installed it")
        pytest.skip(message)
    into = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "site.py"), "build", "--into", str(into)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return into / "site"


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on a free loopback port."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def visits(served: str, browser: Any) -> dict[str, Visit]:
    """Each page opened once in Chromium: console errors, page errors, failed or outside requests, and its contents."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # Nothing may come from outside this machine: such a request is refused and counts as an error.
    outside: list[str] = []

    def refuse_outside(route: Any) -> None:
        url = route.request.url
        if url.startswith(served) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", refuse_outside)
    found: dict[str, Visit] = {}
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        for name in PAGES:
            visit = found[name] = Visit()
            outside.clear()
            listeners = {
                "console": lambda m, v=visit: v.errors.append(f"console: {m.text}") if m.type == "error" else None,
                "pageerror": lambda e, v=visit: v.errors.append(f"page error: {e}"),
                "requestfailed": lambda r, v=visit: v.errors.append(f"request failed: {r.url}"),
            }
            for event, listener in listeners.items():
                page.on(event, listener)
            response = page.goto(served + name, wait_until="load")
            assert response is not None and response.status == 200, f"{name}: {response and response.status}"
            page.wait_for_timeout(100)  # let late scripts report
            data = page.evaluate(COLLECT)
            for event, listener in listeners.items():
                page.remove_listener(event, listener)
            visit.errors += [f"outside request: {url}" for url in outside]
            visit.outputs = data["outputs"]
            visit.links = data["links"]
            visit.ids = set(data["ids"])
            visit.sidebar = data["sidebar"]
            visit.fallbacks = data["fallbacks"]
            visit.images = [(src, width) for src, width in data["images"]]
    finally:
        context.close()
    return found


def stored_outputs(notebook: Path) -> int:
    return sum(len(cell.get("outputs", [])) for cell in json.loads(notebook.read_text())["cells"])


def test_every_page_loads_without_errors(visits: dict[str, Visit]) -> None:
    """Every page answers 200 and loads with no console error, page error, failed or outside request."""
    errors = {name: visit.errors for name, visit in visits.items() if visit.errors}
    assert not errors, json.dumps(errors, indent=1)


def test_every_page_shows_as_many_output_blocks_as_its_notebook_stores(visits: dict[str, Visit]) -> None:
    """Each notebook page shows one output block for each output stored in the notebook, and none is lost."""
    counts = {
        lesson.file: (visits[f"{Path(lesson.file).stem}.html"].outputs, stored_outputs(lesson.path))
        for lesson in SERIES
    }
    assert all(shown == stored for shown, stored in counts.values()), counts
    assert sum(stored for _, stored in counts.values()) > 0


def test_plots_are_images_that_load(visits: dict[str, Visit]) -> None:
    """Every image output on every page loaded (has a width), and the notebooks' plots are among them."""
    images = {name: visit.images for name, visit in visits.items() if visit.images}
    assert all(width > 0 for found in images.values() for _, width in found), images
    assert {"04_await_pitfalls.html", "08_broadcast_at_scale.html"} <= set(images)


def test_internal_links_resolve_to_pages_and_headings(visits: dict[str, Visit], served: str) -> None:
    """Every link within the site leads to a page that exists, and its #anchor to an element on that page."""
    broken = []
    checked = 0
    for name, visit in visits.items():
        for href in visit.links:
            target = urllib.parse.urljoin(served + name, href)
            if not target.startswith(served):
                continue  # links out of the site (GitHub, Binder) are not followed
            path, _, anchor = target[len(served) :].partition("#")
            path = path.split("?", 1)[0] or name
            checked += 1
            if path in visits:
                if anchor and urllib.parse.unquote(anchor) not in visits[path].ids:
                    broken.append(f"{name}: {href} (no #{anchor} on {path})")
                continue
            try:
                with urllib.request.urlopen(served + path, timeout=5) as response:
                    ok = response.status == 200
            except OSError:
                ok = False
            if not ok:
                broken.append(f"{name}: {href}")
    assert not broken, "\n".join(broken)
    assert checked > len(PAGES) * 10  # the sidebars alone link every page


def test_the_sidebar_lists_every_notebook_in_series_order_under_its_part(visits: dict[str, Visit]) -> None:
    """The navigation shows the two parts, each followed by links to its notebooks' pages in series.toml's order."""
    expected: list[str] = []
    for lesson in SERIES:
        if f"part: {lesson.part}" not in expected:
            expected.append(f"part: {lesson.part}")
        expected.append(f"{Path(lesson.file).stem}.html")
    for name, visit in visits.items():
        sidebar = [name if entry == "#" else entry for entry in visit.sidebar]  # the page itself is "#"
        assert [entry for entry in sidebar if entry in expected] == expected, name


def test_widgets_show_a_static_snapshot_and_how_to_run_them_live(visits: dict[str, Visit]) -> None:
    """A widget output becomes its last saved state (the chat windows' names, the quiz's text) and a run-live line."""
    chat = visits["09_chat_widgets_and_classroom.html"].fallbacks
    quiz = visits["10_quiz_channels.html"].fallbacks
    assert chat and quiz
    for text in [*chat, *quiz]:
        assert "make lab" in text and "Binder" in text
    assert all(name in chat[0] for name in ("ada", "bob", "cy"))
    assert "Quiz: Django Channels" in quiz[0]


def test_the_landing_page_is_the_readme_map_linking_every_page(visits: dict[str, Visit]) -> None:
    """The start page holds the README's map: a link to every notebook's page."""
    links = set(visits["index.html"].links)
    assert {f"{Path(lesson.file).stem}.html" for lesson in SERIES} <= links
