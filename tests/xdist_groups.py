"""Make `--dist loadgroup` keep each `xdist_group` on one worker again (pytest-xdist#1386, open upstream).

pytest-xdist 3.8 tells its scheduler about a group by appending `@<group>` to each marked item's node id, and it
does so by assigning `item._nodeid`. pytest 9.2 builds `nodeid` from a structured `item._id` instead, so the
assignment has no effect: the suffix never reaches the scheduler, and grouped tests are spread over the workers
as if unmarked. Nothing fails: the browser stage's grouped notebooks simply ran side by side, and a grouped module
would set up its module fixtures once per worker. This hook, run after xdist's, sets the suffix where pytest 9.2
reads it, and does nothing once xdist sets it itself (an id that already ends with the suffix) or without
`--dist loadgroup`.
tests/test_xdist_groups.py checks it.

tests/browser/conftest.py switches it on for the browser stage, where it keeps the static site's tests
(xdist_group "site") on one worker, so the site is built and visited once while the other worker runs notebooks.
The notebooks in JupyterLab are not grouped: holding the load-heavy ones (08, 13, 15, 16) on one worker made every
light notebook run beside a heavy one, and two of three clean-clone runs then failed load-sensitive checks of light
notebooks (lesson 15's heartbeat timing, since measured on the server; lesson 05's median delivery of
async_to_sync); spread over the workers as in every green run, they pass.
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import coerce_node_id  # the structured id pytest 9.2 builds nodeid from


def group_suffix(item: pytest.Item) -> str:
    """'@name' (names joined by '_', sorted) for an item's xdist_group marks, as xdist writes it; '' for none."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "@" + "_".join(sorted(names)) if names else ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("loadgroup", default=False):  # xdist sets it on its workers under --dist loadgroup
        return
    for item in items:
        suffix = group_suffix(item)
        if suffix and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)
