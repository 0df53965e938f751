"""Domain values as JSON: Decimals as strings, times as ISO 8601 UTC with microseconds."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from fixspec.messages import field_names, plain

_SCALARS = frozenset({str, int, float, bool})


def to_jsonable(value: Any) -> Any:
    if value is None or type(value) in _SCALARS:
        return value
    names = field_names(type(value))
    if names is not None:
        return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(plain(value), "f")
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):  # whole microseconds: floats are not canonical
        return value // timedelta(microseconds=1)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v) for v in items]
    return value


def event_json(event: Any) -> dict:
    """An event with its type name, as streamed to desks and shown in RFQ histories."""
    return {"event": type(event).__name__, **to_jsonable(event)}
