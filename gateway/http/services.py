"""What the web API's routes work with, handed to :func:`gateway.http.app.create_app` once.

The app keeps it in ``app.state.services``; routes never reach it directly but through the
dependency aliases of :mod:`gateway.http.deps`, so each route's signature says what it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.audit.compliance import ComplianceTrail
from gateway.audit.feed import Auditor
from gateway.config import Config
from gateway.fix.control import SessionControl
from gateway.http.limits import DeskRateLimits
from gateway.http.security import Auth
from gateway.http.streams import DeskHub
from gateway.metrics import Metrics
from gateway.negotiation import NegotiationService
from gateway.readiness import Readiness
from gateway.risk_control import RiskControl
from gateway.store.clearing import SqlOutbox
from gateway.store.orders import OrderReader
from gateway.store.rfqs import RfqArchive
from gateway.store.trades import TradesWithClearing
from gateway.trade_corrections import TradeCorrections


@dataclass(slots=True)
class ApiServices:
    """Set once; only ``config`` changes later, when a reload adds or removes sessions."""

    config: Config
    auth: Auth
    orders: OrderReader
    sessions: SessionControl  # every configured FIX session: state and operator actions
    risk: RiskControl
    negotiation: NegotiationService
    desk_hub: DeskHub
    trades: TradesWithClearing
    rfq_archive: RfqArchive
    auditor: Auditor
    audit_exports: Path  # where POST /audit/export builds its bundles
    clearing_outbox: SqlOutbox
    # every API action with its actor and status (the audit trail); None: not recorded
    on_action: Callable[[str, str, str, int, str], Any] | None = None
    # GET /metrics and GET /ready; None: not served (404)
    metrics: Metrics | None = None
    readiness: Readiness | None = None
    # re-read the configuration file and apply its session changes (POST /admin/reload); takes
    # the actor, returns what changed, raises gateway.reload.ReloadRefused
    reload: Callable[[str], dict[str, Any]] | None = None
    # why new business is refused right now (the admission gate), or None; read by what
    # bypasses the HTTP gate (a mass quote on the desk stream). None: always admitted
    admission: Callable[[], str | None] | None = None
    # what the compliance console reads; None: made on first use from the auditor's log and the
    # installed FIX dictionary
    compliance: ComplianceTrail | None = None
    # each desk's request rate (None: unlimited)
    desk_rates: DeskRateLimits | None = None
    # corrections and busts of captured trades; None: not served (404)
    corrections: TradeCorrections | None = None
