"""ClOrdIDs already used, per client and trading day, in bounded memory.

FIX asks a client's ClOrdIDs to be unique within a trading day. Keeping every one in a set would
grow with the day's volume; instead each trading day has a Bloom filter of fixed size. A filter
never misses a ClOrdID it was given, so "not in the filter" proves a ClOrdID is new without
asking anyone; "maybe" (a real duplicate or, rarely, a false positive) is settled by the record
of used ClOrdIDs the edge keeps (the database), which the core asks for through a lookup.

A day whose filter does not hold every ClOrdID used on it (a day older than the days loaded at
start-up, or one whose filter was dropped) is *cold*: every ClOrdID of that day is a "maybe".
Memory is at most ``keep_days + 1`` filters of ``bits / 8`` bytes each.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum

DEFAULT_BITS = 1 << 24  # 2 MiB per day: ~0.1 % false positives at a million ClOrdIDs a day
DEFAULT_HASHES = 6


class Seen(Enum):
    NO = "no"  # certainly never used that day
    MAYBE = "maybe"  # ask the record of used ClOrdIDs


class _Filter:
    __slots__ = ("bits", "count", "hashes", "mask")

    def __init__(self, size: int, hashes: int) -> None:
        self.bits = bytearray(size // 8)
        self.mask = size - 1
        self.hashes = hashes
        self.count = 0

    def add(self, key: tuple[str, str]) -> None:
        # double hashing from one 64-bit hash; str hashes are salted per process, which is fine:
        # the filter lives and is rebuilt in one process
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        h1, h2, mask, bits = h & 0xFFFFFFFF, (h >> 32) | 1, self.mask, self.bits
        for _ in range(self.hashes):
            p = h1 & mask
            bits[p >> 3] |= 1 << (p & 7)
            h1 += h2
        self.count += 1

    def __contains__(self, key: tuple[str, str]) -> bool:
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        h1, h2, mask, bits = h & 0xFFFFFFFF, (h >> 32) | 1, self.mask, self.bits
        for _ in range(self.hashes):
            p = h1 & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
            h1 += h2
        return True


class ClOrdIdDays:
    """The ClOrdIDs used on the last few trading days. ``keep_days``: how many days before the
    newest one seen keep their filter (clients on other schedules may be a day behind)."""

    def __init__(self, bits: int = DEFAULT_BITS, hashes: int = DEFAULT_HASHES, keep_days: int = 2):
        if bits & (bits - 1) or bits < 8:
            raise ValueError("bits must be a power of two of at least 8")
        self._bits = bits
        self._hashes = hashes
        self._keep = timedelta(days=keep_days)
        self._days: dict[date, _Filter] = {}
        self._warm_from: date | None = None  # days before it are cold: their record is elsewhere

    def warm_from(self, day: date) -> None:
        """Days from ``day`` on hold every ClOrdID used on them (what start-up loaded); older
        days are cold."""
        self._warm_from = day

    def check(self, owner: str, cl_ord_id: str, day: date) -> Seen:
        filt = self._days.get(day)
        if filt is None:
            return Seen.MAYBE if self._cold(day) else Seen.NO
        return Seen.MAYBE if (owner, cl_ord_id) in filt or self._cold(day) else Seen.NO

    def add(self, owner: str, cl_ord_id: str, day: date) -> None:
        filt = self._days.get(day)
        if filt is None:
            filt = self._days[day] = _Filter(self._bits, self._hashes)
            self._drop_old()
        filt.add((owner, cl_ord_id))

    def _cold(self, day: date) -> bool:
        if self._warm_from is not None and day < self._warm_from:
            return True
        newest = max(self._days, default=day)
        return day < newest - self._keep

    def _drop_old(self) -> None:
        top = max(self._days)
        for day in [d for d in self._days if d < top - self._keep]:
            del self._days[day]
            if self._warm_from is None or self._warm_from <= day:
                self._warm_from = day + timedelta(days=1)

    @property
    def days(self) -> int:
        return len(self._days)
