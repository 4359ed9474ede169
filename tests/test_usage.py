"""Tests for helpers.usage: each check returns a good value unchanged and refuses a bad one with what to pass."""

from __future__ import annotations

import math

import pytest

from helpers import usage
from helpers.usage import UsageError, UsageTypeError

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8000/chat", "wss://localhost/x", "ws://[::1]:1/", "ws://h:65535"])
def test_a_websocket_url_passes_unchanged(url: str) -> None:
    """ws:// and wss:// URLs with a host and a possible port are returned as they are."""
    assert usage.check_ws_url(url) == url


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        (8000, UsageTypeError, "must be a str like server.ws_url"),
        ("http://127.0.0.1:8000/chat", UsageError, "has http://; a WebSocket URL starts with ws:// or wss://"),
        ("127.0.0.1:8000/chat", UsageError, "starts with ws:// or wss://"),
        ("ws:///chat", UsageError, "has no host"),
        ("ws://127.0.0.1:99999/x", UsageError, "impossible port; ports are 1-65535"),
        ("ws://127.0.0.1:0/x", UsageError, "impossible port"),
        ("ws://127.0.0.1:port/x", UsageError, "impossible port"),
    ],
)
def test_a_bad_url_is_refused_with_what_to_pass(url: object, error: type[Exception], message: str) -> None:
    """Wrong type, wrong scheme, no host or an impossible port each raise one error that shows a good URL."""
    with pytest.raises(error, match=message) as caught:
        usage.check_ws_url(url)
    assert "ws://127.0.0.1:8000/path" in str(caught.value)


def test_usage_errors_are_value_errors_and_type_errors_are_both() -> None:
    """UsageError is a ValueError; UsageTypeError is a UsageError and a TypeError, so either except clause works."""
    assert issubclass(UsageError, ValueError)
    assert issubclass(UsageTypeError, UsageError) and issubclass(UsageTypeError, TypeError)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, UsageError), (-1, UsageError), (math.inf, UsageError), (math.nan, UsageError), ("2", UsageTypeError),
     (True, UsageTypeError)],
)  # fmt: skip
def test_a_timeout_must_be_a_positive_finite_number(value: object, error: type[Exception]) -> None:
    """Zero, negative, infinite, NaN, text and booleans are refused as seconds; 0.5 and 2 pass as floats."""
    with pytest.raises(error, match="timeout"):
        usage.check_positive(value, "timeout")
    assert usage.check_positive(0.5, "timeout") == 0.5 and usage.check_positive(2, "timeout") == 2.0


def test_counts_and_ports_are_whole_numbers_in_range() -> None:
    """A count below its minimum, a float, a port above 65535 or a negative port are refused; 0 is any free port."""
    assert usage.check_count(3, "receive") == 3
    assert usage.check_port(0) == 0 and usage.check_port(65535) == 65535
    with pytest.raises(UsageError, match="at least 0, got -1"):
        usage.check_count(-1, "receive")
    with pytest.raises(UsageTypeError, match="whole number"):
        usage.check_count(1.5, "receive")
    with pytest.raises(UsageError, match="70000 is impossible; ports are 1-65535, or leave it out"):
        usage.check_port(70000)


def test_messages_must_be_a_list_of_text_or_bytes() -> None:
    """A lone string, a dict in the list, or a number are refused with the fix; a list of str and bytes passes."""
    assert usage.check_messages(("a", b"b")) == ["a", b"b"]
    with pytest.raises(UsageTypeError, match=r"got a single str; write send=\['hello'\]"):
        usage.check_messages("hello")
    with pytest.raises(UsageTypeError, match=r"send\[1\] is a dict; .* json.dumps\(data\)"):
        usage.check_messages(["ok", {"a": 1}])
    with pytest.raises(UsageTypeError, match="list of str or bytes"):
        usage.check_messages(3)


def test_names_headers_choices_and_text() -> None:
    """Subprotocols as one str, headers with non-str values, an unknown choice and empty text are each refused."""
    assert usage.check_names(["chat.v1"], "subprotocols") == ["chat.v1"]
    with pytest.raises(UsageTypeError, match=r"write subprotocols=\['chat.v1'\]"):
        usage.check_names("chat.v1", "subprotocols")
    with pytest.raises(UsageTypeError, match="dict of str to str"):
        usage.check_headers({"Origin": 1})
    with pytest.raises(UsageError, match="log_level must be one of 'critical'"):
        usage.check_choice("loud", "log_level", usage.LOG_LEVELS)
    with pytest.raises(UsageError, match="name is empty"):
        usage.check_text("  ", "name", example="echo")


@pytest.mark.parametrize("code", [1000, 1001, 1011, 3000, 4999])
def test_close_codes_a_frame_may_carry_pass(code: int) -> None:
    """Codes websockets itself allows in a close frame are accepted."""
    assert usage.check_close_code(code) == code


@pytest.mark.parametrize("code", [0, 999, 1005, 1006, 1015, 2999, 5000])
def test_close_codes_no_frame_may_carry_are_refused(code: int) -> None:
    """Reserved codes (1005, 1006, 1015) and codes outside the ranges are refused with the usual choices."""
    with pytest.raises(UsageError, match=r"use 1000 .* 3000-4999"):
        usage.check_close_code(code)
