"""One gateway process: FIX front and QuickFIX acceptor, order core, database writer, HTTP API."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import uvicorn

from fixspec import messages as m
from fixspec.dictionary import write_dictionary
from gateway import clearing, recovery
from gateway.api import Auth, create_api
from gateway.audit import Auditor
from gateway.audit_api import add_audit_routes
from gateway.clearing_api import add_clearing_routes
from gateway.config import Config, RiskSection
from gateway.desk_api import add_otc_routes
from gateway.fix.acceptor import Acceptor, session_settings, session_status
from gateway.fix.application import GatewayApplication
from gateway.fix.front import Front, Peer, PeerRegistry, free_loopback_port
from gateway.limits import MAX_WS_MESSAGE_BYTES
from gateway.logon import LogonPolicy
from gateway.negotiation import NegotiationService, engine_for, load_desk_keys
from gateway.store import orders as order_store
from gateway.store.clearing import SqlOutbox, message_view
from gateway.store.connect import connect
from gateway.store.orders import OrderReader
from gateway.store.rfqs import RfqArchive
from gateway.store.sessions import SessionEvent
from gateway.store.trades import TradeReader, TradesWithClearing, capture
from gateway.store.writer import Writer
from gateway.streams import DeskHub
from gateway.tls.context import CertBinding, ContextCache
from gateway.tls.files import PkiPaths
from otc.clearing.dispatcher import ClearingDispatcher
from otc.clearing.schemas import SchemaRegistry
from otc.clearing.simulator import ClearinghouseSimulator, SimulatorRules
from otc.clearing.transport import FileDropSender, HttpSender
from otc.negotiation import events as ev
from otc.negotiation.commands import ConfirmTrade
from otc.orders import OrderManager, OrderUpdated
from otc.rfq_risk import RfqRiskGate
from otc.risk import RiskCheck, RiskLimits
from otc.trades import Party, PartyRole
from otc.venue import SimulatedVenue

log = logging.getLogger("fixbridge")


def _limits(section) -> RiskLimits:
    return RiskLimits(
        max_order_qty=section.max_order_qty,
        max_notional=section.max_notional,
        price_band=section.price_band,
        credit_limit=section.credit_limit,
    )


class Gateway:
    """Starts and stops every part of the process in the right order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = threading.Event()
        self._server: uvicorn.Server | None = None

    def start(self) -> None:
        cfg = self.config
        data = cfg.gateway.data_dir
        data.mkdir(parents=True, exist_ok=True)
        dictionary = write_dictionary(data)
        self.auditor = Auditor(data / "audit")
        self.database = connect(cfg.database_url)
        self.writer = Writer(self.database)
        recovery.recover(self.database, data / "store")  # ERs sent but not yet committed

        venue = SimulatedVenue(dict(cfg.venue.reference_prices), cfg.venue.depth)
        risk = RiskCheck(
            default=_limits(cfg.risk),
            per_client={s.comp_id: _limits(s.risk) for s in cfg.sessions if s.risk},
        )
        self.orders = OrderManager(venue, risk)
        self.orders.restore(order_store.load_orders(self.database), [])
        self.orders.set_exec_seq(order_store.last_exec_seq(self.database))

        self.policy = LogonPolicy(cfg)
        self.peers = PeerRegistry()
        self.application = GatewayApplication(
            self.orders, self.writer, self.policy, self.peers, cfg, dictionary
        )
        self.application.core_observers.append(self.auditor.orders)
        self.application.session_observers.append(self.auditor.session)
        self.hub = DeskHub()
        keyring = load_desk_keys(data / "desk-keys", cfg.otc.desks)
        self.negotiation = NegotiationService(
            engine_for(cfg, keyring),
            sinks=[
                self.auditor.negotiation, self._persist_otc, self.application.rfq_sink,
                self.hub.sink,
            ],
        )
        self.negotiation.gate = RfqRiskGate(
            self.orders.risk, self.orders.halt_reason, self.orders.exposure,
            rfq_rate=lambda client: (s.rfq_rate if (s := cfg.session(client)) else 20),
        )
        self.rfq_archive = RfqArchive(self.database)
        self.negotiation.archive_sink = self.rfq_archive.save
        self.application.negotiation = self.negotiation
        self._start_clearing()
        self.negotiation.start()
        self.auth = Auth(cfg, on_failure=self._auth_failed)
        acceptor_port = free_loopback_port()
        settings = session_settings(cfg, acceptor_port, dictionary)
        self.acceptor = Acceptor(
            self.application, settings, cfg.gateway.fix_message_log, self.auditor.fix
        )
        self.acceptor.start()

        self.fronts: list[Front] = []
        if cfg.gateway.fix_plain:
            host, _, port = cfg.gateway.fix_listen.rpartition(":")
            self.fronts.append(Front((host, int(port)), acceptor_port, self.peers, self._admit))
        if cfg.tls.enabled:
            host, _, port = cfg.tls.fix_listen.rpartition(":")
            binding = CertBinding(cfg, ContextCache(PkiPaths(cfg.certs_dir)))
            self.fronts.append(
                Front((host, int(port)), acceptor_port, self.peers, self._admit, binding,
                      on_refused=self._tls_refused)
            )
        for front in self.fronts:
            front.start()
            log.info(
                "FIX%s listening on %s:%d as %s (%d sessions); data in %s",
                " over TLS" if front.tls else "", front.listen[0], front.port,
                cfg.gateway.comp_id, len(cfg.sessions), data,
            )
        if cfg.gateway.http_enabled:
            self._start_http()
        self.started.set()

    def _admit(self, peer: Peer) -> bool:
        return not self.policy.locked_out(peer.host, time.monotonic())

    def _tls_refused(self, peer: Peer, comp_id: str, why: str) -> None:
        self.policy.record_failure(peer.host, time.monotonic())
        self.writer.session_event(
            SessionEvent(comp_id or "?", "tls_refused", str(peer), why, m.utcnow())
        )
        self.auditor.session(comp_id or "?", "tls_refused", str(peer), why)

    def _start_http(self) -> None:
        host, _, port = self.config.gateway.http_listen.rpartition(":")
        otc_routes = add_otc_routes(
            self.negotiation, self.hub, self.auth,
            TradesWithClearing(TradeReader(self.database, self.writer), self.clearing_repo),
            archive=self.rfq_archive.load,
        )
        audit_routes = add_audit_routes(self.auditor, self.config.gateway.data_dir / "exports")
        api = create_api(
            self.config, OrderReader(self.database, self.writer), self.session_views, self,
            self.auth,
            extra_routes=[otc_routes, audit_routes, add_clearing_routes(self.clearing_repo)],
            on_action=self.auditor.api_action,
        )
        tls = self.config.api
        server = uvicorn.Server(
            uvicorn.Config(
                api, host=host, port=int(port), log_level="warning", access_log=False,
                ssl_certfile=str(tls.tls_cert) if tls.tls_cert else None,
                ssl_keyfile=str(tls.tls_key) if tls.tls_key else None,
                # RequestLimits closes a desk stream's oversized message (over 64 KiB) with a
                # closing handshake; uvicorn's own limit, kept as a ceiling on what it buffers,
                # fails the connection at once, and a client still sending then gets a reset
                # where it should read the 1009
                ws_max_size=max(tls.max_body_bytes, MAX_WS_MESSAGE_BYTES),
            )
        )
        server.install_signal_handlers = lambda: None  # the main thread owns signals
        self._server = server
        threading.Thread(target=server.run, name="http", daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"HTTP API did not start on {host}:{port}")
        scheme = "https" if tls.tls_cert else "http"
        log.info("HTTP API on %s://%s:%s (OpenAPI at /docs)", scheme, host, port)

    def session_views(self) -> list[dict]:
        views = []
        for s in self.config.sessions:
            session_id = self.application.sessions.get(s.comp_id)
            status = session_status(session_id) if session_id is not None else {"logged_on": False}
            peer = self.peers.active(s.comp_id)
            views.append({"comp_id": s.comp_id, "peer": str(peer) if peer else None, **status})
        return views

    def _persist_otc(self, events) -> None:
        for event in events:
            if isinstance(event, ev.TradeCaptured):
                cfg = self.config.clearing
                trade = dataclasses.replace(
                    event.trade,
                    clearing_house=Party(cfg.clearing_house, PartyRole.CLEARING_ORGANIZATION),
                    clearing_firm=(Party(cfg.clearing_firm, PartyRole.CLEARING_FIRM)
                                   if cfg.clearing_firm else None),
                )
                capture(self.database, trade, event.at, clear=cfg.mode != "off")
                # stored with its clearing message: the RFQ may now be Confirmed (and archived)
                self.negotiation.defer(ConfirmTrade(trade.trade_id))
                with self.application.lock:  # the trade now uses the client's credit
                    self.orders.add_exposure(trade.client.party_id, trade.quantity * trade.price)

    def _start_clearing(self) -> None:
        cfg = self.config.clearing
        self.clearing_repo = SqlOutbox(self.database)
        self.simulator = None
        self.clearing_worker = None
        if cfg.mode == "off":
            return
        if cfg.mode == "simulator":
            rules = SimulatorRules(max_quantity=cfg.simulator_reject_above)
            schemas = SchemaRegistry(cfg.schema_dir) if cfg.schema_dir else None
            self.simulator = ClearinghouseSimulator(rules=rules, schemas=schemas).start()
            sender = HttpSender(self.simulator.url, verify=False)
            log.info("clearing to the built-in simulated clearinghouse at %s", self.simulator.url)
        elif cfg.mode == "http":
            sender = HttpSender(cfg.url, verify=cfg.verify_tls)
        else:
            sender = FileDropSender(cfg.drop_dir)
        self.clearing_worker = clearing.ClearingWorker(
            ClearingDispatcher(self.clearing_repo, sender), on_change=self._clearing_changed
        )
        self.clearing_worker.start()

    def _clearing_changed(self, msg) -> None:
        self.auditor.admin("clearing.state", "clearing", message_view(msg))

    def _auth_failed(self, **details) -> None:
        """Every API authentication or role failure (already logged by the API)."""
        self.auditor.auth_failure(**details)

    # -- risk control (the API's RiskControl) ------------------------------------------------

    def risk_view(self, client: str) -> dict:
        limits = self.orders.risk.limits_for(client)
        return {
            "client": client,
            "limits": RiskSection(**{k: getattr(limits, k) for k in RiskSection.model_fields}),
            "exposure": self.orders.exposure(client),
            "halted": self.orders.halt_reason(client),
        }

    def set_limits(self, client: str, limits: RiskSection, actor: str) -> dict:
        with self.application.lock:
            self.orders.risk.set_limits(client, _limits(limits))
        log.warning("risk limits for %s changed by %s: %s", client, actor, limits.model_dump())
        self.auditor.admin("risk.limits", f"api:{actor}", {"client": client,
                                                            **limits.model_dump()})
        return self.risk_view(client)

    def kill(self, client: str | None, reason: str, actor: str) -> int:
        log.warning("kill switch for %s engaged by %s: %s", client or "ALL", actor, reason)
        self.auditor.admin("risk.kill", f"api:{actor}", {"client": client, "reason": reason})
        events = self.application.run_core(lambda orders: orders.kill(client, reason))
        self.negotiation.cancel_client_rfqs(client, reason)
        return sum(1 for e in events if isinstance(e, OrderUpdated))

    def resume(self, client: str | None, actor: str) -> bool:
        log.warning("kill switch for %s lifted by %s", client or "ALL", actor)
        self.auditor.admin("risk.resume", f"api:{actor}", {"client": client})
        with self.application.lock:
            return self.orders.resume(client)

    def stop(self) -> None:
        """Log sessions out, stop listening, commit what is queued. The caller then exits."""
        if self._server is not None:
            self._server.should_exit = True
        self.negotiation.stop()
        if self.clearing_worker is not None:
            self.clearing_worker.stop()
        if self.simulator is not None:
            self.simulator.stop()
        if not self.acceptor.logout_all("gateway shutting down"):
            log.warning("some sessions did not complete their logout")
        for front in self.fronts:
            front.stop()
        self.writer.close()
        self.auditor.close()
        self.database.dispose()
        log.info("stopped")
