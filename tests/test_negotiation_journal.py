"""The negotiation journal in process: a service that journals its engine's inputs, and a second
service on the same database that replays them, must hold the same negotiation.

The scripts are the property test's (``test_negotiation_properties``): random quotes, accepts,
counters, last looks, passes, cancels and waits against two RFQs, refused commands included.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec.messages import Side
from gateway.journal import JournalCorrupt, NegotiationJournal, ReplayDiverged, read_rows
from gateway.negotiation import NegotiationService, NegotiationUnavailable
from otc.negotiation import (
    ConfirmTrade,
    DeskKeyring,
    NegotiationConfig,
    NegotiationEngine,
    RoutingTable,
)
from otc.negotiation import events as ev
from otc.negotiation.commands import AcceptQuote, CancelRfq, SubmitQuote
from otc.negotiation.model import AcceptVia
from otc.negotiation.states import QuoteState, RfqState
from tests.test_negotiation_properties import actions, build, quote_action
from tests.test_negotiation_support import CLIENT, KEYS, ROUTES, T0, at, rfq_cmd, terms

CONFIG = NegotiationConfig(last_look_max_hold=timedelta(seconds=1))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


class Recorder:
    """A sink: every event, and ConfirmTrade for each trade (as trade booking answers)."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def __call__(self, events):
        self.events.extend(events)
        return [ConfirmTrade(e.trade.trade_id) for e in events if isinstance(e, ev.TradeCaptured)]


def service(directory, clock, *, archive=None, keys=None, sink=None) -> NegotiationService:
    journal = NegotiationJournal(directory)
    engine = NegotiationEngine(
        RoutingTable.from_config(ROUTES), DeskKeyring(keys or KEYS), CONFIG, ids=journal.ids
    )
    svc = NegotiationService(
        engine, sinks=[sink or Recorder()], clock=clock, archive=archive, journal=journal
    )
    svc.restore(ROUTES)
    return svc


def tick(svc: NegotiationService) -> None:
    """What the timer thread does at a deadline."""
    with svc.lock:
        svc._dispatch(svc._tick(svc.clock()))
        svc._after_dispatch()


@contextlib.contextmanager
def journal_dir():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "journal"


def crash(svc: NegotiationService) -> None:
    """The process dies: what was flushed is in the kernel, what was only buffered is lost."""
    svc.journal._buffer.clear()
    svc.journal.close()


def kinds(directory) -> list[str]:
    return [row.kind for row in read_rows(directory)]


class Remembering:
    """The engine as the script builder reads it, where quotes of archived RFQs are simply not
    held (the builder asks every quote it ever saw)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def quote(self, quote_id):
        try:
            return self.engine.quote(quote_id)
        except KeyError:
            return type("Gone", (), {"held_until": None})()


def run_script(svc, clock, script):
    """The property test's loop, through the service."""
    rfq_ids = []
    for n, expire in ((1, None), (2, T0 + timedelta(seconds=90))):
        acks = [
            e
            for e in svc.submit(rfq_cmd(quote_req_id=f"QR-{n}", expire_at=expire))
            if isinstance(e, ev.RfqAcknowledged)
        ]
        rfq_ids.append(acks[0].rfq.rfq_id)
    quotes, counters, trade_ids = [], [], []
    for action in script:
        clock.now += timedelta(milliseconds=action[1] if action[0] == "wait" else 100)
        command = build(
            Remembering(svc.engine), action, clock.now, rfq_ids, quotes, counters, trade_ids
        )
        events = svc.submit(command) if command is not None else []
        if command is None:
            tick(svc)
        for event in events:
            if isinstance(event, ev.QuoteToClient):
                quotes.append(event.sealed)
            elif isinstance(event, ev.CounterToDesk):
                counters.append(event.counter)
            elif isinstance(event, ev.TradeCaptured):
                trade_ids.append(event.trade.trade_id)
    return rfq_ids


scripts = st.tuples(
    st.lists(quote_action, min_size=1, max_size=4), st.lists(actions, min_size=5, max_size=30)
).map(lambda t: t[0] + t[1])


