"""The OTC web API: desks quote and manage RFQs; clients' RFQs can be entered on their behalf;
trades and negotiation histories are read back. Desks see only RFQs routed to them."""


import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from fixspec.messages import Side
from gateway.api import ApiToken, Auth, FixText, Problem
from gateway.jsonable import to_jsonable
from gateway.negotiation import NegotiationService
from gateway.store.rfqs import record_of
from gateway.streams import CLOSE, DeskHub
from otc.negotiation import commands as c
from otc.negotiation import events as ev
from otc.negotiation.errors import http_status
from otc.negotiation.fixcodes import QuoteType
from otc.negotiation.model import Firmness

Decimalish = Annotated[Decimal, Field(allow_inf_nan=False)]
ERRORS = {403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
          422: {"model": Problem}}


MAX_DESK_RFQS = 1_000  # the most RFQs one GET /desk/rfqs returns

class LegPriceIn(BaseModel):
    leg_no: int = Field(ge=1)
    bid_px: Decimalish | None = None
    offer_px: Decimalish | None = None


class QuoteIn(BaseModel):
    """A two-way or one-way quote. ``valid_for_ms`` or ``valid_until`` (UTC) bounds its life."""

    bid_px: Decimalish | None = None
    offer_px: Decimalish | None = None
    bid_size: Decimalish | None = None
    offer_size: Decimalish | None = None
    legs: list[LegPriceIn] = Field(default_factory=list)
    firmness: Firmness = Firmness.FIRM
    valid_until: datetime | None = None
    valid_for_ms: int | None = Field(default=None, ge=1, le=3_600_000)
    desk_quote_ref: FixText | None = Field(default=None, max_length=64)

    def terms(self, now: datetime) -> c.QuoteTerms:
        if self.valid_until is not None:
            until = self.valid_until
            if until.tzinfo is None:
                raise HTTPException(422, "valid_until must carry a UTC offset")
        else:
            until = now + timedelta(milliseconds=self.valid_for_ms or 30_000)
        return c.QuoteTerms(
            valid_until=until.astimezone(UTC),
            bid_px=self.bid_px,
            offer_px=self.offer_px,
            bid_size=self.bid_size,
            offer_size=self.offer_size,
            legs=tuple(c.LegPrice(p.leg_no, p.bid_px, p.offer_px) for p in self.legs),
            firmness=self.firmness,
            desk_quote_ref=self.desk_quote_ref,
        )


class CounterAnswerIn(BaseModel):
    """New terms answer the counter with a fresh quote; no terms decline it."""

    quote: QuoteIn | None = None
    text: FixText | None = Field(default=None, max_length=200)


class LastLookRejectIn(BaseModel):
    text: FixText | None = Field(default=None, max_length=200)


class LegIn(BaseModel):
    symbol: FixText = Field(min_length=1, max_length=64)
    side: Literal["buy", "sell"]
    ratio: Decimalish = Decimal(1)
    hedge: bool = False


class RfqIn(BaseModel):
    """An RFQ entered for a client (voice or chat); validated exactly like a FIX QuoteRequest."""

    client_id: FixText = Field(min_length=1, max_length=64)
    quote_req_id: FixText = Field(min_length=1, max_length=64)
    legs: list[LegIn] = Field(min_length=1, max_length=8)
    quantity: Decimalish
    side: Literal["buy", "sell"] | None = None
    quote_type: Literal["indicative", "tradeable"] = "tradeable"
    expire_at: datetime | None = None


SIDES = {"buy": Side.BUY, "sell": Side.SELL}


def _answer(events: list[ev.Event], want: type, rejections: tuple[type, ...]):
    """The event of type ``want`` in ``events``, or the problem for the rejection found."""
    for event in events:
        if isinstance(event, rejections):
            raise HTTPException(http_status(event.reason), f"{event.reason.value}: {event.text}")
    for event in events:
        if isinstance(event, want):
            return event
    return None


class TradeStore(Protocol):
    """Where captured trades are read back from (the database, so they outlive a restart)."""

    def trades(self, desk_id: str | None, limit: int) -> list[dict]: ...

    def trade(self, trade_id: str) -> dict | None: ...


