"""Turning an accepted quote into the one TradeCapture of its RFQ, and picking the cover.

Pure functions: the engine decides *when* a trade happens; this module decides what it says.
Each leg trades on the side the client takes on it (leg sides flip when the client sells the
package) at that leg's quoted price for that side; leg quantity is package quantity x ratio.
A classic OTC leg (swap, FX option) trades as its economic terms, dated from the trade date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

from fixspec.classic import FX_EXPIRY_BUSINESS_CENTER, FX_EXPIRY_TIME, FxOptionSpec, IrsSpec
from fixspec.instruments import Instrument
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from otc.negotiation.model import Acceptance, Quote, Rfq, flip
from otc.trades import (
    DayCount,
    FxOptionTerms,
    IrsTerms,
    OptionStyle,
    Party,
    PartyRole,
    Product,
    TradeCapture,
    TradeLeg,
)

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
    trade_date = executed_at.astimezone(UTC).date()
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
                product=traded_product(
                    rfq_leg.instrument,
                    leg_side,
                    acceptance.quantity * rfq_leg.ratio,
                    price,
                    client=rfq.client_id,
                    desk=quote.desk_id,
                    trade_date=trade_date,
                ),
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
        trade_date=trade_date,
        rfq_id=rfq.rfq_id,
        quote_id=quote.quote_id,
        label=rfq.label,
    )


def traded_product(
    instrument: Instrument,
    client_side: Side,
    quantity: Decimal,
    price: Decimal,
    *,
    client: str,
    desk: str,
    trade_date: date,
) -> Product:
    """What a leg trades: a listed instrument as itself, a swap or FX option as its terms.

    Buying a swap pays its fixed rate (``price``) on the notional (``quantity``); buying an FX
    option pays ``price`` premium per unit of base notional.
    """
    terms = instrument.terms
    buyer, seller = (client, desk) if client_side is Side.BUY else (desk, client)
    if isinstance(terms, IrsSpec):
        effective, termination = terms.dates(trade_date)
        conv = terms.convention
        return IrsTerms(
            currency=terms.currency,
            notional=quantity,
            effective_date=effective,
            termination_date=termination,
            fixed_rate=price,
            floating_index=conv.floating_index,
            fixed_day_count=DayCount(conv.fixed_day_count),
            floating_day_count=DayCount(conv.floating_day_count),
            fixed_payment_frequency=conv.fixed_frequency,
            floating_payment_frequency=conv.floating_frequency,
            payer_of_fixed=buyer,
            instrument_symbol=instrument.symbol,
        )
    if isinstance(terms, FxOptionSpec):
        base_amount, quote_amount = quantity, quantity * terms.strike
        call = (terms.base, base_amount) if terms.call else (terms.quote, quote_amount)
        put = (terms.quote, quote_amount) if terms.call else (terms.base, base_amount)
        return FxOptionTerms(
            put_currency=put[0],
            put_amount=put[1],
            call_currency=call[0],
            call_amount=call[1],
            strike=terms.strike,
            expiry_date=terms.expiry,
            expiry_time=FX_EXPIRY_TIME,
            expiry_business_center=FX_EXPIRY_BUSINESS_CENTER,
            value_date=terms.value_date(),
            style=OptionStyle.EUROPEAN,
            premium_currency=terms.premium_currency,
            premium_amount=quantity * price,
            premium_payment_date=terms.premium_date(trade_date),
            buyer=buyer,
            seller=seller,
            instrument_symbol=instrument.symbol,
        )
    return instrument


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
