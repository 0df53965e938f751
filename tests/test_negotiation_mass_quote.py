"""A desk's mass quote in the core: one engine call, each quote applied on its own, each answered
in order; and the journal replays it."""

from __future__ import annotations

from otc.negotiation import events as ev
from otc.negotiation.command_json import command_from_json, command_to_json
from otc.negotiation.commands import (
    MAX_MASS_QUOTES,
    CancelRfq,
    MassQuoteEntry,
    SubmitQuotes,
)
from otc.negotiation.errors import RejectReason
from otc.negotiation.mass_quote import quote_outcomes
from otc.negotiation.signing import verify_quote
from otc.negotiation.states import QuoteState
from tests.test_negotiation_journal import Clock, crash, journal_dir, service
from tests.test_negotiation_support import (
    CLIENT,
    KEYS,
    T0,
    make_engine,
    of_type,
    open_rfq,
    rfq_cmd,
    terms,
)


def three_rfqs(engine) -> list[str]:
    return [open_rfq(engine, quote_req_id=f"QR-{n}") for n in range(3)]


def test_each_quote_stands_on_its_own_and_is_answered_in_order():
    engine = make_engine()
    r1, r2, r3 = three_rfqs(engine)
    command = SubmitQuotes(
        "DESK-A",
        (
            MassQuoteEntry(r1, terms("99", "101")),
            MassQuoteEntry(r2, terms("105", "101")),  # crossed: refused
            MassQuoteEntry(r3, terms("98", "102")),
        ),
    )
    events = engine.handle(command, T0)
    answers = quote_outcomes(command, events)
    assert [type(a).__name__ for a in answers] == [
        "QuoteAcknowledged",
        "DeskActionRejected",
        "QuoteAcknowledged",
    ]
    refused = answers[1]
    assert isinstance(refused, ev.DeskActionRejected)
    assert (refused.reason, refused.rfq_id) == (RejectReason.CROSSED_QUOTE, r2)
    sent = of_type(events, ev.QuoteToClient)
    assert [q.sealed.quote.rfq_id for q in sent] == [r1, r3]
    for q in sent:  # each one signed by the desk's key
        assert q.sealed.signature
        assert verify_quote(q.sealed.quote, q.sealed.signature, KEYS["DESK-A"].public_key())
    assert engine.live_quotes(r2) == ()
    assert [q.quote.rfq_id for q in engine.desk_live_quotes("DESK-A")] == [r1, r3]


def test_a_mass_quote_replaces_live_quotes_on_the_rfqs_it_names():
    engine = make_engine()
    r1, r2, _ = three_rfqs(engine)
    first = quote_outcomes(
        cmd := SubmitQuotes(
            "DESK-A", (MassQuoteEntry(r1, terms("99", "101")), MassQuoteEntry(r2, terms("9", "11")))
        ),
        engine.handle(cmd, T0),
    )
    old1, old2 = (a.sealed.quote.quote_id for a in first if isinstance(a, ev.QuoteAcknowledged))
    again = SubmitQuotes(
        "DESK-A",
        (
            MassQuoteEntry(r1, terms("99.5", "100.5"), replaces_quote_id=old1),
            MassQuoteEntry(r1, terms("99.5", "100.5"), replaces_quote_id=old2),  # old2 is on r2
            MassQuoteEntry(r2, terms("9", "11")),  # r2 already has a live quote of the desk
        ),
    )
    answers = quote_outcomes(again, engine.handle(again, T0))
    assert isinstance(answers[0], ev.QuoteAcknowledged)
    assert answers[0].sealed.quote.replaces_quote_id == old1
    assert [a.reason for a in answers[1:] if isinstance(a, ev.DeskActionRejected)] == [
        RejectReason.UNKNOWN_QUOTE,
        RejectReason.QUOTE_ALREADY_LIVE,
    ]
    assert engine.quote(old1).state is QuoteState.REPLACED
    assert engine.quote(old2).state is QuoteState.ACTIVE


