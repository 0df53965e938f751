"""Route dependencies as ``Annotated`` aliases, so a route reads as a plain typed function:
``def get_order(order_id: str, token: ViewerToken, orders: OrdersDep) -> OrderView``.

Token aliases check the caller's role: each resolves to the caller's :class:`ApiToken` or
answers 401 (no or unknown token) or 403 (a role the route does not allow), logged and audited
by :class:`~gateway.http.security.Auth`. Service aliases resolve to what
:class:`~gateway.http.services.ApiServices` holds. All are ``async``: none does I/O, and a hop
to a worker thread would cost more than the work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import HTTPConnection

from gateway.audit.compliance import ComplianceTrail
from gateway.audit.feed import Auditor
from gateway.config import ApiToken, Config
from gateway.fix.control import SessionControl
from gateway.http.security import Auth, bearer
from gateway.http.services import ApiServices
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

# --- the caller ----------------------------------------------------------------------------


def require(*roles: str) -> Callable[..., Awaitable[ApiToken]]:
    """A dependency that admits a bearer token whose role is one of ``roles``."""

    async def check(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiToken:
        auth = services(request).auth
        peer = request.client.host if request.client else "?"
        path = request.url.path
        if creds is None or creds.scheme.lower() != "bearer":
            raise auth.fail(401, "missing bearer token", peer, path)
        # AuthGate has identified this request's token already; identify it here otherwise
        token = getattr(request.state, "token", None) or auth.identify(creds.credentials)
        if token is None:
            raise auth.fail(401, "invalid bearer token", peer, path)
        request.state.actor = token.name
        if token.role not in roles:
            raise auth.fail(
                403, f"role {token.role!r} may not use this endpoint", peer, path, token.name
            )
        _desk_rate(request, token)
        return token

    return check


def _desk_rate(request: Request, token: ApiToken) -> None:
    """A desk's request spends a token of its bucket (429 when it is empty)."""
    rates = services(request).desk_rates
    if rates is not None and token.role == "desk" and token.desk_id is not None:
        rates.take(token.desk_id)


AdminToken = Annotated[ApiToken, Depends(require("admin"))]
DeskToken = Annotated[ApiToken, Depends(require("desk"))]
AdminOrDeskToken = Annotated[ApiToken, Depends(require("admin", "desk"))]
AdminOrComplianceToken = Annotated[ApiToken, Depends(require("admin", "compliance"))]
# who reads FIX sessions and orders
ViewerToken = Annotated[ApiToken, Depends(require("admin", "client-viewer", "compliance"))]
# who reads negotiations and trades (a desk its own)
ReaderToken = Annotated[ApiToken, Depends(require("admin", "compliance", "desk"))]
AnyRoleToken = Annotated[ApiToken, Depends(require("admin", "compliance", "desk", "client-viewer"))]
# who scrapes /metrics: a Prometheus server's own token (role metrics), or an admin
MetricsToken = Annotated[ApiToken, Depends(require("admin", "metrics"))]


async def _desk_id(token: DeskToken) -> str:
    """The desk a desk token acts for (the configuration requires one for role desk)."""
    assert token.desk_id is not None
    return token.desk_id


# the caller's desk, for routes only desks may use
DeskId = Annotated[str, Depends(_desk_id)]


# --- what the routes work with -------------------------------------------------------------


def services(conn: HTTPConnection) -> ApiServices:
    found: ApiServices = conn.app.state.services
    return found


async def _config(conn: HTTPConnection) -> Config:
    return services(conn).config


async def _auth(conn: HTTPConnection) -> Auth:
    return services(conn).auth


async def _orders(conn: HTTPConnection) -> OrderReader:
    return services(conn).orders


async def _sessions(conn: HTTPConnection) -> SessionControl:
    return services(conn).sessions


async def _risk(conn: HTTPConnection) -> RiskControl:
    return services(conn).risk


async def _negotiation(conn: HTTPConnection) -> NegotiationService:
    return services(conn).negotiation


async def _desk_hub(conn: HTTPConnection) -> DeskHub:
    return services(conn).desk_hub


async def _trades(conn: HTTPConnection) -> TradesWithClearing:
    return services(conn).trades


async def _rfq_archive(conn: HTTPConnection) -> RfqArchive:
    return services(conn).rfq_archive


async def _admission(conn: HTTPConnection) -> Callable[[], str | None] | None:
    return services(conn).admission


async def _auditor(conn: HTTPConnection) -> Auditor:
    return services(conn).auditor


async def _audit_exports(conn: HTTPConnection) -> Path:
    return services(conn).audit_exports


async def _clearing_outbox(conn: HTTPConnection) -> SqlOutbox:
    return services(conn).clearing_outbox


async def _metrics(conn: HTTPConnection) -> Metrics:
    found = services(conn).metrics
    if found is None:
        raise HTTPException(404, "metrics are not served by this app")
    return found


async def _corrections(conn: HTTPConnection) -> TradeCorrections:
    found = services(conn).corrections
    if found is None:
        raise HTTPException(404, "trade corrections are not served by this app")
    return found


async def _readiness(conn: HTTPConnection) -> Readiness:
    found = services(conn).readiness
    if found is None:
        raise HTTPException(404, "readiness is not served by this app")
    return found


async def _reload(conn: HTTPConnection) -> Callable[[str], dict[str, Any]] | None:
    return services(conn).reload


async def _compliance(conn: HTTPConnection) -> ComplianceTrail:
    found = services(conn).compliance or getattr(conn.app.state, "compliance", None)
    if found is None:
        from gateway.fix.dictionary import assemble

        s = services(conn)
        found = conn.app.state.compliance = ComplianceTrail(
            s.auditor.log, assemble(), s.audit_exports
        )
    return found


ConfigDep = Annotated[Config, Depends(_config)]
AuthDep = Annotated[Auth, Depends(_auth)]
OrdersDep = Annotated[OrderReader, Depends(_orders)]
SessionsDep = Annotated[SessionControl, Depends(_sessions)]
RiskDep = Annotated[RiskControl, Depends(_risk)]
NegotiationDep = Annotated[NegotiationService, Depends(_negotiation)]
DeskHubDep = Annotated[DeskHub, Depends(_desk_hub)]
TradesDep = Annotated[TradesWithClearing, Depends(_trades)]
RfqArchiveDep = Annotated[RfqArchive, Depends(_rfq_archive)]
AuditorDep = Annotated[Auditor, Depends(_auditor)]
AdmissionDep = Annotated[Callable[[], str | None] | None, Depends(_admission)]
AuditExportsDep = Annotated[Path, Depends(_audit_exports)]
ClearingOutboxDep = Annotated[SqlOutbox, Depends(_clearing_outbox)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]
ReloadDep = Annotated[Callable[[str], dict[str, Any]] | None, Depends(_reload)]
ComplianceDep = Annotated[ComplianceTrail, Depends(_compliance)]
CorrectionsDep = Annotated[TradeCorrections, Depends(_corrections)]
