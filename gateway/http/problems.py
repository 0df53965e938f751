"""Errors as RFC 9457 problem details, and the one table that turns a negotiation refusal into
an HTTP status.

The core says why it refused something with a :class:`~otc.negotiation.errors.RejectReason`;
the FIX edge maps that to FIX codes, this module to HTTP: 403 not routed, 404 unknown, 409 the
state does not allow it, 423 the desk is frozen by market maker protection, 422 bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from otc.negotiation import events as ev
from otc.negotiation.errors import RejectReason

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


def problem(
    status: int, title: str, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# What a route may answer besides its model; every route may also answer 401 and 403.
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
    423: {"model": Problem},
    429: {"model": Problem},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}

R = RejectReason

_HTTP_STATUS: dict[RejectReason, int] = {
    R.DESK_NOT_ROUTED: 403,
    R.NO_ROUTE: 403,
    R.KILL_SWITCH: 403,
    R.UNKNOWN_RFQ: 404,
    R.UNKNOWN_QUOTE: 404,
    R.UNKNOWN_COUNTER: 404,
    R.UNKNOWN_TRADE: 404,
    R.NO_SIGNING_KEY: 500,
    R.DESK_FROZEN: 423,
}

_CONFLICTS = frozenset(
    {
        R.DUPLICATE_QUOTE_REQ_ID,
        R.DUPLICATE_CL_ORD_ID,
        R.DUPLICATE_QUOTE_RESP_ID,
        R.QUOTE_ALREADY_LIVE,
        R.DESK_PASSED,
        R.RFQ_NOT_OPEN,
        R.RFQ_EXPIRED,
        R.RFQ_EXECUTING,
        R.RFQ_FILLED,
        R.ILLEGAL_TRANSITION,
        R.QUOTE_EXPIRED,
        R.QUOTE_NOT_LIVE,
        R.QUOTE_HELD,
        R.QUOTE_HASH_MISMATCH,
        R.COUNTER_PENDING,
        R.COUNTER_CLOSED,
        R.NO_PENDING_LAST_LOOK,
        R.LAST_LOOK_WINDOW_CLOSED,
        R.DESK_NOT_FROZEN,
    }
)


def http_status(reason: RejectReason) -> int:
    """HTTP status for the web API: 403 not routed, 404 unknown, 409 state, 422 bad input."""
    if reason in _HTTP_STATUS:
        return _HTTP_STATUS[reason]
    return 409 if reason in _CONFLICTS else 422


def refused(reason: RejectReason, text: str) -> HTTPException:
    """The problem answering a refused command: status from the reason, detail naming both."""
    return HTTPException(http_status(reason), f"{reason.value}: {text}")


E = TypeVar("E")
Refusal = ev.DeskActionRejected | ev.QuoteRequestRejected


def outcome(
    events: list[ev.Event], want: type[E], rejections: tuple[type[Refusal], ...]
) -> E | None:
    """The event of type ``want`` in ``events``; raises the problem for a rejection found first."""
    for event in events:
        if isinstance(event, rejections):
            raise refused(event.reason, event.text)
    for event in events:
        if isinstance(event, want):
            return event
    return None
