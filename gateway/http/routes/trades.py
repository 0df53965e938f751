"""Captured trades, read back from the database with their clearing status. A desk sees its own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from gateway.http.anonymity import identity_of, masked
from gateway.http.deps import NegotiationDep, ReaderToken, RfqArchiveDep, TradesDep
from gateway.http.models import CapturedTradeOut
from gateway.http.problems import ERRORS
from gateway.negotiation import NegotiationService
from gateway.store.rfqs import RfqArchive

router = APIRouter(prefix="/trades", tags=["trades"])


@router.get("", response_model=list[CapturedTradeOut])
def trades(
    token: ReaderToken,
    store: TradesDep,
    service: NegotiationDep,
    archive: RfqArchiveDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Captured trades, newest first (a desk sees its own, an anonymous client by alias)."""
    if token.role != "desk":
        return store.trades(None, limit)
    return [_for_desk(t, service, archive) for t in store.trades(token.desk_id, limit)]


@router.get("/{trade_id}", response_model=CapturedTradeOut, responses=ERRORS)
def trade(
    trade_id: str,
    token: ReaderToken,
    store: TradesDep,
    service: NegotiationDep,
    archive: RfqArchiveDep,
) -> dict[str, Any]:
    """One captured trade: package and legs, both parties, µs UTC timestamps."""
    found = store.trade(trade_id)
    if found is None or (token.role == "desk" and found["desk"]["party_id"] != token.desk_id):
        raise HTTPException(404, f"no trade {trade_id!r}")
    return _for_desk(found, service, archive) if token.role == "desk" else found


def _for_desk(
    found: dict[str, Any], service: NegotiationService, archive: RfqArchive
) -> dict[str, Any]:
    """The trade as its desk may see it: an anonymous RFQ's client by its alias only."""
    rfq_id = found.get("rfq_id")
    if rfq_id is None:
        return found
    who = service.client_alias(rfq_id)
    if who is None:
        record = archive.load(rfq_id)
        who = identity_of(record["rfq"]) if record is not None else None
    return dict(masked(found, *who)) if who is not None else found