def test_more_than_the_limit_is_refused_whole_and_changes_nothing():
    engine = make_engine()
    rfq = open_rfq(engine)
    before = engine.snapshot()
    command = SubmitQuotes(
        "DESK-A", tuple(MassQuoteEntry(rfq, terms("99", "101")) for _ in range(MAX_MASS_QUOTES + 1))
    )
    events, changed = engine.handle_checked(command, T0)
    assert not changed and engine.snapshot() == before
    answers = quote_outcomes(command, events)
    assert {a.reason for a in answers if isinstance(a, ev.DeskActionRejected)} == {
        RejectReason.TOO_MANY_QUOTES
    }
    assert len(answers) == MAX_MASS_QUOTES + 1


def test_a_mass_quote_round_trips_through_json():
    command = SubmitQuotes(
        "DESK-A",
        (
            MassQuoteEntry("RFQ-1", terms("99.50", "101")),
            MassQuoteEntry("RFQ-2", terms(None, "7"), replaces_quote_id="Q-9"),
        ),
    )
    assert command_from_json(command_to_json(command)) == command


def test_the_journal_writes_one_row_per_mass_quote_and_replays_it():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        rfqs = [
            next(
                e.rfq.rfq_id
                for e in first.submit(rfq_cmd(quote_req_id=f"QR-{n}"))
                if isinstance(e, ev.RfqAcknowledged)
            )
            for n in range(3)
        ]
        rows = first.journal.rows
        command = SubmitQuotes(
            "DESK-B",
            (
                MassQuoteEntry(rfqs[0], terms("99", "101")),
                MassQuoteEntry("RFQ-unknown", terms("99", "101")),
                MassQuoteEntry(rfqs[2], terms("98", "102")),
            ),
        )
        answers = quote_outcomes(command, first.submit(command))
        assert [isinstance(a, ev.QuoteAcknowledged) for a in answers] == [True, False, True]
        assert first.journal.rows == rows + 1  # the whole burst is one record
        first.journal.flush()
        crash(first)
        second = service(db, clock)
        assert second.engine.snapshot() == first.engine.snapshot()
        assert [q.quote.quote_id for q in second.engine.desk_live_quotes("DESK-B")] == [
            a.sealed.quote.quote_id for a in answers if isinstance(a, ev.QuoteAcknowledged)
        ]
        second.journal.close()


def test_a_mass_quote_replays_without_the_rfqs_that_have_left():
    """One row quotes two RFQs; one of them finishes and is archived. The replay applies the
    row to the one still open only, with exactly the ids its entry was given."""
    with journal_dir() as db:
        clock = Clock()
        archived: dict[str, object] = {}

        def keep(view, history):
            archived.setdefault(view.rfq.rfq_id, view)

        first = service(db, clock, archive=keep)
        rfqs = [
            next(
                e.rfq.rfq_id
                for e in first.submit(rfq_cmd(quote_req_id=f"QR-{n}"))
                if isinstance(e, ev.RfqAcknowledged)
            )
            for n in range(2)
        ]
        command = SubmitQuotes(
            "DESK-A",
            (
                MassQuoteEntry(rfqs[0], terms("99", "101")),
                MassQuoteEntry(rfqs[1], terms("98", "102")),
            ),
        )
        answers = quote_outcomes(command, first.submit(command))
        assert all(isinstance(a, ev.QuoteAcknowledged) for a in answers)
        first.submit(CancelRfq(CLIENT, rfqs[0]))  # finished: archived, its own rows forgotten
        assert rfqs[0] in archived and not first.engine.has_rfq(rfqs[0])
        rows = first.journal.rows
        first.journal.flush()
        crash(first)

        second = service(db, clock, archive=keep)
        assert not second.engine.has_rfq(rfqs[0])
        assert second.engine.rfq(rfqs[1]) == first.engine.rfq(rfqs[1])
        assert second.engine.live_quotes(rfqs[1]) == first.engine.live_quotes(rfqs[1])
        assert second.journal.rows == rows
        second.journal.close()
