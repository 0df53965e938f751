"""Signed, tamper-evident audit log: hash-chained entries, RFC 6962 Merkle checkpoints, exports.

This package says what the audit trail *is* and how anyone checks it, on bytes and values:
``canonical`` (canonical JSON), ``entry`` (the entry record and its hash chain), ``merkle``
(RFC 6962 trees and proofs), ``signing``/``checkpoint`` (Ed25519 signed tree heads), ``bundle``
(the layout of a compliance export), ``verify`` (checking a bundle, and one bundle extending
another), ``receipt`` (receipts and their offline check), ``wire`` (records that keep FIX
messages and clearing bodies byte for byte), ``command`` (one entry for a command and all it
caused) and ``refs`` (the ids an entry names, for search).

The files are the gateway's (``gateway/audit``): the writer thread that appends and fsyncs
(``log``), the directory and its crash recovery (``store``), the key files (``keys``), exports,
reading a bundle for verification, and the ``fixbridge audit`` commands. Typical use::

    log = AuditLog.open("var/audit")                       # gateway.audit.log
    log.append("fix.in", actor="session:CLIENT1", payload=fix_record(msg))  # otc.audit.wire
    receipt = build_receipt(log, {"rfq_id": "R-1"})       # gateway.audit.receipt
    export_bundle("var/audit", "audit-2024-05.tar", frm, to)   # gateway.audit.export
    verify_bundle("audit-2024-05.tar")                     # gateway.audit.verify: check_bundle
"""

from otc.audit.canonical import CanonicalError, canonical_json, format_ts
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import Entry, EntryError, decode_entry
from otc.audit.receipt import EntryMatcher, Receipt, ReceiptReport, verify_receipt
from otc.audit.verify import ExtendsReport, Problem, VerifyReport, check_bundle, check_extends

__all__ = [
    "CanonicalError",
    "Checkpoint",
    "CheckpointError",
    "Entry",
    "EntryError",
    "EntryMatcher",
    "ExtendsReport",
    "Problem",
    "Receipt",
    "ReceiptReport",
    "VerifyReport",
    "canonical_json",
    "check_bundle",
    "check_extends",
    "decode_entry",
    "format_ts",
    "verify_receipt",
]
