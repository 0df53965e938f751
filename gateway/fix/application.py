"""The QuickFIX Application: translate, hand to the core, send back what the core says.

QuickFIX calls these methods on its own thread. They never let an exception escape except the
ones QuickFIX defines for answering (RejectLogon, UnsupportedMessageType), so the session layer
answers exactly as it would without us.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import quickfix as fix

from fixspec import codec
from fixspec import messages as m
from gateway.admission import Admission
from gateway.config import Config
from gateway.fix import allocations, rfq_inbound, rfq_outbound, trade_amendments
from gateway.fix.convert import OutboundBuilder
from gateway.fix.drop_copy import DropCopy, copy_of
from gateway.fix.front import Peer, PeerRegistry
from gateway.fix.trade_reports import TradeReports
from gateway.logon import LogonAttempt, LogonPolicy
from gateway.metrics import REJECT_REASON_TAG, FixMetrics
from gateway.negotiation import NegotiationService
from gateway.store.orders import OrderHistory
from gateway.store.sessions import SessionEvent
from gateway.store.writer import Writer
from gateway.trade_capture import PreAllocations
from otc.negotiation import events as ev
from otc.negotiation.model import AcceptVia
from otc.orders import ClOrdIdUsed, History, Order, OrderManager, OrderUpdated, Send
from otc.risk import Throttle, ThrottleVerdict
from otc.trade_versions import CorrectionRefused, RefusalReason, TradeVersion
from otc.trades import Allocation

log = logging.getLogger("fixbridge.fix")
ORDER_TYPES = frozenset(codec.DECODERS)
RFQ_TYPES = frozenset({"R", "AJ", "Z"})
# refused while the admission gate is closed (a drain, the audit trail or the database unable to
# make records durable); cancels, status requests and quote cancels pass
NEW_BUSINESS = frozenset({"D", "G", "AB", "R", "AJ"})
CLIENT_AUDIENCES = frozenset({ev.Audience.CLIENT, ev.Audience.PARTIES})

CoreObserver = Callable[[list], None]  # every batch of order-core events (the audit log)
SessionObserver = Callable[[str, str, str | None, str | None], None]  # comp_id, event, peer, text
# told when an application message has been handled on this thread (the audit trail's command)
HandledObserver = Callable[[], None]
# An operator's or the schedule's refusal of a logon by CompID (None: admitted); not a failure
LogonGate = Callable[[str], str | None]


def undecodable_tag(text: str) -> int | None:
    """The first tag of the FIX message ``text`` whose value is not valid UTF-8, if any.

    SWIG hands such bytes to Python as surrogate escapes, which nothing downstream can carry:
    QuickFIX refuses them on the way out, the database and the audit log refuse to store them.
    """
    if text.isascii():
        return None
    for tag, value in codec.RawMessage.parse(text).fields:
        try:
            value.encode()
        except UnicodeEncodeError:
            return tag
    return None


class _Sending(threading.local):
    ours = False  # this thread is in _send_fields, which counts the message: toApp need not


class Allocations(Protocol):
    """Books a client's allocation of its trade (``gateway.trade_corrections``)."""

    def allocate(
        self, trade_id: str, client_id: str, split: tuple[Allocation, ...], alloc_id: str
    ) -> tuple[TradeVersion, TradeVersion]: ...


