"""What a desk may see of an anonymous RFQ's client: its per-RFQ alias, never its id.

Every payload a desk receives about an anonymous RFQ (REST answers, stream events, quote
acknowledgements, the trade notice) passes through :func:`masked`, which swaps every value equal
to the client's id for the alias, wherever it sits. Compliance and admin views are not masked.
"""

from __future__ import annotations

from typing import Any


def masked(value: Any, client_id: str, alias: str) -> Any:
    """``value`` (JSON-like) with every string equal to ``client_id`` replaced by ``alias``."""
    if isinstance(value, str):
        return alias if value == client_id else value
    if isinstance(value, dict):
        return {k: masked(v, client_id, alias) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, client_id, alias) for v in value]
    return value


def identity_of(rfq: dict[str, Any]) -> tuple[str, str] | None:
    """(client id, alias) from an RFQ's JSON form when it is anonymous, else None."""
    alias = rfq.get("alias")
    if rfq.get("disclosed", True) or not alias:
        return None
    return rfq["client_id"], alias


def masked_for_rfq(value: Any, rfq: dict[str, Any]) -> Any:
    """``value`` as a desk may see it, given the RFQ's JSON form (``disclosed``, ``alias``)."""
    who = identity_of(rfq)
    return masked(value, *who) if who is not None else value
