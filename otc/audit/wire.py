"""Wire records: how the audit trail keeps bytes exactly as they were sent or received. Pure.

A FIX message is recorded as the text QuickFIX read from or wrote to the socket, SOH
delimiters and all. Canonical JSON escapes SOH as ``\\u0001``, so the entry stays one line and
the message comes back byte for byte::

    {"msg_type": "D", "wire": "8=FIX.4.4\\u00019=139\\u000135=D\\u0001...10=029\\u0001"}

A message that is not valid UTF-8 (FIX allows any byte in a data field or an encoded text) is
kept as base64 of its bytes instead: ``{"msg_type": "D", "wire_b64": "OD1GSVguNC40..."}``.

Entries written before this format have ``{"msg_type": ..., "raw": ...}`` with every SOH
replaced by ``|``. They still verify (the hash covers whatever payload was written; history is
never rewritten), but a ``|`` inside a value makes them ambiguous, so they can only be shown as
text, never rebuilt: :func:`fix_wire` answers ``None`` for them.

Clearing messages and the clearinghouse's answers are XML documents: their bodies are kept the
same way, as ``body`` (text, if the bytes are UTF-8) or ``body_b64`` (see :func:`body_record`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SOH",
    "body_bytes",
    "body_record",
    "fix_fields",
    "fix_record",
    "fix_text",
    "fix_wire",
    "msg_type_of",
]

SOH = "\x01"


def msg_type_of(text: str) -> str:
    """MsgType (35) of a FIX message's text, or '' if it has none."""
    if text.startswith("35="):
        start = 0
    else:
        start = text.find(SOH + "35=")
        if start < 0:
            return ""
        start += 1
    end = text.find(SOH, start + 3)
    return text[start + 3 : end if end >= 0 else len(text)]


def fix_record(message: str | bytes) -> dict[str, str]:
    """The audit payload of one FIX message as it was on the wire.

    ``message`` is the wire bytes, or the text QuickFIX handed over (bytes that are not UTF-8
    arrive as surrogate escapes and are restored here)."""
    if isinstance(message, bytes):
        data = message
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    else:
        try:
            message.encode("utf-8")
            text, data = message, b""
        except UnicodeEncodeError:
            text, data = None, message.encode("utf-8", "surrogateescape")
    if text is not None:
        return {"msg_type": msg_type_of(text), "wire": text}
    return {
        "msg_type": msg_type_of(data.decode("latin-1")),
        "wire_b64": base64.b64encode(data).decode("ascii"),
    }


def fix_wire(payload: Mapping[str, Any]) -> bytes | None:
    """The exact bytes of a recorded FIX message; ``None`` for a record of the old ``raw``
    form (``|`` for SOH), which cannot be rebuilt, or a payload that is not a FIX record."""
    wire = payload.get("wire")
    if isinstance(wire, str):
        return wire.encode("utf-8")
    encoded = payload.get("wire_b64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def fix_text(payload: Mapping[str, Any]) -> tuple[str, bool] | None:
    """A recorded FIX message as text with SOH delimiters, and whether that text is exactly
    what was on the wire. Old ``raw`` records come back with ``|`` turned into SOH, marked
    inexact (a ``|`` inside a value is split too); bytes that are not UTF-8 show as U+FFFD."""
    data = fix_wire(payload)
    if data is not None:
        text = data.decode("utf-8", "replace")
        return text, text.encode("utf-8") == data
    raw = payload.get("raw")
    if isinstance(raw, str):
        return raw.replace("|", SOH), False
    return None


def fix_fields(text: str) -> list[tuple[str, str]]:
    """``(tag, value)`` pairs of a FIX message's text, in order (a trailing SOH is dropped)."""
    pairs = []
    for part in text.split(SOH):
        if not part:
            continue
        tag, sep, value = part.partition("=")
        pairs.append((tag, value) if sep else ("", part))
    return pairs


def body_record(data: bytes, name: str = "body") -> dict[str, str]:
    """``{name: text}`` if ``data`` is UTF-8, else ``{name + "_b64": base64}``."""
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(data).decode("ascii")}


def body_bytes(payload: Mapping[str, Any], name: str = "body") -> bytes | None:
    """The exact bytes :func:`body_record` recorded under ``name``, or ``None``."""
    text = payload.get(name)
    if isinstance(text, str):
        return text.encode("utf-8")
    encoded = payload.get(f"{name}_b64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None
