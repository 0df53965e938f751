"""One gateway process: the composition root. It builds every part, hands each what it needs
through its constructor, and starts and stops them in order; the parts do the work.

    audit trail, database + writer, recovery, order core
      -> negotiation service (sinks: audit, trade booking, FIX clients, desk streams), open
         business replayed from its journal
      -> FIX application -> clearing -> QuickFIX acceptor (its sessions) -> the upstream
         venue's QuickFIX initiator (``[venue] kind = "fix"``), whose reports reach the core
      -> timers, after telling clients and desks what fell due while the gateway was down
      -> FIX listeners -> readiness monitor -> HTTP API (/metrics reads the metrics every part
         above counts into)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from fixspec.messages import utcnow
from gateway import recovery, reload
from gateway.admission import Admission
from gateway.audit.compliance import ComplianceTrail
from gateway.audit.feed import Auditor
from gateway.clearing import Clearing
from gateway.config import Config, ConfigError, load_config
from gateway.drain import Drain, Step
from gateway.fix.acceptor import Acceptor, engine_settings, session_settings
from gateway.fix.application import GatewayApplication
from gateway.fix.control import SessionControl
from gateway.fix.dictionary import write_dictionary
from gateway.fix.drop_copy import DropCopy
from gateway.fix.front import Front, PeerRegistry, free_loopback_port
from gateway.fix.trade_reports import TradeReports, stored_trades
from gateway.http.app import create_app
from gateway.http.draining import Draining
from gateway.http.limits import desk_rate_limits
from gateway.http.security import Auth
from gateway.http.server import HttpServer
from gateway.http.services import ApiServices
from gateway.http.streams import DeskHub
from gateway.journal import NegotiationJournal
from gateway.logon import LogonPolicy
from gateway.metrics import Metrics, Sources
from gateway.negotiation import NegotiationService, engine_for, load_desk_keys
from gateway.readiness import (
    AuditCheck,
    ClearingCheck,
    DatabaseCheck,
    Probe,
    Readiness,
    VenueCheck,
    WriterCheck,
)
from gateway.risk_control import RiskControl, risk_limits
from gateway.schedule import trading_days
from gateway.store.clearing import SqlOutbox
from gateway.store.connect import connect
from gateway.store.orders import (
    OrderHistory,
    OrderReader,
    finished_exposure,
    last_exec_seq,
    last_order_seq,
    load_open_orders,
    used_clordids,
)
from gateway.store.rfqs import RfqArchive
from gateway.store.sessions import SessionControls
from gateway.store.trades import TradeReader, TradesWithClearing
from gateway.store.writer import Writer
from gateway.tls.context import CertBinding, ContextCache
from gateway.tls.files import PkiPaths
from gateway.trade_capture import TradeBooking
from gateway.trade_corrections import TradeCorrections
from gateway.venues.credentials import upstream_password
from gateway.venues.fix_upstream import FixUpstreamVenue
from otc.negotiation.signing import DeskKeyring
from otc.orders import OrderManager
from otc.rfq_risk import RfqRiskGate
from otc.risk import RiskCheck
from otc.venue import SimulatedVenue, Venue

log = logging.getLogger("fixbridge")


@dataclass(frozen=True, slots=True)
class Parts:
    """Parts a benchmark swaps to measure what each costs (``load.ablated_gateway``).

    The product always runs with these defaults: no configuration key or command-line flag
    reaches them, because the audit trail, persistence, quote signatures and the front are not
    optional.
    """

    auditor: Callable[[Path], Auditor] = Auditor
    # every FIX message in and out reaches the audit trail through a Python log (False: QuickFIX
    # logs through its own FileLog with no Python in between)
    audit_fix_messages: bool = True
    writer: Callable[[Engine], Writer] = Writer
    desk_keys: Callable[[Path, Iterable[str]], DeskKeyring | None] = load_desk_keys
    # None: QuickFIX listens on a free loopback port behind the front. A port: clients connect
    # to QuickFIX there directly, and a Logon needs no announcement by the front.
    acceptor_port: int | None = None
    metrics: Callable[[], Metrics] = Metrics


class Gateway:
    """Starts and stops every part of the process in the right order."""

    def __init__(
        self,
        config: Config,
        parts: Parts | None = None,
        config_path: Path | None = None,
        data_dir_override: Path | None = None,
    ) -> None:
        self.config = config
        self.parts = parts or Parts()
        # where a reload re-reads the configuration (None: no reloads), with the same override
        self.config_path = config_path
        self.data_dir_override = data_dir_override
        self.started = threading.Event()
        self.http: HttpServer | None = None
        self.readiness: Readiness | None = None
        self.upstream: FixUpstreamVenue | None = None  # [venue] kind = "fix"
        self._reload_lock = threading.Lock()
        self.http_gate: Draining | None = None
        self.draining = threading.Event()  # set by stop(): new business is refused
        # new business is refused while the drain or any failing part names a reason
        self.admission = Admission(draining=self.draining)

    def start(self) -> None:
        cfg, parts = self.config, self.parts
        data = cfg.gateway.data_dir
        data.mkdir(parents=True, exist_ok=True)
        # QuickFIX 1.16 reads zoned schedules (UseLocalTime=Y) in the process's time zone
        self.process_zone = cfg.time_zone
        if self.process_zone is not None:
            os.environ["TZ"] = self.process_zone
            time.tzset()
        self.dictionary = dictionary = write_dictionary(data)
        self.metrics = parts.metrics()
        self.auditor = parts.auditor(data / "audit")
        self.admission.add(self.auditor.refusal)
        self.database = connect(cfg.database_url)
        self.writer = parts.writer(self.database)
        self.admission.add(self.writer.refusal)
        trading_day = trading_days(lambda: self.config)
        # ERs sent but not yet committed
        recovery.recover(self.database, data / "store", trading_day)

        venue = self._venue()
        risk = RiskCheck(
            default=risk_limits(cfg.risk),
            per_client={s.comp_id: risk_limits(s.risk) for s in cfg.sessions if s.risk},
        )
        self.orders = OrderManager(venue, risk, trading_day=trading_day)
        self._restore_orders()
        # QuickFIX's thread, the API and trade booking share it
        core_lock = self.core_lock = threading.RLock()

        self.peers = PeerRegistry()
        # anonymous RFQs: desks see the alias; the service, built below, answers which
        self.desk_hub = DeskHub(identity=lambda rfq_id: self.negotiation.client_alias(rfq_id))
        self.rfq_archive = RfqArchive(self.database)
        keyring = parts.desk_keys(data / "desk-keys", cfg.otc.desks)
        journal = NegotiationJournal(data / "journal")
        # The FIX application and the negotiation need each other: RFQs from FIX go into the
        # service, and its events go back out as FIX messages. The service is built first; its
        # FIX sink reaches the application, built next, when the first event flows.
        self.booking = TradeBooking(
            cfg.clearing,
            self.database,
            self.orders,
            core_lock,
            confirm=lambda command: self.negotiation.submit(command),
        )
        self.admission.add(self.booking.refusal)
        self.negotiation = NegotiationService(
            engine_for(cfg, keyring, ids=journal.ids),
            sinks=[
                self.auditor.negotiation,
                self.booking,
                lambda events: self.application.rfq_sink(events),
                self.desk_hub.sink,
                self.metrics.rfqs.sink,  # last: RFQ -> first quote includes sending it
            ],
            gate=RfqRiskGate(
                self.orders.risk,
                self.orders.halt_reason,
                self.orders.exposure,
                rfq_rate=lambda client: s.rfq_rate if (s := self.config.session(client)) else 20,
            ),
            archive=self.rfq_archive.save,
            journal=journal,
            disclose_clients=cfg.otc.disclose_clients,
        )
        self.negotiation.restore(cfg.otc.routing)  # open business is back; no one is told yet
        self.core_lock = core_lock
        self.policy = LogonPolicy(cfg)
        self.session_control = SessionControl(
            cfg, {}, self.peers, SessionControls(self.database), self.auditor.admin
        )
        drop_copy = DropCopy({dc: s.clients for dc, s in cfg.fix.drop_copy.items()})
        # corrections tell the client through the application, built next (same late reach as
        # the negotiation's FIX sink); the application sends AllocationInstructions to them
        self.corrections = TradeCorrections(
            self.database,
            self.writer,
            self.auditor.admin,
            lambda previous, version: self.application.trade_amended(previous, version),
            second_approver=cfg.trades.second_approver,
            clear=cfg.clearing.mode != "off",
        )
        self.application = GatewayApplication(
            self.orders,
            self.writer,
            self.policy,
            self.peers,
            cfg,
            dictionary,
            require_front=parts.acceptor_port is None,
            negotiation=self.negotiation,
            lock=core_lock,
            core_observers=[self.auditor.orders],
            session_observers=[self.auditor.session],
            handled_observers=[self.auditor.end_command],
            metrics=self.metrics.fix,
            logon_gate=self.session_control.logon_refusal,
            logout_text=self.session_control.logout_text,
            admission=self.admission,
            drop_copy=drop_copy,
            trade_reports=TradeReports(stored_trades(self.database), drop_copy.clients_of),
            allocations=self.corrections,
            pre_allocations=self.booking.pre_allocations,
            history=OrderHistory(self.database, self.writer),
        )
        self.session_control.sessions = self.application.sessions
        self.risk_control = RiskControl(
            self.orders,
            core_lock,
            self.application.run_core,
            self.negotiation.cancel_client_rfqs,
            self.auditor.admin,
        )
        self.clearing_outbox = SqlOutbox(self.database)
        self.clearing = Clearing(
            cfg.clearing, self.clearing_outbox, self.auditor.admin, self.metrics.clearing
        )

        self.clearing.start()
        acceptor_port = parts.acceptor_port or free_loopback_port()
        self.acceptor = Acceptor(
            self.application,
            session_settings(cfg, acceptor_port, dictionary),
            cfg.gateway.fix_message_log,
            self.auditor.fix if parts.audit_fix_messages else None,
        )
        # The sessions exist now, no one is connected: what fell due while the gateway was down
        # goes out, kept for each client until its next logon and for each desk's next stream.
        with self.application.holding_client_notices(), self.desk_hub.holding():
            self.negotiation.start()
        self.acceptor.start()
        if self.upstream is not None:  # the clients' sessions exist: the venue's reports may flow
            self.upstream.attach(self.application.run_core)
            self.upstream.start()
        # every acceptor (sessions added by a reload get one of their own), what QuickFIX was
        # told about each session it has, and which port serves which CompID
        self.acceptors = [self.acceptor]
        self.engine_sessions = {s.comp_id: engine_settings(s) for s in cfg.sessions}
        self.routes: dict[str, int] = {}

        def route(comp_id: str | None) -> int:
            return self.routes.get(comp_id or "", acceptor_port)

        self.fronts: list[Front] = []
        self.cert_bindings: list[CertBinding] = []
        if cfg.gateway.fix_plain:
            host, _, port = cfg.gateway.fix_listen.rpartition(":")
            self.fronts.append(
                Front(
                    (host, int(port)),
                    acceptor_port,
                    self.peers,
                    self.application.admit,
                    route=route,
                )
            )
        if cfg.tls.enabled:
            host, _, port = cfg.tls.fix_listen.rpartition(":")
            binding = CertBinding(cfg, ContextCache(PkiPaths(cfg.certs_dir)))
            self.cert_bindings.append(binding)
            self.fronts.append(
                Front(
                    (host, int(port)),
                    acceptor_port,
                    self.peers,
                    self.application.admit,
                    binding,
                    on_refused=self.application.tls_refused,
                    route=route,
                )
            )
        for front in self.fronts:
            front.start()
            log.info(
                "FIX%s listening on %s:%d as %s (%d sessions); data in %s",
                " over TLS" if front.tls else "",
                front.listen[0],
                front.port,
                cfg.gateway.comp_id,
                len(cfg.sessions),
                data,
            )
        self._start_readiness()
        if cfg.gateway.http_enabled:
            self._start_http()
        self.started.set()

    def _venue(self) -> Venue:
        """The simulator, or the adapter to an upstream FIX venue (``[venue] kind = "fix"``)."""
        cfg = self.config
        if cfg.venue.kind == "simulated" or cfg.venue.fix is None:
            return SimulatedVenue(dict(cfg.venue.reference_prices), cfg.venue.depth)
        self.upstream = FixUpstreamVenue(
            cfg.venue.fix,
            cfg.venue_dir,
            dict(cfg.venue.reference_prices),
            upstream_password(cfg.venue.fix),  # preflight has checked it
            self.auditor.admin,
            self.auditor.fix if self.parts.audit_fix_messages else None,
            cfg.gateway.fix_message_log,
        )
        return self.upstream

    def _restore_orders(self) -> None:
        """Open orders back into the core, with the ClOrdIDs of the last trading days and the
        finished orders' exposure: nothing that grows with finished history."""
        database = self.database
        warm = utcnow().date() - timedelta(days=2)  # the core's filters keep two days back
        open_orders = load_open_orders(database)
        self.orders.restore(
            open_orders,
            [],
            used=used_clordids(database, warm),
            warm_from=warm,
            last_order_seq=last_order_seq(database),
            finished_exposure=finished_exposure(database),
        )
        self.orders.set_exec_seq(last_exec_seq(database))
        log.info(
            "order core restored: %d open orders in memory; ClOrdIDs of trading days from %s",
            len(open_orders),
            warm,
        )

    def _start_readiness(self) -> None:
        """The /ready checks, run every few seconds (failures are logged when they happen), and
        the state /metrics reads at each scrape."""
        backlog = Probe(self.clearing_outbox.counts, name="clearing-backlog")
        self.readiness = Readiness(
            {
                "database": DatabaseCheck(self.database),
                "db_writer": WriterCheck(self.writer),
                "audit": AuditCheck(self.auditor),
                "clearing": ClearingCheck(self.clearing, backlog, self.config.clearing.max_backlog),
            }
        )
        if self.upstream is not None:
            self.readiness.checks["venue"] = VenueCheck(self.upstream.state)
        readiness = self.readiness
        self.admission.add(
            lambda: (
                f"database unavailable: {why}"
                if (why := readiness.failing("database")) is not None
                else None
            )
        )
        self.metrics.watch(
            Sources(
                sessions=self.session_control.views,
                auditor=self.auditor,
                writer=self.writer,
                clearing_counts=lambda: backlog().get(),
                readiness=self.readiness.last,
                orders=lambda: (len(self.orders.orders), self.orders.evicted),
            )
        )
        self.readiness.start()

    def _start_http(self) -> None:
        services = ApiServices(
            config=self.config,
            auth=Auth(self.config, on_failure=self.auditor.auth_failure),
            orders=OrderReader(self.database, self.writer),
            sessions=self.session_control,
            risk=self.risk_control,
            negotiation=self.negotiation,
            desk_hub=self.desk_hub,
            trades=TradesWithClearing(
                TradeReader(self.database, self.writer), self.clearing_outbox
            ),
            rfq_archive=self.rfq_archive,
            auditor=self.auditor,
            audit_exports=self.config.gateway.data_dir / "exports",
            clearing_outbox=self.clearing_outbox,
            on_action=self.auditor.api_action,
            admission=self.admission.refusal,
            metrics=self.metrics,
            readiness=self.readiness,
            reload=self.reload if self.config_path is not None else None,
            compliance=ComplianceTrail(
                self.auditor.log,
                self.dictionary.read_bytes(),
                self.config.gateway.data_dir / "exports",
            ),
            desk_rates=desk_rate_limits(self.config.api),
            corrections=self.corrections,
        )
        self.services = services
        self.http_gate = Draining(
            create_app(services),
            self.config.gateway.drain_seconds,
            on_refused=self.auditor.api_action,
            refusal=self.admission.refusal,
        )
        self.http = HttpServer(self.http_gate, self.config.gateway.http_listen, self.config.api)
        self.http.start()

    def reload(self, actor: str) -> dict:
        """Re-read the configuration file and apply its session changes (see
        :mod:`gateway.reload`); raises :class:`gateway.reload.ReloadRefused`, having changed
        nothing, if it changes anything else."""
        assert self.config_path is not None
        who = actor if actor.startswith("signal:") else f"api:{actor}"
        with self._reload_lock:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                self.auditor.admin("config.reload_refused", who, {"problem": str(exc)})
                raise reload.ReloadRefused(str(exc)) from None
            if self.data_dir_override is not None:
                new = new.with_data_dir(self.data_dir_override)
            plan = reload.plan(
                self.config, new, self.engine_sessions, self.process_zone, engine_settings
            )
            if plan.refused:
                log.warning("reload refused: %s", plan.refusal())
                self.auditor.admin("config.reload_refused", who, {"refused": plan.refused})
                raise reload.ReloadRefused(plan.refusal())
            if plan.added:  # a running acceptor takes no new session: start one more
                port = free_loopback_port()
                for s in plan.added:  # once QuickFIX has made them, they exist for good
                    self.engine_sessions[s.comp_id] = engine_settings(s)
                try:
                    acceptor = Acceptor(
                        self.application,
                        session_settings(new, port, self.dictionary, plan.added),
                        new.gateway.fix_message_log,
                        self.auditor.fix if self.parts.audit_fix_messages else None,
                    )
                    acceptor.start()
                except Exception as exc:
                    why = (
                        f"could not start an acceptor for {[s.comp_id for s in plan.added]}: "
                        f"{exc}; nothing was applied, and adding them now needs a restart"
                    )
                    log.error("reload failed: %s", why)
                    self.auditor.admin("config.reload_refused", who, {"problem": why})
                    raise reload.ReloadRefused(why) from None
                self.acceptors.append(acceptor)
                for s in plan.added:
                    self.routes[s.comp_id] = port
            with self.core_lock:
                for s in plan.added + plan.readmitted:
                    if s.risk is not None:
                        self.orders.risk.set_limits(s.comp_id, risk_limits(s.risk))
            # from here on every part sees the new sessions, and no longer the removed ones
            self.config = new
            self.policy.config = new
            self.application.reconfigure(new)
            self.session_control.config = new
            for binding in self.cert_bindings:
                binding.config = new
            if self.http is not None:
                self.services.config = new
            for comp_id in plan.removed:
                self.session_control.retire(
                    comp_id, "session removed from the gateway's configuration"
                )
            still_on = self.session_control.wait_logged_out(plan.removed)
            outcome = {
                "added": [s.comp_id for s in plan.added],
                "readmitted": [s.comp_id for s in plan.readmitted],
                "removed": plan.removed,
                "changed": plan.changed,
                "still_logged_on": still_on,
                "sessions": len(new.sessions),
            }
            log.warning("configuration reloaded by %s: %s", who, outcome)
            self.auditor.admin("config.reload", who, outcome)
            return outcome

    def stop(self) -> bool:
        """The graceful drain (SIGTERM), within ``gateway.drain_seconds``: refuse new business,
        let what is in flight finish, log the sessions out, flush the database writer, seal the
        audit log. Whether it all finished; the caller then exits (README "Shutdown")."""
        budget = self.config.gateway.drain_seconds
        log.info("drain: refusing new business; %g s to finish", budget)
        done = Drain(budget).run(
            [
                Step("refuse new business", self._refuse_new_business, required=True),
                Step("finish commands in flight", self._finish_in_flight, required=True),
                Step("stop the readiness checks", lambda left: self._stop_readiness()),
                Step("stop the negotiation timers", lambda left: self.negotiation.stop()),
                Step("log the FIX sessions out", self._log_sessions_out),
                Step("log the upstream venue session out", self._log_venue_out),
                Step("close the FIX connections", lambda left: self._close_fronts()),
                Step("stop the clearing worker", lambda left: self.clearing.stop()),
                Step(
                    "stop the HTTP API",
                    lambda left: self.http.stop(min(3.0, left)) if self.http is not None else None,
                ),
                Step(
                    "flush the database writer", lambda left: self.writer.flush(left), required=True
                ),
                Step("close the database writer", lambda left: self.writer.close()),
                Step("seal the audit log", lambda left: self.auditor.close(), required=True),
                Step("close the database", lambda left: self.database.dispose()),
            ]
        )
        log.info("stopped")
        return done

    def _refuse_new_business(self, left: float) -> None:
        """FIX: orders, replaces, RFQs and acceptances get BusinessMessageReject 380=4 and the
        listeners close; HTTP: changes get 503 with Retry-After; reads go on."""
        self.draining.set()
        if self.http_gate is not None:
            self.http_gate.close()
        for front in self.fronts:
            front.stop_listening()

    def _finish_in_flight(self, left: float) -> bool:
        """Wait for admitted API changes, then take the order core's and the negotiation's
        locks once: every command that got in before the refusal has finished."""
        deadline = time.monotonic() + left
        done = self.http_gate is None or self.http_gate.wait_idle(left)
        for lock in (self.core_lock, self.negotiation.lock):
            if lock.acquire(timeout=max(0.001, deadline - time.monotonic())):
                lock.release()
            else:
                done = False
        return done

    def _stop_readiness(self) -> None:
        if self.readiness is not None:
            self.readiness.stop()

    def _log_sessions_out(self, left: float) -> bool:
        """Every acceptor's sessions (a reload may have added acceptors); logged-out sessions
        stay disabled while the process closes."""
        self.application.closing = True
        deadline = time.monotonic() + min(5.0, left)
        done = True
        for acceptor in self.acceptors:
            left_now = max(0.001, deadline - time.monotonic())
            done = acceptor.logout_all("gateway shutting down", left_now) and done
        return done

    def _log_venue_out(self, left: float) -> bool:
        return self.upstream is None or self.upstream.logout(min(5.0, left))

    def _close_fronts(self) -> None:
        for front in self.fronts:
            front.stop()
