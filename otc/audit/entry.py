"""The audit entry record: its canonical line, its hashes and strict decoding. Pure: no I/O.

An entry is one canonical JSON object (see :mod:`otc.audit.canonical`) with exactly these keys::

    {"actor": str, "kind": str, "payload": {...}, "payload_hash": hex, "prev_hash": hex,
     "seq": int, "ts": "YYYY-MM-DDTHH:MM:SS.ffffffZ"}

* ``seq`` starts at **0** and equals the entry's leaf index in the Merkle tree and its
  (0-based) line index in ``entries.jsonl``.
* ``payload_hash`` is SHA-256 of the payload's canonical bytes.
* ``prev_hash`` is the entry hash of entry ``seq - 1``; for entry 0 it is 64 zeros.
* the *entry hash* is the RFC 6962 leaf hash ``SHA-256(0x00 || line)`` of the canonical line
  (UTF-8, no trailing newline); the same value is the Merkle leaf, so the hash chain and the
  tree commit to identical bytes.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from hashlib import sha256
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from otc.audit.canonical import TS_LEN, check_ts

__all__ = [
    "GENESIS_PREV_HASH",
    "Entry",
    "EntryError",
    "decode_entry",
    "encode_entry",
    "entry_head",
    "entry_ts",
    "validate_actor",
    "validate_kind",
]

GENESIS_PREV_HASH = "0" * 64
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = ("actor", "kind", "payload", "payload_hash", "prev_hash", "seq", "ts")
_KEY_SET = frozenset(_KEYS)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_quote = encode_basestring  # JSON string literal, non-ASCII kept as is (C accelerated)
# Bytes at the end of every line after the timestamp text, and before it.
_TS_TAIL = len('"}')
_TS_HEAD = len(',"ts":"')


class EntryError(ValueError):
    """A line is not a well-formed, canonical audit entry; the message says what is wrong."""


class Entry(NamedTuple):
    """A decoded, checked entry (a tuple: cheap to build in tight verification loops)."""

    seq: int
    ts: str
    kind: str
    actor: str
    payload: dict[str, Any]
    payload_hash: str
    prev_hash: str
    line: bytes  # canonical UTF-8, without the newline
    entry_hash: bytes  # RFC 6962 leaf hash of ``line``


def validate_kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise EntryError(
            f"kind {kind!r} must match {_KIND.pattern} (e.g. 'fix.in', 'rfq.state', 'api.action')"
        )
    return kind


def validate_actor(actor: object) -> str:
    if not isinstance(actor, str) or not actor or len(actor) > 256:
        raise EntryError(f"actor {actor!r} must be a non-empty string of at most 256 characters")
    try:
        actor.encode()
    except UnicodeEncodeError:
        raise EntryError(f"actor {actor!r} is not valid Unicode") from None
    return actor


@lru_cache(maxsize=4096)
def entry_head(kind: str, actor: str) -> str:
    """The part of the line before the payload (validated, quoted; cached: actors repeat)."""
    return (
        f'{{"actor":{_quote(validate_actor(actor))},"kind":{_quote(validate_kind(kind))},"payload":'
    )


def encode_entry(
    seq: int, ts: str, prev_hash: str, head: str, payload_json: str, payload_hash: str
) -> bytes:
    """The canonical line for an entry (keys are written in sorted order by construction)."""
    text = (
        f'{head}{payload_json},"payload_hash":"{payload_hash}","prev_hash":"{prev_hash}",'
        f'"seq":{seq},"ts":"{ts}"}}'
    )
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise EntryError(f"entry text is not valid Unicode ({exc.reason})") from None


def entry_ts(line: bytes) -> str:
    """The timestamp of a canonical line without parsing it (it has a fixed place at the end)."""
    return line[-TS_LEN - _TS_TAIL : -_TS_TAIL].decode("ascii", "replace")


def _no_float(text: str) -> Any:
    raise EntryError(f"non-integer number {text} (floats are not allowed)")


_decode_json = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float).decode


def decode_entry(line: bytes) -> Entry:
    """Parse and fully check one line (without newline): JSON, keys, types, canonical form and
    payload hash. Links to neighbours (``seq``, ``prev_hash``) are the caller's business."""
    try:
        obj = _decode_json(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise EntryError("line is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise EntryError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise EntryError("line is not a JSON object")
    if obj.keys() != _KEY_SET:
        raise EntryError(f"keys {sorted(obj)} are not exactly {list(_KEYS)}")
    seq, ts, payload = obj["seq"], obj["ts"], obj["payload"]
    payload_hash, prev_hash = obj["payload_hash"], obj["prev_hash"]
    if type(seq) is not int or seq < 0:
        raise EntryError(f"seq {seq!r} is not a non-negative integer")
    if not isinstance(payload, dict):
        raise EntryError("payload is not a JSON object")
    for name, value in (("payload_hash", payload_hash), ("prev_hash", prev_hash)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise EntryError(f"{name} is not 64 lowercase hex digits")
    if not isinstance(ts, str):
        raise EntryError("ts is not a string")
    try:
        check_ts(ts)
    except ValueError as exc:
        raise EntryError(str(exc)) from None
    head = entry_head(obj["kind"], obj["actor"])
    payload_json = _dumps(payload)
    if encode_entry(seq, ts, prev_hash, head, payload_json, payload_hash) != line:
        raise EntryError("line is not in canonical form (key order, spacing or escaping differ)")
    if sha256(payload_json.encode()).hexdigest() != payload_hash:
        raise EntryError("payload_hash does not match the SHA-256 of the payload")
    return Entry(
        seq=seq,
        ts=ts,
        kind=obj["kind"],
        actor=obj["actor"],
        payload=payload,
        payload_hash=payload_hash,
        prev_hash=prev_hash,
        line=line,
        entry_hash=sha256(b"\x00" + line).digest(),
    )
