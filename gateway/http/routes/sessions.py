"""The configured FIX sessions, as the QuickFIX acceptor and the front see them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.http.deps import SessionsDep, ViewerToken
from gateway.http.models import SessionView

router = APIRouter(prefix="/sessions", tags=["fix"])


@router.get("", response_model=list[SessionView])
def list_sessions(token: ViewerToken, sessions: SessionsDep) -> list[dict[str, Any]]:
    """Every configured FIX session: logged on or not, sequence numbers, peer address."""
    return sessions()
