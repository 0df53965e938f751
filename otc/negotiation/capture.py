"""Turning an accepted quote into the one TradeCapture of its RFQ, and picking the cover.

Pure functions: the engine decides *when* a trade happens; this module decides what it says.
Each leg trades on the side the client takes on it (leg sides flip when the client sells the
package) at that leg's quoted price for that side; leg quantity is package quantity x ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from otc.negotiation.model import Acceptance, Quote, Rfq, flip
from otc.trades import Party, PartyRole, TradeCapture, TradeLeg

PartyResolver = Callable[[str, PartyRole], Party]


def default_party(party_id: str, role: PartyRole) -> Party:
    return Party(party_id=party_id, role=role)


def trade_capture(
    trade_id: str,
    rfq: Rfq,
    quote: Quote,
    acceptance: Acceptance,
    executed_at: datetime,
    party: PartyResolver = default_party,
) -> TradeCapture:
    legs = []
    for rfq_leg, leg_quote in zip(rfq.legs, quote.legs, strict=True):
        leg_side = rfq_leg.side if acceptance.side is Side.BUY else flip(rfq_leg.side)
        price = leg_quote.price_for(leg_side)
        if price is None:  # build_quote guarantees a price for every quoted side
            raise ValueError(
                f"leg {rfq_leg.leg_no} of {quote.quote_id} has no {leg_side.name} price"
            )
        legs.append(
            TradeLeg(
                leg_no=rfq_leg.leg_no,
                product=rfq_leg.instrument,
                side=leg_side,
                quantity=acceptance.quantity * rfq_leg.ratio,
                price=price,
            )
        )
    return TradeCapture(
        trade_id=trade_id,
        side=acceptance.side,
        quantity=acceptance.quantity,
        price=acceptance.price,
        currency=rfq.currency,
        legs=tuple(legs),
        client=party(rfq.client_id, PartyRole.CUSTOMER_ACCOUNT),
        desk=party(quote.desk_id, PartyRole.EXECUTING_FIRM),
        requested_at=rfq.requested_at,
        quoted_at=quote.quoted_at,
        accepted_at=acceptance.accepted_at,
        executed_at=executed_at,
        trade_date=executed_at.astimezone(UTC).date(),
        rfq_id=rfq.rfq_id,
        quote_id=quote.quote_id,
        label=rfq.label,
    )


def runner_up(candidates: Iterable[Quote], side: Side) -> Quote | None:
    """Best other tradeable quote on the traded side: lowest offer for a client buy, highest
    bid for a client sell; the earlier quote wins a tie."""
    best: Quote | None = None
    best_px = None
    for q in candidates:
        px = q.price_for(side)
        if px is None or q.quote_type is not QuoteType.TRADEABLE:
            continue
        if best_px is None or (px < best_px if side is Side.BUY else px > best_px):
            best, best_px = q, px
    return best
