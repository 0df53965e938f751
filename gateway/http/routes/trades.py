"""Captured trades, read back from the database with their clearing status. A desk sees its own.
Admins correct (price, quantity, account) or bust them; each change is a new version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from gateway.http.anonymity import identity_of, masked
from gateway.http.deps import (
    AdminToken,
    CorrectionsDep,
    NegotiationDep,
    ReaderToken,
    RfqArchiveDep,
    TradesDep,
)
from gateway.http.models import BustIn, CapturedTradeOut, CorrectionIn, TradeVersionOut
from gateway.http.problems import ERRORS
from gateway.negotiation import NegotiationService
from gateway.store.rfqs import RfqArchive
from gateway.trade_corrections import version_view
from otc.trade_versions import (
    Amendment,
    CorrectionRefused,
    RefusalReason,
    TradeVersion,
    VersionState,
)

router = APIRouter(prefix="/trades", tags=["trades"])

_REFUSAL_STATUS = {
    RefusalReason.UNKNOWN_TRADE: 404,
    RefusalReason.SAME_APPROVER: 403,
    RefusalReason.BAD_AMOUNT: 422,
    RefusalReason.NOTHING_CHANGED: 422,
}  # every other refusal: 409, the trade's state does not allow it


def _refused(exc: CorrectionRefused) -> HTTPException:
    return HTTPException(_REFUSAL_STATUS.get(exc.reason, 409), str(exc))


def _answer(version: TradeVersion, response: Response) -> dict[str, Any]:
    """201 for a version in effect, 202 for one awaiting a second admin's approval."""
    response.status_code = 202 if version.state is VersionState.PROPOSED else 201
    return version_view(version)


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
    """One captured trade (its latest version): package and legs, both parties, µs UTC
    timestamps."""
    found = store.trade(trade_id)
    if found is None or (token.role == "desk" and found["desk"]["party_id"] != token.desk_id):
        raise HTTPException(404, f"no trade {trade_id!r}")
    return _for_desk(found, service, archive) if token.role == "desk" else found


def _for_desk(
    found: dict[str, Any], service: NegotiationService, archive: RfqArchive
) -> dict[str, Any]:
    """The trade as its desk may see it: an anonymous RFQ's client by its alias only."""
    who = _client_as_desk_knows_it(found, service, archive)
    return dict(masked(found, *who)) if who is not None else found


def _client_as_desk_knows_it(
    found: dict[str, Any], service: NegotiationService, archive: RfqArchive
) -> tuple[str, str] | None:
    """(client id, alias) when the trade's RFQ was anonymous, else None."""
    rfq_id = found.get("rfq_id")
    if rfq_id is None:
        return None
    who = service.client_alias(rfq_id)
    if who is None:
        record = archive.load(rfq_id)
        who = identity_of(record["rfq"]) if record is not None else None
    return who


@router.get("/{trade_id}/versions", response_model=list[TradeVersionOut], responses=ERRORS)
def versions(
    trade_id: str,
    token: ReaderToken,
    store: TradesDep,
    corrections: CorrectionsDep,
    service: NegotiationDep,
    archive: RfqArchiveDep,
) -> list[dict[str, Any]]:
    """The trade's version chain, oldest first, proposals included (a desk sees an anonymous
    client by its alias only)."""
    found = store.trade(trade_id)
    if found is None or (token.role == "desk" and found["desk"]["party_id"] != token.desk_id):
        raise HTTPException(404, f"no trade {trade_id!r}")
    views = [version_view(v) for v in corrections.chain(trade_id)]
    who = _client_as_desk_knows_it(found, service, archive) if token.role == "desk" else None
    return [dict(masked(view, *who)) for view in views] if who is not None else views


@router.post(
    "/{trade_id}/corrections", response_model=TradeVersionOut, status_code=201, responses=ERRORS
)
def correct(
    trade_id: str,
    body: CorrectionIn,
    token: AdminToken,
    corrections: CorrectionsDep,
    response: Response,
) -> dict[str, Any]:
    """Amend the trade's price, quantity or account: the client gets an ExecutionReport
    (ExecType G) and a TradeCaptureReport replacing the last one, clearing a replace."""
    change = Amendment(body.quantity, body.price, body.account)
    try:
        return _answer(corrections.correct(trade_id, change, body.reason, token.name), response)
    except CorrectionRefused as exc:
        raise _refused(exc) from exc


@router.post("/{trade_id}/bust", response_model=TradeVersionOut, status_code=201, responses=ERRORS)
def bust(
    trade_id: str, body: BustIn, token: AdminToken, corrections: CorrectionsDep, response: Response
) -> dict[str, Any]:
    """Cancel the trade: ExecutionReport (ExecType H), TradeCaptureReport cancel, clearing
    cancel. Final: nothing may follow a bust."""
    try:
        return _answer(corrections.bust(trade_id, body.reason, token.name), response)
    except CorrectionRefused as exc:
        raise _refused(exc) from exc


@router.post(
    "/{trade_id}/versions/{version}/approve",
    response_model=TradeVersionOut,
    status_code=201,
    responses=ERRORS,
)
def approve(
    trade_id: str, version: int, token: AdminToken, corrections: CorrectionsDep, response: Response
) -> dict[str, Any]:
    """Approve a proposed correction or bust (``[trades] second_approver``); its proposer may
    not (403)."""
    try:
        return _answer(corrections.approve(trade_id, version, token.name), response)
    except CorrectionRefused as exc:
        raise _refused(exc) from exc


@router.post(
    "/{trade_id}/versions/{version}/decline", response_model=TradeVersionOut, responses=ERRORS
)
def decline(
    trade_id: str, version: int, token: AdminToken, corrections: CorrectionsDep
) -> dict[str, Any]:
    """Turn a proposed correction or bust down (any admin, its proposer included): it never
    takes effect, and the trade may be changed again."""
    try:
        return version_view(corrections.decline(trade_id, version, token.name))
    except CorrectionRefused as exc:
        raise _refused(exc) from exc