@settings(max_examples=150, deadline=None)
@given(scripts)
def test_a_replay_rebuilds_exactly_the_same_engine(script):
    """Without archiving nothing is compacted: the replayed engine equals the original in every
    record, index, id counter, timer and history."""
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        run_script(first, clock, script)
        crash(first)
        second = service(db, clock)
        # Timers that fired without an event are not journalled (they change nothing a later
        # call would not change the same way): tick both to the same time before comparing.
        assert second.engine.tick(clock.now) == first.engine.tick(clock.now)
        assert second.engine.snapshot() == first.engine.snapshot()
        second.journal.close()


@settings(max_examples=100, deadline=None)
@given(scripts)
def test_with_archiving_the_replay_keeps_open_business_and_only_that(script):
    with journal_dir() as db:
        clock = Clock()
        archived: dict[str, tuple] = {}
        first = service(
            db,
            clock,
            archive=lambda view, history: archived.setdefault(view.rfq.rfq_id, (view, history)),
        )
        rfq_ids = run_script(first, clock, script)
        live = [r for r in rfq_ids if r not in archived]
        rows = first.journal.rows
        crash(first)
        second = service(
            db,
            clock,
            archive=lambda view, history: archived.setdefault(view.rfq.rfq_id, (view, history)),
        )
        assert second.engine.tick(clock.now) == first.engine.tick(clock.now)  # as above
        before = {
            r: (first.engine.rfq(r), first.engine.history(r), first.engine.live_quotes(r))
            for r in live
        }
        after = {
            r: (second.engine.rfq(r), second.engine.history(r), second.engine.live_quotes(r))
            for r in live
        }
        assert after == before
        assert second.engine.snapshot().timers == first.engine.snapshot().timers
        assert set(second.engine.snapshot().rfqs) == set(live)
        # the journal holds only rows that touched an open RFQ
        assert second.journal.rows == rows
        if not live:
            assert second.journal.rows == 0
        second.journal.close()


def test_finished_rfqs_leave_the_journal_and_are_not_replayed():
    with journal_dir() as db:
        clock = Clock()
        saved = []
        first = service(db, clock, archive=lambda view, history: saved.append(view.rfq.rfq_id))
        for n in range(20):  # twenty RFQs quoted and cancelled, one left open
            clock.now += timedelta(seconds=1)
            rfq_id = first.submit(rfq_cmd(quote_req_id=f"done-{n}"))[-1].rfq.rfq_id
            first.submit(SubmitQuote("DESK-A", rfq_id, terms("0.04", "0.05", now=clock.now)))
            first.submit(CancelRfq(CLIENT, rfq_id))
        open_id = [
            e
            for e in first.submit(rfq_cmd(quote_req_id="open"))
            if isinstance(e, ev.RfqAcknowledged)
        ][0].rfq.rfq_id
        assert len(saved) == 20
        first.stop()  # a clean stop commits the last deletions
        second = service(db, clock, archive=lambda view, history: saved.append(view.rfq.rfq_id))
        # kept: the boot the open RFQ's submission ran under, that submission, this boot
        assert kinds(db) == ["boot", "handle", "boot"]
        assert set(second.engine.snapshot().rfqs) == {open_id}
        assert len(saved) == 20
        second.journal.close()


def test_a_long_journal_is_compacted_as_the_day_goes_on():
    with journal_dir() as db:
        clock = Clock()
        journal = NegotiationJournal(db, segment_bytes=4096)
        engine = NegotiationEngine(
            RoutingTable.from_config(ROUTES), DeskKeyring(KEYS), CONFIG, ids=journal.ids
        )
        first = NegotiationService(
            engine,
            sinks=[Recorder()],
            clock=clock,
            journal=journal,
            archive=lambda view, history: None,
        )
        first.restore(ROUTES)
        open_id = first.submit(rfq_cmd(quote_req_id="open"))[-1].rfq.rfq_id
        for n in range(60):
            clock.now += timedelta(seconds=1)
            rfq_id = first.submit(rfq_cmd(quote_req_id=f"done-{n}"))[-1].rfq.rfq_id
            first.submit(SubmitQuote("DESK-B", rfq_id, terms("0.04", "0.05", now=clock.now)))
            first.submit(CancelRfq(CLIENT, rfq_id))
        first.journal.close()  # waits for the fsync thread, which deletes after its fsync
        # compacted as it went: only the rows the open RFQ needs were carried along
        assert journal.written > 240 and journal.compactions >= 3
        assert len(list(db.glob("seg-*.jsonl"))) == 1
        assert len(read_rows(db)) < 4096 // 100
        second = service(db, clock)
        assert set(second.engine.snapshot().rfqs) == {open_id}
        second.journal.close()


