"""Market maker protection and the client's choice of dealers, in the sans-IO engine: tripping by
fill count and by notional within a window of acceptance times, the pull, the frozen desk's
refusals, the reset; chosen desks and anonymous RFQs."""

from __future__ import annotations

from datetime import timedelta

from fixspec.messages import Side
from otc.negotiation import (
    DeskGuard,
    Firmness,
    ProtectionLimits,
    PullCause,
    PullDeskQuotes,
    QuoteState,
    QuoteStatus,
    RejectReason,
    ReplaceQuote,
    ResetDeskProtection,
    RoutingTable,
    SubmitQuote,
)
from otc.negotiation.command_json import command_from_json, command_to_json
from otc.negotiation.engine import NegotiationEngine
from otc.negotiation.events import (
    DeskActionRejected,
    DeskProtectionReset,
    DeskProtectionTripped,
    QuoteRequestRejected,
    QuoteStatusChanged,
    RfqAcknowledged,
    RfqToDesk,
    TradeCaptured,
)
from otc.negotiation.protection import guard_from_json, guard_to_json
from tests.test_negotiation_support import (
    CLIENT,
    DESKS,
    KEYS,
    ROUTES,
    D,
    accept,
    at,
    of_type,
    one,
    open_rfq,
    quote,
    rfq_cmd,
    terms,
)

DESK = DESKS[0]


def engine_with(limits: ProtectionLimits) -> NegotiationEngine:
    from otc.negotiation import DeskKeyring

    return NegotiationEngine(
        RoutingTable.from_config(ROUTES), DeskKeyring(KEYS), protection={DESK: limits}
    )


def fill(engine: NegotiationEngine, n: int, seconds: float, offer: str = "100") -> list:
    """RFQ n quoted by DESK and lifted at ``seconds``: the events of the acceptance."""
    now = at(seconds)
    rfq_id = open_rfq(engine, now, quote_req_id=f"QR-F{n}")
    sealed = quote(engine, DESK, rfq_id, None, offer, now)
    events = engine.handle(accept(sealed, ref=f"ORD-{n}"), now)
    one(events, TradeCaptured)
    return events


def resting_quote(engine: NegotiationEngine, seconds: float) -> str:
    rfq_id = open_rfq(engine, at(seconds), quote_req_id=f"QR-R{seconds}")
    return quote(engine, DESK, rfq_id, "99", "101", at(seconds)).quote.quote_id


def test_trips_on_the_nth_fill_within_the_window_and_freezes_quoting() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=3))
    resting = resting_quote(engine, 0)
    assert not of_type(fill(engine, 1, 0.1), DeskProtectionTripped)
    assert not of_type(fill(engine, 2, 0.2), DeskProtectionTripped)
    tripped = one(fill(engine, 3, 0.3), DeskProtectionTripped)
    assert tripped.desk_id == DESK and tripped.fills == 3
    assert "3 fills within 1000 ms" in tripped.reason
    assert engine.guard(DESK).frozen

    # the pull the edge runs next takes the resting quote out, with the client told
    pulled = engine.handle(PullDeskQuotes(DESK, PullCause.PROTECTION), at(0.3))
    status = one(pulled, QuoteStatusChanged)
    assert status.quote_id == resting and status.status is QuoteStatus.REMOVED_FROM_MARKET
    assert status.client_id == CLIENT and "protection" in status.reason
    assert engine.quote(resting).state is QuoteState.CANCELLED

    # frozen: no new quote, no replacement, with a clear reason
    rfq_id = open_rfq(engine, at(0.4), quote_req_id="QR-AFTER")
    refused = engine.handle(SubmitQuote(DESK, rfq_id, terms("99", "101", now=at(0.4))), at(0.4))
    assert one(refused, DeskActionRejected).reason is RejectReason.DESK_FROZEN
    other = quote(engine, DESKS[1], rfq_id, "98", "102", at(0.4))  # other desks quote on
    assert other.quote.desk_id == DESKS[1]


def test_fills_outside_the_window_do_not_count() -> None:
    engine = engine_with(ProtectionLimits(timedelta(milliseconds=500), max_fills=2))
    fill(engine, 1, 0.0)
    assert not of_type(fill(engine, 2, 0.6), DeskProtectionTripped)  # the first has left
    assert len(engine.guard(DESK).fills) == 1
    assert of_type(fill(engine, 3, 0.9), DeskProtectionTripped)


def test_trips_on_traded_notional() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=10), max_notional=D("2500")))
    fill(engine, 1, 0, offer="100")  # 10 x 100 = 1000
    assert not of_type(fill(engine, 2, 1, offer="120"), DeskProtectionTripped)  # 2200
    tripped = one(fill(engine, 3, 2, offer="50"), DeskProtectionTripped)  # 2700
    assert tripped.notional == D("2700")
    assert "notional 2700" in tripped.reason


