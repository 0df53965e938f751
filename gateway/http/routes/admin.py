"""Gateway administration: re-read the configuration file (as SIGHUP does)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from gateway.http.deps import AdminToken, ReloadDep
from gateway.http.models import ReloadOut
from gateway.http.problems import ERRORS
from gateway.reload import ReloadRefused

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadOut, responses=ERRORS)
def reload(token: AdminToken, reload_config: ReloadDep) -> dict[str, Any]:
    """Re-read the configuration file: add or remove FIX sessions without touching the others
    (see gateway.reload for exactly what may change). Anything that needs a restart is refused
    whole (409, naming each key), and then nothing is applied."""
    if reload_config is None:
        raise HTTPException(409, "this gateway was not started from a configuration file")
    try:
        return reload_config(token.name)
    except ReloadRefused as exc:
        raise HTTPException(409, str(exc)) from None
