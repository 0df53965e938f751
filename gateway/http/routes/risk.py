"""Pre-trade risk at run time: a client's limits and exposure, new limits, the kill switch.
Every change is audited (see :mod:`gateway.risk_control`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from gateway.config import Config, RiskSection
from gateway.http.deps import AdminOrComplianceToken, AdminToken, ConfigDep, RiskDep
from gateway.http.models import KillOut, KillRequest, ResumeOut, RiskView
from gateway.http.problems import NOT_FOUND

router = APIRouter(prefix="/risk", tags=["risk"])


def _known(config: Config, client: str) -> None:
    if config.session(client) is None:
        raise HTTPException(404, f"no session {client!r}")


@router.get("/{client}", response_model=RiskView, responses=NOT_FOUND)
def get_risk(
    client: str, token: AdminOrComplianceToken, risk: RiskDep, config: ConfigDep
) -> dict[str, Any]:
    """A client's limits, current exposure (open plus filled notional) and kill switch."""
    _known(config, client)
    return risk.risk_view(client)


@router.put("/{client}/limits", response_model=RiskView, responses=NOT_FOUND)
def put_limits(
    client: str, limits: RiskSection, token: AdminToken, risk: RiskDep, config: ConfigDep
) -> dict[str, Any]:
    """Replace a client's limits at run time; applies to the next order. Audited."""
    _known(config, client)
    return risk.set_limits(client, limits, token.name)


@router.post("/kill", response_model=KillOut, responses=NOT_FOUND)
def kill(body: KillRequest, token: AdminToken, risk: RiskDep, config: ConfigDep) -> dict[str, Any]:
    """Kill switch for one client or (no client) everyone: cancels open orders and refuses
    new ones with the reason until resumed."""
    if body.client is not None:
        _known(config, body.client)
    cancelled = risk.kill(body.client, body.reason, token.name)
    return {"client": body.client, "halted": True, "cancelled_orders": cancelled}


@router.post("/resume", response_model=ResumeOut, responses=NOT_FOUND)
def resume(
    body: KillRequest, token: AdminToken, risk: RiskDep, config: ConfigDep
) -> dict[str, Any]:
    """Lift a kill switch set by /risk/kill for the same client (or the global one)."""
    if body.client is not None:
        _known(config, body.client)
    return {"client": body.client, "resumed": risk.resume(body.client, token.name)}
