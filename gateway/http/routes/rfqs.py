"""RFQs entered on a client's behalf (voice or chat), and any RFQ's whole negotiation history,
live or archived. A desk sees only RFQs routed to it, and only its own part of their history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from gateway.http.anonymity import masked_for_rfq
from gateway.http.deps import AdminOrDeskToken, NegotiationDep, ReaderToken, RfqArchiveDep
from gateway.http.models import RfqCreatedOut, RfqIn, RfqRecordOut
from gateway.http.problems import ERRORS, outcome
from gateway.jsonable import to_jsonable
from gateway.store.rfqs import record_of
from otc.negotiation import commands as c
from otc.negotiation import events as ev

SIDES = {"buy": Side.BUY, "sell": Side.SELL}

router = APIRouter(prefix="/rfqs", tags=["rfqs"])


@router.post("", status_code=201, response_model=RfqCreatedOut, responses=ERRORS)
async def create_rfq(
    body: RfqIn, token: AdminOrDeskToken, service: NegotiationDep
) -> dict[str, Any]:
    """Enter an RFQ on a client's behalf; it is routed and validated like a FIX one."""
    cmd = c.SubmitRfq(
        client_id=body.client_id,
        quote_req_id=body.quote_req_id,
        legs=tuple(
            c.LegRequest(leg.instrument_symbol(n), SIDES[leg.side], leg.ratio, leg.hedge)
            for n, leg in enumerate(body.legs, start=1)
        ),
        quantity=body.quantity,
        side=SIDES[body.side] if body.side else None,
        quote_type=QuoteType.TRADEABLE if body.quote_type == "tradeable" else QuoteType.INDICATIVE,
        multileg=len(body.legs) > 1,
        expire_at=body.expire_at,
        desks=tuple(body.desks),
        disclosed=body.disclosed,
    )
    ack = outcome(service.submit(cmd), ev.RfqAcknowledged, (ev.QuoteRequestRejected,))
    assert ack is not None  # an RFQ not refused is acknowledged
    return {"rfq": to_jsonable(ack.rfq), "desk_ids": list(ack.desk_ids)}


@router.get("/{rfq_id}", response_model=RfqRecordOut, responses=ERRORS)
def get_rfq(
    rfq_id: str, token: ReaderToken, service: NegotiationDep, archive: RfqArchiveDep
) -> dict[str, Any]:
    """The RFQ with its whole negotiation history (a desk sees only its own part),
    live or, once finished, from the archive."""
    live = service.rfq_history(rfq_id)
    record = record_of(*live) if live is not None else archive.load(rfq_id)
    if record is None:
        raise HTTPException(404, f"no RFQ {rfq_id!r}")
    if token.role == "desk":
        if token.desk_id not in record["desk_ids"]:
            raise HTTPException(403, f"RFQ {rfq_id} is not routed to desk {token.desk_id}")
        record["history"] = [
            h
            for h in record["history"]
            if h.get("desk_id", token.desk_id) == token.desk_id
            and ev.__dict__[h["event"]].audience is not ev.Audience.CLIENT
        ]
        return dict(masked_for_rfq(record, record["rfq"]))
    return record
