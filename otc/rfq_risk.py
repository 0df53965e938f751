"""Pre-trade risk for RFQs: checked before a client's command reaches the negotiation engine.

A halted client (kill switch) may not ask, counter or accept; RFQs are rate-limited per
client; an acceptance must fit the client's order limits and credit, where credit is consumed
by open orders, filled orders and captured trades alike. Pure: time and state are passed in.

A swap or FX option is asked for by notional, not in contracts: it counts as one order of that
notional, so ``max_order_qty`` does not apply to it while ``max_notional`` and credit do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from fixspec.classic import is_classic_symbol
from fixspec.instruments import Instrument
from fixspec.messages import OrdType
from otc.negotiation.commands import AcceptQuote, Command, CounterQuote, SubmitRfq
from otc.negotiation.errors import RejectReason
from otc.risk import RiskCheck, Throttle, ThrottleVerdict
from otc.trades import FxOptionTerms, IrsTerms, TradeCapture


def order_terms(
    instrument: Instrument, quantity: Decimal, price: Decimal
) -> tuple[Decimal, Decimal]:
    """(quantity, price) as the order limits read an acceptance on ``instrument``."""
    if instrument.terms is not None:  # quantity is a notional
        return Decimal(1), quantity
    return quantity, price


def trade_exposure(trade: TradeCapture) -> Decimal:
    """The credit a captured trade uses: its notional."""
    if any(isinstance(leg.product, IrsTerms | FxOptionTerms) for leg in trade.legs):
        return trade.quantity
    return trade.quantity * trade.price


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
            limits = self.risk.limits_for(client)
            if any(is_classic_symbol(leg.symbol.strip().upper()) for leg in command.legs):
                limit, what = limits.max_notional, "notional"
            else:
                limit, what = limits.max_order_qty, "quantity"
            if limit is not None and command.quantity > limit:
                return RejectReason.RISK_LIMIT, f"{what} {command.quantity} exceeds {limit}"
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
