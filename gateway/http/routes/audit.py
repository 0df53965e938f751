"""Compliance routes: audit bundle export and per-RFQ receipts with inclusion proofs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from gateway.audit.export import ExportError, export_bundle
from gateway.audit.receipt import build_receipt
from gateway.http.deps import AdminOrComplianceToken, AuditExportsDep, AuditorDep
from gateway.http.models import ExportIn
from gateway.http.problems import Problem

router = APIRouter(tags=["audit"])


@router.post("/audit/export", responses={422: {"model": Problem}}, response_class=FileResponse)
def export(
    body: ExportIn, token: AdminOrComplianceToken, auditor: AuditorDep, work_dir: AuditExportsDep
) -> FileResponse:
    """A signed, self-verifying bundle of the audit trail (``fixbridge audit verify``)."""
    for t in (body.frm, body.to):
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, "times need a UTC offset")
    auditor.log.checkpoint()  # export covers everything signed; sign what is there now
    work_dir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=work_dir)) / "audit-bundle.tar"
    try:
        export_bundle(auditor.log.directory, out, body.frm, body.to)
    except ExportError as exc:
        raise HTTPException(422, str(exc)) from exc
    auditor.admin(
        "audit.export",
        f"api:{token.name}",
        {"frm": body.frm, "to": body.to, "bytes": out.stat().st_size},
    )
    return FileResponse(
        out,
        media_type="application/x-tar",
        filename=out.name,
        background=BackgroundTask(_remove, out),
    )


@router.get(
    "/rfqs/{rfq_id}/receipt", response_model=dict[str, Any], responses={404: {"model": Problem}}
)
def receipt(rfq_id: str, token: AdminOrComplianceToken, auditor: AuditorDep) -> dict[str, Any]:
    """This RFQ's audit entries with RFC 6962 inclusion proofs and a signed checkpoint."""
    auditor.log.flush()
    found = build_receipt(auditor.log, {"rfq_id": rfq_id})
    if not found.items:
        raise HTTPException(404, f"no audit entries for RFQ {rfq_id!r}")
    return found.to_json()


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()
