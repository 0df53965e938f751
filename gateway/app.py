"""One gateway process: the composition root. It builds every part, hands each what it needs
through its constructor, and starts and stops them in order; the parts do the work.

    audit trail, database + writer, recovery, order core
      -> negotiation service (sinks: audit, trade booking, FIX clients, desk streams)
      -> FIX application -> clearing -> timers -> QuickFIX acceptor -> FIX listeners -> HTTP API
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway import recovery
from gateway.audit.feed import Auditor
from gateway.clearing import Clearing
from gateway.config import Config
from gateway.drain import Drain, Step
from gateway.fix.acceptor import Acceptor, SessionViews, session_settings
from gateway.fix.application import GatewayApplication
from gateway.fix.dictionary import write_dictionary
from gateway.fix.front import Front, PeerRegistry, free_loopback_port
from gateway.http.app import create_app
from gateway.http.draining import Draining
from gateway.http.security import Auth
from gateway.http.server import HttpServer
from gateway.http.services import ApiServices
from gateway.http.streams import DeskHub
from gateway.logon import LogonPolicy
from gateway.negotiation import NegotiationService, engine_for, load_desk_keys
from gateway.risk_control import RiskControl, risk_limits
from gateway.store.clearing import SqlOutbox
from gateway.store.connect import connect
from gateway.store.orders import OrderReader, last_exec_seq, load_orders
from gateway.store.rfqs import RfqArchive
from gateway.store.trades import TradeReader, TradesWithClearing
from gateway.store.writer import Writer
from gateway.tls.context import CertBinding, ContextCache
from gateway.tls.files import PkiPaths
from gateway.trade_capture import TradeBooking
from otc.negotiation.signing import DeskKeyring
from otc.orders import OrderManager
from otc.rfq_risk import RfqRiskGate
from otc.risk import RiskCheck
from otc.venue import SimulatedVenue

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


class Gateway:
    """Starts and stops every part of the process in the right order."""

    def __init__(self, config: Config, parts: Parts | None = None) -> None:
        self.config = config
        self.parts = parts or Parts()
        self.started = threading.Event()
        self.http: HttpServer | None = None
        self.http_gate: Draining | None = None
        self.draining = threading.Event()  # set by stop(): new business is refused

    def start(self) -> None:
        cfg, parts = self.config, self.parts
        data = cfg.gateway.data_dir
        data.mkdir(parents=True, exist_ok=True)
        dictionary = write_dictionary(data)
        self.auditor = parts.auditor(data / "audit")
        self.database = connect(cfg.database_url)
        self.writer = parts.writer(self.database)
        recovery.recover(self.database, data / "store")  # ERs sent but not yet committed

        venue = SimulatedVenue(dict(cfg.venue.reference_prices), cfg.venue.depth)
        risk = RiskCheck(
            default=risk_limits(cfg.risk),
            per_client={s.comp_id: risk_limits(s.risk) for s in cfg.sessions if s.risk},
        )
        self.orders = OrderManager(venue, risk)
        self.orders.restore(load_orders(self.database), [])
        self.orders.set_exec_seq(last_exec_seq(self.database))
        # QuickFIX's thread, the API and trade booking share it
        core_lock = self.core_lock = threading.RLock()

        self.peers = PeerRegistry()
        self.desk_hub = DeskHub()
        self.rfq_archive = RfqArchive(self.database)
        keyring = parts.desk_keys(data / "desk-keys", cfg.otc.desks)
        # The FIX application and the negotiation need each other: RFQs from FIX go into the
        # service, and its events go back out as FIX messages. The service is built first; its
        # FIX sink reaches the application, built next, when the first event flows.
        self.negotiation = NegotiationService(
            engine_for(cfg, keyring),
            sinks=[
                self.auditor.negotiation,
                TradeBooking(cfg.clearing, self.database, self.orders, core_lock),
                lambda events: self.application.rfq_sink(events),
                self.desk_hub.sink,
            ],
            gate=RfqRiskGate(
                self.orders.risk,
                self.orders.halt_reason,
                self.orders.exposure,
                rfq_rate=lambda client: s.rfq_rate if (s := cfg.session(client)) else 20,
            ),
            archive=self.rfq_archive.save,
        )
        self.application = GatewayApplication(
            self.orders,
            self.writer,
            LogonPolicy(cfg),
            self.peers,
            cfg,
            dictionary,
            require_front=parts.acceptor_port is None,
            negotiation=self.negotiation,
            lock=core_lock,
            core_observers=[self.auditor.orders],
            session_observers=[self.auditor.session],
            draining=self.draining,
        )
        self.risk_control = RiskControl(
            self.orders,
            core_lock,
            self.application.run_core,
            self.negotiation.cancel_client_rfqs,
            self.auditor.admin,
        )
        self.clearing_outbox = SqlOutbox(self.database)
        self.clearing = Clearing(cfg.clearing, self.clearing_outbox, self.auditor.admin)

        self.clearing.start()
        self.negotiation.start()
        acceptor_port = parts.acceptor_port or free_loopback_port()
        self.acceptor = Acceptor(
            self.application,
            session_settings(cfg, acceptor_port, dictionary),
            cfg.gateway.fix_message_log,
            self.auditor.fix if parts.audit_fix_messages else None,
        )
        self.acceptor.start()

        self.fronts: list[Front] = []
        if cfg.gateway.fix_plain:
            host, _, port = cfg.gateway.fix_listen.rpartition(":")
            self.fronts.append(
                Front((host, int(port)), acceptor_port, self.peers, self.application.admit)
            )
        if cfg.tls.enabled:
            host, _, port = cfg.tls.fix_listen.rpartition(":")
            binding = CertBinding(cfg, ContextCache(PkiPaths(cfg.certs_dir)))
            self.fronts.append(
                Front(
                    (host, int(port)),
                    acceptor_port,
                    self.peers,
                    self.application.admit,
                    binding,
                    on_refused=self.application.tls_refused,
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
        if cfg.gateway.http_enabled:
            self._start_http()
        self.started.set()

    def _start_http(self) -> None:
        services = ApiServices(
            config=self.config,
            auth=Auth(self.config, on_failure=self.auditor.auth_failure),
            orders=OrderReader(self.database, self.writer),
            sessions=SessionViews(self.config, self.application.sessions, self.peers),
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
        )
        self.http_gate = Draining(
            create_app(services),
            self.config.gateway.drain_seconds,
            on_refused=self.auditor.api_action,
        )
        self.http = HttpServer(self.http_gate, self.config.gateway.http_listen, self.config.api)
        self.http.start()

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
                Step("stop the negotiation timers", lambda left: self.negotiation.stop()),
                Step(
                    "log the FIX sessions out",
                    lambda left: self.acceptor.logout_all("gateway shutting down", min(5.0, left)),
                ),
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

    def _close_fronts(self) -> None:
        for front in self.fronts:
            front.stop()
