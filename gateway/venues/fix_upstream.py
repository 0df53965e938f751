"""Orders routed to an upstream FIX 4.4 venue through a QuickFIX initiator.

The adapter is the order core's :class:`otc.venue.Venue` and the initiator's
:class:`quickfix.Application` at once; QuickFIX types stay in here.

==================  ==========================================================================
``submit``          logged on: record the route (fsynced), send NewOrderSingle, return ``[]``
                    (the client gets PendingNew); logged off: ``[Rejected("venue
                    unreachable ...")]`` (the client gets an ER Rejected with that Text)
``cancel``          the same with OrderCancelRequest naming the ClOrdID the venue knows the
                    order by; logged off: refused (the client gets a CancelReject)
``replace``         the same with OrderCancelReplaceRequest
``reference_price`` the configured ``[venue.reference_prices]`` (risk checks only)
``resume``          an order open before a restart: its details, for later cancels and replaces
reports             ExecutionReport / OrderCancelReject on QuickFIX's thread -> venue events,
                    applied under the core's lock, each ExecID once (``apply_report``); a
                    BusinessMessageReject or session Reject of a request refuses it
==================  ==========================================================================

Disconnects: the session keeps its sequence numbers (FileStore, no reset on logon), so after a
reconnect each side asks for what it missed and QuickFIX resends it with PossDupFlag=Y. That is
not enough when a store was lost or the session reset, so every logon also asks the venue for
the status of each open order (``check_status``) and applies only the difference. New orders,
cancels and replaces are refused while the session is not logged on, rather than queued: an
order that waited for a venue to come back could reach a market that has moved. A kill switch is
the exception: each logon cancels the open orders of halted clients (``reapply_kill_switches``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix as fix

from fixspec import codec
from fixspec import messages as m
from gateway.config import UpstreamSection
from gateway.fix.auditlog import AuditingLog, AuditingLogFactory, Sink
from gateway.fix.dictionary import stock_dictionary_path
from gateway.venues.reports import ReportError, StatusAnswer, UpstreamReport, read_report
from gateway.venues.routes import RequestKind, UpstreamRoutes
from otc import venue as v
from otc.orders import CoreEvent, OrderManager

log = logging.getLogger("fixbridge.venue")

# application.run_core: run an action on the order core under its lock, send and persist its events
RunCore = Callable[[Callable[[OrderManager], list[CoreEvent]]], list[CoreEvent]]
# auditor.admin: kind, actor, payload
Record = Callable[[str, str, dict[str, Any]], None]
SENT_KEPT = 10_000  # a session Reject names a recent message
WAITING_AMEND = frozenset({m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_REPLACE})
_PASSWORD = re.compile("(^|\x01)554=[^\x01]*")


def mask_password(text: str) -> str:
    """A message as it may be logged: the Logon's Password(554) hidden."""
    return _PASSWORD.sub(r"\g<1>554=***", text)


class _MaskedLog(AuditingLog):
    def _emit(self, kind: str, text: str) -> None:
        super()._emit(kind, mask_password(text))


class MaskedLogFactory(AuditingLogFactory):
    """QuickFIX's log of the upstream session, with the password hidden: every message in and out
    reaches the file log and the audit trail, under the actor ``venue:<TargetCompID>``."""

    def create(self, *args: Any) -> fix.Log:
        inner = self.inner.create(*args) if self.inner is not None else None
        actor = "venue:engine" if not args else f"venue:{args[0].getTargetCompID().getValue()}"
        made = _MaskedLog(inner, actor, self.sink)
        self._logs.append(made)
        made.__disown__()  # the initiator holds the C++ side; self._logs keeps the Python side
        return made


