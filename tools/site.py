"""Build the static site of the series from the stored outputs, executing nothing (`make site` runs this).

    python tools/site.py build [--into DIR]   # stage, then Jupyter Book writes the HTML to build/site/
    python tools/site.py stage [--into DIR]   # only write the book's sources to build/site-src/

The pages are the notebooks as committed, in series order and in their two parts (notebooks/series.toml); the
landing page is the README's map. Widgets cannot run on a static page: each widget output becomes a snapshot of
the widget's last saved state (its text, its log, its buttons drawn disabled) and a line saying how to run it live.

Jupyter Book 1 (Sphinx) builds it, from its own venv (build/site-env/, from requirements-site.txt and
constraints-site.txt): Jupyter Book 2 (mystmd) downloads its theme from the internet at build time, which
this project's machines cannot reach (see README, "Read it as a website").
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from notebooks import MAP_END, MAP_START, README, Lesson, load_series, map_markdown  # noqa: E402

BUILD = ROOT / "build"
SITE_ENV = BUILD / "site-env"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RUN_LIVE = (
    "This is a live widget: a static page shows a snapshot of its last state. To use it, run the notebook: "
    "<code>make lab</code> on your machine, or Binder or Codespaces (see the start page)."
)
TITLE = "Live WebSocket lab"
BADGE = re.compile(r"\[!\[([^\]]*)\]\([^)]*\)\]\(([^)]*)\)")


# ](04_await_pitfalls.ipynb#Experiment-1:-self.accept()-without-await): an anchor may hold balanced parentheses.
LINK_TO_HEADING = re.compile(r"(\]\([0-9A-Za-z_]+\.ipynb)#((?:[^()\s]|\([^()\s]*\))+)\)")


def _slug(anchor: str) -> str:
    """JupyterLab's heading anchor ("Experiment-1:-self.accept()") as MyST's for it ("experiment-1-selfaccept")."""
    return re.sub(r"[^\w\-]", "", anchor.lower().replace(" ", "-"))


def fix_links(markdown: str) -> str:
    """Links between notebooks keep working on the site: `x.ipynb#The-series` -> `x.ipynb#the-series`."""
    return LINK_TO_HEADING.sub(lambda m: f"{m.group(1)}#{_slug(m.group(2))})", markdown)


def _text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def widget_snapshot(model_id: str, state: dict[str, Any]) -> str:
    """HTML drawing a widget and its children from their saved state: text and logs as they were, inputs disabled."""
    model = state.get(model_id)
    if model is None:
        return ""
    name: str = model.get("model_name", "")
    values: dict[str, Any] = model.get("state", {})
    description = html.escape(str(values.get("description", "")))
    if "children" in values:
        children = "".join(
            widget_snapshot(str(child).removeprefix("IPY_MODEL_"), state) for child in values["children"]
        )
        direction = "row" if name == "HBoxModel" else "column"
        return f'<div style="display:flex;flex-direction:{direction};gap:0.5em;flex-wrap:wrap">{children}</div>'
    if name in {"HTMLModel", "HTMLMathModel"}:
        return f"<div>{values.get('value', '')}</div>"  # the project's own widgets escape what they put there
    if name in {"LabelModel"}:
        return f"<span>{html.escape(str(values.get('value', '')))}</span>"
    if name in {"TextModel", "TextareaModel", "IntTextModel", "FloatTextModel"}:
        value = html.escape(str(values.get("value", "")))
        placeholder = html.escape(_text_of(str(values.get("placeholder", ""))).replace("\u200b", ""))
        label = f"<label>{description} </label>" if description else ""
        return f'<span>{label}<input type="text" disabled value="{value}" placeholder="{placeholder}"></span>'
    if name in {"ButtonModel", "ToggleButtonModel"}:
        return f"<button disabled>{description}</button>"
    if name in {"DropdownModel", "RadioButtonsModel", "SelectModel"}:
        options = values.get("_options_labels", [])
        index = values.get("index")
        chosen = options[index] if isinstance(index, int) and 0 <= index < len(options) else ""
        return f"<span>{description} <b>{html.escape(str(chosen))}</b></span>"
    return ""


def static_widget_output(output: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A widget output as one static HTML output: the snapshot, the widget's text form, how to run it live."""
    data = output["data"]
    text = "".join(data.get("text/plain", ""))
    snapshot = widget_snapshot(data[WIDGET_VIEW]["model_id"], state)
    parts = [
        '<div class="widget-fallback">',
        f'<p class="widget-fallback-note"><em>{RUN_LIVE}</em></p>',
        snapshot,
        # The text form, unless the snapshot already shows it (the quiz draws its own text form).
        f"<pre>{html.escape(text)}</pre>"
        if text and " ".join(text.split()) not in " ".join(_text_of(snapshot).split())
        else "",
        "</div>",
    ]
    static = copy.deepcopy(output)
    static["data"] = {"text/html": "".join(parts), "text/plain": text}
    return static


def static_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """The notebook as the site shows it: widget outputs made static, links between notebooks fixed."""
    nb = copy.deepcopy(nb)
    state = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            cell["source"] = fix_links(source)
        for index, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                cell["outputs"][index] = static_widget_output(output, state)
            elif "text/markdown" in data:
                # One block per output, like every other kind (the site test counts them): a container div.
                data["text/markdown"] = (
                    f":::{{container}} output text_markdown\n{''.join(data['text/markdown'])}\n:::\n"
                )
    return nb


