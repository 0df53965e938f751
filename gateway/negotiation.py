"""The negotiation edge: one lock around the sans-IO NegotiationEngine, a timer thread, and the
fan-out of its events to FIX clients, desk streams, the database and the audit log.

The web API reads the negotiation through named queries (:meth:`NegotiationService.desk_rfqs`,
:meth:`~NegotiationService.desk_rfq`, :meth:`~NegotiationService.rfq_history`, ...): each takes
the lock once and returns the engine's immutable views, which the caller renders after the lock
is released."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import Config, DeskProtectionSection
from gateway.journal import (
    BOOT,
    GUARD,
    HANDLE,
    JournalEntry,
    JournalFailed,
    NegotiationJournal,
    ReplayDiverged,
)
from otc.negotiation import events as ev
from otc.negotiation.command_json import command_from_json, command_to_json
from otc.negotiation.commands import (
    AcceptQuote,
    CancelRfq,
    Command,
    PullCause,
    PullDeskQuotes,
    SubmitQuotes,
    SubmitRfq,
)
from otc.negotiation.engine import NegotiationConfig, NegotiationEngine, RfqView
from otc.negotiation.errors import RejectReason
from otc.negotiation.ids import IdFactory, sequential_ids
from otc.negotiation.model import Rfq, SealedQuote
from otc.negotiation.protection import (
    DeskGuard,
    ProtectionLimits,
    guard_from_json,
    guard_to_json,
)
from otc.negotiation.routing import RoutingTable
from otc.negotiation.signing import DeskKeyring
from otc.negotiation.states import TERMINAL_RFQ_STATES, RfqState
from otc.negotiation.stats import DeskLastLookStats, last_look_stats
from otc.rfq_risk import RfqRiskGate, order_terms

log = logging.getLogger("fixbridge.otc")

# A sink sees every batch of events, in order, with the lock held. It may answer with commands
# to run once the batch is dispatched (a trade stored with its clearing message: ConfirmTrade).
Sink = Callable[[list[ev.Event]], Iterable[Command] | None]
# Where finished RFQs go, with their history, before they leave the engine's memory.
Archive = Callable[[RfqView, tuple[ev.Event, ...]], None]


def load_desk_keys(keys_dir: Path, desks: Iterable[str]) -> DeskKeyring:
    """Each desk's Ed25519 signing key from ``keys_dir``, created (mode 0600) when missing."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = {}
    for desk in desks:
        path = keys_dir / f"{desk}.ed25519.pem"
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "wb") as f:
                f.write(pem)
            log.info("created signing key for desk %s in %s", desk, path)
        keys[desk] = path.read_bytes()
    return DeskKeyring.from_pem(keys)


def protection_limits(
    sections: Mapping[str, DeskProtectionSection],
) -> dict[str, ProtectionLimits]:
    """``[otc.protection]`` as the engine's limits, by desk id (or "*")."""
    return {
        desk: ProtectionLimits(
            timedelta(milliseconds=p.window_ms),
            p.max_fills,
            Decimal(p.max_notional) if p.max_notional is not None else None,
        )
        for desk, p in sections.items()
    }


def engine_for(
    config: Config, keyring: DeskKeyring | None, ids: IdFactory | None = None
) -> NegotiationEngine:
    """The engine for ``config``; ids from ``ids`` (the journal's), else prefixed with the boot
    time."""
    otc = config.otc
    boot = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return NegotiationEngine(
        RoutingTable.from_config(otc.routing),
        keyring,
        NegotiationConfig(
            rfq_ttl=timedelta(seconds=otc.rfq_ttl_seconds),
            max_rfq_ttl=timedelta(seconds=otc.max_rfq_ttl_seconds),
            last_look_max_hold=timedelta(milliseconds=otc.last_look_max_hold_ms),
            send_cover=otc.send_cover,
        ),
        ids=ids or sequential_ids(prefix=f"{boot}-"),
        protection=protection_limits(otc.protection),
    )


