"""One pure timer service for every deadline in a negotiation.

Nothing here reads a clock: callers schedule absolute UTC deadlines and ask what is ``due(now)``.
Scheduling an existing key moves it; cancelling is by key. Due timers come out in deadline order
(ties in scheduling order), so replaying the same inputs gives the same outputs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TimerKind(StrEnum):
    RFQ_EXPIRY = "rfq_expiry"
    QUOTE_EXPIRY = "quote_expiry"
    LAST_LOOK = "last_look"


@dataclass(frozen=True, slots=True, order=True)
class TimerKey:
    kind: TimerKind
    ref: str  # rfq_id or quote_id


@dataclass(frozen=True, slots=True)
class TimerFired:
    key: TimerKey
    due_at: datetime


class TimerService:
    """Deadlines by key. A heap orders them; a dict is the truth, so cancel and reschedule are
    O(1) and stale heap entries are skipped when popped."""

    def __init__(self) -> None:
        self._deadlines: dict[TimerKey, tuple[datetime, int]] = {}
        self._heap: list[tuple[datetime, int, TimerKey]] = []
        self._seq = 0

    def schedule(self, key: TimerKey, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError(f"timer {key} needs a timezone-aware deadline")
        self._seq += 1
        self._deadlines[key] = (at, self._seq)
        heapq.heappush(self._heap, (at, self._seq, key))

    def cancel(self, key: TimerKey) -> bool:
        """Forget ``key``; True if it was scheduled."""
        found = self._deadlines.pop(key, None) is not None
        if len(self._heap) > 2 * len(self._deadlines) + 64:
            self._compact()
        return found

    def deadline(self, key: TimerKey) -> datetime | None:
        entry = self._deadlines.get(key)
        return entry[0] if entry else None

    def next_due_at(self) -> datetime | None:
        """The earliest live deadline: when the edge should next call ``due``."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def due(self, now: datetime) -> list[TimerFired]:
        """Remove and return every timer whose deadline is at or before ``now``."""
        fired: list[TimerFired] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return fired
            at, _seq, key = heapq.heappop(self._heap)
            del self._deadlines[key]
            fired.append(TimerFired(key, at))

    def pending(self) -> dict[TimerKey, datetime]:
        """Every scheduled deadline (a copy), for snapshots and tests."""
        return {key: at for key, (at, _seq) in self._deadlines.items()}

    def __len__(self) -> int:
        return len(self._deadlines)

    def _compact(self) -> None:
        """Rebuild the heap from the live deadlines so cancelled entries cannot pile up."""
        self._heap = [(at, seq, key) for key, (at, seq) in self._deadlines.items()]
        heapq.heapify(self._heap)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            at, seq, key = heap[0]
            if self._deadlines.get(key) == (at, seq):
                return
            heapq.heappop(heap)
