"""Statistics shared by the benchmarks."""

from __future__ import annotations


def percentile(values: list[int], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return float(ordered[int(rank) - 1])
