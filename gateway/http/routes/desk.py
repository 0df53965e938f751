"""Desks at work: the RFQs routed to the caller's desk, its quotes (submit, replace, cancel),
passes, counters, last-look decisions and statistics, the desks' public keys, and the desk's
live event stream. A desk sees only RFQs routed to it and only its own quotes, and of an anonymous
RFQ's client only its alias (:mod:`gateway.http.anonymity`).

Routes are async: their work is a short, CPU-bound call into the negotiation service (under its
lock), so a hop to a worker thread would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect

from gateway.http.anonymity import masked, masked_for_rfq
from gateway.http.deps import (
    AdmissionDep,
    AnyRoleToken,
    AuditorDep,
    AuthDep,
    ConfigDep,
    DeskHubDep,
    DeskId,
    DeskToken,
    NegotiationDep,
    ReaderToken,
)
from gateway.http.desk_messages import MessageRefused, mass_quote, read_desk_messages
from gateway.http.models import (
    CounterAnswerIn,
    CounterDeclinedOut,
    DeskLastLookStatsOut,
    DeskMeOut,
    DeskProtectionOut,
    DeskPublicKeyOut,
    DeskRfqOut,
    LastLookConfirmedOut,
    LastLookRejectedOut,
    LastLookRejectIn,
    MassQuoteIn,
    MassQuoteOut,
    QuoteCancelledOut,
    QuoteIn,
    QuotesCancelledOut,
    RfqPassedOut,
    SealedQuoteOut,
)
from gateway.http.problems import ERRORS, outcome
from gateway.http.streams import CLOSE, GONE, CloseWith
from gateway.jsonable import to_jsonable
from gateway.negotiation import NegotiationService, NegotiationUnavailable
from otc.negotiation import commands as c
from otc.negotiation import events as ev
from otc.negotiation.engine import RfqView
from otc.negotiation.model import SealedQuote

log = logging.getLogger("fixbridge.desk")
MAX_DESK_RFQS = 1_000  # the most RFQs one GET /desk/rfqs returns

# A browser cannot set headers on a WebSocket, so it offers its token as a subprotocol,
# ``fixbridge.bearer.<base64url(token), unpadded>``, next to ``fixbridge.desk.v1``: the stream
# answers with the latter and never echoes the token. Unlike ``?token=``, it stays out of URLs
# and so out of access logs and browser history.
STREAM_SUBPROTOCOL = "fixbridge.desk.v1"
BEARER_SUBPROTOCOL = "fixbridge.bearer."

router = APIRouter(tags=["desk"])


def subprotocol_token(offered: list[str]) -> str | None:
    """The bearer token offered as a ``fixbridge.bearer.`` subprotocol ('' if it does not
    decode), or None when none is offered."""
    for protocol in offered:
        if protocol.startswith(BEARER_SUBPROTOCOL):
            raw = protocol[len(BEARER_SUBPROTOCOL) :]
            try:
                return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ""
    return None


def _desk_rfq(
    service: NegotiationService, desk_id: str, rfq_id: str
) -> tuple[RfqView, tuple[SealedQuote, ...]]:
    found = service.desk_rfq(desk_id, rfq_id)
    if found is None:
        raise HTTPException(404, f"no RFQ {rfq_id!r}")
    view, mine = found
    if desk_id not in view.desk_ids:
        raise HTTPException(403, f"RFQ {rfq_id} is not routed to desk {desk_id}")
    return view, mine


def _desk_rfq_out(view: RfqView, mine: tuple[SealedQuote, ...]) -> dict[str, Any]:
    rfq = to_jsonable(view.rfq)
    out = {"rfq": rfq, "state": view.state.value, "my_quotes": [to_jsonable(q) for q in mine]}
    return dict(masked_for_rfq(out, rfq))


def _for_desk(service: NegotiationService, rfq_id: str | None, payload: Any) -> Any:
    """``payload`` as the desk may see it: an anonymous RFQ's client id replaced by its alias."""
    who = service.client_alias(rfq_id)
    return masked(payload, *who) if who is not None else payload