def test_a_crash_before_the_deletions_were_committed_archives_again_and_compacts():
    with journal_dir() as db:
        clock = Clock()
        saved = []
        first = service(db, clock, archive=lambda view, history: saved.append(view.rfq.rfq_id))
        rfq_id = first.submit(rfq_cmd())[-1].rfq.rfq_id
        first.submit(CancelRfq(CLIENT, rfq_id))  # archived; the row saying so is not written
        assert saved == [rfq_id]
        crash(first)
        assert kinds(db) == ["boot", "handle", "handle"]
        second = service(db, clock, archive=lambda view, history: saved.append(view.rfq.rfq_id))
        assert saved == [rfq_id, rfq_id]  # saved again (the archive keeps its first copy)
        assert second.engine.snapshot().rfqs == {}
        assert kinds(db) == ["boot"]
        second.journal.close()


def test_what_expired_while_down_goes_out_at_start_at_its_own_deadline():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        rfq_id = first.submit(rfq_cmd(expire_at=at(60)))[-1].rfq.rfq_id
        quoted = first.submit(
            SubmitQuote("DESK-A", rfq_id, terms("0.04", "0.05", valid_for=5, now=clock.now))
        )
        sealed = [e for e in quoted if isinstance(e, ev.QuoteToClient)][0].sealed
        first.journal.close()
        clock.now = at(120)  # down for two minutes
        recorder = Recorder()
        second = service(db, clock, sink=recorder)
        assert second.engine.quote(sealed.quote.quote_id).state is QuoteState.ACTIVE
        assert recorder.events == []  # a replay tells no one
        second.start()
        try:
            expired = [e for e in recorder.events if isinstance(e, ev.QuoteStatusChanged)]
            assert [(e.quote_id, e.at) for e in expired] == [(sealed.quote.quote_id, at(5))]
            ended = [e for e in recorder.events if isinstance(e, ev.RfqEnded)]
            assert [(e.rfq_id, e.state, e.at) for e in ended] == [
                (rfq_id, RfqState.EXPIRED, at(60))
            ]
            assert {e.desk_id for e in recorder.events if isinstance(e, ev.RfqWithdrawn)} == {
                "DESK-A",
                "DESK-B",
                "DESK-C",
            }
        finally:
            second.stop()
        third = service(db, clock, sink=Recorder())  # the expiry was journalled: not told twice
        third.start()
        third.stop()
        assert not third.engine.snapshot().timers


def test_a_new_boot_gives_new_ids_even_within_the_same_second():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        one = first.submit(rfq_cmd(quote_req_id="a"))[-1].rfq.rfq_id
        first.journal.close()
        second = service(db, clock)  # same clock second
        two = second.submit(rfq_cmd(quote_req_id="b"))[-1].rfq.rfq_id
        assert one != two and second.journal.boot > first.journal.boot
        # the first RFQ kept its id through the replay, and its QuoteReqID is still taken
        assert second.engine.rfq(one).rfq.quote_req_id == "a"
        refused = second.submit(rfq_cmd(quote_req_id="a"))
        assert isinstance(refused[-1], ev.QuoteRequestRejected)
        second.journal.close()


def test_refused_commands_are_not_journalled_as_commands():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        first.submit(rfq_cmd(quote_req_id="a"))
        first.submit(rfq_cmd(quote_req_id="a"))  # duplicate: refused
        first.submit(CancelRfq(CLIENT, "no-such-rfq"))
        assert kinds(db) == ["boot", "handle"]
        first.journal.close()


def test_a_desk_that_lost_its_key_stops_the_replay_with_the_entry_named():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        rfq_id = first.submit(rfq_cmd())[-1].rfq.rfq_id
        first.submit(SubmitQuote("DESK-A", rfq_id, terms("0.04", "0.05", now=clock.now)))
        first.journal.close()
        keys = {d: k for d, k in KEYS.items() if d != "DESK-A"}
        with pytest.raises(ReplayDiverged, match="row 3 .*does not replay"):
            service(db, clock, keys=keys)