def _settings_json(config: NegotiationConfig, routing: dict[str, Any]) -> dict[str, Any]:
    """What a journal boot row records: the configuration the commands after it ran under."""
    us = timedelta(microseconds=1)
    return {
        "negotiation": {
            "rfq_ttl_us": config.rfq_ttl // us,
            "max_rfq_ttl_us": config.max_rfq_ttl // us,
            "last_look_max_hold_us": config.last_look_max_hold // us,
            "send_cover": config.send_cover,
        },
        "routing": routing,
    }


def _settings_of(boot: dict[str, Any]) -> tuple[RoutingTable, NegotiationConfig]:
    n = boot["negotiation"]
    return RoutingTable.from_config(boot["routing"]), NegotiationConfig(
        rfq_ttl=timedelta(microseconds=n["rfq_ttl_us"]),
        max_rfq_ttl=timedelta(microseconds=n["max_rfq_ttl_us"]),
        last_look_max_hold=timedelta(microseconds=n["last_look_max_hold_us"]),
        send_cover=n["send_cover"],
    )


class NegotiationUnavailable(RuntimeError):
    """The negotiation journal failed: no command is taken until the gateway restarts."""


class NegotiationService:
    """Serialises commands into the engine and hands every resulting event to the sinks.

    Races ("whichever is processed first wins") are decided by the order in which commands take
    the lock. The timer thread ticks the engine at its next deadline, so expiries and last-look
    timeouts happen on time even when no command arrives.

    ``gate`` refuses commands that breach pre-trade risk before the engine sees them (none: no
    check); ``archive`` receives each finished RFQ, which then leaves memory (none: RFQs stay).

    An RFQ that does not say whether it discloses the client takes ``disclose_clients``; an
    anonymous one gets a random alias here (kept with the command in the journal, so a replay
    gives it the same one): unguessable, and different for every RFQ.

    ``journal`` records every engine call that changed something, committed before its events
    reach any sink; :meth:`restore` replays it at start-up and :meth:`start` then tells everyone
    what happened while the gateway was down. None: open business lives in memory only (tests,
    benchmarks). If the journal cannot be written the service stops taking commands
    (:class:`NegotiationUnavailable`) rather than act on what a restart would not know.
    """

    def __init__(
        self,
        engine: NegotiationEngine,
        sinks: list[Sink],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        gate: RfqRiskGate | None = None,
        archive: Archive | None = None,
        journal: NegotiationJournal | None = None,
        disclose_clients: bool = True,
    ) -> None:
        self.engine = engine
        self.disclose_clients = disclose_clients
        self.journal = journal
        self._failed = False
        self._closed = False
        self.sinks = sinks
        self.clock = clock
        self.gate = gate
        self.archive = archive
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self._stopping = False
        # RFQs in memory per desk and per client (insertion-ordered; archived ones leave)
        self._rfqs_by_desk: dict[str, dict[str, None]] = defaultdict(dict)
        self._rfqs_by_client: dict[str, dict[str, None]] = defaultdict(dict)
        self._by_request: dict[tuple[str, str], str] = {}
        self._deferred: list[Command] = []  # submitted once the current dispatch is done
        self._last_look: list[ev.Event] = []  # kept after archiving, for the statistics
        # acceptances held in last look when the journal was replayed: the FIX edge echoes
        # their Side and size when the hold ends (it no longer has the client's message)
        self._restored_acceptances: dict[tuple[str, str], AcceptQuote] = {}
        self._timer = threading.Thread(target=self._run_timers, name="otc-timers", daemon=True)

    def start(self) -> None:
        """Start the timers; with a journal, first settle what happened while the gateway was
        down (see :meth:`_catch_up`), so the caller can do that before clients connect."""
        if self.journal is not None:
            with self.lock:
                self._catch_up()
        self._timer.start()

    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            self._wake.notify_all()
        if self._timer.ident is not None:
            self._timer.join(5)
        if self.journal is not None:
            with self.lock:
                self._closed = True  # what still arrives (the FIX sessions log out next) is refused
                try:
                    self.journal.close()  # the last archived rows, fsynced
                except (JournalFailed, OSError):
                    log.exception("negotiation journal: closing failed")

    def submit(self, command: Command) -> list[ev.Event]:
        if isinstance(command, SubmitRfq):
            command = self._with_disclosure(command)
        with self.lock:
            self._require_journal()
            refused = (
                self.gate.check(command, time.monotonic(), self._acceptance_terms)
                if self.gate is not None
                else None
            )
            if refused is not None:
                events = self._refuse(command, *refused, self.clock())
            else:
                events = self._handle(command, self.clock())
            self._dispatch(events)
            self._after_dispatch()
            self._wake.notify_all()  # a new deadline may be earlier than the one waited for
        return events

    def _with_disclosure(self, command: SubmitRfq) -> SubmitRfq:
        disclosed = self.disclose_clients if command.disclosed is None else command.disclosed
        alias = None if disclosed else f"ANON-{secrets.token_hex(8).upper()}"
        return replace(command, disclosed=disclosed, alias=alias)

    def pull_desk_quotes(self, desk_id: str, cause: PullCause) -> int:
        """Take the desk's live quotes out of the market (cancel-on-disconnect); how many."""
        events = self.submit(PullDeskQuotes(desk_id, cause))
        return sum(1 for e in events if isinstance(e, ev.QuoteStatusChanged))

    # -- named queries for the web API: one lock each, immutable views out -------------------

    def desk_guard(self, desk_id: str) -> DeskGuard:
        """The desk's market maker protection state."""
        with self.lock:
            return self.engine.guard(desk_id)

    def client_alias(self, rfq_id: str | None) -> tuple[str, str] | None:
        """(client id, alias) of an anonymous RFQ in memory: what a desk must not see and what
        it sees instead; None for a disclosed or unknown one."""
        if rfq_id is None:
            return None
        with self.lock:
            try:
                rfq = self.engine.rfq(rfq_id).rfq
            except KeyError:
                return None
        return None if rfq.disclosed or rfq.alias is None else (rfq.client_id, rfq.alias)

    def desk_rfqs(
        self, desk_id: str, state: str | None, limit: int
    ) -> list[tuple[RfqView, tuple[SealedQuote, ...]]]:
        """Live RFQs routed to ``desk_id``, newest first, at most ``limit`` of them, optionally
        only those in ``state``, each with the desk's own live quotes on it."""
        with self.lock:
            out: list[tuple[RfqView, tuple[SealedQuote, ...]]] = []
            for rfq_id in reversed(list(self._rfqs_by_desk.get(desk_id, {}))):
                if len(out) >= limit:
                    break
                view = self.engine.rfq(rfq_id)
                if state is None or view.state.value == state:
                    out.append((view, self.engine.desk_live_quotes(desk_id, rfq_id)))
            return out

    def desk_rfq(self, desk_id: str, rfq_id: str) -> tuple[RfqView, tuple[SealedQuote, ...]] | None:
        """A live RFQ (routed to any desk: the caller checks) with ``desk_id``'s live quotes on
        it; None if it is not in memory."""
        with self.lock:
            try:
                view = self.engine.rfq(rfq_id)
            except KeyError:
                return None
            return view, self.engine.desk_live_quotes(desk_id, rfq_id)

    def rfq_history(self, rfq_id: str) -> tuple[RfqView, tuple[ev.Event, ...]] | None:
        """A live RFQ with its whole negotiation history; None once archived or unknown."""
        with self.lock:
            try:
                return self.engine.rfq(rfq_id), self.engine.history(rfq_id)
            except KeyError:
                return None

    def public_key_pem(self, desk_id: str) -> bytes | None:
        """The desk's Ed25519 public key (PEM); None for a desk without a signing key."""
        keyring = self.engine.keyring
        if keyring is None or desk_id not in keyring:
            return None
        return keyring.public_key_pem(desk_id)

    def last_look_stats(self) -> dict[str, DeskLastLookStats]:
        with self.lock:
            return last_look_stats(self._last_look)

    def _after_dispatch(self) -> None:
        while self._deferred:
            command = self._deferred.pop(0)
            self._dispatch(self._handle(command, self.clock()))

    def _archive(self, events: list[ev.Event]) -> None:
        """Finished RFQs go to the archive and out of the engine's memory."""
        if self.archive is None:
            return
        for event in events:
            if isinstance(event, ev.RfqStateChanged) and event.to_state in TERMINAL_RFQ_STATES:
                self._archive_rfq(event.rfq_id)

    def _archive_rfq(self, rfq_id: str) -> None:
        assert self.archive is not None
        view = self.engine.rfq(rfq_id)
        history = self.engine.history(rfq_id)
        try:
            self.archive(view, history)
        except Exception:  # keep it in memory (and journalled): a restart archives it
            log.exception("archiving RFQ %s failed; it stays in memory", rfq_id)
            return
        self.engine.archive(rfq_id)
        if self.journal is not None:
            self.journal.forget(rfq_id)
        for desk in view.desk_ids:
            self._rfqs_by_desk[desk].pop(rfq_id, None)
        self._rfqs_by_client[view.rfq.client_id].pop(rfq_id, None)
        self._by_request.pop((view.rfq.client_id, view.rfq.quote_req_id), None)

    # -- gateway.fix.rfq_inbound.RfqLookup: what a FIX message names but does not carry ---

    def rfq_of_quote(self, client_id: str, quote_id: str) -> str | None:
        with self.lock:
            try:
                quote = self.engine.quote(quote_id).sealed.quote
            except KeyError:
                return None
            return quote.rfq_id if quote.client_id == client_id else None

    def rfq_of_request(self, client_id: str, quote_req_id: str) -> str | None:
        with self.lock:
            return self._by_request.get((client_id, quote_req_id))

    def rfq_record(self, rfq_id: str | None) -> Rfq | None:
        """The RFQ an event belongs to (call from a sink: the lock is held)."""
        if rfq_id is None:
            return None
        try:
            return self.engine.rfq(rfq_id).rfq
        except KeyError:
            return None

    def _acceptance_terms(self, cmd: AcceptQuote):
        try:
            quote = self.engine.quote(cmd.quote_id).sealed.quote
            rfq = self.engine.rfq(quote.rfq_id).rfq
        except KeyError:
            return None
        price = quote.price_for(cmd.side)
        if price is None:
            return None
        return order_terms(rfq.priced_legs[0].instrument, cmd.quantity or rfq.quantity, abs(price))

    def cancel_client_rfqs(self, client_id: str | None, reason: str) -> int:
        """Withdraw every open RFQ of ``client_id`` (all clients for None): the kill switch."""
        with self.lock:
            self._require_journal()
            clients = [client_id] if client_id else list(self._rfqs_by_client)
            n = 0
            for client in clients:
                for rfq_id in list(self._rfqs_by_client.get(client, {})):
                    try:
                        state = self.engine.rfq(rfq_id).state
                    except KeyError:
                        continue
                    if state not in (RfqState.OPEN, RfqState.QUOTED, RfqState.NEGOTIATING):
                        continue  # finished, or a fill already in flight
                    events = self._handle(CancelRfq(client, rfq_id), self.clock())
                    self._dispatch(events)
                    n += 1
            log.warning("kill switch (%s): withdrew %d open RFQs", reason, n)
            return n

    def _dispatch(self, events: list[ev.Event]) -> None:
        if self.journal is not None:  # what a restart must know, before anyone is told
            try:
                self.journal.flush()
            except JournalFailed as exc:
                self._failed = True
                log.critical(
                    "negotiation journal failed: taking no more commands until a "
                    "restart; the last call's events were not acted on"
                )
                raise NegotiationUnavailable(str(exc)) from exc
        self._track(events)
        for event in events:  # the core trips; its pull runs next, before anything else
            if isinstance(event, ev.DeskProtectionTripped):
                self._deferred.append(PullDeskQuotes(event.desk_id, PullCause.PROTECTION))
        for sink in self.sinks:
            try:
                follow_up = sink(events)
            except Exception:  # one failing edge must not starve the others
                log.exception("negotiation sink %r failed", sink)
                continue
            if follow_up:
                self._deferred.extend(follow_up)
        self._archive(events)

    def _track(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.LastLookRequested | ev.LastLookResolved):
                self._last_look.append(event)
            if isinstance(event, ev.RfqToDesk):
                self._rfqs_by_desk[event.desk_id][event.rfq.rfq_id] = None
            elif isinstance(event, ev.RfqAcknowledged):
                self._rfqs_by_client[event.client_id][event.rfq.rfq_id] = None
                self._by_request[(event.client_id, event.rfq.quote_req_id)] = event.rfq.rfq_id

    def _run_timers(self) -> None:
        with self.lock:
            while not self._stopping and not self._failed:
                due = self.engine.next_deadline()
                now = self.clock()
                if due is not None and due <= now:
                    try:
                        self._dispatch(self._tick(now))
                        self._after_dispatch()
                    except NegotiationUnavailable:
                        return  # logged by _dispatch; timers stop with the commands
                    continue
                timeout = None if due is None else (due - now).total_seconds()
                self._wake.wait(timeout if timeout is None else max(timeout, 0.001))

    # -- the journal: every engine call that changed something, replayed at start-up ---------

    def _require_journal(self) -> None:
        if self._failed:
            raise NegotiationUnavailable("the negotiation journal failed; restart the gateway")
        if self._closed:
            raise NegotiationUnavailable("the gateway is shutting down")

    def _handle(self, command: Command, now: datetime) -> list[ev.Event]:
        journal = self.journal
        if journal is None:
            events = self.engine.handle(command, now)
            self.engine.take_guard_changes()
            return events
        encoded = command_to_json(command)  # one that could not be replayed is never applied
        fired = self.engine.tick(now)  # the timers due first, journalled on their own
        journal.ticked(now, fired)
        journal.ids.given.clear()
        if isinstance(command, SubmitQuotes):
            marks: list[int] = []
            given = journal.ids.given
            events, changed = self.engine.handle_quotes(
                command, now, lambda: marks.append(len(given))
            )
            if changed:
                counts = [b - a for a, b in zip([0, *marks], marks, strict=False)]
                journal.handled(now, encoded, events, counts)
            return fired + events if fired else events
        events, changed = self.engine.handle_checked(command, now)
        if changed:  # a refusal or an answer from what the engine knew is not replayed
            journal.handled(now, encoded, events)
        for desk_id, guard in self.engine.take_guard_changes().items():
            journal.guard(now, desk_id, guard_to_json(guard))
        return fired + events if fired else events

    def _refuse(
        self, command: Command, reason: RejectReason, text: str, now: datetime
    ) -> list[ev.Event]:
        events = self.engine.refuse(command, reason, text, now)
        if self.journal is not None:
            self.journal.ticked(now, events[:-1])
        return events

    def _tick(self, now: datetime) -> list[ev.Event]:
        events = self.engine.tick(now)
        if self.journal is not None:
            self.journal.ticked(now, events)
        return events

    def restore(self, routing: dict[str, Any]) -> int:
        """Rebuild open business from the journal, telling no one (the sinks are not called),
        then start this boot's stretch of the journal with the engine's configuration and
        ``routing`` (its raw form). Finished RFQs the replay meets (archived, but the journal
        did not say so before the process ended) are archived again (the archive keeps the
        first copy), and the journal keeps only what open RFQs need. Returns the number of
        rows replayed. Call before :meth:`start`, before anything connects."""
        journal = self.journal
        assert journal is not None, "restore needs a journal"
        with self.lock:
            current = self.engine.routing, self.engine.config
            protection = self.engine.protection
            self.engine.set_protection({})  # guards come back from their own rows
            entries = journal.load()
            for entry in entries:
                try:
                    events = self._replay(entry)
                except (ReplayDiverged, ValueError, KeyError, TypeError) as exc:
                    raise ReplayDiverged(
                        f"negotiation journal row {entry.seq} ({entry.kind} at "
                        f"{entry.at.isoformat()}) does not replay: {exc}. The engine or its "
                        "configuration (desks, keys) changed in a way open business cannot "
                        "follow"
                    ) from exc
                self._track(events)
                journal.index(entry, events)
            self.engine.reconfigure(*current)
            self.engine.set_protection(protection)
            self.engine.take_guard_changes()
            if self.archive is not None:
                for rfq_id in [r for rfqs in self._rfqs_by_client.values() for r in rfqs]:
                    if self.engine.rfq(rfq_id).state in TERMINAL_RFQ_STATES:
                        self._archive_rfq(rfq_id)
            journal.begin_boot(self.clock(), _settings_json(current[1], routing))
            live = sum(len(rfqs) for rfqs in self._rfqs_by_client.values())
            log.info(
                "negotiation journal: %d rows replayed, %d RFQs open, id prefix %s",
                len(entries),
                live,
                journal.boot,
            )
            return len(entries)

    def _replay(self, entry: JournalEntry) -> list[ev.Event]:
        if entry.kind == BOOT:
            self.engine.reconfigure(*_settings_of(entry.payload))
            return []
        if entry.kind == GUARD:
            self.engine.restore_guard(
                entry.payload["desk_id"], guard_from_json(entry.payload["guard"])
            )
            return []
        if entry.kind != HANDLE:
            return self.engine.tick(entry.at)
        assert self.journal is not None
        command = command_from_json(entry.payload["command"])
        ids = entry.payload["ids"]
        partial = False
        if isinstance(command, SubmitQuotes) and "entry_ids" in entry.payload:
            command, ids = self._still_open(command, ids, entry.payload["entry_ids"])
            partial = len(command.quotes) < len(entry.payload["entry_ids"])
        self.journal.ids.replaying(ids)
        events, changed = self.engine.handle_checked(command, entry.at)
        self.journal.ids.replayed()
        if not changed and not partial:
            raise ReplayDiverged(f"{type(command).__name__} changed nothing: {events[-1:]}")
        if isinstance(command, AcceptQuote) and any(
            isinstance(e, ev.AcceptancePending) for e in events
        ):
            self._restored_acceptances[(command.client_id, command.client_ref)] = command
        return events

    def _still_open(
        self, command: SubmitQuotes, ids: list[list[str]], counts: list[int]
    ) -> tuple[SubmitQuotes, list[list[str]]]:
        """A journalled mass quote without the entries on RFQs that have left the engine (the
        row stays while any of its RFQs is open; the others' rows were not replayed), with the
        ids only the remaining entries asked for. Entries are independent: each touches its
        own RFQ only, so the rest replay as they ran."""
        if len(counts) != len(command.quotes) or sum(counts) != len(ids):
            raise ReplayDiverged("a mass quote's ids do not add up to its entries")
        kept, kept_ids, at = [], [], 0
        for quote, n in zip(command.quotes, counts, strict=True):
            if self.engine.has_rfq(quote.rfq_id):
                kept.append(quote)
                kept_ids.extend(ids[at : at + n])
            at += n
        return SubmitQuotes(command.desk_id, tuple(kept)), kept_ids

    def restored_acceptance(self, client_id: str, client_ref: str) -> AcceptQuote | None:
        """The acceptance ``client_ref`` of ``client_id`` if it was replayed from the journal
        into a last-look hold (call from a sink: the lock is held)."""
        return self._restored_acceptances.get((client_id, client_ref))

    def _catch_up(self) -> None:
        """After a restore: settle what the last run left unfinished and what fell due while
        the gateway was down, telling every sink as usual.

        A trade captured but never confirmed may have died with the process before it was
        booked and reported: its TradeCaptured goes out again (booking is exactly-once by trade
        id and answers ConfirmTrade; the client gets the fill, the desk the trade notice --
        again, if they had them). Then one tick at the real time: quotes, RFQs and last-look
        holds that expired while down expire now, at their own deadlines, with the usual
        messages (QuoteStatusReport, AcceptanceRejected, RfqWithdrawn, ...)."""
        for rfq_id in [r for rfqs in self._rfqs_by_client.values() for r in rfqs]:
            if self.engine.rfq(rfq_id).state is RfqState.FILLED:
                history = self.engine.history(rfq_id)
                captured: list[ev.Event] = [e for e in history if isinstance(e, ev.TradeCaptured)]
                log.warning(
                    "RFQ %s was filled but not confirmed before the restart: "
                    "booking and reporting its trade again",
                    rfq_id,
                )
                self._dispatch(captured)
                self._after_dispatch()
        self._dispatch(self._tick(self.clock()))
        self._after_dispatch()
