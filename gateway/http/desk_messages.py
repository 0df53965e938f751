"""What a desk sends on its stream, and the mass quote it and ``POST /desk/quotes/batch`` share.

A desk quoting many RFQs at once sends one message instead of a request per quote::

    {"type": "mass_quote", "id": "b-17", "quotes": [{"rfq_id": "...", "bid_px": "4100", ...}]}

and the stream answers it (in between the events it pushes) with each quote's outcome, in order::

    {"type": "mass_quote_ack", "id": "b-17", "results": [{"rfq_id": "...", "status": "accepted",
     "quote_id": "...", "quote_hash": "...", "signature": "..."}, {"status": "refused", ...}]}

The whole burst is one negotiation command (one lock, one journal record, one audit hand-over);
each quote in it is validated, signed and sent to its client on its own. A message the stream
cannot read is answered ``{"type": "error", "id": ..., "code": ..., "reason": ...}`` and the
connection stays open, up to ``MAX_UNREADABLE_IN_A_ROW`` such messages in a row (then 1008).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from gateway.audit.feed import Auditor
from gateway.http.models import MassQuoteIn
from gateway.http.streams import GONE, CloseWith
from gateway.negotiation import NegotiationService, NegotiationUnavailable
from otc.negotiation import events as ev
from otc.negotiation.commands import MAX_MASS_QUOTES, SubmitQuotes
from otc.negotiation.mass_quote import quote_outcomes

MASS_QUOTE, MASS_QUOTE_ACK, ERROR = "mass_quote", "mass_quote_ack", "error"
MAX_ID_CHARS = 64
TOO_MANY = f"a mass quote carries at most {MAX_MASS_QUOTES} quotes"
# messages that are no desk message at all; this many in a row close the stream (1008)
UNREADABLE = frozenset({"malformed", "unknown_type"})
MAX_UNREADABLE_IN_A_ROW = 100

log = logging.getLogger(__name__)


class MessageRefused(Exception):
    """A desk message answered with an error as a whole: ``code`` says why, for machines."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def mass_quote(
    service: NegotiationService, desk_id: str, body: MassQuoteIn
) -> list[dict[str, Any]]:
    """Submit ``body`` as one command; each quote's outcome, in order. Raises
    :class:`MessageRefused` for more than ``MAX_MASS_QUOTES`` quotes or a time without offset."""
    if len(body.quotes) > MAX_MASS_QUOTES:
        raise MessageRefused("too_many_quotes", TOO_MANY)
    try:
        command = body.command(desk_id, service.clock())
    except HTTPException as exc:  # a valid_until without offset
        raise MessageRefused("invalid", str(exc.detail)) from None
    events = service.submit(command)
    return results(command, events)


def results(command: SubmitQuotes, events: list[ev.Event]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry, answer in zip(command.quotes, quote_outcomes(command, events), strict=True):
        if isinstance(answer, ev.QuoteAcknowledged):
            sealed = answer.sealed
            out.append(
                {
                    "rfq_id": entry.rfq_id,
                    "status": "accepted",
                    "quote_id": sealed.quote.quote_id,
                    "quote_hash": sealed.quote_hash,
                    "signature": sealed.signature.hex() if sealed.signature else None,
                }
            )
        else:
            out.append(
                {
                    "rfq_id": entry.rfq_id,
                    "status": "refused",
                    "code": answer.reason.value,
                    "reason": answer.text,
                }
            )
    return out


def answer(
    text: str | bytes,
    desk_id: str,
    service: NegotiationService,
    refusal: Callable[[], str | None] | None = None,
) -> dict[str, Any]:
    """The stream's answer to one message from the desk: an ack or an error, never an
    exception (a bad message must not close the desk's stream). ``refusal`` is the admission
    gate: while it names a reason, mass quotes are refused with it."""
    msg_id: str | None = None
    try:
        try:
            message = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise MessageRefused("malformed", "a desk message is a JSON object") from None
        if not isinstance(message, dict):
            raise MessageRefused("malformed", "a desk message is a JSON object")
        raw_id = message.get("id")
        if raw_id is not None and (not isinstance(raw_id, str) or len(raw_id) > MAX_ID_CHARS):
            raise MessageRefused("malformed", f"id is a string of at most {MAX_ID_CHARS} chars")
        msg_id = raw_id
        if message.get("type") != MASS_QUOTE:
            raise MessageRefused(
                "unknown_type", f"unknown message type {message.get('type')!r}; expected mass_quote"
            )
        quotes = message.get("quotes")
        if not isinstance(quotes, list):
            raise MessageRefused("malformed", "quotes is a list")
        if len(quotes) > MAX_MASS_QUOTES:
            raise MessageRefused("too_many_quotes", TOO_MANY)
        try:
            body = MassQuoteIn.model_validate({"quotes": quotes})
        except ValidationError as exc:
            raise MessageRefused("invalid", _first_error(exc)) from None
        why = refusal() if refusal is not None else None
        if why is not None:
            raise MessageRefused("unavailable", why)
        try:
            found = mass_quote(service, desk_id, body)
        except NegotiationUnavailable as exc:
            raise MessageRefused("unavailable", str(exc)) from None
    except MessageRefused as exc:
        return {"type": ERROR, "id": msg_id, "code": exc.code, "reason": exc.reason}
    return {"type": MASS_QUOTE_ACK, "id": msg_id, "results": found}


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


async def read_desk_messages(
    ws: WebSocket,
    actor: str,
    desk_id: str,
    peer: str,
    replies: asyncio.Queue,
    service: NegotiationService,
    auditor: Auditor,
    refusal: Callable[[], str | None] | None,
) -> None:
    """Answer each message the desk sends, through ``replies`` (the stream's one sender); when
    the desk closes its side, put ``GONE`` there so the sender stops too. Each message and its
    outcome are audited as the desk's action. A desk that sends ``MAX_UNREADABLE_IN_A_ROW``
    messages in a row that are not desk messages at all (not JSON, unknown type) is cut off with
    1008: a client that floods the stream with garbage gets a decision, not an answer to each."""
    unreadable = 0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            data = text if text is not None else message.get("bytes") or b""
            reply = answer(data, desk_id, service, refusal)
            auditor.append("api.desk_message", actor, _audited(reply, peer))
            await replies.put(reply)
            bad = reply["type"] == ERROR and reply["code"] in UNREADABLE
            unreadable = unreadable + 1 if bad else 0
            if unreadable >= MAX_UNREADABLE_IN_A_ROW:
                log.warning(
                    "desk %s (%s): %d unreadable messages in a row; stream closed",
                    desk_id,
                    peer,
                    unreadable,
                )
                await replies.put(CloseWith(1008, "too many unreadable messages"))
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    await replies.put(GONE)


def _audited(reply: dict[str, Any], peer: str) -> dict[str, Any]:
    """What the audit trail keeps of a desk message: its id and outcome (each quote's own
    acceptance or refusal is in the trail as the negotiation's events)."""
    if reply["type"] == ERROR:
        return {"type": MASS_QUOTE, "id": reply["id"], "error": reply["code"], "peer": peer}
    found = reply["results"]
    accepted = sum(1 for r in found if r["status"] == "accepted")
    return {
        "type": MASS_QUOTE,
        "id": reply["id"],
        "accepted": accepted,
        "refused": len(found) - accepted,
        "peer": peer,
    }
