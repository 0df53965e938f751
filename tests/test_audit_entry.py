"""Canonical JSON, the entry record, and signed checkpoints (pure code, no files)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otc.audit.canonical import (
    CanonicalError,
    canonical_bytes,
    canonical_json,
    format_ts,
    parse_ts,
    ts_from_micros,
)
from otc.audit.checkpoint import Checkpoint, CheckpointError, sign_checkpoint
from otc.audit.entry import (
    GENESIS_PREV_HASH,
    EntryError,
    decode_entry,
    encode_entry,
    entry_head,
    entry_ts,
)
from otc.audit.merkle import leaf_hash
from otc.audit.signing import SignatureError, sign_document, verify_document


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Leg:
    qty: Decimal
    when: datetime


def test_canonical_json_sorts_keys_and_has_no_whitespace():
    assert canonical_json({"b": 1, "a": [True, None, "x"], "c": {"z": 0, "y": 1}}) == (
        '{"a":[true,null,"x"],"b":1,"c":{"y":1,"z":0}}'
    )


def test_canonical_json_keeps_unicode_as_utf8_and_escapes_controls():
    assert canonical_bytes({"name": "Zürich €", "fix": "8=FIX.4.4\x019=5"}) == (
        '{"fix":"8=FIX.4.4\\u00019=5","name":"Zürich €"}'.encode()
    )


def test_domain_values_are_normalised():
    paris = timezone(timedelta(hours=2))
    payload = {
        "qty": Decimal("1.50"),
        "at": datetime(2024, 5, 1, 14, 0, 0, 7, tzinfo=paris),
        "day": date(2024, 5, 1),
        "colour": Colour.RED,
        "leg": Leg(Decimal("-3"), datetime(2024, 1, 1, tzinfo=UTC)),
        "pair": (1, 2),
    }
    assert json.loads(canonical_json(payload)) == {
        "qty": "1.50",
        "at": "2024-05-01T12:00:00.000007Z",
        "day": "2024-05-01",
        "colour": "red",
        "leg": {"qty": "-3", "when": "2024-01-01T00:00:00.000000Z"},
        "pair": [1, 2],
    }


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"price": 1.5}, "payload.price: float"),
        ({"raw": b"8=FIX"}, "payload.raw: bytes"),
        ({"at": datetime(2024, 1, 1)}, "payload.at: naive datetime"),
        ({1: "x"}, "keys must be strings"),
        ({"s": {1, 2}}, "payload.s: set has no canonical JSON form"),
        ({"legs": [{"q": 2.0}]}, "payload.legs[0].q: float"),
        ({"bad": "\ud800"}, "not valid Unicode"),
    ],
)
def test_values_without_one_canonical_form_are_refused(payload, fragment):
    with pytest.raises(CanonicalError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        canonical_json(payload)


def test_timestamps_are_fixed_width_utc_microseconds():
    assert ts_from_micros(1_700_000_000_000_001) == "2023-11-14T22:13:20.000001Z"
    assert parse_ts("2023-11-14T22:13:20.000001Z") == datetime(
        2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC
    )
    for bad in (
        "2023-11-14T22:13:20Z",
        "2023-11-14 22:13:20.000001Z",
        "2023-13-14T22:13:20.000001Z",
    ):
        with pytest.raises(ValueError):
            parse_ts(bad)
    assert format_ts(datetime(2024, 1, 1, tzinfo=UTC)) < format_ts(
        datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    )


def _line(seq=0, prev=GENESIS_PREV_HASH, payload=None, kind="rfq.state", actor="api:alice"):
    text = canonical_json(payload if payload is not None else {"rfq_id": "R-1", "qty": "5"})
    return encode_entry(
        seq,
        "2024-05-01T12:00:00.000000Z",
        prev,
        entry_head(kind, actor),
        text,
        sha256(text.encode()).hexdigest(),
    )


def test_encoded_entry_is_canonical_and_decodes_back():
    line = _line(seq=7, prev="ab" * 32)
    obj = json.loads(line)
    assert line == canonical_bytes(obj, "entry")
    entry = decode_entry(line)
    assert (entry.seq, entry.kind, entry.actor, entry.prev_hash) == (
        7,
        "rfq.state",
        "api:alice",
        "ab" * 32,
    )
    assert entry.entry_hash == leaf_hash(line) == sha256(b"\x00" + line).digest()
    assert entry.payload_hash == sha256(canonical_bytes(entry.payload)).hexdigest()
    assert entry_ts(line) == "2024-05-01T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda s: s.replace(b'"seq":0', b'"seq": 0'), "canonical form"),
        (lambda s: s.replace(b'"qty":"5"', b'"qty":"6"'), "payload_hash does not match"),
        (lambda s: s.replace(b'"qty":"5"', b'"qty":5.0'), "floats are not allowed"),
        (lambda s: s.replace(b'"qty":"5"', b'"qty":NaN'), "floats are not allowed"),
        (lambda s: s.replace(b'"seq":0', b'"seq":-1'), "non-negative"),
        (lambda s: s.replace(b'"actor"', b'"author"'), "keys"),
        (lambda s: s[:-5], "not valid JSON"),
        (lambda s: s.replace(b"rfq.state", b"RFQ STATE"), "kind"),
        (lambda s: s.replace(b"T12:00:00.000000Z", b"T12:00:00Z"), "not canonical UTC"),
        (lambda s: s.replace(b"api:alice", b"api:\xff"), "UTF-8"),
    ],
)
def test_decode_refuses_damaged_or_non_canonical_lines(mutate, fragment):
    with pytest.raises(EntryError, match=fragment):
        decode_entry(mutate(_line()))


def test_kind_and_actor_are_validated():
    assert entry_head("otc.RfqCreated", "desk:D1").startswith('{"actor":"desk:D1","kind":')
    with pytest.raises(EntryError, match="kind"):
        entry_head("Bad Kind", "x")
    with pytest.raises(EntryError, match="actor"):
        entry_head("fix.in", "")


def test_checkpoint_signature_round_trip_and_tamper():
    key = Ed25519PrivateKey.generate()
    checkpoint = sign_checkpoint(key, 42, b"\x07" * 32, "2024-05-01T12:00:00.000000Z")
    line = checkpoint.to_line()
    parsed = Checkpoint.from_line(line)
    parsed.verify(key.public_key())
    assert parsed == checkpoint
    forged = Checkpoint.from_line(line.replace(b'"size":42', b'"size":43'))
    with pytest.raises(CheckpointError, match="does not verify"):
        forged.verify(key.public_key())
    with pytest.raises(CheckpointError, match="signed by key"):
        parsed.verify(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CheckpointError, match="canonical"):
        Checkpoint.from_line(line.replace(b'"size":42', b'"size": 42'))


def test_document_signature_is_domain_separated():
    key = Ed25519PrivateKey.generate()
    doc = sign_document(key, {"type": "fixbridge.audit.checkpoint.v1", "size": 1})
    verify_document(key.public_key(), doc, "fixbridge.audit.checkpoint.v1")
    with pytest.raises(SignatureError, match="type"):
        verify_document(key.public_key(), doc, "fixbridge.audit.manifest.v1")
