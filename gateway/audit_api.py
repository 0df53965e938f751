"""Compliance routes: audit bundle export and per-RFQ receipts with inclusion proofs."""

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from gateway.api import ApiToken, Problem
from gateway.audit.export import ExportError, export_bundle
from gateway.audit.feed import Auditor
from gateway.audit.receipt import build_receipt


class ExportIn(BaseModel):
    """Entries from ``frm`` to ``to`` (UTC); both open-ended when omitted."""

    frm: datetime | None = None
    to: datetime | None = None


def add_audit_routes(auditor: Auditor, work_dir: Path):
    def routes(app: FastAPI, caller) -> None:
        compliance = caller("compliance", "admin")

        @app.post("/audit/export", tags=["audit"], responses={422: {"model": Problem}},
                  response_class=FileResponse)
        def export(body: ExportIn, token: Annotated[ApiToken, Depends(compliance)]):
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
            auditor.admin("audit.export", f"api:{token.name}",
                          {"frm": body.frm, "to": body.to, "bytes": out.stat().st_size})
            return FileResponse(out, media_type="application/x-tar", filename=out.name,
                                background=BackgroundTask(_remove, out))

        @app.get("/rfqs/{rfq_id}/receipt", tags=["audit"], responses={404: {"model": Problem}})
        def receipt(rfq_id: str, token: Annotated[ApiToken, Depends(compliance)]) -> dict:
            """This RFQ's audit entries with RFC 6962 inclusion proofs and a signed checkpoint."""
            auditor.log.flush()
            found = build_receipt(auditor.log, {"rfq_id": rfq_id})
            if not found.items:
                raise HTTPException(404, f"no audit entries for RFQ {rfq_id!r}")
            return found.to_json()

    return routes


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()
