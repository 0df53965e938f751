"""Captured trades, read back from the database with their clearing status. A desk sees its own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from gateway.http.deps import ReaderToken, TradesDep
from gateway.http.models import CapturedTradeOut
from gateway.http.problems import ERRORS

router = APIRouter(prefix="/trades", tags=["trades"])


@router.get("", response_model=list[CapturedTradeOut])
def trades(
    token: ReaderToken, store: TradesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Captured trades, newest first (a desk sees its own)."""
    return store.trades(token.desk_id if token.role == "desk" else None, limit)


@router.get("/{trade_id}", response_model=CapturedTradeOut, responses=ERRORS)
def trade(trade_id: str, token: ReaderToken, store: TradesDep) -> dict[str, Any]:
    """One captured trade: package and legs, both parties, µs UTC timestamps."""
    found = store.trade(trade_id)
    if found is None or (token.role == "desk" and found["desk"]["party_id"] != token.desk_id):
        raise HTTPException(404, f"no trade {trade_id!r}")
    return found
