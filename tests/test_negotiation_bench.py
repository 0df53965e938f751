"""The negotiation benchmark's machinery at a tiny size: counts and report shape, never timings."""

from __future__ import annotations

import pytest

from load.bench_negotiation import report, run_benchmark
from load.stats import percentile


def test_benchmark_trades_every_rfq_on_both_engines_and_reports_baselines():
    result = run_benchmark(iterations=6, desks=2, warmup=2)
    for times in (result.signed, result.unsigned):
        assert times.trades == 6
        assert (len(times.rfq), len(times.quote), len(times.accept), len(times.path)) == (
            6,
            12,
            6,
            6,
        )
        assert all(p >= a for p, a in zip(times.path, times.accept, strict=True))
    assert len(result.sign_verify) == len(result.hash_only) == 6
    text = report(result)
    for line in ("path rfq->quotes->trade", "ed25519 sign+verify", "path, signing off", "target"):
        assert line in text


def test_benchmark_refuses_nonsense_sizes():
    with pytest.raises(ValueError):
        run_benchmark(iterations=0)


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([7], 50) == 7
