"""Signed, tamper-evident audit log: hash-chained entries, RFC 6962 Merkle checkpoints, exports.

Typical use (the gateway wires these in)::

    log = AuditLog.open("var/audit")                       # key from `fixbridge audit keygen`
    log.append("fix.in", actor="session:CLIENT1", payload={"raw": msg, "msg_type": "R"})
    receipt = build_receipt(log, {"rfq_id": "R-1"})       # GET /rfqs/{id}/receipt
    export_bundle("var/audit", "audit-2024-05.tar", frm, to)
    verify_bundle("audit-2024-05.tar")                     # offline, needs only the bundle

Modules: ``canonical`` (canonical JSON), ``entry`` (entry record), ``merkle`` (RFC 6962 trees
and proofs), ``signing``/``checkpoint`` (Ed25519), ``keys`` (key files), ``store`` (directory
layout, recovery), ``log`` (the writer), ``bundle``/``export``/``verify`` (compliance bundles),
``receipt`` (per-RFQ receipts), ``cli`` (command functions).
"""

from otc.audit.canonical import CanonicalError, canonical_json, format_ts
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import Entry, EntryError, decode_entry
from otc.audit.keys import (
    AuditKeyError,
    KeyExistsError,
    MissingKeyError,
    generate_signing_key,
    load_signing_key,
)
from otc.audit.log import (
    AuditLog,
    AuditLogClosed,
    AuditLogError,
    AuditLogFailed,
    AuditLogLocked,
    AuditReceipt,
    PendingAppend,
)
from otc.audit.receipt import EntryMatcher, Receipt, ReceiptReport, verify_receipt
from otc.audit.store import LogCorruptError
from otc.audit.verify import ExtendsReport, Problem, VerifyReport, check_bundle, check_extends

__all__ = [
    "AuditKeyError",
    "AuditLog",
    "AuditLogClosed",
    "AuditLogError",
    "AuditLogFailed",
    "AuditLogLocked",
    "AuditReceipt",
    "CanonicalError",
    "Checkpoint",
    "CheckpointError",
    "Entry",
    "EntryMatcher",
    "EntryError",
    "ExtendsReport",
    "KeyExistsError",
    "LogCorruptError",
    "MissingKeyError",
    "PendingAppend",
    "Problem",
    "Receipt",
    "ReceiptReport",
    "VerifyReport",
    "canonical_json",
    "check_bundle",
    "check_extends",
    "decode_entry",
    "format_ts",
    "generate_signing_key",
    "load_signing_key",
    "verify_receipt",
]
