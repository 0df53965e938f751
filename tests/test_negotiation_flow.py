"""End-to-end negotiations through the engine: multi-dealer, counters, last look, expiry,
cancels and multi-leg packages, checked through the events the edges would act on."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import get_args

import pytest

from fixspec.instruments import InstrumentKind
from fixspec.messages import OrdRejReason, Side
from fixspec.rfq_codes import QuoteRequestRejectReason
from otc.negotiation import (
    AcceptVia,
    AnswerCounter,
    Audience,
    CancelAllQuotes,
    CancelQuote,
    CancelRfq,
    ClientPass,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskKeyring,
    DeskPass,
    Event,
    Firmness,
    LastLookOutcome,
    LegRequest,
    NegotiationConfig,
    NegotiationEngine,
    QuoteState,
    QuoteStatus,
    RejectLastLook,
    RejectReason,
    ReplaceQuote,
    RfqState,
    RoutingTable,
    SubmitQuote,
    last_look_stats,
    sequential_ids,
    verify_quote,
)
from otc.negotiation.events import (
    AcceptancePending,
    AcceptanceRejected,
    ClientPassed,
    CounterDeclined,
    CounterToDesk,
    Cover,
    DeskPassed,
    DoneAway,
    LastLookRequested,
    LastLookResolved,
    QuoteAcknowledged,
    QuoteRequestRejected,
    QuoteStatusChanged,
    QuoteToClient,
    RfqEnded,
    RfqStateChanged,
    RfqToDesk,
    RfqWithdrawn,
    TradeCaptured,
)
from tests.test_negotiation_support import (
    CLIENT,
    DESKS,
    KEYS,
    OPTION,
    T0,
    D,
    accept,
    addressed_to_desk,
    at,
    make_engine,
    of_type,
    one,
    open_rfq,
    quote,
    rfq_cmd,
    strings_in,
    terms,
)

A, B, C = DESKS


def rfq_states(engine, rfq_id):
    return [e.to_state for e in of_type(engine.history(rfq_id), RfqStateChanged)]


# --- multi-dealer firm RFQ ------------------------------------------------------------------


def test_three_desks_one_pass_replaced_quotes_best_hit_losers_done_away_runner_up_cover():
    engine = make_engine()
    events = engine.handle(rfq_cmd(), T0)
    rfq_id = of_type(events, RfqToDesk)[0].rfq.rfq_id
    assert sorted(e.desk_id for e in of_type(events, RfqToDesk)) == sorted(DESKS)

    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, rfq_id, "0.052", "0.058", at(2))
    passed = engine.handle(DeskPass(C, rfq_id), at(3))
    assert one(passed, DeskPassed).desk_id == C

    replaced_a = engine.handle(
        ReplaceQuote(A, qa.quote.quote_id, terms("0.051", "0.057", now=at(4))), at(4)
    )
    qa2 = one(replaced_a, QuoteToClient).sealed
    assert qa2.quote.replaces_quote_id == qa.quote.quote_id
    replaced_b = engine.handle(
        ReplaceQuote(B, qb.quote.quote_id, terms("0.053", "0.056", now=at(5))), at(5)
    )
    qb2 = one(replaced_b, QuoteToClient).sealed
    assert engine.quote(qa.quote.quote_id).state is QuoteState.REPLACED
    assert engine.live_quotes(rfq_id) == (qa2, qb2)

    best = min(engine.live_quotes(rfq_id), key=lambda s: s.quote.offer_px)
    assert best == qb2
    filled = engine.handle(accept(best), at(6))

    trade = one(filled, TradeCaptured).trade
    assert (trade.side, trade.quantity, trade.price) == (Side.BUY, D("10"), D("0.056"))
    assert trade.desk.party_id == B and trade.client.party_id == CLIENT
    assert [(leg.side, leg.quantity, leg.price) for leg in trade.legs] == [
        (Side.BUY, D("10"), D("0.056"))
    ]
    assert (trade.requested_at, trade.quoted_at, trade.accepted_at, trade.executed_at) == (
        T0,
        at(5),
        at(6),
        at(6),
    )
    assert one(filled, Cover).desk_id == A and one(filled, Cover).quote_id == qa2.quote.quote_id
    assert one(filled, DoneAway).desk_id == C
    assert engine.quote(qa2.quote.quote_id).state is QuoteState.CANCELLED
    assert engine.quote(qb2.quote.quote_id).state is QuoteState.HIT
    assert engine.rfq(rfq_id).state is RfqState.FILLED

    confirmed = engine.handle(ConfirmTrade(trade.trade_id), at(7))
    assert one(confirmed, RfqStateChanged).to_state is RfqState.CONFIRMED
    assert rfq_states(engine, rfq_id) == [
        RfqState.NEW,
        RfqState.OPEN,
        RfqState.QUOTED,
        RfqState.PENDING_EXECUTION,
        RfqState.FILLED,
        RfqState.CONFIRMED,
    ]
    assert engine.next_deadline() is None, "a filled RFQ leaves no timer behind"


def test_without_cover_config_the_runner_up_is_done_away_too():
    engine = make_engine(config=NegotiationConfig(send_cover=False))
    rfq_id = open_rfq(engine)
    quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, rfq_id, "0.051", "0.059", at(1))
    filled = engine.handle(accept(qb), at(2))
    assert not of_type(filled, Cover)
    assert sorted(e.desk_id for e in of_type(filled, DoneAway)) == [A, C]


def test_cover_goes_to_best_other_bid_when_client_sells():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.052", "0.060", at(1))
    quote(engine, B, rfq_id, "0.051", "0.059", at(1))
    qc = quote(engine, C, rfq_id, "0.053", "0.061", at(1))
    filled = engine.handle(accept(qc, side=Side.SELL), at(2))
    assert one(filled, TradeCaptured).trade.price == D("0.053")
    assert one(filled, Cover).quote_id == qa.quote.quote_id


def test_quoting_is_blind_each_desk_sees_only_its_own_data():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    log = []
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, rfq_id, "0.051", "0.059", at(1))
    log.extend(engine.history(rfq_id))
    log.extend(engine.handle(accept(qb), at(2)))
    to_a = addressed_to_desk(log, A)
    to_b = addressed_to_desk(log, B)
    assert to_a and to_b, "both desks must have been told things"
    seen_by_a = strings_in(to_a)
    seen_by_b = strings_in(to_b)
    assert {qb.quote.quote_id, qb.quote_hash, B}.isdisjoint(seen_by_a)
    assert {qa.quote.quote_id, qa.quote_hash}.isdisjoint(seen_by_b)
    assert qa.quote.quote_id in seen_by_a and qb.quote.quote_id in seen_by_b
    assert engine.desk_live_quotes(A) == ()
    client_quotes = [e.sealed.quote.quote_id for e in log if isinstance(e, QuoteToClient)]
    assert client_quotes == [qa.quote.quote_id, qb.quote.quote_id], "the client sees every quote"


def test_quote_events_carry_hash_and_verifiable_signature():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    events = engine.handle(
        SubmitQuote(A, rfq_id, terms("0.050", "0.060", now=at(1))),
        at(1),
    )
    to_client = one(events, QuoteToClient).sealed
    to_desk = one(events, QuoteAcknowledged).sealed
    assert to_client == to_desk
    assert verify_quote(to_client.quote, to_client.signature, KEYS[A].public_key())
    assert not verify_quote(to_client.quote, to_client.signature, KEYS[B].public_key())


def test_unsigned_engine_still_hashes_and_checks_the_hash():
    engine = make_engine(signing=False)
    rfq_id = open_rfq(engine)
    sealed = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    assert sealed.signature is None and len(sealed.quote_hash) == 64
    assert one(engine.handle(accept(sealed), at(2)), TradeCaptured)


# --- counters -------------------------------------------------------------------------------


def test_counter_round_trip_requote_then_decline_then_lift():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q1 = quote(engine, A, rfq_id, "0.050", "0.060", at(1))

    countered = engine.handle(
        CounterQuote(CLIENT, rfq_id, q1.quote.quote_id, "QR-C1", Side.BUY, D("0.055")), at(2)
    )
    to_desk = one(countered, CounterToDesk)
    assert (to_desk.desk_id, to_desk.counter.price, to_desk.counter.quantity) == (
        A,
        D("0.055"),
        D("10"),
    )
    assert engine.rfq(rfq_id).state is RfqState.NEGOTIATING

    answered = engine.handle(
        AnswerCounter(A, to_desk.counter.counter_id, terms("0.052", "0.057", now=at(3))), at(3)
    )
    q2 = one(answered, QuoteToClient).sealed
    assert q2.quote.counter_id == to_desk.counter.counter_id
    assert q2.quote.replaces_quote_id == q1.quote.quote_id
    assert engine.quote(q1.quote.quote_id).state is QuoteState.REPLACED
    assert engine.rfq(rfq_id).state is RfqState.QUOTED

    second = engine.handle(
        CounterQuote(CLIENT, rfq_id, q2.quote.quote_id, "QR-C2", Side.BUY, D("0.0565")), at(4)
    )
    counter2 = one(second, CounterToDesk).counter
    declined = engine.handle(AnswerCounter(A, counter2.counter_id, None, "no"), at(5))
    assert one(declined, CounterDeclined).text == "no"
    assert engine.rfq(rfq_id).state is RfqState.QUOTED
    assert engine.quote(q2.quote.quote_id).state is QuoteState.ACTIVE

    filled = engine.handle(accept(q2, via=AcceptVia.QUOTE_RESPONSE, ref="QR-H1"), at(6))
    assert one(filled, TradeCaptured).trade.price == D("0.057")
    assert rfq_states(engine, rfq_id)[2:] == [
        RfqState.QUOTED,
        RfqState.NEGOTIATING,
        RfqState.QUOTED,
        RfqState.NEGOTIATING,
        RfqState.QUOTED,
        RfqState.PENDING_EXECUTION,
        RfqState.FILLED,
    ]


def test_counter_lapses_when_its_quote_is_withdrawn_and_answer_is_refused():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q1 = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    counter = one(
        engine.handle(
            CounterQuote(CLIENT, rfq_id, q1.quote.quote_id, "QR-C1", Side.SELL, D("0.051")), at(2)
        ),
        CounterToDesk,
    ).counter
    engine.handle(CancelQuote(A, q1.quote.quote_id), at(3))
    assert engine.rfq(rfq_id).state is RfqState.OPEN
    refused = engine.handle(AnswerCounter(A, counter.counter_id, None), at(4))
    assert refused[0].reason is RejectReason.COUNTER_CLOSED


# --- last look ------------------------------------------------------------------------------


def test_last_look_confirmed_fills_at_confirm_time():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    pending = engine.handle(accept(q), at(2))
    request = one(pending, LastLookRequested)
    assert request.desk_id == A and request.hold_deadline == at(4)  # default 2 s hold
    assert one(pending, AcceptancePending).hold_deadline == at(4)
    assert engine.rfq(rfq_id).state is RfqState.PENDING_EXECUTION
    assert engine.quote(q.quote.quote_id).held_until == at(4)

    filled = engine.handle(ConfirmLastLook(A, q.quote.quote_id), at(2.5))
    trade = one(filled, TradeCaptured).trade
    assert trade.accepted_at == at(2) and trade.executed_at == at(2.5)
    assert engine.rfq(rfq_id).state is RfqState.FILLED
    stats = engine.last_look_stats()[A]
    assert (stats.requested, stats.confirmed, stats.rejected, stats.timed_out) == (1, 1, 0, 0)
    assert stats.max_hold == timedelta(seconds=0.5) and stats.reject_rate == 0.0


def test_last_look_rejected_returns_rfq_to_quoted_and_other_quote_trades():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.058", at(1), firmness=Firmness.LAST_LOOK)
    qb = quote(engine, B, rfq_id, "0.050", "0.059", at(1))
    engine.handle(accept(qa), at(2))
    rejected = engine.handle(RejectLastLook(A, qa.quote.quote_id, "moved"), at(2.25))
    refusal = one(rejected, AcceptanceRejected)
    assert refusal.reason is RejectReason.LAST_LOOK_REJECTED
    assert refusal.ord_rej_reason is OrdRejReason.BROKER_OPTION
    assert refusal.quote_status is QuoteStatus.REJECTED
    assert "moved" in refusal.text
    assert one(rejected, QuoteStatusChanged).quote_id == qa.quote.quote_id
    assert engine.quote(qa.quote.quote_id).state is QuoteState.CANCELLED
    assert engine.rfq(rfq_id).state is RfqState.QUOTED

    filled = engine.handle(accept(qb, ref="ORD-2"), at(3))
    assert one(filled, TradeCaptured).trade.desk.party_id == B
    stats = engine.last_look_stats()[A]
    assert (stats.rejected, stats.reject_rate, stats.max_hold) == (1, 1.0, timedelta(seconds=0.25))


def test_last_look_timeout_rejects_the_fill_and_late_confirm_is_refused():
    engine = make_engine(config=NegotiationConfig(last_look_max_hold=timedelta(milliseconds=500)))
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(q), at(2))
    assert engine.next_deadline() == at(2.5)
    fired = engine.tick(at(2.5))
    refusal = one(fired, AcceptanceRejected)
    assert refusal.reason is RejectReason.LAST_LOOK_TIMEOUT and refusal.at == at(2.5)
    assert engine.rfq(rfq_id).state is RfqState.OPEN
    late = engine.handle(ConfirmLastLook(A, q.quote.quote_id), at(2.6))
    assert late[0].reason is RejectReason.LAST_LOOK_WINDOW_CLOSED
    assert engine.trades() == ()
    stats = engine.last_look_stats()[A]
    assert (stats.timed_out, stats.reject_rate, stats.pending) == (1, 1.0, 0)


def test_rfq_expiry_during_last_look_waits_for_the_hold_then_expires():
    engine = make_engine()
    rfq_id = open_rfq(engine, expire_at=at(3))
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(q), at(2))
    assert engine.tick(at(3)) == []  # expiry noted, hold still runs
    assert engine.rfq(rfq_id).state is RfqState.PENDING_EXECUTION
    ended = engine.handle(RejectLastLook(A, q.quote.quote_id), at(3.5))
    assert one(ended, RfqEnded).state is RfqState.EXPIRED
    assert engine.rfq(rfq_id).state is RfqState.EXPIRED


def test_retried_acceptance_returns_the_same_outcome_event_and_no_new_trade():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    first = one(engine.handle(accept(q), at(2)), AcceptancePending)
    before = engine.snapshot()
    assert engine.handle(accept(q), at(2.1)) == [first]
    assert engine.snapshot() == before
    captured = one(engine.handle(ConfirmLastLook(A, q.quote.quote_id), at(2.2)), TradeCaptured)
    assert engine.handle(accept(q), at(9)) == [captured]
    assert len(engine.trades()) == 1
    assert len(of_type(engine.history(rfq_id), TradeCaptured)) == 1


# --- expiry and cancels ---------------------------------------------------------------------


def test_quote_expires_at_valid_until_via_timer():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), valid_for=10)
    assert engine.tick(at(10.999999)) == []
    fired = engine.tick(at(11))
    status = one(fired, QuoteStatusChanged)
    assert (status.status, status.quote_id, status.at) == (
        QuoteStatus.EXPIRED,
        q.quote.quote_id,
        at(11),
    )
    assert engine.quote(q.quote.quote_id).state is QuoteState.EXPIRED
    assert engine.rfq(rfq_id).state is RfqState.OPEN


def test_rfq_expires_after_default_five_minutes_with_its_quotes():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1), valid_for=600)
    assert engine.rfq(rfq_id).rfq.expire_at == at(300)
    assert engine.tick(at(299.9)) == []
    fired = engine.tick(at(300))
    assert one(fired, RfqEnded).state is RfqState.EXPIRED
    assert one(fired, QuoteStatusChanged).status is QuoteStatus.EXPIRED
    assert sorted(e.desk_id for e in of_type(fired, RfqWithdrawn)) == sorted(DESKS)
    assert engine.quote(q.quote.quote_id).state is QuoteState.EXPIRED
    assert engine.next_deadline() is None


def test_configured_rfq_ttl_is_used():
    engine = make_engine(config=NegotiationConfig(rfq_ttl=timedelta(seconds=20)))
    rfq_id = open_rfq(engine)
    engine.tick(at(20))
    assert engine.rfq(rfq_id).state is RfqState.EXPIRED


def test_desk_cancel_withdraws_quote_and_rfq_reopens():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    cancelled = engine.handle(CancelQuote(A, q.quote.quote_id), at(2))
    status = one(cancelled, QuoteStatusChanged)
    assert status.status is QuoteStatus.REMOVED_FROM_MARKET
    assert status.audience is Audience.PARTIES and status.desk_id == A
    assert engine.rfq(rfq_id).state is RfqState.OPEN
    requote = quote(engine, A, rfq_id, "0.049", "0.061", at(3))
    assert engine.live_quotes(rfq_id) == (requote,)


def test_cancel_all_for_a_desk_across_rfqs_or_for_one_rfq():
    engine = make_engine()
    r1 = open_rfq(engine)
    r2 = open_rfq(engine, quote_req_id="QR-2")
    r3 = open_rfq(engine, quote_req_id="QR-3")
    for rfq_id in (r1, r2, r3):
        quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, r1, "0.050", "0.060", at(1))
    one_rfq = engine.handle(CancelAllQuotes(A, r3), at(2))
    assert [e.rfq_id for e in of_type(one_rfq, QuoteStatusChanged)] == [r3]
    everything = engine.handle(CancelAllQuotes(A), at(3))
    statuses = of_type(everything, QuoteStatusChanged)
    assert sorted(e.rfq_id for e in statuses) == [r1, r2]
    assert {e.status for e in statuses} == {QuoteStatus.CANCELED_ALL}
    assert engine.desk_live_quotes(A) == ()
    assert engine.live_quotes(r1) == (qb,)


def test_cancel_all_leaves_a_quote_in_its_last_look_window():
    engine = make_engine()
    r1 = open_rfq(engine)
    held = quote(engine, A, r1, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(held), at(2))
    assert engine.handle(CancelAllQuotes(A), at(2.1)) == []
    assert engine.quote(held.quote.quote_id).state is QuoteState.ACTIVE


def test_client_cancel_and_client_pass_end_the_rfq():
    engine = make_engine()
    r1 = open_rfq(engine)
    quote(engine, A, r1, "0.050", "0.060", at(1))
    cancelled = engine.handle(CancelRfq(CLIENT, r1), at(2))
    assert one(cancelled, RfqEnded).state is RfqState.CANCELLED
    assert len(of_type(cancelled, RfqWithdrawn)) == 3

    r2 = open_rfq(engine, quote_req_id="QR-2")
    qa = quote(engine, A, r2, "0.050", "0.060", at(3))
    passed = engine.handle(ClientPass(CLIENT, r2, "QR-P1"), at(4))
    assert {(e.desk_id, e.quote_id) for e in of_type(passed, ClientPassed)} == {
        (A, qa.quote.quote_id),
        (B, None),
        (C, None),
    }
    assert engine.rfq(r2).state is RfqState.CANCELLED


def test_client_pass_on_one_quote_keeps_the_rfq():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    qa = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    qb = quote(engine, B, rfq_id, "0.051", "0.061", at(1))
    passed = engine.handle(ClientPass(CLIENT, rfq_id, "QR-P1", qa.quote.quote_id), at(2))
    assert one(passed, ClientPassed).desk_id == A
    assert one(passed, QuoteStatusChanged).status is QuoteStatus.PASS
    assert engine.live_quotes(rfq_id) == (qb,)
    assert engine.rfq(rfq_id).state is RfqState.QUOTED


def test_every_desk_passing_rejects_the_rfq_with_fix_reason_pass():
    engine = make_engine()
    rfq_id = open_rfq(engine)
    quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    engine.handle(DeskPass(A, rfq_id), at(2))
    engine.handle(DeskPass(B, rfq_id), at(2))
    last = engine.handle(DeskPass(C, rfq_id), at(3))
    rejected = one(last, QuoteRequestRejected)
    assert rejected.rfq_id == rfq_id
    assert rejected.fix_reason is QuoteRequestRejectReason.PASS
    assert engine.rfq(rfq_id).state is RfqState.REJECTED


# --- multi-leg ------------------------------------------------------------------------------

CALL_SPREAD = (
    LegRequest("BTC-27DEC26-100000-C", Side.BUY),
    LegRequest("BTC-27DEC26-120000-C", Side.SELL),
    LegRequest("BTC-27DEC26", Side.SELL, D("0.25"), hedge=True),
)
SPREAD_LEGS = ((1, "0.050", "0.055"), (2, "0.020", "0.024"), (3, "60000", "60010"))


def test_multileg_with_hedge_leg_gives_one_trade_with_per_leg_prices():
    engine = make_engine()
    rfq_id = open_rfq(engine, legs=CALL_SPREAD, multileg=True)
    rfq = engine.rfq(rfq_id).rfq
    assert [leg.instrument.kind for leg in rfq.legs] == [
        InstrumentKind.OPTION,
        InstrumentKind.OPTION,
        InstrumentKind.FUTURE,
    ]
    # package offer = 0.055 - 0.020 = 0.035; package bid = 0.050 - 0.024 = 0.026
    q = quote(engine, A, rfq_id, "0.026", "0.035", at(1), legs=SPREAD_LEGS)
    assert [(leg.symbol, leg.hedge) for leg in q.quote.legs][2] == ("BTC-27DEC26", True)
    filled = engine.handle(accept(q, side=Side.SELL), at(2))
    trade = one(filled, TradeCaptured).trade
    assert trade.is_multileg and (trade.side, trade.price) == (Side.SELL, D("0.026"))
    assert [
        (leg.leg_no, leg.product.symbol, leg.side, leg.quantity, leg.price) for leg in trade.legs
    ] == [
        (1, "BTC-27DEC26-100000-C", Side.SELL, D("10"), D("0.050")),
        (2, "BTC-27DEC26-120000-C", Side.BUY, D("10"), D("0.024")),
        (3, "BTC-27DEC26", Side.BUY, D("2.50"), D("60010")),
    ]
    assert len(engine.trades()) == 1


def test_history_is_the_ordered_event_log_of_one_rfq():
    engine = make_engine()
    r1 = open_rfq(engine)
    r2 = open_rfq(engine, quote_req_id="QR-2")
    quote(engine, A, r2, "0.050", "0.060", at(1))
    q1 = quote(engine, A, r1, "0.050", "0.060", at(2))
    engine.handle(accept(q1), at(3))
    history = engine.history(r1)
    assert all(getattr(e, "rfq_id", None) in (None, r1) for e in history)
    assert [type(e).__name__ for e in history[:3]] == [
        "RfqStateChanged",
        "RfqStateChanged",
        "RfqAcknowledged",
    ]
    assert isinstance(history[-1], DoneAway | Cover)
    times = [e.at for e in history]
    assert times == sorted(times)
    assert engine.history("RFQ-NOPE") == ()


def test_only_routed_desks_and_option_route_for_second_client():
    engine = make_engine()
    rfq_id = open_rfq(engine, client_id="CLIENT-2")
    assert engine.rfq(rfq_id).desk_ids == ("DESK-A",)
    assert engine.rfq(rfq_id).rfq.client_id == "CLIENT-2"
    assert OPTION in repr(engine.rfq(rfq_id).rfq)


def test_last_look_stats_are_computed_from_events_alone():
    def requested(desk, n):
        return LastLookRequested(desk, "R", f"Q{n}", CLIENT, Side.BUY, D("1"), D("1"), at(9), at(n))

    def resolved(desk, n, outcome, ms):
        held = timedelta(milliseconds=ms)
        return LastLookResolved("R", f"Q{n}", desk, outcome, at(n), held, at(n) + held)

    events = [
        requested(A, 1),
        resolved(A, 1, LastLookOutcome.CONFIRMED, 100),
        requested(A, 2),
        resolved(A, 2, LastLookOutcome.REJECTED, 300),
        requested(A, 3),
        resolved(A, 3, LastLookOutcome.TIMED_OUT, 2000),
        requested(A, 4),
        requested(B, 5),
        DoneAway(B, "R", None, at(0)),  # not a last-look event: ignored
    ]
    stats = last_look_stats(events)
    a, b = stats[A], stats[B]
    assert (a.requested, a.confirmed, a.rejected, a.timed_out, a.pending) == (4, 1, 1, 1, 1)
    assert a.reject_rate == 2 / 3
    assert a.median_hold == timedelta(milliseconds=300)
    assert a.max_hold == timedelta(seconds=2)
    assert a.mean_hold == timedelta(milliseconds=800)
    assert (b.requested, b.pending, b.reject_rate, b.mean_hold) == (1, 1, None, None)


def test_archive_forgets_a_finished_rfq_but_keeps_ids_reserved_and_retries_answered():
    engine = make_engine()
    r1 = open_rfq(engine)
    r2 = open_rfq(engine, quote_req_id="QR-2")
    q1 = quote(engine, A, r1, "0.050", "0.060", at(1))
    q2 = quote(engine, A, r2, "0.050", "0.060", at(1))
    captured = one(engine.handle(accept(q1), at(2)), TradeCaptured)
    with pytest.raises(ValueError, match="Filled"):
        engine.archive(r1)  # not finished until confirmed
    engine.handle(ConfirmTrade(captured.trade.trade_id), at(3))
    history = engine.archive(r1)
    assert captured in history and history[-1].to_state is RfqState.CONFIRMED
    with pytest.raises(KeyError):
        engine.rfq(r1)
    assert engine.trades() == () and engine.history(r1) == ()
    assert q1.quote.quote_id not in engine.snapshot().quotes
    assert engine.handle(accept(q1), at(4)) == [captured]  # retry still answered
    assert engine.handle(rfq_cmd(), at(4))[-1].reason is RejectReason.DUPLICATE_QUOTE_REQ_ID
    with pytest.raises(ValueError, match="Quoted"):
        engine.archive(r2)
    assert one(engine.handle(accept(q2, ref="ORD-2"), at(5)), TradeCaptured)


def test_ids_come_from_the_injected_factory_and_refusals_burn_none():
    engine = NegotiationEngine(
        RoutingTable.from_config({CLIENT: {"*": [A]}}),
        DeskKeyring({A: KEYS[A]}),
        ids=sequential_ids("LDN1-"),
    )
    refused = engine.handle(rfq_cmd(quantity=D("-1")), T0)
    assert refused[0].reason is RejectReason.INVALID_QUANTITY
    rfq_id = open_rfq(engine)
    assert rfq_id == "LDN1-RFQ-00000001"
    q = quote(engine, A, rfq_id, "0.050", "0.060", at(1))
    assert q.quote.quote_id == "LDN1-Q-00000001"
    trade = one(engine.handle(accept(q), at(2)), TradeCaptured).trade
    assert trade.trade_id == "LDN1-T-00000001"


def test_every_event_names_its_audience_and_addressee():
    for cls in get_args(Event):
        assert isinstance(cls.audience, Audience), cls
        names = {f.name for f in dataclasses.fields(cls)}
        if cls.audience in (Audience.CLIENT, Audience.PARTIES):
            assert "client_id" in names, cls
        if cls.audience in (Audience.DESK, Audience.PARTIES):
            assert "desk_id" in names, cls
        assert "at" in names, cls
