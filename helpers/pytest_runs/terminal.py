"""The terminal every pytest run of a lesson sees, so its stored output is the same on every machine.

pytest cuts each line of its short test summary ("FAILED test_x.py::test_y - AssertionError: ...") to the
terminal's width, except when it believes it runs on CI: then (`_pytest.compat.running_on_ci`, any non-empty
`CI` or `BUILD_NUMBER`) it prints the whole message. The width comes from `COLUMNS`, else from the terminal
the process writes to, else 80. So one run gives different lines in a terminal, under nbval and in CI.
The lesson's runs fix both: `COLUMNS` set, the CI variables removed. A child `pytest` gets
`terminal_env(os.environ)` as its environment; a run in the kernel loads this module as a plugin
(`-p helpers.pytest_runs.terminal`), which sets the same for as long as that run lasts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping

import pytest

__all__ = ["CI_VARIABLES", "TERMINAL_COLUMNS", "lesson_terminal", "terminal_env"]

TERMINAL_COLUMNS = 100
CI_VARIABLES = ("CI", "BUILD_NUMBER")


# What a lesson's run sees of each variable it fixes; None: unset.
_FIXED: dict[str, str | None] = {**dict.fromkeys(CI_VARIABLES), "COLUMNS": str(TERMINAL_COLUMNS)}


def _apply(env: MutableMapping[str, str], values: Mapping[str, str | None]) -> None:
    """Set each name in `env` to its value in `values`, or remove it where that is None."""
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def terminal_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` with `COLUMNS` fixed and the variables that make pytest print as on CI removed."""
    env = dict(base)
    _apply(env, _FIXED)
    return env


@contextlib.contextmanager
def lesson_terminal() -> Iterator[None]:
    """Within the block this process's environment is `terminal_env(os.environ)`; restored after."""
    saved = {name: os.environ.get(name) for name in _FIXED}
    try:
        _apply(os.environ, _FIXED)
        yield
    finally:
        _apply(os.environ, saved)


_RESTORE = pytest.StashKey[contextlib.ExitStack]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As a plugin: the run sees the lesson's terminal from its start..."""
    stack = contextlib.ExitStack()
    stack.enter_context(lesson_terminal())
    config.stash[_RESTORE] = stack


def pytest_unconfigure(config: pytest.Config) -> None:
    """...and the process gets its own environment back at its end."""
    stack = config.stash.get(_RESTORE, None)
    if stack is not None:
        stack.close()
