"""Argument checks for the public helpers: one clear error, saying what to pass instead.

A helper called with a malformed URL, a wrong type or an impossible value should not fail three frames
deep in a library (`IndexError` from a worker thread, a raw `InvalidURI`). Each check here raises
`UsageError` (a `ValueError`) or `UsageTypeError` (also a `TypeError`) naming the argument, what it got
and what would work, and returns the value when it is fine, so call sites read `port = check_port(port)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from websockets.frames import EXTERNAL_CLOSE_CODES

__all__ = [
    "LOG_LEVELS",
    "WS_SCHEMES",
    "UsageError",
    "UsageTypeError",
    "check_choice",
    "check_close_code",
    "check_count",
    "check_headers",
    "check_messages",
    "check_names",
    "check_port",
    "check_positive",
    "check_text",
    "check_ws_url",
]

WS_SCHEMES = ("ws", "wss")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class UsageError(ValueError):
    """A helper was given a value it cannot use; the message says what to pass instead."""


class UsageTypeError(UsageError, TypeError):
    """A helper was given a value of the wrong type; the message says which type to pass."""


def _type_name(value: object) -> str:
    return type(value).__name__


def check_ws_url(url: object, argument: str = "url") -> str:
    """A ws:// or wss:// URL with a host and a port in 1-65535 (if given), returned unchanged."""
    example = "server.ws_url('/path'), e.g. 'ws://127.0.0.1:8000/path'"
    if not isinstance(url, str):
        raise UsageTypeError(f"{argument} must be a str like {example}, not {_type_name(url)}")
    parts = urlsplit(url)
    if parts.scheme not in WS_SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise UsageError(f"{argument} {url!r} has {shown}; a WebSocket URL starts with ws:// or wss://: pass {example}")
    if not parts.hostname:
        raise UsageError(f"{argument} {url!r} has no host; pass {example}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{argument} {url!r} has an impossible port; ports are 1-65535: pass {example}")
    return url


def check_positive(value: object, argument: str) -> float:
    """A finite number of seconds (or items) above zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageTypeError(f"{argument} must be a number of seconds, such as 2.0, not {_type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{argument} must be above zero and finite, got {value!r}; pass a few seconds, such as 2.0")
    return float(value)


def check_count(value: object, argument: str, *, minimum: int = 0) -> int:
    """A whole number >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageTypeError(f"{argument} must be a whole number (int), not {_type_name(value)}")
    if value < minimum:
        raise UsageError(f"{argument} must be at least {minimum}, got {value}")
    return value


def check_port(value: object, argument: str = "port") -> int:
    """A port to bind: 0 (any free port, the default) or 1-65535."""
    port = check_count(value, argument)
    if port > 65535:
        raise UsageError(f"{argument} {port} is impossible; ports are 1-65535, or leave it out (0: any free port)")
    return port


def check_text(value: object, argument: str, *, example: str) -> str:
    """A non-empty str."""
    if not isinstance(value, str):
        raise UsageTypeError(f"{argument} must be a str such as {example!r}, not {_type_name(value)}")
    if not value.strip():
        raise UsageError(f"{argument} is empty; pass a str such as {example!r}")
    return value


def check_choice(value: object, argument: str, choices: Sequence[str]) -> str:
    """One of `choices`."""
    if value not in choices:
        raise UsageError(f"{argument} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def check_messages(value: object, argument: str = "send") -> list[str | bytes]:
    """A list or tuple of messages, each str (a text frame) or bytes (a binary frame); a lone message is refused."""
    if isinstance(value, (str, bytes, bytearray)):
        raise UsageTypeError(
            f"{argument} must be a list of messages, got a single {_type_name(value)}; write {argument}=[{value!r}]"
        )
    if not isinstance(value, Sequence):
        raise UsageTypeError(f"{argument} must be a list of str or bytes messages, not {_type_name(value)}")
    for index, message in enumerate(value):
        if not isinstance(message, (str, bytes)):
            raise UsageTypeError(
                f"{argument}[{index}] is a {_type_name(message)}; send str (text) or bytes (binary), "
                "e.g. json.dumps(data) for a dict"
            )
    return list(value)


def check_names(value: object, argument: str) -> list[str]:
    """A list of non-empty str (for example subprotocol names); a lone str is refused."""
    if isinstance(value, str):
        raise UsageTypeError(f"{argument} must be a list of names, got a single str; write {argument}=[{value!r}]")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise UsageTypeError(f"{argument} must be a list of non-empty str, such as ['chat.v1'], got {value!r}")
    return list(value)


def check_headers(value: object, argument: str = "headers") -> dict[str, str]:
    """A mapping of header names to values, all str."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageTypeError(f"{argument} must be a dict of str to str, such as {{'Origin': 'http://127.0.0.1'}}")
    return dict(value)


def check_close_code(value: object, argument: str = "close_code") -> int:
    """A close code that may travel in a close frame (websockets' own rule: RFC 6455 codes, or 3000-4999)."""
    code = check_count(value, argument)
    if code not in EXTERNAL_CLOSE_CODES and not 3000 <= code <= 4999:
        raise UsageError(
            f"{argument} {code} cannot be sent in a close frame; use 1000 (normal) or an application code 3000-4999"
        )
    return code
