"""What the compliance console reads: search, entry details with decoded FIX, timelines,
receipts for any order, RFQ or trade, and CSV exports of a search with progress.

Reading is :mod:`gateway.audit.search` (the index over the running log); this module turns what
it finds into views and documents. The signed bundle (``POST /audit/export``) stays the record;
a CSV is a readable copy of a search result, with each entry's canonical payload and entry
hash so any row can be checked against the bundle.
"""

from __future__ import annotations

import base64
import csv
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixspec.names import FixNames
from gateway.audit.log import AuditLog
from gateway.audit.search import Query, TrailEntry, TrailIndex
from otc.audit.command import COMMAND, parts_of
from otc.audit.receipt import Receipt, ReceiptItem, verify_receipt
from otc.audit.signing import public_key_pem
from otc.audit.wire import body_bytes, fix_fields, fix_text, fix_wire

__all__ = ["ComplianceTrail", "CsvJob", "ExportBusy"]

log = logging.getLogger("fixbridge.compliance")

ID_COLUMNS = ("client", "desk", "cl_ord_id", "order_id", "rfq_id", "quote_id", "trade_id")
CSV_COLUMNS = (
    "seq",
    "ts",
    "kind",
    "actor",
    "msg_type",
    "summary",
    *ID_COLUMNS,
    "entry_hash",
    "payload",
)
MAX_RUNNING = 2  # CSV exports running at once
MAX_KEPT = 16  # finished exports kept for download (the oldest file is removed beyond that)
MAX_ROWS = 1_000_000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


class ExportBusy(Exception):
    """Too many CSV exports are running; try again when one has finished."""


@dataclass
class CsvJob:
    job_id: str
    actor: str
    query: Query
    total: int
    done: int = 0
    state: str = "running"  # running | done | failed
    error: str | None = None
    path: Path | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "filters": self.query.describe(),
            "download": (
                f"/compliance/exports/{self.job_id}/csv" if self.state == "done" else None
            ),
        }