def _quote_out(service: NegotiationService, event: ev.QuoteAcknowledged | None) -> dict[str, Any]:
    assert event is not None  # a quote the engine did not refuse is acknowledged
    sealed = event.sealed
    out = to_jsonable(sealed) | {"signature": (sealed.signature or b"").hex()}
    return dict(_for_desk(service, sealed.quote.rfq_id, out))


@router.get("/desk/me", response_model=DeskMeOut)
async def whoami(token: DeskToken) -> dict[str, Any]:
    """The caller's desk and token name: what a desk screen shows as signed in."""
    return {"desk_id": token.desk_id, "token_name": token.name}


@router.get("/desk/rfqs", response_model=list[DeskRfqOut])
async def my_rfqs(
    desk_id: DeskId,
    service: NegotiationDep,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DESK_RFQS)] = 200,
) -> list[dict[str, Any]]:
    """Live RFQs routed to the caller's desk (newest first, at most ``limit``),
    optionally by state; finished ones are at GET /rfqs/{id}."""
    return [_desk_rfq_out(view, mine) for view, mine in service.desk_rfqs(desk_id, state, limit)]


@router.get("/desk/rfqs/{rfq_id}", response_model=DeskRfqOut, responses=ERRORS)
async def my_rfq(rfq_id: str, desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """One RFQ routed to the caller's desk, with the desk's own live quotes only."""
    return _desk_rfq_out(*_desk_rfq(service, desk_id, rfq_id))


@router.post(
    "/desk/rfqs/{rfq_id}/quotes", status_code=201, response_model=SealedQuoteOut, responses=ERRORS
)
async def submit_quote(
    rfq_id: str, body: QuoteIn, desk_id: DeskId, service: NegotiationDep
) -> dict[str, Any]:
    """Quote an RFQ (two-way or one-way, per-leg prices, firm or last look). Signed."""
    events = service.submit(c.SubmitQuote(desk_id, rfq_id, body.terms(service.clock())))
    return _quote_out(service, outcome(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,)))


@router.post("/desk/quotes/batch", response_model=MassQuoteOut, responses=ERRORS)
async def submit_quotes(
    body: MassQuoteIn, desk_id: DeskId, service: NegotiationDep
) -> dict[str, Any]:
    """Quote up to 100 RFQs at once (new quotes, or replacements with ``replaces_quote_id``).
    Each quote stands on its own: the answer gives each one's outcome in order, accepted (id,
    hash, signature) or refused (code, reason); a partly refused batch is still a 200."""
    try:
        return {"results": mass_quote(service, desk_id, body)}
    except MessageRefused as exc:
        raise HTTPException(422, exc.reason) from None


@router.put("/desk/quotes/{quote_id}", response_model=SealedQuoteOut, responses=ERRORS)
async def replace_quote(
    quote_id: str, body: QuoteIn, desk_id: DeskId, service: NegotiationDep
) -> dict[str, Any]:
    """Replace a live quote; the client sees the new one and the old one is Replaced."""
    events = service.submit(c.ReplaceQuote(desk_id, quote_id, body.terms(service.clock())))
    return _quote_out(service, outcome(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,)))


