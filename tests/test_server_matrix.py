"""Tests for helpers.server_matrix: the probes against real servers, the reference server, and the table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.server_matrix import lineup, probes
from helpers.server_matrix.reference import ReferenceServer
from helpers.server_matrix.table import DIFFERS, NOT_COVERED, SAME, SPEC, Matrix

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pair() -> Iterator[dict[str, Any]]:
    """uvicorn (websockets-sansio) and hypercorn serving the raw app, each in its own process."""
    handles = lineup.start_all(columns=("uvicorn", "hypercorn"))
    yield handles
    for handle in handles.values():
        handle.stop()


def run(probe: Any, handles: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(probes.on_all(probe, handles))


def test_close_before_accept_is_http_403_on_both(pair: dict[str, Any]) -> None:
    """A close before accept reaches the client as HTTP 403 under uvicorn and hypercorn."""
    assert run(probes.close_before_accept, pair) == {"uvicorn": "HTTP 403", "hypercorn": "HTTP 403"}


def test_raise_after_accept_drops_under_uvicorn_and_closes_1011_under_hypercorn(pair: dict[str, Any]) -> None:
    """An exception after accept: uvicorn drops the connection, hypercorn sends 1011."""
    assert run(probes.raise_after_accept, pair) == {"uvicorn": "dropped (1006)", "hypercorn": "closed 1011"}


def test_close_code_and_reason_and_subprotocol_pass_through(pair: dict[str, Any]) -> None:
    """A 4003 close keeps its reason, and the app's choice of the second subprotocol is what the client gets."""
    assert set(run(probes.close_with_code, pair).values()) == {"closed 4003 'room is full'"}
    assert set(run(probes.subprotocol, pair).values()) == {"chat.v2"}


def test_forwarded_for_is_trusted_by_uvicorn_only(pair: dict[str, Any]) -> None:
    """uvicorn puts the X-Forwarded-For address of a loopback client in scope['client']; hypercorn does not."""
    assert run(probes.forwarded_client, pair) == {"uvicorn": "203.0.113.7", "hypercorn": "127.0.0.1"}


def test_vanished_client_codes_are_reported_back_by_the_app(pair: dict[str, Any]) -> None:
    """The app records its disconnect code and /report returns it: 1005 under uvicorn, 1006 under hypercorn."""
    assert run(probes.vanish, pair) == {"uvicorn": "1005", "hypercorn": "1006"}


def test_flood_into_an_app_that_never_reads_keeps_memory_bounded(pair: dict[str, Any]) -> None:
    """Neither server's RSS grows by 8 MiB while a client floods an app that never reads."""
    results = run(lambda handle: probes.flood(handle, seconds=0.5), pair)
    assert {name: result.verdict for name, result in results.items()} == {
        "uvicorn": "bounded (< 8 MiB)",
        "hypercorn": "bounded (< 8 MiB)",
    }


def test_a_flood_verdict_is_relative_to_what_the_client_wrote() -> None:
    """Growth under 8 MiB is bounded; above it, holding half or more of what was written is growing with the flood."""
    mib = 1024 * 1024
    verdicts = [
        probes.FloodResult(sent, growth).verdict for sent, growth in ((99 * mib, 7 * mib), (20 * mib, 12 * mib))
    ]
    assert verdicts == ["bounded (< 8 MiB)", "grew with the flood"]
    assert probes.FloodResult(100 * mib, 9 * mib).verdict == "grew, less than the flood"


def test_reference_server_closes_1011_on_an_exception_and_1001_at_shutdown() -> None:
    """The websockets reference server sends 1011 for a handler exception and 1001 when it shuts down."""
    with ReferenceServer() as reference:
        handles = {"websockets": reference}
        assert run(probes.raise_after_accept, handles) == {"websockets": "closed 1011"}
        assert run(probes.close_before_accept, handles) == {"websockets": "HTTP 403 'not allowed'"}
        shutdown = run(lambda handle: probes.shutdown(handle, handle.signal_stop), handles)
    assert shutdown == {"websockets": "closed 1001 at once"}