class ComplianceTrail:
    def __init__(self, log: Any, dictionary: bytes, exports_dir: Path) -> None:
        """``log`` is the running :class:`AuditLog` (or the feed's view of it, which drains
        the feed before it flushes); ``dictionary`` the FIX data dictionary's XML."""
        self.log = log
        self.names = FixNames.from_xml(dictionary)
        self.index = TrailIndex(log.entries_path)
        self.exports_dir = exports_dir
        self._jobs: dict[str, CsvJob] = {}
        self._jobs_lock = threading.Lock()
        self._job_ids = itertools.count(1)

    def refresh(self) -> None:
        """Everything appended before this call is durable and in the index."""
        self.log.flush()
        self.index.refresh()

    # -- views --------------------------------------------------------------------------------

    def row(self, entry: TrailEntry) -> dict[str, Any]:
        refs: dict[str, list[str]] = {}
        for name, value in sorted(entry.refs):
            refs.setdefault(name, []).append(value)
        return {
            "seq": entry.seq,
            "ts": entry.ts,
            "kind": entry.kind,
            "actor": entry.actor,
            "msg_type": entry.payload.get("msg_type") or None,
            "summary": self.summary(entry),
            "refs": refs,
        }

    def summary(self, entry: TrailEntry) -> str:
        if entry.kind == COMMAND:  # the message in, then what it caused
            parts = parts_of(entry.kind, entry.actor, entry.payload)
            said = [self._summary(*parts[0])]
            said += [f"{k} {self._summary(k, a, p)}" for k, a, p in parts[1:]]
            return " => ".join(said)
        return self._summary(entry.kind, entry.actor, entry.payload)

    def _summary(self, kind: str, actor: str, p: Any) -> str:
        if kind in ("fix.in", "fix.out"):
            found = fix_text(p)
            msg_type = p.get("msg_type", "")
            name = self.names.message_name(msg_type) or f"MsgType {msg_type}"
            if found is None:
                return name
            fields = dict(fix_fields(found[0]))
            shown = [
                f"{self.names.fields.get(t, t)}={fields[t]}"
                for t in (
                    "11",
                    "41",
                    "37",
                    "131",
                    "117",
                    "17",
                    "571",
                    "55",
                    "54",
                    "38",
                    "44",
                    "31",
                    "32",
                    "39",
                    "150",
                    "58",
                )
                if t in fields
            ]
            return " ".join([name, *shown])
        if kind == "fix.event":
            return str(p.get("text", p.get("raw", "")))
        if kind == "order.state":
            return (
                f"order {p.get('order_id')} {p.get('cl_ord_id')} status {p.get('status')} "
                f"{p.get('cum_qty')}/{p.get('quantity')} {p.get('symbol')}"
            )
        if kind.startswith("otc."):
            bits = [p.get("event", kind[4:])]
            if p.get("to_state"):
                bits.append(f"{p.get('from_state') or '-'} -> {p['to_state']}")
            for key in ("status", "outcome", "reason", "text"):
                if p.get(key):
                    bits.append(str(p[key]))
            return " ".join(str(b) for b in bits)
        if kind == "clearing.state":
            return f"clearing {p.get('key')} {p.get('state')} (attempt {p.get('attempts')})"
        if kind == "clearing.out":
            return f"sent {p.get('format')} {p.get('key')} via {p.get('transport')}"
        if kind == "clearing.in":
            return (
                f"answer to {p.get('exchange')} {p.get('key')}: {p.get('status')} {p.get('result')}"
            )
        if kind == "clearing.query":
            return f"status query {p.get('key')}"
        if kind == "api.action":
            return f"{p.get('method')} {p.get('path')} -> {p.get('status')}"
        if kind.startswith("compliance."):
            return f"{p.get('query')} {json.dumps(p.get('filters', {}), sort_keys=True)}"
        text = json.dumps(p, sort_keys=True)
        return text if len(text) <= 160 else text[:157] + "..."

    def detail(self, entry: TrailEntry) -> dict[str, Any]:
        """Everything about one entry: its exact line, ids, and a FIX message decoded with the
        session dictionary's field and enum names, or a clearing body, as recorded."""
        out = self.row(entry)
        out.update(
            {
                "payload": entry.payload,
                "line": entry.line.decode("utf-8"),
                "entry_hash": entry.entry_hash,
                "fix": None,
                "body": None,
            }
        )
        p = entry.payload
        if entry.kind == COMMAND:  # each part as it would be shown alone; the message in first
            parts = parts_of(entry.kind, entry.actor, p)
            out["parts"] = [
                {"kind": k, "actor": a, "summary": self._summary(k, a, q), "fix": self._fix(q)}
                for k, a, q in parts
            ]
            out["fix"] = self._fix(parts[0][2])
        elif entry.kind in ("fix.in", "fix.out"):
            out["fix"] = self._fix(p)
        elif entry.kind in ("clearing.out", "clearing.in"):
            data = body_bytes(p)
            if data is not None:
                out["body"] = {
                    "text": p.get("body"),
                    "bytes": len(data),
                    "b64": base64.b64encode(data).decode(),
                    "content_type": p.get("content_type"),
                }
        return out

    def _fix(self, p: Any) -> dict[str, Any] | None:
        """A recorded FIX message decoded with the session dictionary's names."""
        found = fix_text(p)
        if found is None:
            return None
        text, exact = found
        wire = fix_wire(p)
        return {
            "msg_type": p.get("msg_type"),
            "message_name": self.names.message_name(p.get("msg_type", "")),
            "exact": exact and wire is not None,
            "record": "wire"
            if "wire" in p
            else "wire_b64"
            if "wire_b64" in p
            else "raw (before exact records: | stood for SOH)",
            "wire_b64": base64.b64encode(wire).decode() if wire is not None else None,
            "fields": [r.to_json() for r in self.names.describe(fix_fields(text))],
        }

    # -- receipts -----------------------------------------------------------------------------

    def receipt(self, seqs: list[int]) -> dict[str, Any]:
        """The entries ``seqs`` with inclusion proofs against a checkpoint signed now, and the
        core verifier's report on the receipt."""
        audit_log: AuditLog = self.log
        checkpoint = audit_log.checkpoint()
        self.index.refresh()
        covered = [s for s in seqs if s < checkpoint.size]
        items = tuple(
            ReceiptItem(
                e.seq,
                e.line.decode("utf-8"),
                tuple(h.hex() for h in audit_log.inclusion_proof(e.seq, checkpoint.size)),
            )
            for e in self.index.read_many(covered)
        )
        receipt = Receipt(checkpoint, public_key_pem(audit_log.public_key).decode(), items)
        doc = receipt.to_json()
        report = verify_receipt(doc, expected_key_id=audit_log.key_id)
        return {
            "receipt": doc,
            "report": {
                "ok": report.ok,
                "entries": report.entries,
                "key_id": report.key_id,
                "problem": str(report.problem) if report.problem else None,
                "text": str(report),
            },
        }

    # -- CSV exports --------------------------------------------------------------------------

    def start_export(self, query: Query, actor: str) -> CsvJob:
        self.refresh()
        seqs = self.index.iter_seqs(query)[:MAX_ROWS]
        with self._jobs_lock:
            if sum(j.state == "running" for j in self._jobs.values()) >= MAX_RUNNING:
                raise ExportBusy(f"{MAX_RUNNING} CSV exports are running; try again shortly")
            job = CsvJob(
                f"csv-{next(self._job_ids)}-{os.urandom(4).hex()}", actor, query, len(seqs)
            )
            self._jobs[job.job_id] = job
            self._evict()
        threading.Thread(
            target=self._run_export, args=(job, seqs), name="csv-export", daemon=True
        ).start()
        return job

    def job(self, job_id: str) -> CsvJob | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def _evict(self) -> None:
        finished = sorted(
            (j for j in self._jobs.values() if j.state != "running"), key=lambda j: j.finished or 0
        )
        for job in finished[: max(0, len(finished) - MAX_KEPT)]:
            del self._jobs[job.job_id]
            if job.path is not None:
                job.path.unlink(missing_ok=True)

    def _run_export(self, job: CsvJob, seqs: list[int]) -> None:
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.exports_dir, prefix=f".{job.job_id}.", suffix=".csv")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_COLUMNS)
                for entry in self.index.read_many(seqs):
                    writer.writerow(self.csv_row(entry))
                    job.done += 1
            final = self.exports_dir / f"{job.job_id}.csv"
            tmp.replace(final)
            job.path = final
            job.state = "done"
        except Exception as exc:  # reported to whoever polls the job
            log.exception("CSV export %s failed", job.job_id)
            tmp.unlink(missing_ok=True)
            job.state, job.error = "failed", str(exc)
        finally:
            job.finished = time.time()

    def csv_row(self, entry: TrailEntry) -> list[str]:
        refs: dict[str, list[str]] = {}
        for name, value in sorted(entry.refs):
            refs.setdefault(name, []).append(value)
        cells = [
            str(entry.seq),
            entry.ts,
            entry.kind,
            entry.actor,
            entry.payload.get("msg_type") or "",
            self.summary(entry),
            *(" ".join(refs.get(c, [])) for c in ID_COLUMNS),
            entry.entry_hash,
            _dumps(entry.payload),
        ]
        return [_no_formula(c) for c in cells]


def _no_formula(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (a client chooses its own ClOrdIDs) gets a
    leading apostrophe; the canonical payload column is JSON and always starts with ``{``."""
    return "'" + cell if cell.startswith(_FORMULA) else cell