@router.delete("/desk/quotes/{quote_id}", response_model=QuoteCancelledOut, responses=ERRORS)
async def cancel_quote(quote_id: str, desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """Withdraw one live quote (the client gets a QuoteStatusReport)."""
    events = service.submit(c.CancelQuote(desk_id, quote_id))
    outcome(events, ev.QuoteStatusChanged, (ev.DeskActionRejected,))
    return {"quote_id": quote_id, "cancelled": True}


@router.delete("/desk/quotes", response_model=QuotesCancelledOut, responses=ERRORS)
async def cancel_all(
    desk_id: DeskId, service: NegotiationDep, rfq_id: str | None = None
) -> dict[str, Any]:
    """Withdraw every live quote of the desk (or only on ``rfq_id``)."""
    events = service.submit(c.CancelAllQuotes(desk_id, rfq_id))
    outcome(events, ev.QuoteStatusChanged, (ev.DeskActionRejected,))
    n = sum(1 for e in events if isinstance(e, ev.QuoteStatusChanged))
    return {"cancelled": n}


@router.post("/desk/rfqs/{rfq_id}/pass", response_model=RfqPassedOut, responses=ERRORS)
async def desk_pass(rfq_id: str, desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """Decline to quote this RFQ."""
    outcome(service.submit(c.DeskPass(desk_id, rfq_id)), ev.DeskPassed, (ev.DeskActionRejected,))
    return {"rfq_id": rfq_id, "passed": True}


@router.post(
    "/desk/counters/{counter_id}/answer",
    response_model=SealedQuoteOut | CounterDeclinedOut,
    responses=ERRORS,
)
async def answer_counter(
    counter_id: str, body: CounterAnswerIn, desk_id: DeskId, service: NegotiationDep
) -> dict[str, Any]:
    """Answer a client's counter with new terms (a new quote) or decline it."""
    terms = body.quote.terms(service.clock()) if body.quote else None
    events = service.submit(c.AnswerCounter(desk_id, counter_id, terms, body.text))
    ack = outcome(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,))
    return _quote_out(service, ack) if ack else {"counter_id": counter_id, "declined": True}


@router.post(
    "/desk/quotes/{quote_id}/last-look/confirm",
    response_model=LastLookConfirmedOut,
    responses=ERRORS,
)
async def confirm(quote_id: str, desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """Confirm a fill held for last look: the trade is captured."""
    events = service.submit(c.ConfirmLastLook(desk_id, quote_id))
    traded = outcome(events, ev.TradeCaptured, (ev.DeskActionRejected,))
    if traded is None:
        return {"trade": None}
    return {"trade": _for_desk(service, traded.trade.rfq_id, to_jsonable(traded.trade))}


@router.post(
    "/desk/quotes/{quote_id}/last-look/reject", response_model=LastLookRejectedOut, responses=ERRORS
)
async def reject(
    quote_id: str, body: LastLookRejectIn, desk_id: DeskId, service: NegotiationDep
) -> dict[str, Any]:
    """Reject a fill held for last look; the client is told it did not trade."""
    events = service.submit(c.RejectLastLook(desk_id, quote_id, body.text))
    outcome(events, ev.AcceptanceRejected, (ev.DeskActionRejected,))
    return {"quote_id": quote_id, "rejected": True}


def _protection_out(service: NegotiationService, desk_id: str) -> dict[str, Any]:
    guard = service.desk_guard(desk_id)
    return {
        "desk_id": desk_id,
        "frozen": guard.frozen,
        "tripped_at": to_jsonable(guard.tripped_at),
        "reason": guard.reason,
        "fills_in_window": len(guard.fills),
        "notional_in_window": to_jsonable(guard.notional),
    }


@router.get("/desk/protection", response_model=DeskProtectionOut)
async def protection(desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """The desk's market maker protection: whether it is frozen, and what the window holds."""
    return _protection_out(service, desk_id)


@router.post("/desk/protection/reset", response_model=DeskProtectionOut, responses=ERRORS)
async def reset_protection(desk_id: DeskId, service: NegotiationDep) -> dict[str, Any]:
    """Resume quoting after market maker protection tripped (409 when it has not)."""
    events = service.submit(c.ResetDeskProtection(desk_id))
    outcome(events, ev.DeskProtectionReset, (ev.DeskActionRejected,))
    return _protection_out(service, desk_id)


@router.get("/desk/stats/last-look", response_model=dict[str, DeskLastLookStatsOut])
async def last_look_stats(token: ReaderToken, service: NegotiationDep) -> dict[str, Any]:
    """Per-desk last-look statistics: holds, hold times, reject and timeout rates.
    A desk sees only its own."""
    stats = service.last_look_stats()
    if token.role == "desk":
        stats = {k: v for k, v in stats.items() if k == token.desk_id}
    return to_jsonable(stats)


@router.get("/desks/{desk_id}/public-key", response_model=DeskPublicKeyOut, responses=ERRORS)
async def public_key(desk_id: str, token: AnyRoleToken, service: NegotiationDep) -> dict[str, Any]:
    """The desk's Ed25519 public key (PEM): anyone may verify its quote signatures."""
    pem = service.public_key_pem(desk_id)
    if pem is None:
        raise HTTPException(404, f"no desk {desk_id!r}")
    return {"desk_id": desk_id, "public_key_pem": pem.decode()}


@router.websocket("/desk/stream")
async def stream(
    ws: WebSocket,
    auth: AuthDep,
    hub: DeskHubDep,
    service: NegotiationDep,
    config: ConfigDep,
    auditor: AuditorDep,
    admission: AdmissionDep,
    token: str | None = None,
    cancel_on_disconnect: bool = False,
) -> None:
    """Desk events as JSON: new RFQs, counters, last-look requests, done-away, cover,
    withdrawals; the desk may send mass quotes on it (:mod:`gateway.http.desk_messages`).
    Authenticate with ``Authorization: Bearer``; a browser, which cannot set that header,
    offers the subprotocols ``fixbridge.desk.v1`` and ``fixbridge.bearer.<base64url(token)>``
    instead. ``?token=`` also works but puts the token in URLs, and so in logs.
    ``?cancel_on_disconnect=true`` (or ``otc.cancel_on_disconnect``) pulls the desk's live
    quotes when its last stream closes."""
    header = ws.headers.get("authorization", "")
    offered = list(ws.scope.get("subprotocols") or ())
    presented = header[7:] if header.lower().startswith("bearer ") else subprotocol_token(offered)
    if presented is None:
        presented = token
    who = auth.identify(presented)
    peer = ws.client.host if ws.client else "?"
    if who is None or who.role != "desk":
        auth.fail(
            401 if who is None else 403,
            "desk stream needs a desk token",
            peer,
            "/desk/stream",
            who.name if who else None,
        )
        await ws.close(code=1008)
        return
    desk_id = who.desk_id
    assert desk_id is not None  # the configuration requires one for role desk
    await ws.accept(subprotocol=STREAM_SUBPROTOCOL if STREAM_SUBPROTOCOL in offered else None)
    queue = hub.subscribe(desk_id, cancel_on_disconnect)
    reader = asyncio.create_task(
        read_desk_messages(ws, who.name, desk_id, peer, queue, service, auditor, admission)
    )
    try:
        while True:
            item = await queue.get()
            if item is GONE:
                return
            if item is CLOSE:
                await ws.close(code=1013)
                return
            if isinstance(item, CloseWith):
                await ws.close(code=item.code, reason=item.reason)
                return
            await ws.send_json(item)
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        last, asked = hub.unsubscribe(desk_id, queue)
        if last and (asked or desk_id in config.otc.cancel_on_disconnect):
            _cancel_on_disconnect(service, desk_id)


def _cancel_on_disconnect(service: NegotiationService, desk_id: str) -> None:
    """The desk's last stream closed: its live quotes leave the market (clients are told, the
    audit trail records each)."""
    try:
        n = service.pull_desk_quotes(desk_id, c.PullCause.DISCONNECT)
    except NegotiationUnavailable as exc:  # shutting down, or the journal failed
        log.warning("desk %s disconnected; its quotes could not be pulled: %s", desk_id, exc)
        return
    log.info("desk %s: last stream closed, %d live quotes pulled", desk_id, n)
