"""Liveness and readiness, for load balancers, orchestrators and operators: the only routes that
need no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.http.deps import ReadinessDep
from gateway.http.models import HealthOut, NotReadyOut, ReadyOut
from gateway.http.problems import PROBLEM

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, str]:
    """Liveness: the process is up and serving HTTP. Needs no token."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={
        503: {
            "model": NotReadyOut,
            "content": {PROBLEM: {}},
            "description": "Not ready: the failing checks are named",
        }
    },
)
def ready(readiness: ReadinessDep) -> Any:
    """Readiness: the database answers, its writer keeps up, the audit log can record, the
    clearing backlog is under ``[clearing] max_backlog`` and, when orders go to an upstream FIX
    venue, its session is logged on. 200 with every check's verdict, or 503
    (a problem naming each failing check). Needs no token."""
    verdicts = readiness.evaluate()
    checks = {name: {"ok": v.ok, "detail": v.detail} for name, v in verdicts.items()}
    failing = [f"{name} ({v.detail})" for name, v in verdicts.items() if not v.ok]
    if not failing:
        return {"status": "ready", "checks": checks}
    body = NotReadyOut(
        title="Service Unavailable",
        status=503,
        detail="not ready: " + "; ".join(failing),
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=503, media_type=PROBLEM)
