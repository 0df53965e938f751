"""Canonical form, hash and Ed25519 signature of a quote.

Canonical JSON: the quote's dataclass fields plus ``"schema": "fixbridge.otc.quote/1"`` (so a
signature over a quote can never be replayed as some other document), keys sorted, no whitespace,
UTF-8. Decimals are strings in plain notation with no exponent and no trailing zeros
(``Decimal("100.50")`` -> ``"100.5"``, ``Decimal("1E+2")`` -> ``"100"``), so equal prices hash
equally. Datetimes are UTC ISO 8601 with microseconds and ``Z`` (``2026-01-02T03:04:05.000006Z``).
Enums are their values, tuples are arrays, None is null. A float anywhere is a TypeError.

The hash is SHA-256 of the canonical bytes (hex); the signature is Ed25519 over the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from fixspec.messages import field_names
from otc.negotiation.model import Quote, SealedQuote

QUOTE_SCHEMA = "fixbridge.otc.quote/1"


# A mass quote's quotes share prices and times (ValidUntil, the command's now): the canonical
# text of recent values is remembered (equal values have equal canonical text), a memo that
# starts afresh when full.
_REMEMBERED = 4096
_decimals: dict[Decimal, str] = {}
_datetimes: dict[datetime, str] = {}


def canonical_decimal(value: Decimal) -> str:
    text = _decimals.get(value) if value.is_finite() else None
    if text is not None:
        return text
    if not value.is_finite():
        raise ValueError(f"cannot canonicalise non-finite decimal {value}")
    text = "0" if value.is_zero() else format(value.normalize(), "f")
    if len(_decimals) >= _REMEMBERED:
        _decimals.clear()
    _decimals[value] = text
    return text


def canonical_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"cannot canonicalise naive datetime {value!r}")
    text = _datetimes.get(value)  # equal instants have the same UTC text, whatever the zone
    if text is None:
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if len(_datetimes) >= _REMEMBERED:
            _datetimes.clear()
        _datetimes[value] = text
    return text


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    names = field_names(type(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return canonical_decimal(value)
    if isinstance(value, datetime):
        return canonical_datetime(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} has no canonical form (value {value!r})")


def canonical_quote_bytes(quote: Quote) -> bytes:
    document = _plain(quote)
    document["schema"] = QUOTE_SCHEMA
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def quote_hash(quote: Quote) -> str:
    """SHA-256 (hex) of the canonical quote: what an acceptance must reference."""
    return hashlib.sha256(canonical_quote_bytes(quote)).hexdigest()


def sign_quote(quote: Quote, private_key: Ed25519PrivateKey) -> bytes:
    """Ed25519 signature (64 bytes) over the canonical quote."""
    return private_key.sign(canonical_quote_bytes(quote))


def verify_quote(quote: Quote, signature: bytes, public_key: Ed25519PublicKey) -> bool:
    """True iff ``signature`` is ``public_key``'s signature over this exact quote."""
    try:
        public_key.verify(signature, canonical_quote_bytes(quote))
    except InvalidSignature:
        return False
    return True


def seal_quote(quote: Quote, private_key: Ed25519PrivateKey | None) -> SealedQuote:
    """Hash and (unless ``private_key`` is None) sign the quote in one canonicalisation."""
    data = canonical_quote_bytes(quote)
    signature = private_key.sign(data) if private_key is not None else None
    return SealedQuote(quote, hashlib.sha256(data).hexdigest(), signature)


def generate_desk_key() -> Ed25519PrivateKey:
    """A fresh desk key (tests, local setups); production keys are loaded by the edge."""
    return Ed25519PrivateKey.generate()


class DeskKeyring:
    """Each desk's Ed25519 signing key. The edge loads the keys (files, vault); the core only
    signs with them and hands out the public halves."""

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey]) -> None:
        for desk_id, key in keys.items():
            if not isinstance(key, Ed25519PrivateKey):
                raise TypeError(f"key for desk {desk_id!r} is not an Ed25519 private key")
        self._keys = dict(keys)

    @classmethod
    def from_pem(cls, pems: Mapping[str, bytes], password: bytes | None = None) -> DeskKeyring:
        keys: dict[str, Ed25519PrivateKey] = {}
        for desk_id, pem in pems.items():
            key = serialization.load_pem_private_key(pem, password=password)
            if not isinstance(key, Ed25519PrivateKey):
                raise TypeError(f"PEM for desk {desk_id!r} is not an Ed25519 private key")
            keys[desk_id] = key
        return cls(keys)

    def __contains__(self, desk_id: object) -> bool:
        return desk_id in self._keys

    def private_key(self, desk_id: str) -> Ed25519PrivateKey:
        return self._keys[desk_id]

    def public_key(self, desk_id: str) -> Ed25519PublicKey:
        return self._keys[desk_id].public_key()

    def public_key_pem(self, desk_id: str) -> bytes:
        """SubjectPublicKeyInfo PEM, for clients that verify quotes."""
        return self.public_key(desk_id).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
