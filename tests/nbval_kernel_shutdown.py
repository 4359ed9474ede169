"""A pytest plugin for strict nbval: after a notebook's last item, shut its kernel down instead of killing it.

nbval stops a kernel with `shutdown_kernel(now=True)`, a kill: the kernel's atexit handlers never run, so the
temporary folders the helpers remove at exit (a Django database, a redis-server's folder) were left in /tmp
after every notebook. This plugin sends the kernel a shutdown request first, as JupyterLab does, and waits for it
to exit (jupyter_client terminates it after 5 s); nbval's own teardown then finds the kernel stopped.

tools/test_stages.py's STRICT_NBVAL loads it (`-p tests.nbval_kernel_shutdown`), so the notebooks stage and
tools/upgrade_check.py both use it.
"""

from __future__ import annotations

from typing import Any

import pytest
from nbval.plugin import IPyNbCell


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    """After a notebook's last item (the next item belongs to another notebook, or there is none), shut its kernel
    down; this runs before nbval's own teardown."""
    notebook = item.parent if isinstance(item, IPyNbCell) else None
    if notebook is None or (nextitem is not None and nextitem.parent is notebook):
        return
    kernel = getattr(notebook, "kernel", None)
    if kernel is not None and kernel.is_alive():
        kernel.kc.stop_channels()
        kernel.km.shutdown_kernel(now=False)  # jupyter_client kills it if it has not exited within 5 s
