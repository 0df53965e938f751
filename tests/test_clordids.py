"""The per-trading-day ClOrdID filters: never a false "no", bounded days, cold days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from otc.clordids import ClOrdIdDays, Seen

DAY = date(2026, 3, 2)


def test_every_added_cl_ord_id_is_a_maybe_and_few_others_are() -> None:
    days = ClOrdIdDays(bits=1 << 16, hashes=4)
    for i in range(2000):
        days.add("A", f"C{i}", DAY)
    assert all(days.check("A", f"C{i}", DAY) is Seen.MAYBE for i in range(2000))
    false = sum(days.check("A", f"N{i}", DAY) is Seen.MAYBE for i in range(10_000))
    assert false < 300  # ~0.2 % expected at 2,000 in 64 Kibit
    assert days.check("B", "C1", DAY) is Seen.NO or days.check("B", "C2", DAY) is Seen.NO


def test_other_days_are_separate_and_old_days_are_dropped_then_cold() -> None:
    days = ClOrdIdDays(bits=1 << 10, hashes=3, keep_days=2)
    days.add("A", "C1", DAY)
    assert days.check("A", "C1", DAY + timedelta(days=1)) is Seen.NO
    days.add("A", "C2", DAY + timedelta(days=3))  # DAY is now more than two days back
    assert days.days == 1
    assert days.check("A", "C1", DAY) is Seen.MAYBE  # cold: only the record can tell
    assert days.check("A", "X", DAY) is Seen.MAYBE


def test_days_before_what_start_up_loaded_are_cold() -> None:
    days = ClOrdIdDays(bits=1 << 10)
    days.warm_from(DAY)
    assert days.check("A", "C1", DAY) is Seen.NO
    assert days.check("A", "C1", DAY - timedelta(days=1)) is Seen.MAYBE


def test_filter_size_is_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        ClOrdIdDays(bits=1000)
