"""Signed checkpoints: (tree size, root hash, UTC time, key id) under an Ed25519 signature.

One checkpoint is one canonical JSON line in ``checkpoints.jsonl``::

    {"key_id":..,"root":<hex>,"sig":<hex>,"size":N,"ts":..,"type":"fixbridge.audit.checkpoint.v1"}

The log signs a checkpoint only after every entry it covers is durable on disk, so a signed
root never refers to data a crash could take away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from otc.audit.canonical import canonical_bytes, parse_ts
from otc.audit.signing import SignatureError, sign_document, verify_document

__all__ = ["CHECKPOINT_TYPE", "Checkpoint", "CheckpointError", "sign_checkpoint"]

CHECKPOINT_TYPE = "fixbridge.audit.checkpoint.v1"
_FIELDS = ("key_id", "root", "sig", "size", "ts", "type")


class CheckpointError(ValueError):
    """A checkpoint line is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    ts: str
    key_id: str
    sig: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "root": self.root.hex(),
            "sig": self.sig,
            "size": self.size,
            "ts": self.ts,
            "type": CHECKPOINT_TYPE,
        }

    def to_line(self) -> bytes:
        return canonical_bytes(self.to_json(), "checkpoint")

    def verify(self, public_key: Ed25519PublicKey) -> None:
        try:
            verify_document(public_key, self.to_json(), CHECKPOINT_TYPE)
        except SignatureError as exc:
            raise CheckpointError(f"checkpoint at size {self.size}: {exc}") from None

    @classmethod
    def from_json(cls, doc: object) -> Checkpoint:
        if not isinstance(doc, dict) or tuple(sorted(doc)) != _FIELDS:
            raise CheckpointError(f"checkpoint must be an object with keys {list(_FIELDS)}")
        if doc["type"] != CHECKPOINT_TYPE:
            raise CheckpointError(f"type {doc['type']!r} is not {CHECKPOINT_TYPE!r}")
        size, root, ts = doc["size"], doc["root"], doc["ts"]
        if type(size) is not int or size < 0:
            raise CheckpointError(f"size {size!r} is not a non-negative integer")
        try:
            root_bytes = bytes.fromhex(root) if isinstance(root, str) else b""
        except ValueError:
            root_bytes = b""
        if len(root_bytes) != 32 or root != root_bytes.hex():
            raise CheckpointError("root is not 64 lowercase hex digits")
        try:
            parse_ts(ts if isinstance(ts, str) else "")
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        if not isinstance(doc["key_id"], str) or not isinstance(doc["sig"], str):
            raise CheckpointError("key_id and sig must be strings")
        return cls(size=size, root=root_bytes, ts=ts, key_id=doc["key_id"], sig=doc["sig"])

    @classmethod
    def from_line(cls, line: bytes) -> Checkpoint:
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise CheckpointError(f"not valid JSON: {exc}") from None
        checkpoint = cls.from_json(doc)
        if checkpoint.to_line() != line:
            raise CheckpointError("checkpoint line is not in canonical form")
        return checkpoint


def sign_checkpoint(private_key: Ed25519PrivateKey, size: int, root: bytes, ts: str) -> Checkpoint:
    doc = sign_document(
        private_key, {"root": root.hex(), "size": size, "ts": ts, "type": CHECKPOINT_TYPE}
    )
    return Checkpoint(size=size, root=root, ts=ts, key_id=doc["key_id"], sig=doc["sig"])
