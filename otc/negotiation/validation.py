"""Pure checks that turn commands into validated domain objects or raise NegotiationError.

Package pricing convention (documented here because the consistency check depends on it): leg
sides are the client's sides when it *buys* the package, hedge legs are excluded from the package
price, and

    package offer = sum(ratio * leg offer, BUY legs) - sum(ratio * leg bid, SELL legs)
    package bid   = sum(ratio * leg bid,   BUY legs) - sum(ratio * leg offer, SELL legs)

i.e. each leg is priced on the side the client trades it. Quoted package prices must equal these
sums exactly (Decimal arithmetic, no tolerance).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fixspec.instruments import InstrumentError, InstrumentKind, parse_symbol
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from otc.negotiation.commands import CounterQuote, LegPrice, LegRequest, QuoteTerms, SubmitRfq
from otc.negotiation.errors import NegotiationError
from otc.negotiation.errors import RejectReason as R
from otc.negotiation.model import (
    HEDGE_KINDS,
    Firmness,
    LegQuote,
    Quote,
    Rfq,
    RfqLeg,
    flip,
)


def require_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise NegotiationError(R.MISSING_FIELD, f"{what} must be a non-empty string")
    return value


def require_side(value: object, what: str = "side") -> Side:
    if not isinstance(value, Side):
        raise NegotiationError(
            R.INVALID_SIDE, f"{what} must be Side.BUY or Side.SELL, got {value!r}"
        )
    return value


def require_decimal(value: object, what: str, reason: R) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise NegotiationError(reason, f"{what} must be a finite Decimal, got {value!r}")
    return value


def require_positive(value: object, what: str, reason: R) -> Decimal:
    d = require_decimal(value, what, reason)
    if d <= 0:
        raise NegotiationError(reason, f"{what} must be positive, got {d}")
    return d


def require_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NegotiationError(R.INVALID_TIME, f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def build_rfq(
    cmd: SubmitRfq, rfq_id: str, now: datetime, default_ttl: timedelta, max_ttl: timedelta
) -> Rfq:
    """Validate a QuoteRequest into an :class:`Rfq`."""
    client_id = require_id(cmd.client_id, "client_id")
    quote_req_id = require_id(cmd.quote_req_id, "quote_req_id")
    if not isinstance(cmd.legs, tuple) or not cmd.legs:
        raise NegotiationError(R.TOO_FEW_LEGS, "an RFQ needs at least one leg")
    legs: list[RfqLeg] = []
    seen: dict[str, int] = {}
    for leg_no, req in enumerate(cmd.legs, start=1):
        if not isinstance(req, LegRequest):
            raise NegotiationError(R.MISSING_FIELD, f"leg {leg_no} is not a LegRequest: {req!r}")
        try:
            instrument = parse_symbol(req.symbol)
        except InstrumentError as exc:
            raise NegotiationError(R.UNKNOWN_INSTRUMENT, f"leg {leg_no}: {exc}") from exc
        if instrument.symbol in seen:
            raise NegotiationError(
                R.DUPLICATE_LEG,
                f"leg {leg_no} repeats {instrument.symbol} (already leg {seen[instrument.symbol]})",
            )
        seen[instrument.symbol] = leg_no
        leg_side = require_side(req.side, f"leg {leg_no} side")
        ratio = require_positive(req.ratio, f"leg {leg_no} ratio", R.INVALID_RATIO)
        if req.hedge and instrument.kind not in HEDGE_KINDS:
            raise NegotiationError(
                R.INVALID_HEDGE_LEG,
                f"leg {leg_no} ({instrument.symbol}) is a {instrument.kind.value}; "
                "a hedge leg must be a future or perpetual",
            )
        legs.append(RfqLeg(leg_no, instrument, leg_side, ratio, bool(req.hedge)))

    priced = [leg for leg in legs if not leg.hedge]
    classic = [leg for leg in legs if leg.instrument.terms is not None]
    if classic and len(legs) > 1:  # each clears alone as one FpML trade
        raise NegotiationError(
            R.TOO_MANY_LEGS,
            f"leg {classic[0].leg_no} ({classic[0].instrument.symbol}) is a "
            f"{classic[0].instrument.kind.value}; it is negotiated alone, not in a strategy",
        )
    hedges = len(legs) - len(priced)
    if hedges > 1:
        raise NegotiationError(R.TOO_MANY_LEGS, f"{hedges} hedge legs; at most one is allowed")
    if cmd.multileg and len(priced) < 2:
        raise NegotiationError(
            R.TOO_FEW_LEGS,
            f"a multi-leg strategy needs at least 2 priced legs, got {len(priced)}",
        )
    if not cmd.multileg and len(priced) != 1:
        raise NegotiationError(
            R.TOO_FEW_LEGS if not priced else R.TOO_MANY_LEGS,
            f"a single-instrument RFQ needs exactly 1 priced leg, got {len(priced)} "
            "(flag the request multileg for a strategy)",
        )
    if not cmd.multileg and priced[0].side is not Side.BUY:
        raise NegotiationError(
            R.INVALID_SIDE,
            "a single-instrument RFQ's priced leg must be BUY; the RFQ side gives the direction",
        )
    currencies = {leg.instrument.quote_currency for leg in priced}
    if len(currencies) > 1:
        raise NegotiationError(
            R.MIXED_CURRENCIES, f"priced legs quote in {sorted(currencies)}; need one currency"
        )

    quantity = require_positive(cmd.quantity, "quantity", R.INVALID_QUANTITY)
    side = None if cmd.side is None else require_side(cmd.side)
    if not isinstance(cmd.quote_type, QuoteType):
        raise NegotiationError(
            R.MISSING_FIELD, f"quote_type must be a QuoteType, got {cmd.quote_type!r}"
        )
    if cmd.expire_at is None:
        expire_at = now + default_ttl
    else:
        expire_at = require_utc(cmd.expire_at, "expire_at")
        if expire_at <= now:
            raise NegotiationError(
                R.INVALID_TIME, f"expire_at {expire_at.isoformat()} is not in the future"
            )
        if expire_at - now > max_ttl:
            raise NegotiationError(
                R.INVALID_TIME, f"expire_at is more than {max_ttl} ahead; the maximum RFQ life"
            )
    return Rfq(
        rfq_id=rfq_id,
        client_id=client_id,
        quote_req_id=quote_req_id,
        legs=tuple(legs),
        quantity=quantity,
        side=side,
        quote_type=cmd.quote_type,
        multileg=bool(cmd.multileg),
        requested_at=now,
        expire_at=expire_at,
        label=_label(cmd.label),
    )


MAX_LABEL = 64


def _label(value: object) -> str | None:
    """A client's name for the package: printable text of at most MAX_LABEL characters (it
    travels back in FIX and to desks as it came)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_LABEL:
        raise NegotiationError(
            R.MISSING_FIELD, f"label must be text of 1 to {MAX_LABEL} characters, got {value!r}"
        )
    if not value.isprintable():
        raise NegotiationError(R.MISSING_FIELD, f"label {value!r} holds unprintable characters")
    return value


