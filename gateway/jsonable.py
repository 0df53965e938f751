"""Domain values as JSON: Decimals as strings, times as ISO 8601 UTC with microseconds.

Every event is described at least twice (audit trail, desk stream) and the events of one
command share their prices and times (each quote's events repeat its prices, all of them carry
the command's ``now``), so the text of recent Decimals and times is remembered: formatting them
was most of what describing an event cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from fixspec.messages import field_names, plain
from otc.negotiation.model import SealedQuote

_SCALARS = frozenset({str, int, float, bool})
_REMEMBERED = 4096  # texts kept per kind; the memo starts afresh when full
_decimals: dict[Decimal, str] = {}
_times: dict[tuple[datetime, Any], str] = {}


def decimal_text(value: Decimal) -> str:
    """``value`` in plain notation. Equal non-zero Decimals have the same plain text ("1.50" and
    "1.5" both give "1.5"), so the memo is keyed by value; zeros keep their sign ("-0")."""
    text = _decimals.get(value) if value else None
    if text is None:
        text = format(plain(value), "f")
        if value:
            if len(_decimals) >= _REMEMBERED:
                _decimals.clear()
            _decimals[value] = text
    return text


def time_text(value: datetime) -> str:
    """ISO 8601 with microseconds, ``Z`` for UTC. Keyed with the zone: equal instants in
    different zones are written differently."""
    key = (value, value.tzinfo)
    text = _times.get(key)
    if text is None:
        text = value.isoformat(timespec="microseconds").replace("+00:00", "Z")
        if len(_times) >= _REMEMBERED:
            _times.clear()
        _times[key] = text
    return text


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data. A sealed quote's text is remembered and shared between its
    callers (see ``_remembered``): read what this returns, copy it to change it."""
    if value is None or type(value) in _SCALARS:
        return value
    if type(value) is SealedQuote:
        return _remembered(value, _fields)
    names = field_names(type(value))
    if names is not None:
        return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return time_text(value)
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


# Recent events' descriptions, and those of the sealed quotes they share (a quote's
# acknowledgement to its desk and its copy to the client carry the same one), by identity: the
# value is kept with its text, so its id is not reused while remembered. Sized for the audit
# feed's lag behind the negotiation thread under load.
_SHARED_REMEMBERED = 16384
_described: dict[int, tuple[Any, dict]] = {}


def _remembered(value: Any, describe: Callable[[Any], dict]) -> dict:
    key = id(value)
    known = _described.get(key)
    if known is not None and known[0] is value:
        return known[1]
    text = describe(value)
    if len(_described) >= _SHARED_REMEMBERED:
        _described.clear()
    _described[key] = (value, text)
    return text


def _fields(value: Any) -> dict:
    return {name: to_jsonable(getattr(value, name)) for name in field_names(type(value)) or ()}


def _event(event: Any) -> dict:
    return {"event": type(event).__name__, **to_jsonable(event)}


def event_json(event: Any) -> dict:
    """An event with its type name, as streamed to desks and shown in RFQ histories.

    The same event is described on the negotiation thread (desk stream) and on the audit feed's:
    the second asks for what the first built. Each caller gets its own top-level dict (the audit
    feed adds ``rfq_id``); the nested values are shared and nobody changes them."""
    return dict(_remembered(event, _event))
