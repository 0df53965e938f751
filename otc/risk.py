"""Pre-trade risk: the checks every order passes before it reaches a venue.

Pure functions of the order and the limits; the limits come from configuration and may be
replaced at run time. A failed check names the limit, so the client's reject says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from fixspec.messages import OrdType


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None


@dataclass
class RiskCheck:
    """Limits per client CompID, falling back to ``default``."""

    default: RiskLimits = field(default_factory=RiskLimits)
    per_client: Mapping[str, RiskLimits] = field(default_factory=dict)

    def limits_for(self, client: str) -> RiskLimits:
        return self.per_client.get(client, self.default)

    def check_order(
        self,
        client: str,
        quantity: Decimal,
        ord_type: OrdType,
        price: Decimal | None,
        reference_price: Decimal | None,
    ) -> str | None:
        """``None`` if the order may go on, else the reason it may not."""
        limits = self.limits_for(client)
        if limits.max_order_qty is not None and quantity > limits.max_order_qty:
            return f"order quantity {quantity} exceeds limit {limits.max_order_qty}"
        if limits.max_notional is not None:
            px = price if ord_type is not OrdType.MARKET and price is not None else reference_price
            if px is not None and abs(px) * quantity > limits.max_notional:
                return f"order notional {abs(px) * quantity} exceeds limit {limits.max_notional}"
        return None
