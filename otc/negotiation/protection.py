"""Market maker protection: a desk that trades too much too fast stops quoting.

Each desk may have :class:`ProtectionLimits`: at most ``max_fills`` fills, or at most
``max_notional`` traded, within ``window``. Fills are counted by their *acceptance* time (a
last-look fill counts when the client accepted, not when the desk confirmed), so a burst of
acceptances trips the desk however slowly it confirms them. Notional is quantity times the
absolute package price, in the quote currency, unconverted.

Once a fill makes either count reach its limit the desk's :class:`DeskGuard` is tripped: the
engine refuses every new quote from the desk (``DESK_FROZEN``) and the edge pulls its live quotes
(``PullDeskQuotes``) until the desk resets it. A reset also forgets the window, so the desk starts
counting afresh. Pure values and functions: the engine keeps one guard per desk in its book.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class ProtectionLimits:
    window: timedelta
    max_fills: int | None = None
    max_notional: Decimal | None = None

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("ProtectionLimits.window must be positive")
        if self.max_fills is None and self.max_notional is None:
            raise ValueError("ProtectionLimits needs max_fills or max_notional")
        if self.max_fills is not None and self.max_fills < 1:
            raise ValueError("ProtectionLimits.max_fills must be at least 1")
        if self.max_notional is not None and not self.max_notional > 0:
            raise ValueError("ProtectionLimits.max_notional must be positive")


@dataclass(frozen=True, slots=True)
class Fill:
    accepted_at: datetime
    notional: Decimal


@dataclass(frozen=True, slots=True)
class DeskGuard:
    """One desk's protection state: the fills still inside the window and, once tripped, when
    and why."""

    fills: tuple[Fill, ...] = ()
    tripped_at: datetime | None = None
    reason: str | None = None

    @property
    def frozen(self) -> bool:
        return self.tripped_at is not None

    @property
    def notional(self) -> Decimal:
        return sum((f.notional for f in self.fills), Decimal(0))


def record_fill(guard: DeskGuard, limits: ProtectionLimits, fill: Fill, now: datetime) -> DeskGuard:
    """``guard`` with ``fill`` counted (fills that left the window before it forgotten), tripped
    at ``now`` if a limit is reached."""
    start = fill.accepted_at - limits.window
    fills = tuple(f for f in guard.fills if f.accepted_at > start) + (fill,)
    counted = DeskGuard(fills)
    reason = None
    if limits.max_fills is not None and len(fills) >= limits.max_fills:
        reason = f"{len(fills)} fills within {_ms(limits.window)} ms (limit {limits.max_fills})"
    elif limits.max_notional is not None and counted.notional >= limits.max_notional:
        reason = (
            f"notional {counted.notional} within {_ms(limits.window)} ms "
            f"(limit {limits.max_notional})"
        )
    return DeskGuard(fills, now, reason) if reason is not None else counted


def _ms(window: timedelta) -> int:
    return window // timedelta(milliseconds=1)


def guard_to_json(guard: DeskGuard) -> dict[str, Any]:
    """A guard as JSON, exactly (Decimals as strings, times ISO 8601): the journal keeps it."""
    return {
        "fills": [[f.accepted_at.isoformat(), str(f.notional)] for f in guard.fills],
        "tripped_at": guard.tripped_at.isoformat() if guard.tripped_at else None,
        "reason": guard.reason,
    }


def guard_from_json(data: dict[str, Any]) -> DeskGuard:
    tripped = data["tripped_at"]
    return DeskGuard(
        tuple(Fill(datetime.fromisoformat(at), Decimal(n)) for at, n in data["fills"]),
        datetime.fromisoformat(tripped) if tripped is not None else None,
        data["reason"],
    )
