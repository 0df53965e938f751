"""Building a receipt from the running log: seal, then scan the sealed lines of its file.

What a receipt is and how anyone checks it offline is :mod:`otc.audit.receipt`.
"""

from __future__ import annotations

from gateway.audit.log import AuditLog
from gateway.audit.store import iter_lines
from otc.audit.receipt import EntryMatcher, Match, Receipt
from otc.audit.signing import public_key_pem


def build_receipt(log: AuditLog, match: Match) -> Receipt:
    """Entries whose payload has every ``key: value`` of ``match`` (top-level payload keys,
    e.g. ``{"rfq_id": "R-1"}``), or for which ``match(entry)`` is true, with inclusion proofs
    against a checkpoint covering everything appended before this call."""
    matcher = EntryMatcher(match)
    checkpoint = log.checkpoint()
    with log.entries_path.open("rb") as f:
        items = matcher.select(
            iter_lines(f, checkpoint.size),
            lambda seq: log.inclusion_proof(seq, checkpoint.size),
            log.entries_path,
        )
    return Receipt(checkpoint, public_key_pem(log.public_key).decode(), items)
