"""Benchmarks that print ratios (ours / floor / naive peer); never run as tests.

`python -m bench.backfill --help` for the order-intake backfill benchmark.
"""