def test_last_look_fills_count_at_their_acceptance_time() -> None:
    from otc.negotiation import ConfirmLastLook

    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=2))
    fill(engine, 1, 0.0)
    rfq_id = open_rfq(engine, at(0.5), quote_req_id="QR-LL")
    sealed = quote(engine, DESK, rfq_id, None, "100", at(0.5), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(sealed, ref="ORD-LL"), at(0.9))  # accepted inside the window
    confirmed = engine.handle(ConfirmLastLook(DESK, sealed.quote.quote_id), at(1.5))
    assert of_type(confirmed, DeskProtectionTripped)  # though confirmed after it


def test_reset_unfreezes_and_starts_a_fresh_window() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=5), max_fills=1))
    one(fill(engine, 1, 0), DeskProtectionTripped)
    tripped_at = engine.guard(DESK).tripped_at
    events = engine.handle(ResetDeskProtection(DESK), at(1))
    reset = one(events, DeskProtectionReset)
    assert reset.tripped_at == tripped_at
    assert engine.guard(DESK) == DeskGuard()
    rfq_id = open_rfq(engine, at(2), quote_req_id="QR-NEW")
    assert quote(engine, DESK, rfq_id, "99", "101", at(2)).quote.desk_id == DESK
    # resetting a desk that is not frozen is refused and changes nothing
    before = engine.snapshot()
    again = engine.handle(ResetDeskProtection(DESK), at(3))
    assert one(again, DeskActionRejected).reason is RejectReason.DESK_NOT_FROZEN
    assert engine.snapshot() == before


def test_frozen_desk_cannot_replace_its_held_back_quote() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=5), max_fills=1))
    resting = resting_quote(engine, 0)
    fill(engine, 1, 0.1)
    refused = engine.handle(ReplaceQuote(DESK, resting, terms("98", "102", now=at(0.2))), at(0.2))
    assert one(refused, DeskActionRejected).reason is RejectReason.DESK_FROZEN
    assert engine.quote(resting).state is QuoteState.ACTIVE  # nothing changed


def test_desks_without_limits_never_trip_and_guards_round_trip_as_json() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=5), max_fills=1))
    rfq_id = open_rfq(engine, at(0))
    sealed = quote(engine, DESKS[1], rfq_id, None, "100", at(0))
    assert not of_type(engine.handle(accept(sealed, ref="ORD-B"), at(0)), DeskProtectionTripped)
    fill(engine, 1, 0.5)
    guard = engine.guard(DESK)
    assert guard_from_json(guard_to_json(guard)) == guard
    assert engine.take_guard_changes() == {DESK: guard}
    assert engine.take_guard_changes() == {}


def test_new_commands_encode_for_the_journal() -> None:
    for command in (
        PullDeskQuotes(DESK, PullCause.DISCONNECT),
        ResetDeskProtection(DESK),
        rfq_cmd(desks=("DESK-B",), disclosed=False, alias="ANON-1"),
    ):
        assert command_from_json(command_to_json(command)) == command


# --- the client's choice of dealers --------------------------------------------------------


def test_chosen_desks_replace_the_routing_within_what_is_allowed() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=9))
    events = engine.handle(rfq_cmd(desks=("DESK-C", "DESK-A")), at(0))
    assert one(events, RfqAcknowledged).desk_ids == ("DESK-C", "DESK-A")
    assert [e.desk_id for e in of_type(events, RfqToDesk)] == ["DESK-C", "DESK-A"]


def test_a_desk_outside_the_routing_is_refused_by_name() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=9))
    events = engine.handle(
        rfq_cmd(client_id="CLIENT-2", desks=("DESK-A", "DESK-B")), at(0)
    )  # CLIENT-2 may ask DESK-A only
    rejected = one(events, QuoteRequestRejected)
    assert rejected.reason is RejectReason.DESK_NOT_ALLOWED
    assert "'DESK-B'" in rejected.text
    assert not of_type(events, RfqToDesk)


def test_anonymous_rfq_keeps_its_alias_and_needs_one() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=9))
    events = engine.handle(rfq_cmd(disclosed=False, alias="ANON-7F3A"), at(0))
    rfq = one(events, RfqAcknowledged).rfq
    assert (rfq.disclosed, rfq.alias, rfq.counterparty) == (False, "ANON-7F3A", "ANON-7F3A")
    assert rfq.client_id == CLIENT  # the core and compliance keep the real identity
    missing = engine.handle(rfq_cmd(quote_req_id="QR-2", disclosed=False), at(0))
    assert one(missing, QuoteRequestRejected).reason is RejectReason.MISSING_FIELD
    disclosed = one(engine.handle(rfq_cmd(quote_req_id="QR-3"), at(0)), RfqAcknowledged).rfq
    assert disclosed.counterparty == CLIENT


def test_pull_leaves_a_held_last_look_quote_for_the_desk() -> None:
    engine = engine_with(ProtectionLimits(timedelta(seconds=1), max_fills=9))
    rfq_id = open_rfq(engine, at(0))
    sealed = quote(engine, DESK, rfq_id, None, "100", at(0), firmness=Firmness.LAST_LOOK)
    engine.handle(accept(sealed, side=Side.BUY), at(0.1))
    pulled = engine.handle(PullDeskQuotes(DESK, PullCause.DISCONNECT), at(0.2))
    assert not of_type(pulled, QuoteStatusChanged)
    assert engine.quote(sealed.quote.quote_id).held_until is not None
