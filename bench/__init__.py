"""Benchmarks that print tables (run from the repository root: `python -m bench.servers`, `python -m bench.fanout`).

Reports, not tests: a target missed prints MISS and, with `--check`, exits 1; `make test` never runs them.
The statistics, table layout and verdict lines they share live in `bench.report`.
"""
