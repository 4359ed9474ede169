"""What the benchmarks share: percentiles and ratios, a plain-text table, and PASS/MISS/INFO lines."""

from __future__ import annotations

import argparse
import math
from collections.abc import Collection, Iterable, Sequence

__all__ = ["Verdict", "format_columns", "percentile", "positive_int", "print_verdicts", "ratio"]

# (passed, text): passed is None for a line that only informs.
Verdict = tuple[bool | None, str]


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks; nan if there are no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(value: float, reference: float) -> float:
    """value / reference, or nan when the reference is not a positive number (nothing measured to compare with)."""
    return value / reference if reference > 0 else math.nan


def format_columns(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Collection[int]) -> str:
    """A table: a header line, a rule, then one line per row; the columns in `numeric` align right."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(table[0]), rule, *(line(row) for row in table[1:])])


def print_verdicts(verdicts: Iterable[Verdict]) -> bool:
    """Print a PASS, MISS or INFO line per verdict; True when no target was missed."""
    passed_all = True
    for passed, text in verdicts:
        print(f"{'INFO' if passed is None else 'PASS' if passed else 'MISS'}  {text}")
        passed_all = passed_all and passed is not False
    return passed_all


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
