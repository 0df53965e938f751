"""Pre-trade risk for RFQs: checked before a client's command reaches the negotiation engine.

A halted client (kill switch) may not ask, counter or accept; RFQs are rate-limited per
client; an acceptance must fit the client's order limits and credit, where credit is consumed
by open orders, filled orders and captured trades alike. Pure: time and state are passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from fixspec.messages import OrdType
from otc.negotiation.commands import AcceptQuote, Command, CounterQuote, SubmitRfq
from otc.negotiation.errors import RejectReason
from otc.risk import RiskCheck, Throttle, ThrottleVerdict


@dataclass
class RfqRiskGate:
    risk: RiskCheck
    halted: Callable[[str], str | None]  # client -> kill switch reason, if engaged
    exposure: Callable[[str], Decimal]  # client -> notional already committed
    rfq_rate: Callable[[str], int] = lambda client: 20  # RFQs per second per client
    _throttles: dict[str, Throttle] = field(default_factory=dict)

    def check(
        self,
        command: Command,
        now: float,
        acceptance_terms: Callable[[AcceptQuote], tuple[Decimal, Decimal] | None],
    ) -> tuple[RejectReason, str] | None:
        """``None`` to let ``command`` through, else why not. ``acceptance_terms`` gives an
        acceptance's (quantity, price) from the live quote, or None if there is no such quote
        (the engine then refuses it with the precise reason)."""
        if not isinstance(command, SubmitRfq | AcceptQuote | CounterQuote):
            return None
        client = command.client_id
        halted = self.halted(client)
        if halted is not None:
            return RejectReason.KILL_SWITCH, f"kill switch engaged: {halted}"
        if isinstance(command, SubmitRfq):
            rate = self.rfq_rate(client)
            throttle = self._throttles.setdefault(client, Throttle(rate, rate))
            if throttle.hit(now) is not ThrottleVerdict.OK:
                return RejectReason.RISK_LIMIT, f"more than {rate} RFQs per second"
            limit = self.risk.limits_for(client).max_order_qty
            if limit is not None and command.quantity > limit:
                return RejectReason.RISK_LIMIT, f"quantity {command.quantity} exceeds {limit}"
            return None
        if isinstance(command, AcceptQuote):
            terms = acceptance_terms(command)
            if terms is None:
                return None
            quantity, price = terms
            why = self.risk.check_order(
                client,
                quantity,
                OrdType.LIMIT,
                price,
                None,
                command.side,
                self.exposure(client),
            )
            if why is not None:
                return RejectReason.RISK_LIMIT, why
        return None