def test_when_the_journal_cannot_be_written_nothing_is_acted_on_and_nothing_more_taken():
    with journal_dir() as db:
        clock = Clock()
        recorder = Recorder()
        svc = service(db, clock, sink=recorder)
        os.close(svc.journal._fd)  # every write fails now
        with pytest.raises(NegotiationUnavailable):
            svc.submit(rfq_cmd())
        assert recorder.events == []  # no one was told of an RFQ a restart would not know
        with pytest.raises(NegotiationUnavailable):
            svc.submit(rfq_cmd(quote_req_id="again"))
        svc.journal.close()
        again = service(db, clock)
        assert again.engine.snapshot().rfqs == {}
        again.journal.close()


def test_a_torn_last_line_is_left_out_and_a_bad_line_inside_is_refused():
    with journal_dir() as db:
        clock = Clock()
        first = service(db, clock)
        rfq_id = first.submit(rfq_cmd())[-1].rfq.rfq_id
        first.journal.close()
        (segment,) = db.glob("seg-*.jsonl")
        whole = segment.read_bytes()
        segment.write_bytes(whole + b'{"seq":99,"boot":"x","ki')  # a write a power cut stopped
        second = service(db, clock)
        assert set(second.engine.snapshot().rfqs) == {rfq_id}
        second.journal.close()
        (segment,) = db.glob("seg-*.jsonl")
        lines = segment.read_bytes().split(b"\n")
        segment.write_bytes(b"\n".join([lines[0], b"not a row", *lines[1:]]))
        with pytest.raises(JournalCorrupt, match="line 2 is not a journal row"):
            read_rows(db)


def test_one_gateway_process_per_journal():
    with journal_dir() as db:
        first = NegotiationJournal(db)
        with pytest.raises(RuntimeError, match="in use by another gateway process"):
            NegotiationJournal(db)
        first.close()
        NegotiationJournal(db).close()


def test_a_fill_not_yet_booked_when_the_process_died_is_booked_and_reported_at_start():
    """The acceptance's row was written, then the process died before the trade was booked
    (TradeBooking answers ConfirmTrade only once it is stored): the start-up sends the
    TradeCaptured again, booking confirms it, and the RFQ finishes."""
    with journal_dir() as db:
        clock = Clock()
        died = []  # a sink that sees the events, then the process dies: no ConfirmTrade
        first = service(db, clock, sink=lambda events: died.extend(events))
        rfq_id = first.submit(rfq_cmd())[-1].rfq.rfq_id
        quoted = first.submit(SubmitQuote("DESK-A", rfq_id, terms("0.04", "0.05", now=clock.now)))
        sealed = [e for e in quoted if isinstance(e, ev.QuoteToClient)][0].sealed
        first.submit(
            AcceptQuote(
                CLIENT,
                sealed.quote.quote_id,
                "ORD-1",
                AcceptVia.NEW_ORDER,
                Side.BUY,
                sealed.quote_hash,
            )
        )
        (traded,) = [e for e in died if isinstance(e, ev.TradeCaptured)]
        crash(first)
        archived = []
        recorder = Recorder()
        second = service(
            db,
            clock,
            sink=recorder,
            archive=lambda view, history: archived.append((view.rfq.rfq_id, view.state)),
        )
        assert second.engine.rfq(rfq_id).state is RfqState.FILLED
        second.start()
        second.stop()
        assert [e for e in recorder.events if isinstance(e, ev.TradeCaptured)] == [traded]
        assert archived == [(rfq_id, RfqState.CONFIRMED)]


def test_after_stop_commands_are_refused_not_half_done():
    with journal_dir() as db:
        recorder = Recorder()
        svc = service(db, Clock(), sink=recorder)
        svc.start()
        svc.stop()  # the FIX sessions are logged out after this: a late RFQ can still arrive
        with pytest.raises(NegotiationUnavailable, match="shutting down"):
            svc.submit(rfq_cmd())
        assert recorder.events == []