class GatewayApplication(fix.Application):
    """``allocations``: where AllocationInstructions go (none: J is refused as unsupported);
    ``pre_allocations``: where a D's PreAllocGrp waits for its trade. ``negotiation``: where
    RFQ messages go (none: they are refused as unsupported).
    ``lock``: the order core's lock, shared with whatever else drives the core (the API's risk
    control, trade capture). ``require_front``: a Logon must have come through the front, which
    announced its peer; off only when clients reach the acceptor directly (a benchmark).
    ``metrics``: where messages in and out, rejects and order -> first ER are counted.
    ``handled_observers``: called on QuickFIX's thread once each application message has been
    handled (what it caused has been sent): the audit trail closes the message's command there.

    ``logon_gate``: refusals that are not failed logons (a CompID an operator disabled, a day
    the schedule skips). ``logout_text``: the Text for a Logout QuickFIX sends without one (the
    end of a scheduled session).

    ``drop_copy``: which sessions get copies of which clients' reports (and may send nothing
    but AD); ``trade_reports``: answers TradeCaptureReportRequests from the database."""

    def __init__(
        self,
        orders: OrderManager,
        writer: Writer,
        policy: LogonPolicy,
        peers: PeerRegistry,
        config: Config,
        dictionary: Path,
        require_front: bool = True,
        clock: Callable[[], float] = time.monotonic,
        negotiation: NegotiationService | None = None,
        lock: threading.RLock | None = None,
        core_observers: Sequence[CoreObserver] = (),
        session_observers: Sequence[SessionObserver] = (),
        metrics: FixMetrics | None = None,
        logon_gate: LogonGate | None = None,
        logout_text: Callable[[str], str | None] | None = None,
        draining: threading.Event | None = None,
        admission: Admission | None = None,
        drop_copy: DropCopy | None = None,
        trade_reports: TradeReports | None = None,
        handled_observers: Sequence[HandledObserver] = (),
        allocations: Allocations | None = None,
        pre_allocations: PreAllocations | None = None,
        history: OrderHistory | None = None,
    ) -> None:
        super().__init__()
        # the database, for what the order core no longer holds (finished orders, older
        # ClOrdIDs); None: the core answers from memory alone
        self.history = history
        self.orders = orders
        self.writer = writer
        self.policy = policy
        self.peers = peers
        self.require_front = require_front
        self.clock = clock
        # the core is driven from QuickFIX's thread, the API and the negotiation's sinks
        self.lock = lock if lock is not None else threading.RLock()
        self.sessions: dict[str, fix.SessionID] = {}
        self.config = config
        self.build = OutboundBuilder(fix.DataDictionary(str(dictionary)))
        self.negotiation = negotiation
        self._answering = threading.local()
        # acceptances awaiting their outcome, to echo Side/ClOrdID when it comes later
        self._acceptances: dict[tuple[str, str], codec.RawMessage] = {}
        self.core_observers = tuple(core_observers)
        self.handled_observers = tuple(handled_observers)
        self.session_observers = tuple(session_observers)
        # new business is refused while it names a reason (a drain, the audit trail or the
        # database failing); ``draining`` alone: a gate that only the drain closes
        self.admission = admission if admission is not None else Admission(draining=draining)
        self.draining = self.admission.draining
        self.throttles = {
            s.comp_id: Throttle(s.throttle.reject_above, s.throttle.logout_above)
            for s in config.sessions
        }
        # metrics: what is counted, and when the NewOrderSingle being handled arrived
        self.metrics = metrics if metrics is not None else FixMetrics()
        self._sending = _Sending()
        self._order_started: float | None = None
        self.logon_gate = logon_gate
        self.logout_text = logout_text
        self.closing = False  # shutting down: sessions logged out stay disabled
        # RFQ messages sent at start-up to clients not logged on, until each one's next logon
        self._holding = False
        self._held: dict[str, list[tuple[str, list]]] = {}
        self._held_lock = threading.Lock()
        self.drop_copy = drop_copy if drop_copy is not None else DropCopy({})
        self.trade_reports = trade_reports
        self.allocations = allocations
        self.pre_allocations = pre_allocations

    def reconfigure(self, config: Config) -> None:
        """A reloaded configuration (sessions added or removed; nothing else changes)."""
        for s in config.sessions:
            if s.comp_id not in self.throttles:
                self.throttles[s.comp_id] = Throttle(
                    s.throttle.reject_above, s.throttle.logout_above
                )
        self.config = config

    # -- session callbacks -------------------------------------------------------------------

    def onCreate(self, sessionID: fix.SessionID) -> None:
        self.sessions[sessionID.getTargetCompID().getValue()] = sessionID

    def onLogon(self, sessionID: fix.SessionID) -> None:
        comp_id = sessionID.getTargetCompID().getValue()
        peer = self.peers.active(comp_id)
        log.info("logon %s from %s", comp_id, peer)
        self._session_event(comp_id, "logon", str(peer) if peer else None, None)
        self._deliver_held(comp_id, sessionID)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        comp_id = sessionID.getTargetCompID().getValue()
        peer = self.peers.active(comp_id)
        self.peers.release(comp_id)
        log.info("logout %s", comp_id)
        self._session_event(comp_id, "logout", str(peer) if peer else None, None)
        # QuickFIX's Session.logout() also disables the session, which then drops every later
        # Logon without a word; who may log on again is the gateway's checks' call instead.
        qf_session = fix.Session.lookupSession(sessionID)
        if qf_session is not None and not qf_session.isEnabled() and not self.closing:
            qf_session.logon()
        session = self.config.session(comp_id)
        if session is not None and session.cancel_on_disconnect:
            try:
                with self.lock:
                    self.apply(self.orders.cancel_all(comp_id, "cancel on disconnect"))
            except Exception:
                log.exception("cancel-on-disconnect failed for %s", comp_id)

    # -- the front's questions (gateway.fix.front.Front admit / on_refused) ------------------

    def admit(self, peer: Peer) -> bool:
        """A connection may be relayed unless its address is locked out."""
        return not self.policy.locked_out(peer.host, self.clock())

    def tls_refused(self, peer: Peer, comp_id: str, why: str) -> None:
        """The TLS listener refused a certificate for ``comp_id``: it counts against the address
        as a failed logon does, and is recorded and audited as a session event."""
        self.policy.record_failure(peer.host, self.clock())
        self._session_event(comp_id or "?", "tls_refused", str(peer), why)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._count_sent(message)
        if self.logout_text is None:
            return
        try:
            if message.getHeader().getField(35) == "5" and not message.isSetField(58):
                text = self.logout_text(sessionID.getTargetCompID().getValue())
                if text:
                    message.setField(58, text)
        except Exception:  # the Logout goes out as QuickFIX made it
            log.exception("could not add a Text to a Logout")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if not self._sending.ours:  # QuickFIX's own: a BusinessMessageReject, a resend
            self._count_sent(message)

    def _count_sent(self, message: fix.Message) -> None:
        """Count a message QuickFIX sends by itself (ours are counted in _send_fields)."""
        try:
            header = message.getHeader()
            msg_type = header.getField(35)
            reject = None
            if msg_type in ("3", "j") and not header.isSetField(43):  # a resend is not new
                tag = REJECT_REASON_TAG[msg_type]
                reject = message.getField(tag) if message.isSetField(tag) else "none"
            self.metrics.sent(msg_type, reject)
        except Exception:  # never into QuickFIX
            log.exception("counting an outgoing message failed")

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            msg_type = message.getHeader().getField(35)
            self.metrics.received(msg_type)
            if msg_type != "A":
                return
            reason, comp_id, peer = self._check_logon(message, sessionID)
            gated = (
                self.logon_gate(comp_id) if reason is None and self.logon_gate is not None else None
            )
        except Exception:  # never let a bug become a QuickFIX error
            log.exception("logon check failed")
            raise fix.RejectLogon("logon could not be processed") from None
        if gated is not None:  # not a failed logon: the address is not counted
            log.warning("logon refused: CompID=%s peer=%s reason=%s", comp_id, peer, gated)
            self._session_event(comp_id, "logon_refused", str(peer) if peer else None, gated)
            raise fix.RejectLogon(gated)
        if reason is not None:
            locked = self.policy.record_failure(peer.host if peer else None, self.clock())
            log.warning("logon refused: CompID=%s peer=%s reason=%s", comp_id, peer, reason)
            self._session_event(comp_id, "logon_refused", str(peer) if peer else None, reason)
            if locked:
                log.warning("address %s locked out after repeated logon failures", peer.host)
                self._session_event(comp_id, "address_locked", str(peer), reason)
            raise fix.RejectLogon(reason)

    def _check_logon(self, message: fix.Message, sessionID: fix.SessionID):
        comp_id = sessionID.getTargetCompID().getValue()
        # A Logon inside a live session (sequence reset) arrives on the connection already known.
        peer = self.peers.claim(comp_id) or self.peers.active(comp_id)
        if peer is None and self.require_front:
            return "connect through the gateway's FIX listener", comp_id, None

        def opt(tag: int) -> str | None:
            return message.getField(tag) if message.isSetField(tag) else None

        hb = opt(108)
        attempt = LogonAttempt(
            comp_id=comp_id,
            peer=peer.host if peer else None,
            heartbeat=int(hb) if hb and hb.isdigit() else None,
            username=opt(553),
            password=opt(554),
        )
        return self.policy.check(attempt, self.clock()), comp_id, peer

    # -- application messages ----------------------------------------------------------------

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            self._from_app(message, sessionID)
        finally:
            for handled in self.handled_observers:
                try:
                    handled()
                except Exception:  # never into QuickFIX
                    log.exception("a handled-message observer failed")

    def _from_app(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        started = time.perf_counter()
        msg_type = message.getHeader().getField(35)
        self.metrics.received(msg_type)
        owner = sessionID.getTargetCompID().getValue()
        if (refusal := self.drop_copy.refusal(owner, msg_type)) is not None:
            self._refuse(owner, msg_type, message, sessionID, refusal)
            return
        is_rfq = msg_type in RFQ_TYPES or (
            msg_type == "D" and message.isSetField(40) and message.getField(40) == "D"
        )
        if msg_type == "J" and self.allocations is not None:
            owner = sessionID.getTargetCompID().getValue()
            self._allocation(owner, codec.RawMessage.parse(message.toString()), sessionID)
            return
        is_report_request = msg_type == "AD" and self.trade_reports is not None
        if not is_report_request and (
            (not is_rfq and msg_type not in ORDER_TYPES) or (is_rfq and self.negotiation is None)
        ):
            raise fix.UnsupportedMessageType()
        text = message.toString()  # one copy out of QuickFIX for the check and the decode
        bad = undecodable_tag(text)
        if bad is not None:  # QuickFIX answers Reject(3), SessionRejectReason 6, naming the tag
            raise fix.IncorrectDataFormat(bad, "value is not valid UTF-8")
        if msg_type in NEW_BUSINESS and (refusal := self.admission.refusal()) is not None:
            self._refuse_new_business(owner, msg_type, message, sessionID, refusal)
            return
        throttle = self.throttles.get(owner)
        verdict = throttle.hit(self.clock()) if throttle else ThrottleVerdict.OK
        if verdict is not ThrottleVerdict.OK:
            self._throttled(owner, msg_type, message, sessionID, verdict, throttle)
            return
        try:
            raw = codec.RawMessage.parse(text)
            if is_report_request:
                self._trade_report_request(owner, raw, sessionID)
                return
            if is_rfq:
                self._rfq(owner, raw, sessionID)
                return
            try:
                normalised = codec.decode(raw)
            except codec.DecodeError as exc:
                self._send(owner, codec.reject_for(raw, exc), sessionID)
                if msg_type == "D":  # its first ER is this reject
                    self.metrics.order_first_er.observe(time.perf_counter() - started)
                return
            with self.lock:
                events = self.orders.handle(owner, normalised, self._history(owner, normalised))
                self._order_started = started if msg_type == "D" else None  # to its first ER
                try:
                    self.apply(events)
                finally:
                    self._order_started = None
        except Exception:
            log.exception("failed to process %s from %s", msg_type, owner)
            self._send(
                owner,
                m.BusinessReject(
                    ref_msg_type=msg_type,
                    reason=m.BusinessRejectReason.APPLICATION_NOT_AVAILABLE,
                    text="internal error; the message was not processed",
                    ref_seq_num=int(message.getHeader().getField(34)),
                ),
                sessionID,
            )

    def _history(self, owner: str, msg: m.InboundOrderMessage) -> History | None:
        """Read from the database what the core asks for before it can answer ``msg``."""
        lookup = self.orders.lookup(owner, msg)
        if lookup is None or self.history is None:
            return None
        order = None
        if lookup.order_cl_ord_id is not None:
            order = self.history.order(owner, lookup.order_cl_ord_id)
        return History(lookup, self.history.used(lookup), order)

    def _throttled(self, owner, msg_type, message, sessionID, verdict, throttle) -> None:
        text = f"throttled: {throttle.rate} messages in the last second"
        if verdict is ThrottleVerdict.LOGOUT:
            log.warning("%s: %s; logging the session out", owner, text)
            self._session_event(owner, "throttle_logout", None, text)
            session = fix.Session.lookupSession(sessionID)
            if session is not None:
                session.logout(text)
            return
        self._send(
            owner,
            m.BusinessReject(
                ref_msg_type=msg_type,
                reason=m.BusinessRejectReason.OTHER,
                text=text,
                ref_seq_num=int(message.getHeader().getField(34)),
                business_reject_ref_id=message.getField(11) if message.isSetField(11) else None,
            ),
            sessionID,
        )

    def _refuse(self, owner, msg_type, message, sessionID, reason: str) -> None:
        """BusinessMessageReject 380=6 (not authorized) with ``reason`` in Text: a drop copy
        session sending business."""
        self._send(
            owner,
            m.BusinessReject(
                ref_msg_type=msg_type,
                reason=m.BusinessRejectReason.NOT_AUTHORIZED,
                text=reason,
                ref_seq_num=int(message.getHeader().getField(34)),
            ),
            sessionID,
        )

    def _trade_report_request(self, owner: str, raw: codec.RawMessage, sessionID) -> None:
        """AQ and one AE per trade the requester may see. Not copied to drop copies: these are
        reports already sent, asked for again."""
        assert self.trade_reports is not None
        for msg_type, fields in self.trade_reports.answer(owner, raw):
            self._send_fields(owner, msg_type, fields, sessionID, copy=False)

    def _refuse_new_business(self, owner, msg_type, message, sessionID, reason: str) -> None:
        """BusinessMessageReject 380=4 with the reason in Text: the gateway takes no new business
        now (shutting down: a standby, or this gateway restarted, will; the audit trail or the
        database failing: this gateway will once they are back). A BMR, not an ER rejected,
        for orders too: nothing is created that would have to be persisted."""
        ref = next((message.getField(t) for t in (11, 131, 693) if message.isSetField(t)), None)
        self._send(
            owner,
            m.BusinessReject(
                ref_msg_type=msg_type,
                reason=m.BusinessRejectReason.APPLICATION_NOT_AVAILABLE,
                text=reason,
                ref_seq_num=int(message.getHeader().getField(34)),
                business_reject_ref_id=ref,
            ),
            sessionID,
        )

    def _rfq(self, owner: str, raw: codec.RawMessage, sessionID: fix.SessionID) -> None:
        try:
            command = rfq_inbound.decode_client(raw, owner, self.negotiation)
        except codec.DecodeError as exc:
            for msg_type, fields in rfq_outbound.reject_for_rfq(raw, exc):
                self._send_fields(owner, msg_type, fields, sessionID)
            return
        if raw.msg_type in ("AJ", "D"):  # an acceptance may be answered later (last look)
            ref = raw.get(11) if raw.msg_type == "D" else raw.get(693)
            self._acceptances[(owner, ref)] = raw
            if raw.msg_type == "D" and self.pre_allocations is not None and ref:
                try:
                    split = allocations.decode_pre_allocations(raw)
                except codec.DecodeError as exc:
                    self._acceptances.pop((owner, ref), None)
                    for msg_type, fields in rfq_outbound.reject_for_rfq(raw, exc):
                        self._send_fields(owner, msg_type, fields, sessionID)
                    return
                if split:
                    self.pre_allocations.put(owner, ref, split)
        self._answering.raw = raw  # the sink echoes from the message it answers
        try:
            self.negotiation.submit(command)  # answers flow back through rfq_sink
        finally:
            self._answering.raw = None

    def rfq_sink(self, events: list[ev.Event]) -> None:
        """Negotiation events for clients, as FIX messages on their sessions."""
        answering = getattr(self._answering, "raw", None)
        for event in events:
            if event.audience not in CLIENT_AUDIENCES:
                continue
            session_id = self.sessions.get(event.client_id)
            if session_id is None:
                continue  # a client without a FIX session (RFQ entered for it by a desk)
            rfq = self.negotiation.rfq_record(ev.rfq_id_of(event))
            ref = getattr(event, "client_ref", None)
            answered = answering
            if ref is not None:
                answered = (
                    self._acceptances.get((event.client_id, ref))
                    or self._restored(event.client_id, ref)
                    or answering
                )
                if isinstance(event, ev.TradeCaptured | ev.AcceptanceRejected):
                    self._acceptances.pop((event.client_id, ref), None)
            out = rfq_outbound.encode_for_client(event, rfq=rfq, answering=answered)
            for msg_type, fields in out:
                if self._holding:
                    self._hold(event.client_id, msg_type, fields, session_id)
                self._send_fields(event.client_id, msg_type, fields, session_id)

    def _allocation(self, owner: str, raw: codec.RawMessage, sessionID: fix.SessionID) -> None:
        """An AllocationInstruction: the trade's split, booked and answered with P."""
        assert self.allocations is not None
        booked = None
        refusal = self.admission.refusal()  # no booking while records cannot be kept
        try:
            request = allocations.decode_allocation_instruction(raw)
            if refusal is not None:
                ack = allocations.allocation_ack(request.alloc_id, m.utcnow(), rejected=refusal)
                self._send_fields(owner, *ack, sessionID)
                return
            booked = self.allocations.allocate(
                request.trade_id, owner, request.allocations, request.alloc_id
            )
        except codec.DecodeError as exc:
            code = allocations.REJ_INCORRECT_QUANTITY if exc.tag == 80 else allocations.REJ_OTHER
            ack = allocations.allocation_ack(
                raw.get(70) or "NONE", m.utcnow(), rejected=exc.text, code=code
            )
        except CorrectionRefused as exc:
            code = (
                allocations.REJ_INCORRECT_QUANTITY
                if exc.reason is RefusalReason.ALLOCATION_MISMATCH
                else allocations.REJ_OTHER
            )
            ack = allocations.allocation_ack(
                request.alloc_id, m.utcnow(), rejected=str(exc), code=code
            )
        except Exception:
            log.exception("allocation %s from %s failed", raw.get(70), owner)
            ack = allocations.allocation_ack(
                raw.get(70) or "NONE", m.utcnow(), rejected="internal error; nothing was booked"
            )
        else:
            ack = allocations.allocation_ack(request.alloc_id, m.utcnow())
        self._send_fields(owner, *ack, sessionID)
        if booked is not None:  # then the trade report replacing the unallocated one
            self.trade_amended(*booked)

    def trade_amended(self, previous: TradeVersion, version: TradeVersion) -> None:
        """A correction or bust, told to the trade's client (ExecutionReport G/H and a
        TradeCaptureReport replacing or cancelling ``previous``'s) on its FIX session."""
        client_id = version.trade.client.party_id
        session_id = self.sessions.get(client_id)
        if session_id is None:
            log.warning(
                "trade %s amended: client %s has no FIX session", version.trade_id, client_id
            )
            return
        for msg_type, fields in trade_amendments.amendment_messages(previous, version):
            self._send_fields(client_id, msg_type, fields, session_id)

    def _restored(self, client_id: str, ref: str) -> codec.RawMessage | None:
        """An acceptance held across a restart: its Side, size and id, as the client sent them
        (so a hold that ends after the restart is still answered with an ExecutionReport)."""
        cmd = self.negotiation.restored_acceptance(client_id, ref) if self.negotiation else None
        if cmd is None:
            return None
        order = cmd.via is AcceptVia.NEW_ORDER
        fields = [(35, "D" if order else "AJ"), (11 if order else 693, ref), (54, cmd.side.value)]
        if cmd.quantity is not None:
            fields.append((38, codec.fmt_decimal(cmd.quantity)))
        return codec.RawMessage(fields[0][1], tuple(fields))

    # -- what start-up tells clients that are not logged on ----------------------------------

    @contextlib.contextmanager
    def holding_client_notices(self) -> Iterator[None]:
        """While this lasts (start-up, before the FIX listeners open), RFQ messages for a client
        that is not logged on are also kept for its next logon: what expired while the gateway
        was down must reach the client even if its session resets sequence numbers on logon,
        which empties QuickFIX's store of everything sent while it was away."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def _hold(self, client_id: str, msg_type: str, fields: list, sessionID) -> None:
        session = fix.Session.lookupSession(sessionID)
        if session is not None and session.isLoggedOn():
            return
        with self._held_lock:
            self._held.setdefault(client_id, []).append((msg_type, fields))

    def _deliver_held(self, comp_id: str, sessionID: fix.SessionID) -> None:
        """On logon: if the session's store was reset (our Logon was sequence number 1), send
        what was kept; otherwise it is in the store, and the client's ResendRequest for the gap
        brings it (sent again here, it would arrive twice)."""
        with self._held_lock:
            held = self._held.pop(comp_id, None)
        if not held:
            return
        session = fix.Session.lookupSession(sessionID)
        if session is not None and session.getExpectedSenderNum() == 2:
            log.info("logon %s: sending the %d RFQ messages of the start-up", comp_id, len(held))
            for msg_type, fields in held:  # drop copies had theirs when these were first sent
                self._send_fields(comp_id, msg_type, fields, sessionID, copy=False)
        else:
            log.info(
                "logon %s: the %d RFQ messages of the start-up are in the session's store "
                "for the client's ResendRequest",
                comp_id,
                len(held),
            )

    def _send_fields(self, owner: str, msg_type: str, fields, sessionID, copy=True) -> None:
        """Send; then (``copy``) a copy to each drop copy session of ``owner``, if any."""
        sending = self._sending
        sent = False
        try:
            sending.ours = True
            fix.Session.sendToTarget(self.build(msg_type, fields), sessionID)
        except fix.SessionNotFound:
            log.error("session %s not found; %s not sent", owner, msg_type)
        except ValueError as exc:  # the edges refuse such input; nothing else in the batch is lost
            log.error("%s to %s not sent: %s", msg_type, owner, exc)
        else:
            self.metrics.sent_fields(msg_type, fields)
            sent = True
        finally:
            sending.ours = False
        for copier in self.drop_copy.copiers(owner, msg_type) if copy and sent else ():
            copier_id = self.sessions.get(copier)
            if copier_id is None:
                log.error("drop copy session %s not found; copy of %s not sent", copier, msg_type)
                continue
            copied = copy_of(msg_type, fields, owner)
            self._send_fields(copier, msg_type, copied, copier_id, copy=False)

    def run_core(self, action):
        """Run ``action(orders)`` under the core lock and send/persist the events it returns."""
        with self.lock:
            events = action(self.orders)
            self.apply(events)
            return events

    def apply(self, events) -> None:
        """Persist and send what the core decided. Call with ``self.lock`` held."""
        for observer in self.core_observers:
            observer(events)
        for event in events:
            if isinstance(event, OrderUpdated):
                self.writer.order(event.order)
                if not event.order.is_open:
                    self._finished(event.order)
            elif isinstance(event, ClOrdIdUsed):
                self.writer.clordid(event)
                if self.history is not None:
                    self.history.used_now(event)
            elif isinstance(event, Send):
                if isinstance(event.message, m.ExecutionReport):
                    self.writer.execution(event.to, event.message)
                self._send(event.to, event.message, self.sessions.get(event.to))
                if self._order_started is not None and isinstance(
                    event.message, m.ExecutionReport
                ):  # the first ER of the NewOrderSingle fromApp is handling
                    self.metrics.order_first_er.observe(time.perf_counter() - self._order_started)
                    self._order_started = None

    def _finished(self, order: Order) -> None:
        """A finished order left the core: its notional joined the client's finished total,
        and lookups find it among the recent ones until the database has it."""
        total = self.orders.finished_notional.get(order.owner)
        if total is not None:
            self.writer.finished_exposure(order.owner, total, order.updated_at)
        if self.history is not None:
            self.history.finished(order)

    def _send(self, owner: str, msg: m.OutboundMessage, sessionID: fix.SessionID | None) -> None:
        if sessionID is None:
            log.error("no session for %s; %s not sent", owner, type(msg).__name__)
            return
        self._send_fields(owner, *codec.encode(msg), sessionID)

    def _session_event(self, comp_id: str, event: str, peer: str | None, text: str | None) -> None:
        self.writer.session_event(SessionEvent(comp_id, event, peer, text, m.utcnow()))
        for observer in self.session_observers:
            observer(comp_id, event, peer, text)