def initiator_settings(upstream: UpstreamSection, venue_dir: Path) -> fix.SessionSettings:
    """The upstream session as QuickFIX is told it: sequence numbers survive disconnects and
    restarts on both sides, so what either side missed is resent."""
    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": "initiator",
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "FileStorePath": str(venue_dir / "store"),
        "FileLogPath": str(venue_dir / "log"),
        "PersistMessages": "Y",
        "UseDataDictionary": "Y",
        "DataDictionary": str(stock_dictionary_path()),
        "ValidateUserDefinedFields": "N",
        "AllowUnknownMsgFields": "Y",
    }.items():
        defaults.setString(key, value)
    session = fix.Dictionary()
    for key, value in {
        "BeginString": "FIX.4.4",
        "SenderCompID": upstream.sender_comp_id,
        "TargetCompID": upstream.target_comp_id,
        "SocketConnectHost": upstream.host,
        "SocketConnectPort": str(upstream.port),
        "HeartBtInt": str(upstream.heartbeat_seconds),
        "ReconnectInterval": str(upstream.reconnect_seconds),
        "ResetOnLogon": "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
    }.items():
        session.setString(key, value)
    if upstream.tls:  # QuickFIX reads its SSL keys from the defaults only
        for key, value in tls_settings(upstream).items():
            defaults.setString(key, value)
    settings = fix.SessionSettings()
    settings.set(defaults)
    settings.set(session_id(upstream), session)
    return settings


def tls_settings(upstream: UpstreamSection) -> dict[str, str]:
    """QuickFIX's SSL keys: TLS 1.2 or later, the venue's certificate verified against our CA
    file (its chain, not its host name: QuickFIX does not check names)."""
    keys = {
        "SSLProtocol": "all -SSLv2 -SSLv3 -TLSv1 -TLSv1_1",
        "VerifyLevel": "1",
        "CertificationAuthoritiesFile": str(upstream.tls_ca_file),
    }
    if upstream.tls_cert_file is not None and upstream.tls_key_file is not None:
        keys["ClientCertificateFile"] = str(upstream.tls_cert_file)
        keys["ClientCertificateKeyFile"] = str(upstream.tls_key_file)
    return keys


def session_id(upstream: UpstreamSection) -> fix.SessionID:
    return fix.SessionID("FIX.4.4", upstream.sender_comp_id, upstream.target_comp_id)


def _now() -> str:
    return codec.fmt_time(datetime.now(UTC))[:-3]  # UTCTimestamp in milliseconds


