"""The audit benchmark's machinery at a tiny size: counts and a verified bundle, never timings."""

from __future__ import annotations

from load.bench_audit import report, run_benchmark


def test_benchmark_runs_every_stage_and_reports_against_the_baseline(tmp_path):
    result = run_benchmark(
        entries=400, threads=8, producers=2, window=16, baseline_entries=20, work_dir=tmp_path
    )
    assert result.baseline_fsync.count == result.baseline_fdatasync.count == 20
    assert result.blocking.count == 400 and result.pipelined.count == 400
    assert result.export.count == result.verify.count == 400  # the bundle verified
    assert 1 <= result.pipelined_batches <= 400
    assert result.checkpoints >= 1
    text = report(result, 8, 2, 16)
    assert "baseline: write+fsync per entry" in text and "x baseline" in text
    assert "verify_bundle" in text
    assert list(tmp_path.iterdir()) == []  # cleaned up
