"""Tests for bench.report: the statistics, table and verdict lines the benchmarks share."""

from __future__ import annotations

import argparse
import math

import pytest

from bench.report import format_columns, percentile, positive_int, print_verdicts, ratio


def test_percentile_interpolates_between_closest_ranks_and_is_nan_without_samples() -> None:
    """The median of an even count is the mean of the middle two; p90 interpolates; no samples give nan."""
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([0, 10], 90) == 9.0
    assert math.isnan(percentile([], 50))


def test_ratio_is_nan_when_the_reference_is_not_positive() -> None:
    """A ratio against zero or nan is nan, never an exception or infinity."""
    assert ratio(3, 2) == 1.5
    assert math.isnan(ratio(3, 0))
    assert math.isnan(ratio(3, math.nan))


def test_format_columns_aligns_numeric_columns_right_and_the_rest_left() -> None:
    """Columns are as wide as their widest cell; the numeric ones are right-aligned, lines have no trailing space."""
    table = format_columns(("name", "n"), [("a", "10"), ("long", "2")], numeric={1})
    assert table.splitlines() == ["name   n", "----  --", "a     10", "long   2"]


def test_print_verdicts_prints_a_line_each_and_reports_a_miss(capsys: pytest.CaptureFixture[str]) -> None:
    """PASS, MISS and INFO lines in order; the result is False only when a target was missed."""
    assert print_verdicts([(True, "fast"), (None, "note")]) is True
    assert print_verdicts([(False, "slow")]) is False
    assert capsys.readouterr().out.splitlines() == ["PASS  fast", "INFO  note", "MISS  slow"]


def test_positive_int_refuses_zero_with_what_to_pass() -> None:
    """The argparse type accepts 1 and refuses 0 saying the minimum."""
    assert positive_int("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1, got 0"):
        positive_int("0")