def landing_page(readme: str, series: list[Lesson]) -> str:
    """The start page: the README's opening and its map of the notebooks, linking to the pages."""
    opening = readme.split("\n## ", 1)[0]
    notebooks_section = readme.split("\n## The notebooks", 1)[1].split("\n## ", 1)[0]
    before_map = notebooks_section.split(MAP_START, 1)[0]
    after_map = notebooks_section.split(MAP_END, 1)[1]
    after_map = after_map.replace("(docs/screenshots/", "(screenshots/")
    sections = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in readme.split("\n## ")[1:]}
    ways = [f"## {heading}\n{body.strip()}\n" for heading, body in sections.items() if heading.startswith("Run it")]
    # A badge is an image from another site: the static site loads nothing from outside, so keep its link as text.
    ways = [BADGE.sub(r"[\1](\2)", section) for section in ways]
    return "\n".join(
        [
            opening.strip(),
            "",
            "## The notebooks",
            before_map.strip(),
            "",
            map_markdown(series),
            after_map.rstrip(),
            "",
            *ways,
        ]
    )


def toc(series: list[Lesson]) -> str:
    """Jupyter Book's _toc.yml: the landing page, then one caption per part with its notebooks in order."""
    lines = ["format: jb-book", "root: index", "parts:"]
    part = None
    for lesson in series:
        if not lesson.exists:
            continue
        if lesson.part != part:
            part = lesson.part
            lines += [f"  - caption: {json.dumps(part)}", "    chapters:"]
        lines.append(f"      - file: {Path(lesson.file).stem}")
    return "\n".join(lines) + "\n"


CONFIG = f"""\
# Written by tools/site.py: build from the stored outputs, never execute; nothing loaded from the internet.
title: {json.dumps(TITLE)}
author: The live WebSocket lab
only_build_toc_files: true
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [colon_fence, deflist, html_image]
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
  use_multitoc_numbering: false
  home_page_in_navbar: true
  extra_footer: "Stored outputs, as CI checked them. Run the notebooks live to change them."
launch_buttons:
  notebook_interface: jupyterlab
  binderhub_url: ""
  thebe: false
sphinx:
  config:
    # Jupyter Book's defaults less sphinx_thebe (it declares THEBE_JS_URL twice: a page error on every page)
    # and intersphinx (nothing to fetch).
    extensions: [sphinx_togglebutton, sphinx_copybutton, myst_nb, jupyter_book, sphinx_comments, sphinx_external_toc,
      sphinx_design, sphinx_book_theme]
    myst_heading_anchors: 3
    nb_merge_streams: false
    nb_render_markdown_format: myst
    html_show_copyright: false
    html_last_updated_fmt: ""
    suppress_warnings: ["mystnb.unknown_mime_type"]
    html_context:
      default_mode: light  # left empty, the theme reports "Got invalid theme mode" on the console
    html_theme_options:
      navigation_with_keys: false
      use_download_button: false
      use_fullscreen_button: false
"""


def stage(destination: Path) -> list[Lesson]:
    """Write the book's sources to destination (cleared first); return the lessons that became pages."""
    series = load_series()
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    pages = [lesson for lesson in series if lesson.exists]
    for lesson in pages:
        nb = json.loads(lesson.path.read_text())
        (destination / lesson.file).write_text(json.dumps(static_notebook(nb), indent=1) + "\n")
    (destination / "index.md").write_text(landing_page(README.read_text(), series))
    shutil.copytree(ROOT / "docs" / "screenshots", destination / "screenshots")
    (destination / "_toc.yml").write_text(toc(series))
    (destination / "_config.yml").write_text(CONFIG)
    return pages


def build(into: Path = BUILD) -> int:
    """Stage into `into`/site-src, run Jupyter Book (warnings are errors), leave the HTML in `into`/site."""
    began = time.monotonic()
    source, site, out = into / "site-src", into / "site", into / "site-out"
    pages = stage(source)
    jupyter_book = SITE_ENV / "bin" / "jupyter-book"
    if not jupyter_book.exists():
        print(f"{jupyter_book} is missing: `make site` installs it", file=sys.stderr)
        return 1
    shutil.rmtree(out, ignore_errors=True)
    # Jupyter Book only reads the notebooks: keep the lab's Jupyter folders out of it.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "IPYTHON"))}
    command = [str(jupyter_book), "build", str(source), "--path-output", str(out), "--warningiserror", "--quiet"]
    if subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        return 1
    shutil.rmtree(site, ignore_errors=True)
    (out / "_build" / "html").rename(site)
    shutil.rmtree(out)
    shown = site.relative_to(ROOT) if site.is_relative_to(ROOT) else site
    print(f"site: {len(pages) + 1} pages in {shown}/ ({time.monotonic() - began:.1f} s); open {shown}/index.html")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["stage", "build"])
    parser.add_argument("--into", type=Path, default=BUILD, help="folder for site-src/ and site/ (default: build/)")
    args = parser.parse_args(argv)
    if args.command == "stage":
        stage(args.into / "site-src")
        return 0
    return build(args.into)


if __name__ == "__main__":
    sys.exit(main())