def _optional_price(value: object, what: str) -> Decimal | None:
    return None if value is None else require_decimal(value, what, R.INVALID_PRICE)


def _size(value: object, price: Decimal | None, side: str, rfq: Rfq) -> Decimal | None:
    if price is None:
        if value is not None:
            raise NegotiationError(R.INVALID_SIZE, f"{side}_size given without {side}_px")
        return None
    if value is None:
        return rfq.quantity
    return require_positive(value, f"{side}_size", R.INVALID_SIZE)


def package_price(legs: tuple[LegQuote, ...], client_side: Side) -> Decimal | None:
    """The package price for a client trading ``client_side``, from leg prices (None if a
    needed leg price is missing)."""
    total = Decimal(0)
    for leg in legs:
        if leg.hedge:
            continue
        leg_side = leg.side if client_side is Side.BUY else flip(leg.side)
        px = leg.price_for(leg_side)
        if px is None:
            return None
        total += leg.ratio * px if leg_side is client_side else -(leg.ratio * px)
    return total


def _leg_quotes(
    terms: QuoteTerms, rfq: Rfq, bid: Decimal | None, offer: Decimal | None
) -> tuple[LegQuote, ...]:
    given: dict[int, LegPrice] = {}
    if not isinstance(terms.legs, tuple):
        raise NegotiationError(R.LEG_PRICES_INCONSISTENT, "legs must be a tuple of LegPrice")
    for item in terms.legs:
        if not isinstance(item, LegPrice):
            raise NegotiationError(R.LEG_PRICES_INCONSISTENT, f"not a LegPrice: {item!r}")
        if not isinstance(item.leg_no, int) or not 1 <= item.leg_no <= len(rfq.legs):
            raise NegotiationError(
                R.LEG_PRICES_INCONSISTENT,
                f"leg {item.leg_no!r} does not exist; the RFQ has legs 1..{len(rfq.legs)}",
            )
        if item.leg_no in given:
            raise NegotiationError(R.LEG_PRICES_INCONSISTENT, f"leg {item.leg_no} priced twice")
        given[item.leg_no] = item

    if not given:
        only = rfq.legs[0]
        if len(rfq.legs) > 1 or only.ratio != 1:
            raise NegotiationError(
                R.LEG_PRICES_MISSING,
                f"per-leg prices are required for this RFQ ({len(rfq.legs)} legs)",
            )
        given[1] = LegPrice(1, bid, offer)

    quoted_sides = [s for s, px in ((Side.SELL, bid), (Side.BUY, offer)) if px is not None]
    out: list[LegQuote] = []
    for leg in rfq.legs:
        lp = given.get(leg.leg_no)
        if lp is None:
            raise NegotiationError(R.LEG_PRICES_MISSING, f"no prices for leg {leg.leg_no}")
        leg_bid = _optional_price(lp.bid_px, f"leg {leg.leg_no} bid_px")
        leg_offer = _optional_price(lp.offer_px, f"leg {leg.leg_no} offer_px")
        rate = leg.instrument.kind is InstrumentKind.IRS  # a swap rate may be zero or negative
        for what, px in (("bid", leg_bid), ("offer", leg_offer)):
            if px is not None and px <= 0 and not rate:
                raise NegotiationError(
                    R.INVALID_PRICE, f"leg {leg.leg_no} {what}_px must be positive, got {px}"
                )
        if leg_bid is not None and leg_offer is not None and leg_bid > leg_offer:
            raise NegotiationError(
                R.CROSSED_QUOTE, f"leg {leg.leg_no} bid {leg_bid} above offer {leg_offer}"
            )
        quote_leg = LegQuote(
            leg.leg_no, leg.instrument.symbol, leg.side, leg.ratio, leg.hedge, leg_bid, leg_offer
        )
        for client_side in quoted_sides:
            leg_side = leg.side if client_side is Side.BUY else flip(leg.side)
            if quote_leg.price_for(leg_side) is None:
                need = "offer" if leg_side is Side.BUY else "bid"
                raise NegotiationError(
                    R.LEG_PRICES_MISSING,
                    f"leg {leg.leg_no} needs a {need} price for the package "
                    f"{'offer' if client_side is Side.BUY else 'bid'}",
                )
        out.append(quote_leg)
    legs = tuple(out)
    for client_side, stated in ((Side.SELL, bid), (Side.BUY, offer)):
        if stated is None:
            continue
        computed = package_price(legs, client_side)
        if computed != stated:
            name = "offer" if client_side is Side.BUY else "bid"
            raise NegotiationError(
                R.LEG_PRICES_INCONSISTENT,
                f"package {name} {stated} does not match its legs ({computed})",
            )
    return legs


