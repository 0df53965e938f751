"""Statistics shared by the benchmarks."""

from __future__ import annotations


def percentile(values: list[int], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return float(ordered[int(rank) - 1])


def latency_header(first: str, width: int) -> str:
    """Column titles for :func:`latency_row` lines (``first`` names the first column)."""
    return f"{first:<{width}}{'n':>8}{'p50 µs':>11}{'p99 µs':>11}{'max µs':>11}"


def latency_row(name: str, values_ns: list[int], width: int) -> str:
    """One line of a latency table: count, p50, p99 and max of nanosecond samples, in µs."""
    return (
        f"{name:<{width}}{len(values_ns):>8}{percentile(values_ns, 50) / 1_000:>11.1f}"
        f"{percentile(values_ns, 99) / 1_000:>11.1f}{max(values_ns) / 1_000:>11.1f}"
    )
