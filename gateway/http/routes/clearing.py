"""Clearing routes: delivery state of clearing messages and the exceptions list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.http.deps import AdminOrComplianceToken, ClearingOutboxDep
from gateway.http.models import ClearingExceptionOut, ClearingMessageOut
from gateway.store.clearing import exceptions_view, message_view
from otc.clearing.outbox import ClearingState

router = APIRouter(prefix="/clearing", tags=["clearing"])


@router.get("/messages", response_model=list[ClearingMessageOut])
def messages(
    token: AdminOrComplianceToken, repo: ClearingOutboxDep, trade_id: str | None = None
) -> list[dict[str, Any]]:
    """Clearing messages with their delivery state (all, or one trade's)."""
    found = repo.for_trade(trade_id) if trade_id else repo.in_states(list(ClearingState))
    return [message_view(m) for m in found]


@router.get("/exceptions", response_model=list[ClearingExceptionOut])
def exceptions(token: AdminOrComplianceToken, repo: ClearingOutboxDep) -> list[dict[str, Any]]:
    """Rejected and given-up clearing messages: not retried, they need a human."""
    return exceptions_view(repo)
