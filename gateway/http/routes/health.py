"""Liveness, for load balancers and operators: the only route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.http.models import HealthOut

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, str]:
    """Liveness: the process is up and serving HTTP. Needs no token."""
    return {"status": "ok"}
