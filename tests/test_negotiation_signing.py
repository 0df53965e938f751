"""Canonical quote form, SHA-256 hash and Ed25519 signatures: verify and detect tampering."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from fixspec.messages import Side
from otc.negotiation import (
    DeskKeyring,
    Firmness,
    LegQuote,
    Quote,
    QuoteType,
    canonical_quote_bytes,
    generate_desk_key,
    quote_hash,
    seal_quote,
    sign_quote,
    verify_quote,
)
from otc.negotiation.signing import QUOTE_SCHEMA


def make_quote(**overrides: Any) -> Quote:
    fields: dict[str, Any] = dict(
        quote_id="Q-1",
        rfq_id="RFQ-1",
        client_id="CLIENT-1",
        desk_id="DESK-A",
        quote_type=QuoteType.TRADEABLE,
        firmness=Firmness.FIRM,
        bid_px=Decimal("0.0500"),
        offer_px=Decimal("0.06"),
        bid_size=Decimal("10"),
        offer_size=Decimal("1E+1"),
        legs=(LegQuote(1, "BTC-27DEC26-100000-C", Side.BUY, Decimal(1), False, None, None),),
        valid_until=datetime(2026, 3, 2, 12, 0, 30, 6, tzinfo=UTC),
        quoted_at=datetime(2026, 3, 2, 13, 0, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    fields.update(overrides)
    return Quote(**fields)


def test_canonical_form_is_sorted_compact_json_with_normalised_values():
    data = canonical_quote_bytes(make_quote())
    text = data.decode()
    assert " " not in text and "\n" not in text
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert doc["schema"] == QUOTE_SCHEMA
    assert (doc["bid_px"], doc["offer_px"], doc["offer_size"]) == ("0.05", "0.06", "10")
    assert doc["valid_until"] == "2026-03-02T12:00:30.000006Z"
    assert doc["quoted_at"] == "2026-03-02T12:00:00.000000Z"  # converted to UTC
    assert doc["legs"][0]["side"] == "1" and doc["legs"][0]["bid_px"] is None
    assert doc["replaces_quote_id"] is None


def test_equal_quotes_hash_equally_whatever_the_decimal_spelling():
    a = make_quote(bid_px=Decimal("0.05"), offer_size=Decimal("10"))
    b = make_quote(bid_px=Decimal("0.050000"), offer_size=Decimal("10.0"))
    assert quote_hash(a) == quote_hash(b)
    assert len(quote_hash(a)) == 64 and int(quote_hash(a), 16) >= 0


def test_sign_and_verify():
    key = generate_desk_key()
    q = make_quote()
    signature = sign_quote(q, key)
    assert len(signature) == 64
    assert verify_quote(q, signature, key.public_key())
    assert not verify_quote(q, signature, generate_desk_key().public_key())


@pytest.mark.parametrize(
    "tamper",
    [
        dict(offer_px=Decimal("0.059")),
        dict(bid_size=Decimal("100")),
        dict(desk_id="DESK-B"),
        dict(client_id="CLIENT-2"),
        dict(valid_until=datetime(2026, 3, 2, 12, 0, 31, tzinfo=UTC)),
        dict(firmness=Firmness.LAST_LOOK),
        dict(legs=(LegQuote(1, "BTC-27DEC26-110000-C", Side.BUY, Decimal(1), False, None, None),)),
    ],
)
def test_any_tampering_breaks_signature_and_hash(tamper):
    key = generate_desk_key()
    original = make_quote()
    sealed = seal_quote(original, key)
    tampered = replace(original, **tamper)
    assert not verify_quote(tampered, sealed.signature, key.public_key())
    assert quote_hash(tampered) != sealed.quote_hash


def test_tampered_signature_bytes_fail():
    key = generate_desk_key()
    sealed = seal_quote(make_quote(), key)
    flipped = bytes([sealed.signature[0] ^ 1]) + sealed.signature[1:]
    assert not verify_quote(sealed.quote, flipped, key.public_key())
    assert not verify_quote(sealed.quote, b"short", key.public_key())


def test_seal_matches_separate_hash_and_signature():
    key = generate_desk_key()
    q = make_quote()
    sealed = seal_quote(q, key)
    assert sealed.quote_hash == quote_hash(q)
    assert verify_quote(q, sealed.signature, key.public_key())
    assert seal_quote(q, None).signature is None


def test_floats_and_naive_datetimes_have_no_canonical_form():
    with pytest.raises(TypeError, match="float"):
        canonical_quote_bytes(make_quote(bid_px=0.05))
    with pytest.raises(ValueError, match="naive"):
        canonical_quote_bytes(make_quote(valid_until=datetime(2026, 3, 2, 12)))
    with pytest.raises(ValueError, match="non-finite"):
        canonical_quote_bytes(make_quote(bid_px=Decimal("Infinity")))


def test_keyring_from_pem_and_public_key_export():
    key = generate_desk_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ring = DeskKeyring.from_pem({"DESK-A": pem})
    assert "DESK-A" in ring and "DESK-B" not in ring
    public = serialization.load_pem_public_key(ring.public_key_pem("DESK-A"))
    q = make_quote()
    assert verify_quote(q, sign_quote(q, ring.private_key("DESK-A")), public)
    with pytest.raises(TypeError, match="Ed25519"):
        DeskKeyring({"DESK-A": "not a key"})  # type: ignore[dict-item]