def test_library_defaults_are_read_from_the_libraries() -> None:
    """Limits and keepalive defaults come from the libraries: 16 MiB uvicorn, 1 MiB daphne, no hypercorn pings."""
    limits = lineup.message_limits()
    assert limits["uvicorn"] == limits["hypercorn"] == 16 * 1024 * 1024
    assert limits["daphne"] == limits["websockets"] == 1024 * 1024
    pings = lineup.keepalive_defaults()
    assert pings["hypercorn"] == "no pings"
    assert pings["daphne"] == "every 20 s, timeout 30 s"


def test_buckets_have_stable_edges() -> None:
    """Durations and sizes fall in fixed buckets, so printed results do not change from run to run."""
    assert [probes.bucket_seconds(s) for s in (0.2, 1.0, 5.05, 8)] == ["< 1 s", "1-3 s", "3-7 s", "over 7 s"]
    assert [probes.bucket_bytes(n * 1024 * 1024) for n in (1, 8, 600)] == ["< 8 MiB", "8-64 MiB", "over 64 MiB"]


def test_matrix_renders_one_row_per_behaviour_with_a_verdict_and_the_spec() -> None:
    """A column per server, the reference marked, whether the ASGI servers agreed, and what the spec says."""
    matrix = Matrix(columns=("a", "b", "ref"), reference="ref")
    matrix.add("raises after accept", {"a": "1011", "b": "1011", "ref": "1011"})
    matrix.add("message over the default limit", {"a": "1 MiB", "b": "16 MiB", "ref": "a|b"})
    matrix.add("message over the default limit", {"a": "1 MiB", "b": "16 MiB", "ref": "a|b"})  # replaces the row
    assert matrix.verdicts() == {"raises after accept": SAME, "message over the default limit": DIFFERS}
    lines = matrix.markdown().splitlines()
    assert lines[0] == "| Behaviour | a | b | ref (reference) | ASGI servers | ASGI spec 2.5 |"
    assert lines[2] == f"| raises after accept | 1011 | 1011 | 1011 | {SAME} | {SPEC['raises after accept']} |"
    assert lines[3] == f"| message over the default limit | 1 MiB | 16 MiB | a\\|b | {DIFFERS} | {NOT_COVERED} |"
    assert len(lines) == 4


def test_matrix_refuses_a_row_the_spec_table_does_not_know() -> None:
    """Every row needs an entry in SPEC, so no row can leave open what the ASGI spec decides."""
    with pytest.raises(ValueError, match="no entry in SPEC"):
        Matrix(columns=("a",), reference="a").add("something new", {"a": "1"})


def test_matrix_refuses_a_row_with_a_missing_server() -> None:
    """A row must have a cell for every column: a server left out is a mistake, not a blank."""
    with pytest.raises(ValueError, match="has cells for"):
        Matrix(columns=("a", "b"), reference="b").add("never accepts", {"a": "1"})


def test_differences_name_each_changed_cell_and_each_missing_row() -> None:
    """differences() lists a cell that changed, a row only expected and a row only measured; none when all agree."""
    matrix = Matrix(columns=("a", "ref"), reference="ref")
    matrix.add("raises after accept", {"a": "closed 1011", "ref": "closed 1011"})
    matrix.add("never accepts", {"a": "x", "ref": "y"})
    assert matrix.differences(matrix.cells()) == []
    expected = {"raises after accept": {"a": "dropped (1006)", "ref": "closed 1011"}, "permessage-deflate": {}}
    assert matrix.differences(expected) == [
        "row 'permessage-deflate' expected, not measured",
        "row 'never accepts' measured, not expected",
        "raises after accept / a: expected 'dropped (1006)', saw 'closed 1011'",
    ]
