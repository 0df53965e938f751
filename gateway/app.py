"""One gateway process: the composition root. It builds every part, hands each what it needs
through its constructor, and starts and stops them in order; the parts do the work.

    audit trail, database + writer, recovery, order core
      -> negotiation service (sinks: audit, trade booking, FIX clients, desk streams), open
         business replayed from its journal
      -> FIX application -> clearing -> QuickFIX acceptor (its sessions)
      -> timers, after telling clients and desks what fell due while the gateway was down
      -> FIX listeners -> HTTP API
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway import recovery
from gateway.audit.feed import Auditor
from gateway.clearing import Clearing
from gateway.config import Config
from gateway.fix.acceptor import Acceptor, SessionViews, session_settings
from gateway.fix.application import GatewayApplication
from gateway.fix.dictionary import write_dictionary
from gateway.fix.front import Front, PeerRegistry, free_loopback_port
from gateway.http.app import create_app
from gateway.http.security import Auth
from gateway.http.server import HttpServer
from gateway.http.services import ApiServices
from gateway.http.streams import DeskHub
from gateway.journal import NegotiationJournal
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
        core_lock = threading.RLock()  # QuickFIX's thread, the API and trade booking share it

        self.peers = PeerRegistry()
        self.desk_hub = DeskHub()
        self.rfq_archive = RfqArchive(self.database)
        keyring = parts.desk_keys(data / "desk-keys", cfg.otc.desks)
        journal = NegotiationJournal(data / "journal")
        # The FIX application and the negotiation need each other: RFQs from FIX go into the
        # service, and its events go back out as FIX messages. The service is built first; its
        # FIX sink reaches the application, built next, when the first event flows.
        self.negotiation = NegotiationService(
            engine_for(cfg, keyring, ids=journal.ids),
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
            journal=journal,
        )
        self.negotiation.restore(cfg.otc.routing)  # open business is back; no one is told yet
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
        self.http = HttpServer(
            create_app(services), self.config.gateway.http_listen, self.config.api
        )
        self.http.start()

    def stop(self) -> None:
        """Log sessions out, stop listening, commit what is queued. The caller then exits."""
        if self.http is not None:
            self.http.stop()
        self.negotiation.stop()
        self.clearing.stop()
        if not self.acceptor.logout_all("gateway shutting down"):
            log.warning("some sessions did not complete their logout")
        for front in self.fronts:
            front.stop()
        self.writer.close()
        self.auditor.close()
        self.database.dispose()
        log.info("stopped")
