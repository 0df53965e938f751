"""Per-desk last-look statistics, computed from events alone (so they can be rebuilt from the
persisted event log). Timeouts count as rejections in the reject rate: for the client a fill the
desk sat on until the window closed is as much a refusal as an explicit reject."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from otc.negotiation.events import LastLookOutcome, LastLookRequested, LastLookResolved


@dataclass(frozen=True, slots=True)
class DeskLastLookStats:
    desk_id: str
    requested: int
    confirmed: int
    rejected: int
    timed_out: int
    hold_times: tuple[timedelta, ...] = field(repr=False)

    @property
    def resolved(self) -> int:
        return self.confirmed + self.rejected + self.timed_out

    @property
    def pending(self) -> int:
        return self.requested - self.resolved

    @property
    def reject_rate(self) -> float | None:
        """(rejected + timed out) / resolved; None before any hold has ended."""
        return (self.rejected + self.timed_out) / self.resolved if self.resolved else None

    @property
    def mean_hold(self) -> timedelta | None:
        if not self.hold_times:
            return None
        return sum(self.hold_times, timedelta()) / len(self.hold_times)

    @property
    def median_hold(self) -> timedelta | None:
        if not self.hold_times:
            return None
        ordered = sorted(self.hold_times)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def max_hold(self) -> timedelta | None:
        return max(self.hold_times) if self.hold_times else None


def last_look_stats(events: Iterable[object]) -> dict[str, DeskLastLookStats]:
    """Statistics per desk id from any stream of negotiation events (others are ignored)."""
    requested: dict[str, int] = {}
    outcomes: dict[str, dict[LastLookOutcome, int]] = {}
    holds: dict[str, list[timedelta]] = {}
    for event in events:
        if isinstance(event, LastLookRequested):
            requested[event.desk_id] = requested.get(event.desk_id, 0) + 1
        elif isinstance(event, LastLookResolved):
            counts = outcomes.setdefault(event.desk_id, {})
            counts[event.outcome] = counts.get(event.outcome, 0) + 1
            holds.setdefault(event.desk_id, []).append(event.held_for)
    result: dict[str, DeskLastLookStats] = {}
    for desk_id in sorted(requested.keys() | outcomes.keys()):
        counts = outcomes.get(desk_id, {})
        result[desk_id] = DeskLastLookStats(
            desk_id=desk_id,
            requested=requested.get(desk_id, 0),
            confirmed=counts.get(LastLookOutcome.CONFIRMED, 0),
            rejected=counts.get(LastLookOutcome.REJECTED, 0),
            timed_out=counts.get(LastLookOutcome.TIMED_OUT, 0),
            hold_times=tuple(holds.get(desk_id, ())),
        )
    return result
