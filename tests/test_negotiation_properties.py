"""Property tests: whatever commands arrive in whatever order, an RFQ trades at most once, every
refusal leaves the engine untouched, and the books stay consistent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import event as note_event
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec.messages import Side
from otc.negotiation import (
    REJECTIONS,
    AcceptQuote,
    AcceptVia,
    AnswerCounter,
    CancelAllQuotes,
    CancelQuote,
    CancelRfq,
    ClientPass,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskPass,
    Firmness,
    NegotiationConfig,
    QuoteState,
    RejectLastLook,
    RejectReason,
    ReplaceQuote,
    RfqState,
    SubmitQuote,
)
from otc.negotiation.commands import MassQuoteEntry, SubmitQuotes
from otc.negotiation.events import CounterToDesk, DeskActionRejected, QuoteToClient, TradeCaptured
from otc.negotiation.mass_quote import quote_outcomes
from tests.test_negotiation_support import CLIENT, DESKS, T0, make_engine, open_rfq, terms

OUTCOMES = {RejectReason.LAST_LOOK_REJECTED, RejectReason.LAST_LOOK_TIMEOUT}

desk = st.integers(0, len(DESKS) - 1)
rfq = st.integers(0, 1)
pick = st.integers(0, 50)
ref = st.integers(0, 3)
rarely = st.integers(0, 5).map(lambda n: n == 0)
quote_action = st.tuples(
    st.just("quote"),
    rfq,
    desk,
    st.integers(40, 60),
    rarely.map(lambda r: not r),
    st.integers(1, 40),
)
mass_action = st.tuples(
    st.just("mass"), desk, st.integers(40, 60), st.integers(1, 40), st.booleans()
)
accept_action = st.tuples(st.just("accept"), pick, ref, st.booleans(), st.booleans(), rarely)
actions = st.one_of(
    quote_action,
    mass_action,
    *(accept_action.map(tuple) for _ in range(4)),  # distinct objects: one_of dedups equal ones
    st.tuples(st.just("counter"), pick, ref),
    st.tuples(st.just("answer"), pick, st.booleans()),
    st.tuples(st.just("cancel"), pick),
    st.tuples(st.just("cancel_all"), desk),
    st.tuples(st.just("confirm"), pick),
    st.tuples(st.just("reject"), pick),
    st.tuples(st.just("desk_pass"), rfq, desk),
    st.tuples(st.just("client_pass"), rfq, ref),
    st.tuples(st.just("cancel_rfq"), rfq),
    st.tuples(st.just("confirm_trade"), pick),
    st.tuples(st.just("wait"), st.integers(1, 40_000)),
)


def build(engine, action, now, rfq_ids, quotes, counters, trade_ids):
    kind = action[0]
    if kind == "quote":
        _, r, d, offer, firm, valid = action
        desk_id, rfq_id = DESKS[d], rfq_ids[r]
        t = terms(
            f"0.0{offer - 5}",
            f"0.0{offer}",
            valid_for=valid,
            now=now,
            firmness=Firmness.FIRM if firm else Firmness.LAST_LOOK,
        )
        live = [s for s in quotes if s.quote.desk_id == desk_id and s.quote.rfq_id == rfq_id]
        if live and firm is False and offer % 2:
            return ReplaceQuote(desk_id, live[-1].quote.quote_id, t)
        return SubmitQuote(desk_id, rfq_id, t)
    if kind == "mass":  # both RFQs in one SubmitQuotes, replacing the desk's last quote if asked
        _, d, offer, valid, replacing = action
        desk_id = DESKS[d]
        entries = []
        for rfq_id in rfq_ids:
            t = terms(f"0.0{offer - 5}", f"0.0{offer}", valid_for=valid, now=now)
            mine = [s for s in quotes if s.quote.desk_id == desk_id and s.quote.rfq_id == rfq_id]
            old = mine[-1].quote.quote_id if replacing and mine else None
            entries.append(MassQuoteEntry(rfq_id, t, old))
        return SubmitQuotes(desk_id, tuple(entries))
    if kind == "wait":
        return None
    if kind in ("desk_pass", "client_pass", "cancel_rfq"):
        rfq_id = rfq_ids[action[1]]
        if kind == "desk_pass":
            return DeskPass(DESKS[action[2]], rfq_id)
        if kind == "client_pass":
            return ClientPass(CLIENT, rfq_id, f"QR-P{action[2]}")
        return CancelRfq(CLIENT, rfq_id)
    if kind == "cancel_all":
        return CancelAllQuotes(DESKS[action[1]])
    if kind == "confirm_trade":
        return ConfirmTrade(trade_ids[action[1] % len(trade_ids)]) if trade_ids else None
    if kind == "answer":
        if not counters:
            return None
        c = counters[action[1] % len(counters)]
        new = terms("0.030", "0.070", now=now) if action[2] else None
        return AnswerCounter(c.desk_id, c.counter_id, new)
    if not quotes:
        return None
    if kind in ("confirm", "reject"):
        held = [s for s in quotes if engine.quote(s.quote.quote_id).held_until is not None]
        quotes = held or quotes
    sealed = quotes[action[1] % len(quotes)]
    q = sealed.quote
    if kind == "accept":
        _, _, r, sell, via_fix, bad_hash = action
        return AcceptQuote(
            CLIENT,
            q.quote_id,
            f"ORD-{r}",
            AcceptVia.NEW_ORDER if via_fix else AcceptVia.QUOTE_RESPONSE,
            Side.SELL if sell else Side.BUY,
            "0" * 64 if bad_hash else sealed.quote_hash,
        )
    if kind == "counter":
        return CounterQuote(
            CLIENT, q.rfq_id, q.quote_id, f"QR-C{action[2]}", Side.BUY, Decimal("0.001")
        )
    if kind == "cancel":
        return CancelQuote(q.desk_id, q.quote_id)
    if kind == "confirm":
        return ConfirmLastLook(q.desk_id, q.quote_id)
    return RejectLastLook(q.desk_id, q.quote_id)


@settings(max_examples=300, deadline=None)
@given(st.lists(quote_action, min_size=1, max_size=4), st.lists(actions, min_size=5, max_size=40))
def test_any_command_sequence_trades_each_rfq_at_most_once(opening, rest):
    script = opening + rest
    engine = make_engine(config=NegotiationConfig(last_look_max_hold=timedelta(seconds=1)))
    rfq_ids = [
        open_rfq(engine),
        open_rfq(engine, quote_req_id="QR-2", expire_at=T0 + timedelta(seconds=90)),
    ]
    now = T0
    quotes, counters, trade_ids = [], [], []
    trade_events: dict[str, TradeCaptured] = {}
    seen_reasons: set[RejectReason] = set()
    for action in script:
        now += timedelta(milliseconds=action[1] if action[0] == "wait" else 100)
        command = build(engine, action, now, rfq_ids, quotes, counters, trade_ids)
        fired = engine.tick(now)
        before = engine.snapshot()
        events = fired + ([] if command is None else engine.handle(command, now))
        refusals = [e for e in events if isinstance(e, REJECTIONS)]
        seen_reasons.update(r.reason for r in refusals)
        if isinstance(command, SubmitQuotes):  # each quote answered on its own, in order
            answers = quote_outcomes(command, events[len(fired) :])
            assert len(answers) == len(command.quotes)
            if all(isinstance(a, DeskActionRejected) for a in answers):
                assert engine.snapshot() == before
            refusals = []
        for refusal in refusals:
            if refusal.reason in OUTCOMES or refusal.reason is RejectReason.ALL_DESKS_PASSED:
                continue
            # a refusal is the whole answer and the book did not move
            assert events[len(fired) :] == [refusal]
            assert engine.snapshot() == before
        for event in events:
            if isinstance(event, QuoteToClient):
                quotes.append(event.sealed)
            elif isinstance(event, CounterToDesk):
                counters.append(event.counter)
            elif isinstance(event, TradeCaptured):
                tid = event.trade.trade_id
                assert trade_events.setdefault(tid, event) is event or trade_events[tid] == event
                if tid not in trade_ids:
                    trade_ids.append(tid)

        trades = engine.trades()
        assert len(trades) == len(trade_ids)
        per_rfq = {}
        for trade in trades:
            per_rfq[trade.rfq_id] = per_rfq.get(trade.rfq_id, 0) + 1
            accepted = engine.quote(trade.quote_id)
            assert accepted.state is QuoteState.HIT
            assert trade.price == accepted.sealed.quote.price_for(trade.side)
        for rfq_id in rfq_ids:
            view = engine.rfq(rfq_id)
            assert per_rfq.get(rfq_id, 0) == (1 if view.trade_id else 0)
            captured = [e for e in engine.history(rfq_id) if isinstance(e, TradeCaptured)]
            assert len(captured) == per_rfq.get(rfq_id, 0) <= 1
            assert (view.state in (RfqState.FILLED, RfqState.CONFIRMED)) == bool(view.trade_id)
            live = engine.live_quotes(rfq_id)
            # the per-RFQ index of Active quotes agrees with a scan of every quote, in order
            scanned = [q for q in view.quote_ids if engine.quote(q).state is QuoteState.ACTIVE]
            assert [s.quote.quote_id for s in live] == scanned
            live_desks = [s.quote.desk_id for s in live]
            assert len(live_desks) == len(set(live_desks)), "one live quote per desk per RFQ"
            if view.state in (RfqState.OPEN, RfqState.QUOTED):
                assert bool(live) == (view.state is RfqState.QUOTED)
    note_event(f"trades: {len(trade_ids)}")
    note_event(f"refusal kinds: {min(len(seen_reasons), 3)}+" if seen_reasons else "no refusals")