def add_otc_routes(
    service: NegotiationService,
    hub: DeskHub,
    auth: Auth,
    store: TradeStore,
    archive: Callable[[str], dict | None] = lambda rfq_id: None,
):
    def routes(app: FastAPI, caller) -> None:
        # Routes are async: their work is a short, CPU-bound call into the negotiation service
        # (under its lock), so a hop to a worker thread would cost more than it saves.
        desk = caller("desk")
        reader = caller("admin", "compliance", "desk")

        def now() -> datetime:
            return service.clock()

        def desk_rfq(token: ApiToken, rfq_id: str):
            found = service.desk_rfq(token.desk_id, rfq_id)
            if found is None:
                raise HTTPException(404, f"no RFQ {rfq_id!r}")
            view, mine = found
            if token.role == "desk" and token.desk_id not in view.desk_ids:
                raise HTTPException(403, f"RFQ {rfq_id} is not routed to desk {token.desk_id}")
            return view, mine

        def desk_rfq_out(view, mine) -> dict:
            return {"rfq": to_jsonable(view.rfq), "state": view.state.value,
                    "my_quotes": [to_jsonable(q) for q in mine]}

        def quote_out(event: ev.QuoteAcknowledged) -> dict:
            return to_jsonable(event.sealed) | {"signature": (event.sealed.signature or b"").hex()}

        @app.get("/desk/rfqs", tags=["desk"])
        async def my_rfqs(
            token: Annotated[ApiToken, Depends(desk)],
            state: str | None = None,
            limit: Annotated[int, Query(ge=1, le=MAX_DESK_RFQS)] = 200,
        ) -> list[dict]:
            """Live RFQs routed to the caller's desk (newest first, at most ``limit``),
            optionally by state; finished ones are at GET /rfqs/{id}."""
            return [desk_rfq_out(view, mine)
                    for view, mine in service.desk_rfqs(token.desk_id, state, limit)]

        @app.get("/desk/rfqs/{rfq_id}", tags=["desk"], responses=ERRORS)
        async def my_rfq(rfq_id: str, token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """One RFQ routed to the caller's desk, with the desk's own live quotes only."""
            return desk_rfq_out(*desk_rfq(token, rfq_id))

        @app.post("/desk/rfqs/{rfq_id}/quotes", tags=["desk"], status_code=201, responses=ERRORS)
        async def submit_quote(rfq_id: str, body: QuoteIn,
                         token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Quote an RFQ (two-way or one-way, per-leg prices, firm or last look). Signed."""
            events = service.submit(c.SubmitQuote(token.desk_id, rfq_id, body.terms(now())))
            return quote_out(_answer(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,)))

        @app.put("/desk/quotes/{quote_id}", tags=["desk"], responses=ERRORS)
        async def replace_quote(quote_id: str, body: QuoteIn,
                          token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Replace a live quote; the client sees the new one and the old one is Replaced."""
            events = service.submit(c.ReplaceQuote(token.desk_id, quote_id, body.terms(now())))
            return quote_out(_answer(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,)))

        @app.delete("/desk/quotes/{quote_id}", tags=["desk"], responses=ERRORS)
        async def cancel_quote(quote_id: str, token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Withdraw one live quote (the client gets a QuoteStatusReport)."""
            events = service.submit(c.CancelQuote(token.desk_id, quote_id))
            _answer(events, ev.QuoteStatusChanged, (ev.DeskActionRejected,))
            return {"quote_id": quote_id, "cancelled": True}

        @app.delete("/desk/quotes", tags=["desk"], responses=ERRORS)
        async def cancel_all(token: Annotated[ApiToken, Depends(desk)],
                       rfq_id: str | None = None) -> dict:
            """Withdraw every live quote of the desk (or only on ``rfq_id``)."""
            events = service.submit(c.CancelAllQuotes(token.desk_id, rfq_id))
            _answer(events, ev.QuoteStatusChanged, (ev.DeskActionRejected,))
            n = sum(1 for e in events if isinstance(e, ev.QuoteStatusChanged))
            return {"cancelled": n}

        @app.post("/desk/rfqs/{rfq_id}/pass", tags=["desk"], responses=ERRORS)
        async def desk_pass(rfq_id: str, token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Decline to quote this RFQ."""
            _answer(service.submit(c.DeskPass(token.desk_id, rfq_id)), ev.DeskPassed,
                    (ev.DeskActionRejected,))
            return {"rfq_id": rfq_id, "passed": True}

        @app.post("/desk/counters/{counter_id}/answer", tags=["desk"], responses=ERRORS)
        async def answer_counter(counter_id: str, body: CounterAnswerIn,
                           token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Answer a client's counter with new terms (a new quote) or decline it."""
            terms = body.quote.terms(now()) if body.quote else None
            events = service.submit(c.AnswerCounter(token.desk_id, counter_id, terms, body.text))
            ack = _answer(events, ev.QuoteAcknowledged, (ev.DeskActionRejected,))
            return quote_out(ack) if ack else {"counter_id": counter_id, "declined": True}

        @app.post("/desk/quotes/{quote_id}/last-look/confirm", tags=["desk"], responses=ERRORS)
        async def confirm(quote_id: str, token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Confirm a fill held for last look: the trade is captured."""
            events = service.submit(c.ConfirmLastLook(token.desk_id, quote_id))
            traded = _answer(events, ev.TradeCaptured, (ev.DeskActionRejected,))
            return {"trade": to_jsonable(traded.trade) if traded else None}

        @app.post("/desk/quotes/{quote_id}/last-look/reject", tags=["desk"], responses=ERRORS)
        async def reject(quote_id: str, body: LastLookRejectIn,
                   token: Annotated[ApiToken, Depends(desk)]) -> dict:
            """Reject a fill held for last look; the client is told it did not trade."""
            events = service.submit(c.RejectLastLook(token.desk_id, quote_id, body.text))
            _answer(events, ev.AcceptanceRejected, (ev.DeskActionRejected,))
            return {"quote_id": quote_id, "rejected": True}

        @app.get("/desk/stats/last-look", tags=["desk"])
        async def last_look_stats(token: Annotated[ApiToken, Depends(reader)]) -> dict:
            """Per-desk last-look statistics: holds, hold times, reject and timeout rates.
            A desk sees only its own."""
            stats = service.last_look_stats()
            if token.role == "desk":
                stats = {k: v for k, v in stats.items() if k == token.desk_id}
            return to_jsonable(stats)

        @app.post("/rfqs", tags=["rfqs"], status_code=201, responses=ERRORS)
        async def create_rfq(body: RfqIn,
                       token: Annotated[ApiToken, Depends(caller("admin", "desk"))]) -> dict:
            """Enter an RFQ on a client's behalf; it is routed and validated like a FIX one."""
            cmd = c.SubmitRfq(
                client_id=body.client_id,
                quote_req_id=body.quote_req_id,
                legs=tuple(c.LegRequest(leg.symbol, SIDES[leg.side], leg.ratio, leg.hedge)
                           for leg in body.legs),
                quantity=body.quantity,
                side=SIDES[body.side] if body.side else None,
                quote_type=QuoteType.TRADEABLE if body.quote_type == "tradeable"
                else QuoteType.INDICATIVE,
                multileg=len(body.legs) > 1,
                expire_at=body.expire_at,
            )
            events = service.submit(cmd)
            for event in events:
                if isinstance(event, ev.QuoteRequestRejected):
                    raise HTTPException(http_status(event.reason),
                                        f"{event.reason.value}: {event.text}")
            ack = _answer(events, ev.RfqAcknowledged, ())
            return {"rfq": to_jsonable(ack.rfq), "desk_ids": list(ack.desk_ids)}

        @app.get("/rfqs/{rfq_id}", tags=["rfqs"], responses=ERRORS)
        def get_rfq(rfq_id: str, token: Annotated[ApiToken, Depends(reader)]) -> dict:
            """The RFQ with its whole negotiation history (a desk sees only its own part),
            live or, once finished, from the archive."""
            live = service.rfq_history(rfq_id)
            record = record_of(*live) if live is not None else archive(rfq_id)
            if record is None:
                raise HTTPException(404, f"no RFQ {rfq_id!r}")
            if token.role == "desk":
                if token.desk_id not in record["desk_ids"]:
                    raise HTTPException(
                        403, f"RFQ {rfq_id} is not routed to desk {token.desk_id}")
                record["history"] = [
                    h for h in record["history"]
                    if h.get("desk_id", token.desk_id) == token.desk_id
                    and ev.__dict__[h["event"]].audience is not ev.Audience.CLIENT
                ]
            return record

        @app.get("/trades", tags=["trades"])
        def trades(token: Annotated[ApiToken, Depends(reader)],
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
            """Captured trades, newest first (a desk sees its own)."""
            return store.trades(token.desk_id if token.role == "desk" else None, limit)

        @app.get("/trades/{trade_id}", tags=["trades"], responses=ERRORS)
        def trade(trade_id: str, token: Annotated[ApiToken, Depends(reader)]) -> dict:
            """One captured trade: package and legs, both parties, µs UTC timestamps."""
            found = store.trade(trade_id)
            if found is None or (
                token.role == "desk" and found["desk"]["party_id"] != token.desk_id
            ):
                raise HTTPException(404, f"no trade {trade_id!r}")
            return found

        @app.get("/desks/{desk_id}/public-key", tags=["desk"], responses=ERRORS)
        async def public_key(desk_id: str, token: Annotated[ApiToken, Depends(
                caller("admin", "compliance", "desk", "client-viewer"))]) -> dict:
            """The desk's Ed25519 public key (PEM): anyone may verify its quote signatures."""
            pem = service.public_key_pem(desk_id)
            if pem is None:
                raise HTTPException(404, f"no desk {desk_id!r}")
            return {"desk_id": desk_id, "public_key_pem": pem.decode()}

        @app.websocket("/desk/stream")
        async def stream(ws: WebSocket, token: str | None = None) -> None:
            """Desk events as JSON: new RFQs, counters, last-look requests, done-away, cover,
            withdrawals. Authenticate with ``Authorization: Bearer`` or ``?token=``."""
            header = ws.headers.get("authorization", "")
            presented = header[7:] if header.lower().startswith("bearer ") else token
            who = auth.identify(presented)
            peer = ws.client.host if ws.client else "?"
            if who is None or who.role != "desk":
                auth.fail(401 if who is None else 403, "desk stream needs a desk token", peer,
                          "/desk/stream", who.name if who else None)
                await ws.close(code=1008)
                return
            await ws.accept()
            queue = hub.subscribe(who.desk_id)
            try:
                while True:
                    item = await queue.get()
                    if item is CLOSE:
                        await ws.close(code=1013)
                        return
                    await ws.send_json(item)
            except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
                pass
            finally:
                hub.unsubscribe(who.desk_id, queue)

    return routes
