"""Pre-trade risk: the checks every order passes before it reaches a venue.

Pure functions of the order, the limits and the client's current exposure; limits come from
configuration and may be replaced at run time. A failed check names the limit, so the client's
reject says why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from fixspec.messages import OrdType, Side


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None
    # Limit prices must lie within this fraction of the reference price (0.05 = ±5 %).
    price_band: Decimal | None = None
    # Notional a client may have in open orders plus filled trades at once.
    credit_limit: Decimal | None = None


@dataclass
class RiskCheck:
    """Limits per client CompID, falling back to ``default``."""

    default: RiskLimits = field(default_factory=RiskLimits)
    per_client: MutableMapping[str, RiskLimits] = field(default_factory=dict)

    def limits_for(self, client: str) -> RiskLimits:
        return self.per_client.get(client, self.default)

    def set_limits(self, client: str, limits: RiskLimits) -> None:
        self.per_client[client] = limits

    def check_order(
        self,
        client: str,
        quantity: Decimal,
        ord_type: OrdType,
        price: Decimal | None,
        reference_price: Decimal | None,
        side: Side = Side.BUY,
        exposure: Decimal = Decimal(0),
        replaces: Decimal = Decimal(0),
    ) -> str | None:
        """``None`` if the order may go on, else the reason it may not.

        ``exposure`` is the client's current notional; ``replaces`` the part of it that this
        order takes the place of (a replace frees the old order's notional).
        """
        limits = self.limits_for(client)
        if limits.max_order_qty is not None and quantity > limits.max_order_qty:
            return f"order quantity {quantity} exceeds limit {limits.max_order_qty}"
        px = price if ord_type is not OrdType.MARKET and price is not None else reference_price
        notional = abs(px) * quantity if px is not None else None
        if (
            limits.max_notional is not None
            and notional is not None
            and notional > limits.max_notional
        ):
            return f"order notional {notional} exceeds limit {limits.max_notional}"
        if (
            limits.price_band is not None
            and price is not None
            and ord_type is not OrdType.MARKET
            and reference_price
        ):
            band = abs(reference_price) * limits.price_band
            if abs(price - reference_price) > band:
                return (
                    f"price {price} is outside the band of {limits.price_band * 100}% around "
                    f"the reference price {reference_price}"
                )
        if limits.credit_limit is not None and notional is not None:
            after = exposure - replaces + notional
            if after > limits.credit_limit:
                return (
                    f"credit limit {limits.credit_limit} would be exceeded "
                    f"(exposure {exposure - replaces} + order {notional})"
                )
        return None


class ThrottleVerdict(StrEnum):
    OK = "ok"
    REJECT = "reject"
    LOGOUT = "logout"


@dataclass
class Throttle:
    """Messages per sliding second on one session: reject above ``reject_rate``, log out above
    ``logout_rate``. Time is passed in (seconds, monotonic)."""

    reject_rate: int
    logout_rate: int
    window: float = 1.0
    _times: deque[float] = field(default_factory=deque)

    def hit(self, now: float) -> ThrottleVerdict:
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) > self.logout_rate:
            return ThrottleVerdict.LOGOUT
        if len(times) > self.reject_rate:
            return ThrottleVerdict.REJECT
        return ThrottleVerdict.OK

    @property
    def rate(self) -> int:
        return len(self._times)
