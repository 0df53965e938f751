"""Every bad input and race the core must refuse, each with a distinct reason and with the
engine left exactly as it was (snapshot before == snapshot after)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from fixspec.messages import OrdRejReason, Side
from fixspec.rfq_codes import QuoteRequestRejectReason
from gateway.http.problems import http_status
from otc.negotiation import (
    AcceptVia,
    CancelQuote,
    CancelRfq,
    ClientPass,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskKeyring,
    DeskPass,
    Firmness,
    LegRequest,
    NegotiationEngine,
    QuoteStatus,
    QuoteType,
    RejectLastLook,
    RejectReason,
    ReplaceQuote,
    RoutingTable,
    SubmitQuote,
    generate_desk_key,
)
from otc.negotiation.events import (
    AcceptanceRejected,
    CounterToDesk,
    DeskActionRejected,
    QuoteRequestRejected,
    TradeCaptured,
)
from tests.test_negotiation_support import (
    CLIENT,
    DESKS,
    OPTION,
    ROUTES,
    D,
    accept,
    assert_refused,
    at,
    make_engine,
    one,
    open_rfq,
    quote,
    rfq_cmd,
    terms,
)

R = RejectReason
A, B, C = DESKS
SPREAD = (
    LegRequest("BTC-27DEC26-100000-C", Side.BUY),
    LegRequest("BTC-27DEC26-120000-C", Side.SELL),
)

# --- RFQ requests ---------------------------------------------------------------------------

BAD_RFQS = {
    "unknown instrument": (dict(legs=(LegRequest("BTC-31FOO26", Side.BUY),)), R.UNKNOWN_INSTRUMENT),
    "multileg with one leg": (dict(multileg=True), R.TOO_FEW_LEGS),
    "two legs not flagged multileg": (dict(legs=SPREAD), R.TOO_MANY_LEGS),
    "no legs": (dict(legs=()), R.TOO_FEW_LEGS),
    "leg given as a bare symbol": (dict(legs=(OPTION,)), R.MISSING_FIELD),
    "duplicate legs": (
        dict(legs=(SPREAD[0], LegRequest("btc-27dec26-100000-c", Side.SELL)), multileg=True),
        R.DUPLICATE_LEG,
    ),
    "hedge leg that is an option": (
        dict(
            legs=(*SPREAD, LegRequest("BTC-27DEC26-90000-P", Side.BUY, hedge=True)), multileg=True
        ),
        R.INVALID_HEDGE_LEG,
    ),
    "hedge leg that is spot": (
        dict(legs=(SPREAD[0], LegRequest("BTC-USD", Side.SELL, hedge=True))),
        R.INVALID_HEDGE_LEG,
    ),
    "two hedge legs": (
        dict(
            legs=(
                SPREAD[0],
                LegRequest("BTC-PERP", Side.SELL, hedge=True),
                LegRequest("BTC-27DEC26", Side.SELL, hedge=True),
            )
        ),
        R.TOO_MANY_LEGS,
    ),
    "zero ratio": (dict(legs=(LegRequest(OPTION, Side.BUY, D("0")),)), R.INVALID_RATIO),
    "negative ratio": (
        dict(
            legs=(SPREAD[0], LegRequest("BTC-27DEC26-120000-C", Side.SELL, D("-1"))), multileg=True
        ),
        R.INVALID_RATIO,
    ),
    "float ratio": (dict(legs=(LegRequest(OPTION, Side.BUY, 1.0),)), R.INVALID_RATIO),  # type: ignore[arg-type]
    "zero quantity": (dict(quantity=D("0")), R.INVALID_QUANTITY),
    "NaN quantity": (dict(quantity=D("NaN")), R.INVALID_QUANTITY),
    "expire time in the past": (dict(expire_at=at(-1)), R.INVALID_TIME),
    "expire time beyond the maximum": (dict(expire_at=at(7200)), R.INVALID_TIME),
    "naive expire time": (dict(expire_at=at(60).replace(tzinfo=None)), R.INVALID_TIME),
    "mixed quote currencies": (
        dict(legs=(SPREAD[0], LegRequest("BTC-USDT", Side.SELL)), multileg=True),
        R.MIXED_CURRENCIES,
    ),
    "single instrument sold as the leg": (
        dict(legs=(LegRequest(OPTION, Side.SELL),)),
        R.INVALID_SIDE,
    ),
    "side given as a string": (dict(side="1"), R.INVALID_SIDE),
    "empty QuoteReqID": (dict(quote_req_id=""), R.MISSING_FIELD),
    "client with no route for the kind": (
        dict(client_id="CLIENT-2", legs=(LegRequest("BTC-PERP", Side.BUY),)),
        R.NO_ROUTE,
    ),
    "unknown client": (dict(client_id="NOBODY"), R.NO_ROUTE),
}


@pytest.mark.parametrize("overrides,reason", BAD_RFQS.values(), ids=BAD_RFQS.keys())
def test_bad_rfq_is_refused_and_changes_nothing(overrides, reason):
    engine = make_engine()
    open_rfq(engine, quote_req_id="QR-0")  # something already in the book
    event = assert_refused(engine, rfq_cmd(**overrides), at(1), reason)
    assert isinstance(event, QuoteRequestRejected) and event.rfq_id is None


def test_rfq_reject_reasons_map_to_fix_658():
    engine = make_engine()
    unknown = assert_refused(
        engine, rfq_cmd(legs=(LegRequest("NOPE", Side.BUY),)), at(0), R.UNKNOWN_INSTRUMENT
    )
    assert unknown.fix_reason is QuoteRequestRejectReason.UNKNOWN_SYMBOL
    late = assert_refused(engine, rfq_cmd(expire_at=at(-5)), at(0), R.INVALID_TIME)
    assert late.fix_reason is QuoteRequestRejectReason.TOO_LATE_TO_ENTER
    no_route = assert_refused(engine, rfq_cmd(client_id="NOBODY"), at(0), R.NO_ROUTE)
    assert no_route.fix_reason is QuoteRequestRejectReason.NOT_AUTHORIZED


def test_duplicate_quote_req_id_per_client_but_not_across_clients():
    engine = make_engine()
    open_rfq(engine)
    assert_refused(engine, rfq_cmd(), at(1), R.DUPLICATE_QUOTE_REQ_ID)
    # the same QuoteReqID from another client is that client's business
    open_rfq(engine, at(2), client_id="CLIENT-2")


# --- desk quotes ----------------------------------------------------------------------------


def _quote_case(engine, rfq_id, spread_id, one_way_id):
    """Bad quotes keyed by name: (command, reason)."""
    t = at(1)
    return {
        "crossed": (SubmitQuote(A, rfq_id, terms("0.060", "0.050", now=t)), R.CROSSED_QUOTE),
        "locked (bid == offer)": (
            SubmitQuote(A, rfq_id, terms("0.055", "0.055", now=t)),
            R.CROSSED_QUOTE,
        ),
        "no side at all": (SubmitQuote(A, rfq_id, terms(None, None, now=t)), R.MISSING_SIDE),
        "one-way buy RFQ without offer": (
            SubmitQuote(A, one_way_id, terms("0.050", None, now=t)),
            R.MISSING_SIDE,
        ),
        "negative price on single leg": (
            SubmitQuote(A, rfq_id, terms("-0.050", "0.060", now=t)),
            R.INVALID_PRICE,
        ),
        "float price": (
            SubmitQuote(A, rfq_id, replace(terms("0.050", "0.060", now=t), bid_px=0.05)),
            R.INVALID_PRICE,
        ),
        "size without price": (
            SubmitQuote(A, rfq_id, terms(None, "0.060", now=t, bid_size=D("5"))),
            R.INVALID_SIZE,
        ),
        "zero size": (
            SubmitQuote(A, rfq_id, terms("0.050", "0.060", now=t, offer_size=D("0"))),
            R.INVALID_SIZE,
        ),
        "valid_until in the past": (
            SubmitQuote(A, rfq_id, terms("0.050", "0.060", valid_for=-1, now=t)),
            R.INVALID_TIME,
        ),
        "multi-leg without leg prices": (
            SubmitQuote(A, spread_id, terms("0.026", "0.035", now=t)),
            R.LEG_PRICES_MISSING,
        ),
        "multi-leg missing one leg": (
            SubmitQuote(A, spread_id, terms("0.026", "0.035", now=t, legs=[(1, "0.05", "0.055")])),
            R.LEG_PRICES_MISSING,
        ),
        "leg lacks the side the package needs": (
            SubmitQuote(
                A,
                spread_id,
                terms("0.026", "0.035", now=t, legs=[(1, "0.05", "0.055"), (2, None, "0.024")]),
            ),
            R.LEG_PRICES_MISSING,
        ),
        "package inconsistent with legs": (
            SubmitQuote(
                A,
                spread_id,
                terms("0.026", "0.036", now=t, legs=[(1, "0.05", "0.055"), (2, "0.02", "0.024")]),
            ),
            R.LEG_PRICES_INCONSISTENT,
        ),
        "unknown leg number": (
            SubmitQuote(
                A,
                spread_id,
                terms(
                    "0.026",
                    "0.035",
                    now=t,
                    legs=[(1, "0.05", "0.055"), (2, "0.02", "0.024"), (3, "1", "2")],
                ),
            ),
            R.LEG_PRICES_INCONSISTENT,
        ),
        "leg priced twice": (
            SubmitQuote(
                A,
                spread_id,
                terms("0.026", "0.035", now=t, legs=[(1, "0.05", "0.055"), (1, "0.05", "0.055")]),
            ),
            R.LEG_PRICES_INCONSISTENT,
        ),
        "crossed leg": (
            SubmitQuote(
                A,
                spread_id,
                terms("0.026", "0.035", now=t, legs=[(1, "0.056", "0.055"), (2, "0.02", "0.024")]),
            ),
            R.CROSSED_QUOTE,
        ),
        "zero leg price": (
            SubmitQuote(
                A,
                spread_id,
                terms("0.026", "0.035", now=t, legs=[(1, "0.05", "0.055"), (2, "0", "0.024")]),
            ),
            R.INVALID_PRICE,
        ),
        "unknown RFQ": (SubmitQuote(A, "RFQ-NOPE", terms("0.05", "0.06", now=t)), R.UNKNOWN_RFQ),
        "empty desk id": (SubmitQuote("", rfq_id, terms("0.05", "0.06", now=t)), R.MISSING_FIELD),
    }


QUOTE_CASES = list(_quote_case(None, "r", "s", "o"))


@pytest.mark.parametrize("name", QUOTE_CASES)
def test_bad_quote_is_refused_and_changes_nothing(name):
    engine = make_engine()
    rfq_id = open_rfq(engine)
    spread_id = open_rfq(engine, quote_req_id="QR-S", legs=SPREAD, multileg=True)
    one_way_id = open_rfq(engine, quote_req_id="QR-O", side=Side.BUY)
    quote(engine, B, rfq_id, "0.050", "0.060", at(0.5))
    command, reason = _quote_case(engine, rfq_id, spread_id, one_way_id)[name]
    event = assert_refused(engine, command, at(1), reason)
    assert isinstance(event, DeskActionRejected)


def test_desk_not_routed_is_a_distinct_403_refusal():
    engine = make_engine()
    rfq_id = open_rfq(engine, client_id="CLIENT-2")  # routed to DESK-A only
    event = assert_refused(
        engine, SubmitQuote(B, rfq_id, terms("0.05", "0.06", now=at(1))), at(1), R.DESK_NOT_ROUTED
    )
    assert http_status(event.reason) == 403
    assert http_status(R.UNKNOWN_RFQ) == 404 and http_status(R.CROSSED_QUOTE) == 422
    assert http_status(R.QUOTE_ALREADY_LIVE) == 409


def test_second_live_quote_from_same_desk_must_be_a_replace():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    assert_refused(
        engine,
        SubmitQuote(A, rfq_id, terms("0.051", "0.059", now=at(2))),
        at(2),
        R.QUOTE_ALREADY_LIVE,
    )


def test_desk_that_passed_cannot_quote_or_pass_again():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    engine.handle(DeskPass(A, rfq_id), at(1))
    assert_refused(
        engine, SubmitQuote(A, rfq_id, terms("0.05", "0.06", now=at(2))), at(2), R.DESK_PASSED
    )
    assert_refused(engine, DeskPass(A, rfq_id), at(2), R.DESK_PASSED)


def test_desk_without_signing_key_cannot_quote():
    engine = NegotiationEngine(
        RoutingTable.from_config(ROUTES), DeskKeyring({A: generate_desk_key()})
    )
    rfq_id = open_rfq(engine)
    event = assert_refused(
        engine, SubmitQuote(B, rfq_id, terms("0.05", "0.06", now=at(1))), at(1), R.NO_SIGNING_KEY
    )
    assert http_status(event.reason) == 500


def test_desk_cannot_touch_another_desks_quote():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    assert_refused(engine, CancelQuote(B, qa.quote.quote_id), at(2), R.UNKNOWN_QUOTE)
    assert_refused(
        engine,
        ReplaceQuote(B, qa.quote.quote_id, terms("0.05", "0.06", now=at(2))),
        at(2),
        R.UNKNOWN_QUOTE,
    )
    assert_refused(engine, ConfirmLastLook(B, qa.quote.quote_id), at(2), R.UNKNOWN_QUOTE)


def test_replace_with_bad_terms_keeps_the_old_quote_live():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    assert_refused(
        engine,
        ReplaceQuote(A, qa.quote.quote_id, terms("0.07", "0.06", now=at(2))),
        at(2),
        R.CROSSED_QUOTE,
    )
    assert engine.live_quotes(rfq_id) == (qa,)


# --- acceptances ----------------------------------------------------------------------------


def test_acceptance_after_valid_until_has_a_distinct_expired_reason():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), valid_for=10)
    engine.tick(at(11))
    event = assert_refused(engine, accept(q), at(11), R.QUOTE_EXPIRED)
    assert isinstance(event, AcceptanceRejected)
    assert event.ord_rej_reason is OrdRejReason.TOO_LATE
    assert event.quote_status is QuoteStatus.EXPIRED
    assert event.rfq_id == rfq_id


def test_acceptance_at_exactly_valid_until_is_too_late_even_before_tick():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), valid_for=10)
    events = engine.handle(accept(q), at(11))  # handle() fires the due expiry first
    assert events[-1].reason is R.QUOTE_EXPIRED
    assert engine.trades() == ()


def test_acceptance_a_microsecond_before_valid_until_trades():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), valid_for=10)
    assert one(engine.handle(accept(q), at(11) - timedelta(microseconds=1)), TradeCaptured)


def test_cancel_processed_first_beats_acceptance():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    engine.handle(CancelQuote(A, q.quote.quote_id), at(2))
    event = assert_refused(engine, accept(q), at(2), R.QUOTE_NOT_LIVE)
    assert "Cancelled" in event.text


def test_acceptance_processed_first_beats_cancel():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    one(engine.handle(accept(q), at(2)), TradeCaptured)
    event = assert_refused(engine, CancelQuote(A, q.quote.quote_id), at(2), R.QUOTE_NOT_LIVE)
    assert "Hit" in event.text


def test_cancel_during_last_look_hold_is_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(q), at(2))
    assert_refused(engine, CancelQuote(A, q.quote.quote_id), at(2.1), R.QUOTE_HELD)
    assert_refused(
        engine,
        ReplaceQuote(A, q.quote.quote_id, terms("0.05", "0.06", now=at(2.1))),
        at(2.1),
        R.QUOTE_HELD,
    )
    assert_refused(engine, CancelRfq(CLIENT, rfq_id), at(2.1), R.RFQ_EXECUTING)


def test_two_racing_acceptances_second_is_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, rfq_id, "0.050", "0.061", at(1))
    one(engine.handle(accept(qa, ref="ORD-1"), at(2)), TradeCaptured)
    assert_refused(engine, accept(qa, ref="ORD-2"), at(2), R.RFQ_FILLED)
    assert_refused(engine, accept(qb, ref="ORD-3"), at(2), R.RFQ_FILLED)
    assert len(engine.trades()) == 1


def test_racing_acceptance_during_last_look_is_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    qb = quote(engine, B, rfq_id, "0.050", "0.061", at(1))
    engine.handle(accept(qa, ref="ORD-1"), at(2))
    assert_refused(engine, accept(qb, ref="ORD-2"), at(2.1), R.RFQ_EXECUTING)


def test_duplicate_cl_ord_id_with_different_content_is_refused():
    engine = make_engine()
    r1 = open_rfq(engine)
    r2 = open_rfq(engine, quote_req_id="QR-2")
    q1 = quote(engine, A, r1, "0.050", "0.060", at(1))
    q2 = quote(engine, A, r2, "0.050", "0.060", at(1))
    engine.handle(accept(q1, ref="ORD-1"), at(2))
    event = assert_refused(engine, accept(q2, ref="ORD-1"), at(3), R.DUPLICATE_CL_ORD_ID)
    assert event.ord_rej_reason is OrdRejReason.DUPLICATE_ORDER
    # ClOrdID and QuoteRespID are separate id spaces, as in FIX
    one(engine.handle(accept(q2, ref="ORD-1", via=AcceptVia.QUOTE_RESPONSE), at(4)), TradeCaptured)


def test_duplicate_quote_resp_id_across_counter_and_acceptance_is_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    engine.handle(
        CounterQuote(CLIENT, rfq_id, q.quote.quote_id, "QR-1", Side.BUY, D("0.055")), at(2)
    )
    assert_refused(
        engine,
        accept(q, ref="QR-1", via=AcceptVia.QUOTE_RESPONSE),
        at(3),
        R.DUPLICATE_QUOTE_RESP_ID,
    )
    assert_refused(engine, ClientPass(CLIENT, rfq_id, "QR-1"), at(3), R.DUPLICATE_QUOTE_RESP_ID)


def _accept_cases(q, replaced, indicative, one_way):
    return {
        "hash of another quote": (replace(accept(q), quote_hash="0" * 64), R.QUOTE_HASH_MISMATCH),
        "replaced quote": (accept(replaced), R.QUOTE_NOT_LIVE),
        "indicative quote": (accept(indicative), R.QUOTE_INDICATIVE),
        "wrong side of one-way RFQ": (accept(one_way, side=Side.SELL), R.SIDE_NOT_QUOTED),
        "quantity above quoted size": (accept(q, quantity=D("11")), R.QUANTITY_EXCEEDS_QUOTE),
        "zero quantity": (accept(q, quantity=D("0")), R.INVALID_QUANTITY),
        "price not the quoted one": (accept(q, price=D("0.059")), R.PRICE_MISMATCH),
        "another client's quote": (accept(q, client="CLIENT-2"), R.UNKNOWN_QUOTE),
        "unknown quote": (replace(accept(q), quote_id="Q-NOPE"), R.UNKNOWN_QUOTE),
        "empty ClOrdID": (accept(q, ref=""), R.MISSING_FIELD),
        "side as string": (replace(accept(q), side="1"), R.INVALID_SIDE),
    }


ACCEPT_CASES = [
    "hash of another quote",
    "replaced quote",
    "indicative quote",
    "wrong side of one-way RFQ",
    "quantity above quoted size",
    "zero quantity",
    "price not the quoted one",
    "another client's quote",
    "unknown quote",
    "empty ClOrdID",
    "side as string",
]


@pytest.mark.parametrize("name", ACCEPT_CASES)
def test_bad_acceptance_is_refused_and_changes_nothing(name):
    engine = make_engine()
    rfq_id = open_rfq(engine)
    old = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    replaced = engine.handle(
        ReplaceQuote(A, old.quote.quote_id, terms("0.050", "0.060", now=at(1.5))), at(1.5)
    )
    current = [e for e in replaced if hasattr(e, "sealed")][0].sealed
    ind_id = open_rfq(engine, quote_req_id="QR-I", quote_type=QuoteType.INDICATIVE)
    indicative = quote(engine, A, ind_id, "0.050", "0.060", at(1))
    one_way_id = open_rfq(engine, quote_req_id="QR-O", side=Side.BUY)
    one_way = quote(engine, A, one_way_id, "0.050", "0.060", at(1))
    command, reason = _accept_cases(current, old, indicative, one_way)[name]
    event = assert_refused(engine, command, at(2), reason)
    assert isinstance(event, AcceptanceRejected)


def test_counter_refusals():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qid = q.quote.quote_id
    assert_refused(
        engine,
        CounterQuote(CLIENT, rfq_id, qid, "QR-1", Side.BUY, D("0.060")),
        at(2),
        R.COUNTER_NOT_IMPROVING,
    )
    assert_refused(
        engine,
        CounterQuote(CLIENT, rfq_id, qid, "QR-1", Side.SELL, D("0.049")),
        at(2),
        R.COUNTER_NOT_IMPROVING,
    )
    one(
        engine.handle(CounterQuote(CLIENT, rfq_id, qid, "QR-1", Side.BUY, D("0.055")), at(2)),
        CounterToDesk,
    )
    assert_refused(
        engine,
        CounterQuote(CLIENT, rfq_id, qid, "QR-2", Side.BUY, D("0.056")),
        at(3),
        R.COUNTER_PENDING,
    )
    assert_refused(
        engine,
        CounterQuote(CLIENT, rfq_id, "Q-NOPE", "QR-3", Side.BUY, D("0.056")),
        at(3),
        R.UNKNOWN_QUOTE,
    )


# --- last look and post-trade ---------------------------------------------------------------


def test_last_look_answers_without_a_pending_fill_are_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    assert_refused(engine, ConfirmLastLook(A, q.quote.quote_id), at(2), R.NO_PENDING_LAST_LOOK)
    assert_refused(engine, RejectLastLook(A, q.quote.quote_id), at(2), R.NO_PENDING_LAST_LOOK)


def test_confirm_trade_twice_is_an_illegal_transition():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    trade = one(engine.handle(accept(q), at(2)), TradeCaptured).trade
    engine.handle(ConfirmTrade(trade.trade_id), at(3))
    event = assert_refused(engine, ConfirmTrade(trade.trade_id), at(4), R.ILLEGAL_TRANSITION)
    assert "Confirmed" in event.text
    assert_refused(engine, ConfirmTrade("T-NOPE"), at(4), R.UNKNOWN_TRADE)


def test_commands_on_a_closed_rfq_are_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    engine.handle(CancelRfq(CLIENT, rfq_id), at(1))
    assert_refused(engine, CancelRfq(CLIENT, rfq_id), at(2), R.RFQ_NOT_OPEN)
    assert_refused(
        engine, SubmitQuote(C, rfq_id, terms("0.05", "0.06", now=at(2))), at(2), R.RFQ_NOT_OPEN
    )
    assert_refused(engine, CancelRfq("CLIENT-2", rfq_id), at(2), R.UNKNOWN_RFQ)
    expired = open_rfq(engine, at(2), quote_req_id="QR-2", expire_at=at(5))
    engine.tick(at(5))
    assert_refused(
        engine, SubmitQuote(A, expired, terms("0.05", "0.06", now=at(6))), at(6), R.RFQ_EXPIRED
    )


def test_now_must_be_timezone_aware():
    engine = make_engine()
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.handle(rfq_cmd(), at(0).replace(tzinfo=None))
    with pytest.raises(TypeError, match="not a negotiation command"):
        engine.handle(object(), at(0))  # type: ignore[arg-type]
