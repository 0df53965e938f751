"""The compliance console's routes: search the audit trail, read one entry with its FIX message
decoded, follow an order's, RFQ's or trade's life, prove it with a receipt, export a search as
CSV. Compliance and admin tokens only; every call is itself audited as ``compliance.query``
(who asked what), besides the ``api.action`` entry every route leaves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from gateway.audit.compliance import ComplianceTrail, ExportBusy
from gateway.audit.search import MAX_LIMIT
from gateway.audit.search import Query as TrailQuery
from gateway.http.deps import AdminOrComplianceToken, AuditorDep, ComplianceDep
from gateway.http.problems import Problem

router = APIRouter(tags=["compliance"])

Id = Annotated[str | None, Query(max_length=256, description="exact value")]
Subject = Literal["order", "rfq", "trade", "cl_ord_id", "quote", "clearing"]
SUBJECT_REF = {
    "order": "order_id",
    "rfq": "rfq_id",
    "trade": "trade_id",
    "cl_ord_id": "cl_ord_id",
    "quote": "quote_id",
    "clearing": "clearing_key",
}
ALL = {401: {"model": Problem}, 403: {"model": Problem}}


class Filters(BaseModel):
    """A search: every filter given must hold. Times are UTC with an offset; ``to`` is
    exclusive."""

    client: str | None = Field(None, max_length=256, description="client CompID")
    desk: str | None = Field(None, max_length=256, description="desk id")
    cl_ord_id: str | None = Field(None, max_length=256)
    order_id: str | None = Field(None, max_length=256)
    rfq_id: str | None = Field(None, max_length=256)
    quote_id: str | None = Field(None, max_length=256)
    quote_req_id: str | None = Field(None, max_length=256)
    trade_id: str | None = Field(None, max_length=256)
    clearing_key: str | None = Field(None, max_length=256)
    kind: str | None = Field(
        None, max_length=64, description="an entry kind, or a prefix ending in '.' (fix.)"
    )
    frm: datetime | None = Field(None, alias="from")
    to: datetime | None = None

    model_config = {"populate_by_name": True}

    def query(self) -> TrailQuery:
        for t in (self.frm, self.to):
            if t is not None and t.tzinfo is None:
                raise HTTPException(422, "times need a UTC offset (e.g. 2026-12-07T00:00:00Z)")
        ids = {
            name: value
            for name, value in self.model_dump(exclude={"kind", "frm", "to"}).items()
            if value
        }
        return TrailQuery(ids, self.kind or None, self.frm, self.to)


def _audit(auditor: Any, token: Any, query: str, filters: dict[str, Any], **more: Any) -> None:
    auditor.admin(
        "compliance.query", f"api:{token.name}", {"query": query, "filters": filters, **more}
    )


@router.get("/compliance/me", response_model=dict[str, Any], responses=ALL)
def me(token: AdminOrComplianceToken) -> dict[str, Any]:
    """Who this token is: the console's sign-in check."""
    return {"name": token.name, "role": token.role}


