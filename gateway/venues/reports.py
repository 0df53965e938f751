"""An upstream venue's answers (ExecutionReport, OrderCancelReject, and the rejects of a request
it could not take: BusinessMessageReject, session Reject) as the core's venue events.

The venue names our orders by the upstream ClOrdIDs we gave it (see :mod:`gateway.venues.routes`);
what it reports becomes the :data:`otc.venue.VenueEvent` the order core applies to the client's
order. Only the fields FIX 4.4 makes required for each answer are relied on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from fixspec.codec import RawMessage
from gateway.venues.routes import Route, UpstreamRoutes
from otc import venue as v

# ExecTypes that change nothing for the client: the venue's own pending states, restatements,
# done for day (the order's end comes as its own Canceled or Expired report). A status answer
# (ExecType I) is read as a :class:`StatusAnswer` instead.
QUIET_EXEC_TYPES = frozenset({"A", "6", "E", "D", "3"})
UNKNOWN_ORDER = "5"  # OrdRejReason


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """The venue's answer to our OrderStatusRequest: the order's whole state there, compared
    with ours rather than applied as a change (so the same answer twice changes nothing)."""

    ord_status: str  # OrdStatus(39); "" when the venue does not know the order
    cum_qty: Decimal
    avg_px: Decimal
    text: str
    unknown: bool  # OrdRejReason 5 unknown order, or a BusinessMessageReject of the request


class ReportError(ValueError):
    """An answer from the venue that cannot be read (a missing or malformed required field)."""


@dataclass(frozen=True, slots=True)
class UpstreamReport:
    """What one answer from the venue means for one of our orders."""

    route: Route
    exec_id: str | None  # None: an answer without an ExecID (a cancel or message reject)
    events: tuple[v.VenueEvent, ...]
    cum_qty: Decimal | None  # the venue's CumQty(14): a fill at or below ours is a repeat
    venue_order_id: str | None
    poss_dup: bool
    status: StatusAnswer | None = None  # an answer to our OrderStatusRequest


def _decimal(raw: RawMessage, tag: int) -> Decimal:
    value = raw.get(tag)
    if value is None:
        raise ReportError(f"tag {tag} missing")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ReportError(f"tag {tag} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ReportError(f"tag {tag} is not a finite number: {value!r}")
    return number


def _optional_decimal(raw: RawMessage, tag: int) -> Decimal | None:
    return _decimal(raw, tag) if raw.get(tag) is not None else None


def _events(raw: RawMessage, route: Route) -> tuple[v.VenueEvent, ...]:
    order_id, text = route.order_id, raw.get(58) or ""
    if raw.msg_type == "9":  # the cancel or replace waiting on the order was refused
        return (v.Rejected(order_id, f"venue refused the request: {text or 'no reason given'}"),)
    if raw.msg_type in ("j", "3"):  # the venue could not take the request at all
        return (v.Rejected(order_id, f"venue rejected the message: {text or 'no reason given'}"),)
    exec_type = raw.get(150)
    if exec_type is None:
        raise ReportError("tag 150 missing")
    if exec_type == "0":
        return (v.Accepted(order_id),) if route.kind == "new" else ()
    if exec_type == "F":
        return (v.Fill(order_id, _decimal(raw, 32), _decimal(raw, 31)),)
    if exec_type == "4":
        return (v.Cancelled(order_id, text or "cancelled by the venue"),)
    if exec_type == "C":
        return (v.Cancelled(order_id, text or "expired at the venue"),)
    if exec_type == "5":
        return (v.Replaced(order_id, _decimal(raw, 38), _optional_decimal(raw, 44)),)
    if exec_type == "8":
        return (v.Rejected(order_id, f"venue rejected: {text or 'no reason given'}"),)
    if exec_type in QUIET_EXEC_TYPES:
        return ()
    raise ReportError(f"ExecType {exec_type!r} is not handled")


def _status_answer(raw: RawMessage) -> StatusAnswer | None:
    """The answer to an OrderStatusRequest in ``raw``, if it is one: an ExecutionReport with
    ExecType I (or a Rejected one naming the order unknown), or a BusinessMessageReject of the
    request (RefMsgType H)."""
    text = raw.get(58) or ""
    if raw.msg_type == "j":
        if raw.get(372) != "H":
            return None
        return StatusAnswer("", Decimal(0), Decimal(0), text or "no reason given", unknown=True)
    if raw.msg_type != "8":
        return None
    exec_type, ord_status = raw.get(150), raw.get(39)
    unknown = ord_status == "8" and raw.get(103) == UNKNOWN_ORDER
    if exec_type != "I" and not (exec_type == "8" and unknown):
        return None
    if ord_status is None:
        raise ReportError("tag 39 missing")
    if unknown:
        return StatusAnswer(ord_status, Decimal(0), Decimal(0), text or "unknown order", True)
    return StatusAnswer(ord_status, _decimal(raw, 14), _decimal(raw, 6), text, unknown=False)


def read_report(
    raw: RawMessage, routes: UpstreamRoutes, cl_ord_id: str | None = None
) -> UpstreamReport | None:
    """The meaning of ``raw`` (35=8, 9, j, or 3 about the request sent as ``cl_ord_id``) for our
    order, or None if it names no order of ours.

    The venue names the request it answers by ClOrdID(11); a report about an order in general
    (a fill after a replace, an unsolicited cancel) may name an earlier one, or only the
    OrigClOrdID(41), so both are looked up; a BusinessMessageReject names it as
    BusinessRejectRefID(379)."""
    route = routes.route(cl_ord_id) if cl_ord_id else None
    for tag in () if route else (11, 41, 379):
        cl_ord_id = raw.get(tag)
        if cl_ord_id and (route := routes.route(cl_ord_id)) is not None:
            break
    if route is None:
        return None
    exec_id = raw.get(17) if raw.msg_type == "8" else None
    if raw.msg_type == "8" and not exec_id:
        raise ReportError("tag 17 missing")
    status = _status_answer(raw)
    return UpstreamReport(
        route=route,
        exec_id=exec_id,
        events=() if status is not None else _events(raw, route),
        cum_qty=_optional_decimal(raw, 14) if raw.msg_type == "8" else None,
        venue_order_id=raw.get(37) if raw.get(37) not in (None, "", "NONE") else None,
        poss_dup=raw.get(43) == "Y",
        status=status,
    )