def build_quote(
    terms: QuoteTerms,
    rfq: Rfq,
    *,
    quote_id: str,
    desk_id: str,
    now: datetime,
    replaces_quote_id: str | None = None,
    counter_id: str | None = None,
) -> Quote:
    """Validate a desk's terms against the RFQ into a :class:`Quote`."""
    if not isinstance(terms, QuoteTerms):
        raise NegotiationError(R.MISSING_FIELD, "terms must be QuoteTerms")
    valid_until = require_utc(terms.valid_until, "valid_until")
    if valid_until <= now:
        raise NegotiationError(
            R.INVALID_TIME, f"valid_until {valid_until.isoformat()} is not in the future"
        )
    bid = _optional_price(terms.bid_px, "bid_px")
    offer = _optional_price(terms.offer_px, "offer_px")
    if bid is None and offer is None:
        raise NegotiationError(R.MISSING_SIDE, "a quote needs a bid, an offer or both")
    if rfq.side is Side.BUY and offer is None:
        raise NegotiationError(R.MISSING_SIDE, "the client asked to buy: an offer is required")
    if rfq.side is Side.SELL and bid is None:
        raise NegotiationError(R.MISSING_SIDE, "the client asked to sell: a bid is required")
    if bid is not None and offer is not None and bid >= offer:
        raise NegotiationError(R.CROSSED_QUOTE, f"bid {bid} is not below offer {offer}")
    bid_size = _size(terms.bid_size, bid, "bid", rfq)
    offer_size = _size(terms.offer_size, offer, "offer", rfq)
    if not isinstance(terms.firmness, Firmness):
        raise NegotiationError(
            R.MISSING_FIELD, f"firmness must be a Firmness, got {terms.firmness!r}"
        )
    quote_type = rfq.quote_type if terms.quote_type is None else terms.quote_type
    if not isinstance(quote_type, QuoteType):
        raise NegotiationError(
            R.MISSING_FIELD, f"quote_type must be a QuoteType, got {quote_type!r}"
        )
    if terms.desk_quote_ref is not None and not isinstance(terms.desk_quote_ref, str):
        raise NegotiationError(R.MISSING_FIELD, "desk_quote_ref must be a string")
    legs = _leg_quotes(terms, rfq, bid, offer)
    return Quote(
        quote_id=quote_id,
        rfq_id=rfq.rfq_id,
        client_id=rfq.client_id,
        desk_id=desk_id,
        quote_type=quote_type,
        firmness=terms.firmness,
        bid_px=bid,
        offer_px=offer,
        bid_size=bid_size,
        offer_size=offer_size,
        legs=legs,
        valid_until=valid_until,
        quoted_at=now,
        replaces_quote_id=replaces_quote_id,
        counter_id=counter_id,
        desk_quote_ref=terms.desk_quote_ref,
    )


def check_counter(cmd: CounterQuote, rfq: Rfq, quote: Quote) -> tuple[Side, Decimal, Decimal]:
    """Validate a counter against the quote it answers: (side, price, quantity)."""
    side = require_side(cmd.side)
    if rfq.side is not None and side is not rfq.side:
        raise NegotiationError(R.SIDE_NOT_QUOTED, f"the RFQ is one-way {rfq.side.name}")
    quoted = quote.price_for(side)
    if quoted is None:
        raise NegotiationError(
            R.SIDE_NOT_QUOTED, f"quote {quote.quote_id} has no price to {side.name}"
        )
    price = require_decimal(cmd.price, "price", R.INVALID_PRICE)
    improves = price < quoted if side is Side.BUY else price > quoted
    if not improves:
        raise NegotiationError(
            R.COUNTER_NOT_IMPROVING,
            f"counter {price} does not improve on the quoted {quoted}; accept the quote instead",
        )
    quantity = (
        rfq.quantity
        if cmd.quantity is None
        else require_positive(cmd.quantity, "quantity", R.INVALID_QUANTITY)
    )
    return side, price, quantity