class FixUpstreamVenue(fix.Application):
    """``password``: resolved by :func:`gateway.venues.credentials.upstream_password`.
    ``audit_sink``: every message in and out (``Auditor.fix``); ``record``: session changes and
    reports that could not be applied (``Auditor.admin``)."""

    def __init__(
        self,
        upstream: UpstreamSection,
        venue_dir: Path,
        reference_prices: dict[str, Decimal],
        password: str | None,
        record: Record,
        audit_sink: Sink | None = None,
        file_log: bool = True,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.venue_dir = venue_dir
        self.reference_prices = dict(reference_prices)
        self.password = password
        self.record = record
        self.audit_sink = audit_sink
        self.file_log = file_log
        self.actor = f"venue:{upstream.target_comp_id}"
        self.session_id = session_id(upstream)
        # QuickFIX's store keeps every message as sent, the Logon's password included: owner only
        venue_dir.mkdir(parents=True, exist_ok=True)
        venue_dir.chmod(0o700)
        self.routes = UpstreamRoutes(venue_dir / "routes.jsonl")
        self._orders: dict[str, v.VenueOrder] = {}  # open orders, for cancels and replaces
        self._run_core: RunCore | None = None
        self._sent: dict[int, str] = {}  # recent requests: MsgSeqNum -> upstream ClOrdID
        self._state_lock = threading.Lock()
        self._logged_on = False
        self._state = "has not logged on yet"
        self.initiator: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def attach(self, run_core: RunCore) -> None:
        """Where reports go: the FIX application's ``run_core`` (set before :meth:`start`)."""
        self._run_core = run_core

    def start(self) -> None:
        assert self._run_core is not None, "attach() the order core before starting"
        self.compact_routes()
        settings = initiator_settings(self.upstream, self.venue_dir)
        self._store = fix.FileStoreFactory(settings)
        file_log = fix.FileLogFactory(settings) if self.file_log else None
        self._logs = (
            MaskedLogFactory(file_log, self.audit_sink) if self.audit_sink is not None else file_log
        )
        kind = fix.SSLSocketInitiator if self.upstream.tls else fix.SocketInitiator
        if self._logs is not None:
            self.initiator = kind(self, self._store, settings, self._logs)
        else:
            self.initiator = kind(self, self._store, settings)
        self.initiator.start()
        log.info(
            "routing orders to %s at %s:%d as %s",
            self.upstream.target_comp_id,
            self.upstream.host,
            self.upstream.port,
            self.upstream.sender_comp_id,
        )

    def compact_routes(self) -> None:
        """Cut the routes journal back to the orders open now (those resumed at start): a
        finished order's later reports need no route, they are ignored."""
        before, after = self.routes.compact(set(self._orders))
        log.info("routes journal compacted to the open orders: %d records -> %d", before, after)

    def logout(self, timeout: float) -> bool:
        """Log the upstream session out and wait for it to end. As with the acceptor, QuickFIX
        1.16's ``stop`` is never called (it races its own thread); the process exits after."""
        session = fix.Session.lookupSession(self.session_id)
        if session is None:
            return True
        session.logout("gateway shutting down")
        done = threading.Event()
        waited = 0.0
        while self.logged_on and waited < timeout:
            done.wait(0.05)
            waited += 0.05
        return not self.logged_on

    @property
    def logged_on(self) -> bool:
        with self._state_lock:
            return self._logged_on

    def state(self) -> tuple[bool, str]:
        """Whether the upstream session is logged on, and since when or why not (``/ready``)."""
        with self._state_lock:
            return self._logged_on, self._state

    def _set_state(self, logged_on: bool, state: str) -> None:
        with self._state_lock:
            self._logged_on, self._state = logged_on, state

    def _describe(self) -> str:
        return f"{self.upstream.sender_comp_id}->{self.upstream.target_comp_id}"

    # -- the Venue protocol (called under the core's lock) -----------------------------------

    def reference_price(self, symbol: str) -> Decimal | None:
        return self.reference_prices.get(symbol)

    def resume(self, order: v.VenueOrder, filled: Decimal) -> None:
        self._orders[order.order_id] = order
        if self.routes.current(order.order_id) is None:
            log.warning(
                "order %s was open before the gateway routed to %s; the venue does not know it",
                order.order_id,
                self.upstream.target_comp_id,
            )

    def submit(self, order: v.VenueOrder) -> list[v.VenueEvent]:
        refusal = self._unreachable(order.order_id)
        if refusal is not None:
            return [refusal]
        route = self.routes.open_request(order.order_id, "new")
        fields: list[tuple[int, str]] = [
            (11, route.cl_ord_id),
            (55, order.instrument.symbol),
            (54, order.side.value),
            (60, _now()),
            (38, codec.fmt_decimal(order.quantity)),
            (40, order.ord_type.value),
            (59, order.time_in_force.value),
        ]
        if order.price is not None:
            fields.append((44, codec.fmt_decimal(order.price)))
        self._orders[order.order_id] = order
        return self._send("D", fields, order.order_id)

    def cancel(self, order_id: str) -> list[v.VenueEvent]:
        return self._amend(order_id, "cancel", None, None)

    def replace(
        self, order_id: str, quantity: Decimal, price: Decimal | None
    ) -> list[v.VenueEvent]:
        return self._amend(order_id, "replace", quantity, price)

    def _amend(
        self, order_id: str, kind: RequestKind, quantity: Decimal | None, price: Decimal | None
    ) -> list[v.VenueEvent]:
        order = self._orders.get(order_id)
        orig = self.routes.current(order_id)
        if order is None or orig is None:
            return [v.Rejected(order_id, "order is not open at the venue")]
        refusal = self._unreachable(order_id)
        if refusal is not None:
            return [refusal]
        route = self.routes.open_request(order_id, kind)
        fields: list[tuple[int, str]] = [(41, orig), (11, route.cl_ord_id)]
        if (venue_id := self.routes.venue_order_id(order_id)) is not None:
            fields.append((37, venue_id))
        fields += [(55, order.instrument.symbol), (54, order.side.value), (60, _now())]
        if kind == "cancel":
            fields.append((38, codec.fmt_decimal(order.quantity)))
            return self._send("F", fields, order_id)
        assert quantity is not None
        fields += [(38, codec.fmt_decimal(quantity)), (40, order.ord_type.value)]
        fields.append((59, order.time_in_force.value))
        if price is not None:
            fields.append((44, codec.fmt_decimal(price)))
        return self._send("G", fields, order_id)

    def _unreachable(self, order_id: str) -> v.Rejected | None:
        logged_on, state = self.state()
        if logged_on:
            return None
        why = f"venue unreachable: upstream session {self._describe()} {state}"
        log.warning("request for %s refused: %s", order_id, why)  # a kill switch's too
        self._audit("venue.request_refused", {"order_id": order_id, "text": why})
        return v.Rejected(order_id, why)

    def _send(self, msg_type: str, fields: list[tuple[int, str]], order_id: str) -> list[Any]:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in fields:
            message.setField(tag, value)
        try:
            sent = fix.Session.sendToTarget(message, self.session_id)
        except (fix.SessionNotFound, ValueError, TypeError) as exc:
            log.error("%s for %s not sent to the venue: %s", msg_type, order_id, exc)
            return [v.Rejected(order_id, f"could not send to the venue: {exc}")]
        if not sent:  # logged out in between: stored, and resent when the venue asks for it
            log.warning(
                "%s for %s stored for resend: the upstream session went down", msg_type, order_id
            )
        return []

    # -- QuickFIX callbacks (its thread) -----------------------------------------------------

    def onCreate(self, sessionID: fix.SessionID) -> None:
        return None

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self._set_state(True, f"logged on since {datetime.now(UTC).isoformat(timespec='seconds')}")
        log.info("upstream session %s logged on", self._describe())
        self._audit("venue.logon", {"session": self._describe()})
        # off QuickFIX's thread: the core's lock is taken, and requests sent, as by a client
        threading.Thread(target=self.check_status, name="venue-status", daemon=True).start()

    def check_status(self) -> int:
        """Ask the venue for the state of every order we route there that is still open or
        pending (OrderStatusRequest), so an order the venue forgot (its store lost, its sequence
        numbers reset) or filled unseen (ours lost) does not wait forever; the answers are applied
        by :meth:`apply_report`. Returns how many were asked about."""
        run_core = self._run_core
        assert run_core is not None
        asked: list[tuple[str, str, str, str, str | None]] = []

        def collect(orders: OrderManager) -> list[CoreEvent]:
            for order in orders.orders.values():
                current = self.routes.current(order.order_id)
                if order.is_open and current is not None:
                    venue_id = self.routes.venue_order_id(order.order_id)
                    side = order.side.value
                    asked.append((order.order_id, current, order.instrument.symbol, side, venue_id))
            return []

        try:
            run_core(collect)
        except Exception:
            log.exception("listing the orders open at the venue failed")
            return 0
        for order_id, current, symbol, side, venue_id in asked:
            fields = [(11, current), (55, symbol), (54, side), (790, f"{current}-status")]
            if venue_id is not None:
                fields.insert(1, (37, venue_id))
            self._send("H", fields, order_id)
        if asked:
            log.info("asked the venue for the status of %d open orders", len(asked))
            self._audit("venue.status_check", {"order_ids": [a[0] for a in asked]})
        self.reapply_kill_switches()
        return len(asked)

    def reapply_kill_switches(self) -> None:
        """Cancel at the venue the open orders of every client whose kill switch is engaged: a
        kill switch engaged while the venue was unreachable could not cancel there, and halting
        a client means its orders are off the market. Cancels requested by a client and refused
        while the venue was down are not sent: the client was told they were refused."""
        run_core = self._run_core
        assert run_core is not None
        sent: list[str] = []

        def cancel_halted(orders: OrderManager) -> list[CoreEvent]:
            out: list[CoreEvent] = []
            for client, reason in list(orders.halted.items()):
                sent.extend(
                    o.order_id
                    for o in orders.orders.values()
                    if (client is None or o.owner == client)
                    and o.is_open
                    and o.status not in (m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_NEW)
                    and o.order_id not in sent
                )
                out += orders.cancel_all(client, f"kill switch: {reason}")
            return out

        try:
            run_core(cancel_halted)
        except Exception:
            log.exception("cancelling the halted clients' orders at the venue failed")
            return
        if sent:
            log.warning("kill switch: cancels sent to the venue for %d open orders", len(sent))
            self._audit("venue.kill_switch_reapplied", {"order_ids": sent})

    def onLogout(self, sessionID: fix.SessionID) -> None:
        was_on, _ = self.state()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        self._set_state(False, f"is not logged on (down since {since})")
        if was_on:
            log.warning("upstream session %s logged out", self._describe())
            self._audit("venue.logout", {"session": self._describe()})

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            if message.getHeader().getField(35) == "A" and self.upstream.username:
                message.setField(553, self.upstream.username)
                if self.password is not None:
                    message.setField(554, self.password)
        except Exception:  # never into QuickFIX: the Logon goes out without credentials
            log.exception("could not add credentials to the upstream Logon")

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            header = message.getHeader()
            if header.getField(35) == "3" and message.isSetField(45):
                refused = self._sent.get(int(message.getField(45)))
                if refused is not None:
                    self._answer(message.toString(), refused)
            if header.getField(35) == "5" and message.isSetField(58):
                text = message.getField(58)
                log.warning("upstream %s logged us out: %s", self._describe(), text)
                self._set_state(False, f"is not logged on (venue said: {text})")
        except Exception:
            log.exception("reading an admin message from the venue failed")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        """Remember which request went out under which sequence number: a session Reject names
        only that (RefSeqNum)."""
        try:
            if message.isSetField(11) and message.getHeader().getField(35) != "H":
                seq = int(message.getHeader().getField(34))
                self._sent[seq] = message.getField(11)
                while len(self._sent) > SENT_KEPT:
                    del self._sent[next(iter(self._sent))]
        except Exception:
            log.exception("noting an outgoing request failed")

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        if msg_type not in ("8", "9", "j"):
            raise fix.UnsupportedMessageType()
        self._answer(message.toString())

    def _answer(self, text: str, cl_ord_id: str | None = None) -> None:
        """One answer from the venue, applied to the order it names (never raises)."""
        raw = codec.RawMessage("", ())
        try:
            raw = codec.RawMessage.parse(text)
            report = read_report(raw, self.routes, cl_ord_id)
        except ReportError as exc:
            log.error("unreadable report from the venue: %s", exc)
            self._audit("venue.report_unreadable", {"problem": str(exc)})
            return
        except Exception:
            log.exception("reading a report from the venue failed")
            return
        if report is None:
            log.warning("report from the venue for no order of ours: %s", raw.fields)
            self._audit("venue.report_unknown", {"cl_ord_id": raw.get(11), "exec_id": raw.get(17)})
            return
        run_core = self._run_core
        assert run_core is not None
        try:
            run_core(lambda orders: self.apply_report(report, orders))
        except Exception:  # the report is in the audit trail (fix.in); never into QuickFIX
            log.exception("applying report %s from the venue failed", report.exec_id)

    # -- reports -> the order core -----------------------------------------------------------

    def apply_report(self, report: UpstreamReport, orders: OrderManager) -> list[CoreEvent]:
        """Apply one report to ``orders`` (with the core's lock held), once. A report is a
        repeat if its ExecID was applied before (a resend after a reconnect, PossDupFlag or
        not) or, for a fill, if the venue's CumQty is not above the filled quantity our order
        already has (a fill applied whose ExecID was not yet recorded when the gateway
        stopped)."""
        order_id = report.route.order_id
        if report.status is not None:
            return orders.on_venue(self._reconcile(report.status, order_id, orders))
        if report.exec_id is not None and self.routes.applied(report.exec_id):
            log.info("report %s for %s already applied; ignored", report.exec_id, order_id)
            return []
        order = orders.orders.get(order_id)
        events = list(report.events)
        fills = [e for e in events if isinstance(e, v.Fill)]
        cum = report.cum_qty
        if fills and order is not None and cum is not None and cum <= order.cum_qty:
            log.warning(
                "fill %s for %s repeats one applied (venue CumQty %s, ours %s); ignored",
                report.exec_id,
                order_id,
                cum,
                order.cum_qty,
            )
            self._audit(
                "venue.fill_repeated",
                {"order_id": order_id, "exec_id": report.exec_id, "poss_dup": report.poss_dup},
            )
            events = [e for e in events if not isinstance(e, v.Fill)]
        if report.venue_order_id is not None:
            self.routes.venue_id(order_id, report.venue_order_id)
        for event in events:
            if isinstance(event, v.Replaced):
                self.routes.replaced(order_id, report.route.cl_ord_id)
                if (known := self._orders.get(order_id)) is not None:
                    self._orders[order_id] = dc_replace(
                        known, quantity=event.quantity, price=event.price
                    )
        out = orders.on_venue(events)
        if report.exec_id is not None:
            self.routes.mark_applied(report.exec_id, order_id)
        after = orders.orders.get(order_id)
        if after is None or not after.is_open:
            self._orders.pop(order_id, None)
        return out

    def _reconcile(
        self, status: StatusAnswer, order_id: str, orders: OrderManager
    ) -> list[v.VenueEvent]:
        """The venue events that bring our order to the state the venue answered with. The
        difference is applied, not the answer: a fill the venue made while we were away (its
        report lost with its store or ours) is applied as one fill of the missing quantity at
        the price that makes our AvgPx the venue's; an answer that repeats what we know, or
        comes again, changes nothing. A fill that did arrive on its own later repeats CumQty and
        is ignored by :meth:`apply_report`."""
        order = orders.orders.get(order_id)
        if order is None or not order.is_open:
            log.info("status of %s from the venue: our order is no longer open", order_id)
            return []
        if status.unknown:
            why = f"venue does not know the order (status check after logon): {status.text}"
            log.warning("order %s: %s", order_id, why)
            self._audit("venue.order_unknown", {"order_id": order_id, "text": status.text})
            if order.status is m.OrdStatus.PENDING_NEW:
                return [v.Rejected(order_id, why)]
            return [v.Cancelled(order_id, why)]
        events: list[v.VenueEvent] = []
        if order.status is m.OrdStatus.PENDING_NEW and status.ord_status not in ("8", "A"):
            events.append(v.Accepted(order_id))
        missing = status.cum_qty - order.cum_qty
        if missing > 0:
            price = (status.avg_px * status.cum_qty - order.avg_px * order.cum_qty) / missing
            events.append(v.Fill(order_id, missing, price))
        if status.ord_status in ("4", "C"):
            done = "cancelled" if status.ord_status == "4" else "expired"
            events.append(v.Cancelled(order_id, status.text or f"{done} at the venue"))
        elif status.ord_status == "8":
            text = f"venue rejected: {status.text or 'no reason given'}"
            if order.status is m.OrdStatus.PENDING_NEW:
                events.append(v.Rejected(order_id, text))
            else:
                events.append(v.Cancelled(order_id, text))
        elif status.ord_status in ("0", "1") and order.status in WAITING_AMEND:
            # the request went before the H on the same session, so the venue would have
            # answered it first: it never reached the venue (lost with a store)
            what = "cancel" if order.status is m.OrdStatus.PENDING_CANCEL else "replace"
            why = f"venue has no {what} pending for the order (status check after logon)"
            events.append(v.Rejected(order_id, why))
        if events:
            self._audit(
                "venue.status_applied",
                {
                    "order_id": order_id,
                    "ord_status": status.ord_status,
                    "cum_qty": str(status.cum_qty),
                    "missing_qty": str(max(missing, Decimal(0))),
                },
            )
        return events

    def _audit(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self.record(kind, self.actor, payload)
        except Exception:
            log.exception("audit of %s failed", kind)
