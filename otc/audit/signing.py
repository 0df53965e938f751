"""Ed25519 signatures over canonical JSON documents (checkpoints, manifests). No file I/O.

A signed document is a JSON object with a ``type`` field (domain separation: a checkpoint
signature can never be replayed as a manifest signature), a ``key_id`` and a ``sig`` field.
The signature covers the canonical JSON bytes of the object *without* ``sig``.
``key_id`` is the first 16 hex digits of SHA-256 over the raw 32-byte public key; it names the
key, the key itself travels as PEM beside the data.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from otc.audit.canonical import canonical_bytes

__all__ = [
    "SignatureError",
    "key_id",
    "public_key_from_pem",
    "public_key_pem",
    "sign_document",
    "verify_document",
]


class SignatureError(ValueError):
    """A signature is missing, malformed, made by another key, or does not verify."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def public_key_from_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:  # a damaged key may parse as another type
        raise SignatureError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"public key is {type(key).__name__}, expected Ed25519")
    return key


def sign_document(private_key: Ed25519PrivateKey, doc: dict[str, Any]) -> dict[str, Any]:
    """Return ``doc`` with ``key_id`` and ``sig`` (hex) added; ``doc`` must carry a ``type``."""
    if "type" not in doc or "sig" in doc:
        raise ValueError("a document to sign needs a 'type' and no 'sig'")
    body = dict(doc, key_id=key_id(private_key.public_key()))
    return dict(body, sig=private_key.sign(canonical_bytes(body, "document")).hex())


def verify_document(public_key: Ed25519PublicKey, doc: dict[str, Any], doc_type: str) -> None:
    """Raise :class:`SignatureError` unless ``doc`` is a ``doc_type`` signed by ``public_key``."""
    if doc.get("type") != doc_type:
        raise SignatureError(f"document type is {doc.get('type')!r}, expected {doc_type!r}")
    expected = key_id(public_key)
    if doc.get("key_id") != expected:
        raise SignatureError(f"signed by key {doc.get('key_id')!r}, expected key {expected}")
    sig = doc.get("sig")
    try:
        signature = bytes.fromhex(sig) if isinstance(sig, str) else b""
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise SignatureError("signature is missing or not 64 bytes of hex")
    body = {k: v for k, v in doc.items() if k != "sig"}
    try:
        public_key.verify(signature, canonical_bytes(body, "document"))
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
