"""What an audit entry is about: the ids it names, for searching the trail. Pure.

:func:`entry_refs` reads one entry's actor and payload (and, for a FIX message, the fields that
carry ids) and returns ``(name, value)`` pairs:

========================  =====================================================================
name                      from
========================  =====================================================================
``client``                actor ``session:X`` / ``client:X``; ``client_id`` in the payload
``desk``                  actor ``desk:X``; ``desk_id`` in the payload
``cl_ord_id``             ``cl_ord_id``; FIX ClOrdID (11), OrigClOrdID (41)
``order_id``              ``order_id``; FIX OrderID (37)
``rfq_id``                ``rfq_id``
``quote_id``              ``quote_id``; FIX QuoteID (117)
``quote_req_id``          ``quote_req_id``; FIX QuoteReqID (131)
``trade_id``              ``trade_id``; FIX ExecID (17), TradeReportID (571), TradeID (1003)
``clearing_key``          a clearing entry's ``key`` (the message's idempotency key)
========================  =====================================================================

Compliance queries (``compliance.*``) name ids only as their filters and are not about them:
only their actor counts. Payload keys are looked for at any depth (a trade inside
``TradeCaptured``, a quote inside a sealed quote). ClOrdIDs and QuoteReqIDs are the client's
own and unique per client only: :data:`CLIENT_SCOPED` says so, and a timeline follows them
within the same client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from otc.audit.command import COMMAND, parts_of
from otc.audit.wire import SOH, fix_text

__all__ = ["CLIENT_SCOPED", "FILTERS", "LINKS", "entry_refs"]

# every name a search may filter on (the ids above)
FILTERS = (
    "client",
    "desk",
    "cl_ord_id",
    "order_id",
    "rfq_id",
    "quote_id",
    "quote_req_id",
    "trade_id",
    "clearing_key",
)
# the ids a timeline follows from entry to entry (never a client or desk: those are everything)
LINKS = ("cl_ord_id", "order_id", "rfq_id", "quote_id", "quote_req_id", "trade_id", "clearing_key")
CLIENT_SCOPED = frozenset({"cl_ord_id", "quote_req_id"})

_PAYLOAD_KEYS = {
    "client_id": "client",
    "desk_id": "desk",
    "cl_ord_id": "cl_ord_id",
    "order_id": "order_id",
    "rfq_id": "rfq_id",
    "quote_id": "quote_id",
    "quote_req_id": "quote_req_id",
    "trade_id": "trade_id",
}
_FIX_TAGS = {
    "11": "cl_ord_id",
    "41": "cl_ord_id",
    "37": "order_id",
    "117": "quote_id",
    "131": "quote_req_id",
    "17": "trade_id",
    "571": "trade_id",
    "1003": "trade_id",
}
_ACTOR_PREFIXES = {"session": "client", "client": "client", "desk": "desk"}
_MAX_DEPTH = 6
NO_ID = "NONE"  # FIX's stand-in for an id that does not exist: it links nothing to anything


def _walk(value: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = _PAYLOAD_KEYS.get(key)
            if name is not None and isinstance(item, str) and item and item != NO_ID:
                yield name, item
            elif isinstance(item, Mapping | list):
                yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping | list):
                yield from _walk(item, depth + 1)


def _fix_refs(text: str) -> Iterator[tuple[str, str]]:
    for part in text.split(SOH):
        tag, _, value = part.partition("=")
        name = _FIX_TAGS.get(tag)
        if name is not None and value and value != NO_ID:
            yield name, value


def entry_refs(kind: str, actor: str, payload: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The ``(name, value)`` ids an entry names (see the module docstring); a command entry
    (:mod:`otc.audit.command`) names what each of its parts names."""
    if kind == COMMAND:
        refs: set[tuple[str, str]] = set()
        for part in parts_of(kind, actor, payload):
            refs |= _single_refs(*part) if part[0] != COMMAND else set()
        return refs
    return _single_refs(kind, actor, payload)


def _single_refs(kind: str, actor: str, payload: Mapping[str, Any]) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    prefix, sep, who = actor.partition(":")
    if sep and who and prefix in _ACTOR_PREFIXES:
        refs.add((_ACTOR_PREFIXES[prefix], who))
    if kind.startswith("compliance."):  # a query names ids as filters; it is not about them
        return refs
    if kind in ("fix.in", "fix.out"):
        found = fix_text(payload)
        if found is not None:
            refs.update(_fix_refs(found[0]))
        return refs
    refs.update(_walk(payload))
    if kind.startswith("clearing.") and isinstance(payload.get("key"), str):
        refs.add(("clearing_key", payload["key"]))
    return refs