@router.get(
    "/compliance/search", response_model=dict[str, Any], responses={**ALL, 422: {"model": Problem}}
)
def search(
    token: AdminOrComplianceToken,
    trail: ComplianceDep,
    auditor: AuditorDep,
    client: Id = None,
    desk: Id = None,
    cl_ord_id: Id = None,
    order_id: Id = None,
    rfq_id: Id = None,
    quote_id: Id = None,
    quote_req_id: Id = None,
    trade_id: Id = None,
    clearing_key: Id = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    frm: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    after: Annotated[int | None, Query(ge=-1, description="the previous page's next")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """Entries matching every filter, oldest first, one page at a time (``next`` is the
    cursor for the following page, null at the end)."""
    filters = Filters(
        client=client,
        desk=desk,
        cl_ord_id=cl_ord_id,
        order_id=order_id,
        rfq_id=rfq_id,
        quote_id=quote_id,
        quote_req_id=quote_req_id,
        trade_id=trade_id,
        clearing_key=clearing_key,
        kind=kind,
        frm=frm,
        to=to,
    )
    query = filters.query()
    trail.refresh()
    found = trail.index.search(query, after, limit)
    _audit(
        auditor,
        token,
        "search",
        query.describe(),
        after=after,
        limit=limit,
        results=len(found.entries),
    )
    return {
        "items": [trail.row(e) for e in found.entries],
        "next": found.next_after,
        "indexed": found.indexed,
    }


@router.get(
    "/compliance/entries/{seq}",
    response_model=dict[str, Any],
    responses={**ALL, 404: {"model": Problem}},
)
def entry(
    seq: int, token: AdminOrComplianceToken, trail: ComplianceDep, auditor: AuditorDep
) -> dict[str, Any]:
    """One entry: its exact canonical line, ids, and its FIX message decoded with the session
    dictionary's field and enum names (or a clearing message's body, as sent or received)."""
    trail.refresh()
    found = trail.index.read(seq) if seq >= 0 else None
    _audit(auditor, token, "entry", {"seq": seq}, found=found is not None)
    if found is None:
        raise HTTPException(404, f"no audit entry {seq}")
    return trail.detail(found)


def _subject_seqs(trail: ComplianceTrail, subject: str, value: str) -> list[int]:
    trail.refresh()
    return trail.index.timeline(SUBJECT_REF[subject], value)


@router.get(
    "/compliance/timeline/{subject}/{value}",
    response_model=dict[str, Any],
    responses={**ALL, 404: {"model": Problem}},
)
def timeline(
    subject: Subject,
    value: str,
    token: AdminOrComplianceToken,
    trail: ComplianceDep,
    auditor: AuditorDep,
) -> dict[str, Any]:
    """One order's, RFQ's or trade's life, in order: every entry naming it, and those linked
    to them (its RFQ, quotes, FIX messages by ClOrdID, clearing messages and answers)."""
    seqs = _subject_seqs(trail, subject, value)
    _audit(auditor, token, "timeline", {SUBJECT_REF[subject]: value}, results=len(seqs))
    if not seqs:
        raise HTTPException(404, f"nothing in the audit trail for {subject} {value!r}")
    return {
        "subject": subject,
        "value": value,
        "items": [trail.row(e) for e in trail.index.read_many(seqs)],
    }


@router.get(
    "/compliance/receipts/{subject}/{value}",
    response_model=dict[str, Any],
    responses={**ALL, 404: {"model": Problem}},
)
def receipt(
    subject: Subject,
    value: str,
    token: AdminOrComplianceToken,
    trail: ComplianceDep,
    auditor: AuditorDep,
) -> dict[str, Any]:
    """The entries of the subject's timeline with RFC 6962 inclusion proofs against a signed
    checkpoint (``receipt``, a ``fixbridge.audit.receipt.v1`` document anyone can check
    offline), and the core verifier's report on it (``report``)."""
    seqs = _subject_seqs(trail, subject, value)
    _audit(auditor, token, "receipt", {SUBJECT_REF[subject]: value}, results=len(seqs))
    if not seqs:
        raise HTTPException(404, f"nothing in the audit trail for {subject} {value!r}")
    return trail.receipt(seqs)


@router.post(
    "/compliance/exports",
    status_code=202,
    response_model=dict[str, Any],
    responses={**ALL, 422: {"model": Problem}, 429: {"model": Problem}},
)
def start_export(
    body: Filters, token: AdminOrComplianceToken, trail: ComplianceDep, auditor: AuditorDep
) -> dict[str, Any]:
    """Start a CSV export of everything the search matches; poll its progress."""
    query = body.query()
    try:
        job = trail.start_export(query, token.name)
    except ExportBusy as exc:
        raise HTTPException(429, str(exc)) from None
    _audit(auditor, token, "export.csv", query.describe(), job_id=job.job_id, rows=job.total)
    return job.view()


def _job(trail: ComplianceTrail, job_id: str) -> Any:
    job = trail.job(job_id)
    if job is None:
        raise HTTPException(404, f"no CSV export {job_id!r}")
    return job


@router.get(
    "/compliance/exports/{job_id}",
    response_model=dict[str, Any],
    responses={**ALL, 404: {"model": Problem}},
)
def export_progress(
    job_id: str, token: AdminOrComplianceToken, trail: ComplianceDep, auditor: AuditorDep
) -> dict[str, Any]:
    """A CSV export's progress: ``done`` of ``total`` rows; ``download`` once it is done."""
    job = _job(trail, job_id)
    _audit(auditor, token, "export.progress", {"job_id": job_id}, state=job.state)
    return job.view()


@router.get(
    "/compliance/exports/{job_id}/csv",
    response_class=FileResponse,
    responses={**ALL, 404: {"model": Problem}, 409: {"model": Problem}},
)
def export_download(
    job_id: str, token: AdminOrComplianceToken, trail: ComplianceDep, auditor: AuditorDep
) -> FileResponse:
    """The finished CSV."""
    job = _job(trail, job_id)
    if job.state != "done" or job.path is None:
        raise HTTPException(409, f"CSV export {job_id} is {job.state}")
    _audit(auditor, token, "export.download", {"job_id": job_id}, rows=job.total)
    return FileResponse(
        job.path, media_type="text/csv; charset=utf-8", filename=f"audit-{job_id}.csv"
    )
