"""Receipts: selected entries with inclusion proofs against one signed checkpoint.

A receipt answers "show me everything the log holds about RFQ X, provably": the matching
entries (exact canonical lines), an RFC 6962 inclusion proof for each against a signed
checkpoint, that checkpoint and the public key. Anyone can check it offline with
:func:`verify_receipt`; pin the key with ``expected_key_id``, since a receipt made with another
key proves nothing about *this* log.

A receipt is complete only with respect to the log at the checkpoint's size: building one
(``gateway.audit.receipt.build_receipt``) first seals everything appended so far, then scans
the sealed lines with an :class:`EntryMatcher`. The scan is linear in the log; a cheap byte
pre-filter skips lines that cannot match.

JSON shape (``Receipt.to_json``)::

    {"type": "fixbridge.audit.receipt.v1", "public_key": <PEM>, "checkpoint": {...signed...},
     "entries": [{"seq": 12, "entry": <canonical line>, "proof": [<hex>, ...]}, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otc.audit.canonical import canonical_json, normalise
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import Entry, EntryError, decode_entry
from otc.audit.merkle import ProofError, verify_inclusion
from otc.audit.signing import SignatureError, key_id, public_key_from_pem
from otc.audit.verify import Problem

__all__ = [
    "RECEIPT_TYPE",
    "EntryMatcher",
    "Receipt",
    "ReceiptItem",
    "ReceiptReport",
    "verify_receipt",
]

RECEIPT_TYPE = "fixbridge.audit.receipt.v1"
Match = Mapping[str, Any] | Callable[[Entry], bool]


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    seq: int
    entry: str  # the canonical line, exactly as hashed
    proof: tuple[str, ...]  # hex hashes


@dataclass(frozen=True, slots=True)
class Receipt:
    checkpoint: Checkpoint
    public_key_pem: str
    items: tuple[ReceiptItem, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.to_json(),
            "entries": [
                {"entry": item.entry, "proof": list(item.proof), "seq": item.seq}
                for item in self.items
            ],
            "public_key": self.public_key_pem,
            "type": RECEIPT_TYPE,
        }


def _payload_matcher(where: Mapping[str, Any]) -> tuple[list[bytes], Callable[[Entry], bool]]:
    wanted = {key: normalise(value, f"match.{key}") for key, value in where.items()}
    needles = [
        f"{json.dumps(k, ensure_ascii=False)}:{canonical_json(v)}".encode()
        for k, v in wanted.items()
    ]

    def matches(entry: Entry) -> bool:
        return all(k in entry.payload and entry.payload[k] == v for k, v in wanted.items())

    return needles, matches


class EntryMatcher:
    """The entries a receipt holds: those whose payload has every ``key: value`` of ``match``
    (top-level payload keys, e.g. ``{"rfq_id": "R-1"}``), or for which ``match(entry)`` is
    true. A bad ``match`` is refused here, before anything is read or sealed."""

    def __init__(self, match: Match) -> None:
        if callable(match):
            self._needles: list[bytes] = []
            self._matches = match
        else:
            self._needles, self._matches = _payload_matcher(match)

    def select(
        self, lines: Iterable[bytes], proof: Callable[[int], list[bytes]], source: object
    ) -> tuple[ReceiptItem, ...]:
        """The matching lines among ``lines`` (line i is entry seq i), each with ``proof(seq)``,
        its inclusion proof; ``source`` names where the lines come from in an error."""
        items = []
        for seq, line in enumerate(lines):
            if not all(needle in line for needle in self._needles):
                continue
            try:
                entry = decode_entry(line)
            except EntryError as exc:
                raise EntryError(f"{source} line {seq + 1}: {exc}") from None
            if self._matches(entry):
                items.append(ReceiptItem(seq, line.decode(), tuple(h.hex() for h in proof(seq))))
        return tuple(items)


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    ok: bool
    problem: Problem | None = None
    entries: int = 0
    key_id: str | None = None
    checkpoint: Checkpoint | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"FAILED receipt: {self.problem}"
        assert self.checkpoint is not None
        return (
            f"OK receipt: {self.entries} entries included in tree size {self.checkpoint.size} "
            f"(root {self.checkpoint.root.hex()}, key {self.key_id})"
        )


def verify_receipt(
    receipt: Receipt | Mapping[str, Any], expected_key_id: str | None = None
) -> ReceiptReport:
    """Check the checkpoint's signature and every entry's canonical form and inclusion proof."""
    doc = receipt.to_json() if isinstance(receipt, Receipt) else receipt

    def fail(seq: int | None, message: str, kid: str | None = None) -> ReceiptReport:
        return ReceiptReport(False, Problem("receipt", None, seq, message), key_id=kid)

    if not isinstance(doc, Mapping) or doc.get("type") != RECEIPT_TYPE:
        return fail(None, f"not a {RECEIPT_TYPE} document")
    try:
        public_key = public_key_from_pem(str(doc.get("public_key", "")).encode())
    except SignatureError as exc:
        return fail(None, f"public_key: {exc}")
    kid = key_id(public_key)
    if expected_key_id is not None and kid != expected_key_id:
        return fail(None, f"signed with key {kid}, expected {expected_key_id}", kid)
    try:
        checkpoint = Checkpoint.from_json(doc.get("checkpoint"))
        checkpoint.verify(public_key)
    except CheckpointError as exc:
        return fail(None, f"checkpoint: {exc}", kid)
    items = doc.get("entries")
    if not isinstance(items, list):
        return fail(None, "entries is not a list", kid)
    for item in items:
        seq = item.get("seq") if isinstance(item, Mapping) else None
        if type(seq) is not int or not isinstance(item.get("entry"), str):
            return fail(None, "an entry lacks an integer seq or its line", kid)
        try:
            entry = decode_entry(item["entry"].encode("utf-8", "surrogatepass"))
        except EntryError as exc:
            return fail(seq, f"entry: {exc}", kid)
        if entry.seq != seq:
            return fail(seq, f"entry line says seq {entry.seq}", kid)
        proof_hex = item.get("proof")
        try:
            proof = [bytes.fromhex(h) for h in proof_hex] if isinstance(proof_hex, list) else None
        except (TypeError, ValueError):
            proof = None
        if proof is None:
            return fail(seq, "proof is not a list of hex hashes", kid)
        try:
            verify_inclusion(seq, checkpoint.size, entry.entry_hash, proof, checkpoint.root)
        except ProofError as exc:
            return fail(seq, f"inclusion proof: {exc}", kid)
    return ReceiptReport(True, entries=len(items), key_id=kid, checkpoint=checkpoint)
