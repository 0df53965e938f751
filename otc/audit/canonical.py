"""Canonical JSON for audit entries: one byte sequence per value, so hashes are reproducible.

The canonical form is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8, applied to a *normalised* value that holds only
``dict`` (string keys), ``list``, ``str``, ``int``, ``bool`` and ``None``. Keys sort by Unicode
code point (Python's ``str`` order). Normalisation is where domain types become JSON:

* ``Decimal`` -> its ``str()`` (``Decimal("1.50")`` stays ``"1.50"``: the audit records the
  value as given, trailing zeros included);
* aware ``datetime`` -> ISO 8601 UTC with microseconds and ``Z`` (``2024-05-01T12:00:00.000000Z``);
  naive datetimes are refused because their instant is unknown;
* ``date``/``time`` -> ISO format; ``Enum`` -> its value; ``UUID`` -> ``str``;
  dataclass instances -> dict of their fields; tuples -> lists.

``float`` is refused: money and quantities are ``Decimal`` in this code base, and a float's
decimal rendering is not something two implementations reliably agree on. ``bytes`` are refused
too (decode FIX wire bytes yourself, e.g. ``raw.decode("latin-1")``), as are sets (no order),
non-string keys and strings that are not valid Unicode.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

__all__ = [
    "CanonicalError",
    "canonical_bytes",
    "canonical_json",
    "canonical_pair",
    "check_ts",
    "format_ts",
    "normalise",
    "parse_ts",
    "ts_from_micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_SCALARS = (str, int, bool, type(None))

# Length of "YYYY-MM-DDTHH:MM:SS.ffffffZ": fixed width, so timestamps compare as strings.
TS_LEN = 27
_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)


class CanonicalError(ValueError):
    """A payload cannot be given one canonical JSON form; the message names the offending path."""


def format_ts(value: datetime) -> str:
    """An aware datetime as canonical UTC text with microseconds, e.g. ``...T12:00:00.000001Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalError(f"naive datetime {value.isoformat()} has no UTC offset")
    text = value.isoformat(timespec="microseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_last_second: tuple[int, str] = (-1, "")  # (epoch seconds, "YYYY-MM-DDTHH:MM:SS"), one tuple


def ts_from_micros(micros: int) -> str:
    """Canonical UTC text for integer microseconds since the Unix epoch."""
    global _last_second
    seconds, fraction = divmod(micros, 1_000_000)
    cached = _last_second  # read once: another thread may replace it, never half-update it
    if cached[0] != seconds:
        text = (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat()
        _last_second = cached = (seconds, text)
    return f"{cached[1]}.{fraction:06d}Z"


def check_ts(text: str) -> datetime:
    """Parse canonical timestamp text to a naive UTC datetime; raise ``ValueError`` otherwise."""
    if not _TS_RE.fullmatch(text):
        raise ValueError(f"timestamp {text!r} is not canonical UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ'")
    try:
        return datetime.fromisoformat(text[:-1])
    except ValueError as exc:
        raise ValueError(f"timestamp {text!r} is not a valid UTC time: {exc}") from None


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`; refuses anything that is not exactly the canonical form."""
    return check_ts(text).replace(tzinfo=UTC)


_PLAIN = frozenset({str, int, bool, type(None)})


class _Refused(Exception):
    """Internal: a value was refused; ``where`` is filled in on the way out of the recursion."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason, self.where = reason, ""


def normalise(value: Any, path: str = "payload") -> Any:
    """Return ``value`` as plain JSON types (see module docstring) or raise :class:`CanonicalError`
    naming the path of the refused value (e.g. ``payload.legs[0].price``)."""
    try:
        return _normalise(value)
    except _Refused as exc:
        raise CanonicalError(f"{path}{exc.where}: {exc.reason}") from None


def _normalise(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _normalise_mapping(value)
    if kind is Decimal:
        return str(value)
    if kind is datetime:
        return _datetime(value)
    return _normalise_other(value)


def _datetime(value: datetime) -> str:
    try:
        return format_ts(value)
    except CanonicalError as exc:
        raise _Refused(str(exc)) from None


def _normalise_other(value: Any) -> Any:
    if isinstance(value, Enum):
        return _normalise(value.value)
    if isinstance(value, str):  # a str subclass that is not an Enum
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Mapping):
        return _normalise_mapping(value)
    if isinstance(value, list | tuple):
        out = []
        for i, item in enumerate(value):
            try:
                out.append(item if type(item) in _PLAIN else _normalise(item))
            except _Refused as exc:
                exc.where = f"[{i}]{exc.where}"
                raise
        return out
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _normalise_mapping(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        )
    if isinstance(value, float):
        raise _Refused(f"float {value!r} is not allowed in audit payloads; use Decimal or str")
    if isinstance(value, bytes | bytearray | memoryview):
        raise _Refused("bytes are not allowed; decode them to str first")
    raise _Refused(f"{type(value).__name__} has no canonical JSON form")


def _normalise_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise _Refused(f"key {key!r} is a {type(key).__name__}; keys must be strings")
            key = key.value if isinstance(key, Enum) else str.__str__(key)
        if type(item) in _PLAIN:
            out[key] = item
            continue
        try:
            out[key] = _normalise(item)
        except _Refused as exc:
            exc.where = f".{key}{exc.where}"
            raise
    return out


def canonical_json(value: Any, path: str = "payload") -> str:
    """Canonical JSON text of ``value`` after :func:`normalise`."""
    text = _dumps(normalise(value, path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"{path}: string is not valid Unicode ({exc.reason})") from None
    return text


def canonical_pair(value: Any, path: str = "payload") -> tuple[str, bytes]:
    """Canonical JSON of ``value`` as text and as UTF-8 bytes, encoding only once."""
    text = _dumps(normalise(value, path))
    try:
        return text, text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"{path}: string is not valid Unicode ({exc.reason})") from None


def canonical_bytes(value: Any, path: str = "payload") -> bytes:
    """UTF-8 bytes of :func:`canonical_json`."""
    return canonical_json(value, path).encode("utf-8")
