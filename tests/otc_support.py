"""Helpers for end-to-end OTC tests: a FIX client that speaks RFQs and desks over HTTP + WS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from websockets.sync.client import connect as ws_connect

from fixspec.codec import RawMessage
from fixspec.messages import Side
from gateway.fix import rfq_client
from load.fixclient import FixClient
from otc.negotiation.commands import (
    AcceptQuote,
    ClientPass,
    CounterQuote,
    LegRequest,
    SubmitRfq,
)
from otc.negotiation.model import AcceptVia

D = Decimal


class RfqClient:
    """A FIX client session that asks for quotes and trades on them."""

    def __init__(self, gw, comp_id: str = "CLIENT2") -> None:
        self.comp_id = comp_id
        self.fix = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
        assert self.fix.logon().msg_type == "A"

    def send(self, raw: RawMessage) -> None:
        self.fix.send(raw.msg_type, [f for f in raw.fields if f[0] != 35])

    def rfq(
        self,
        req_id: str,
        legs: list[tuple[str, Side]] | None = None,
        qty="10",
        side: Side | None = None,
        expire_at: datetime | None = None,
        ratios: list[str] | None = None,
        label: str | None = None,
    ) -> None:
        legs = legs or [("BTC-27DEC26-100000-C", Side.BUY)]
        requests = tuple(
            LegRequest(sym, s, D(ratios[i]) if ratios else D(1)) for i, (sym, s) in enumerate(legs)
        )
        self.send(
            rfq_client.encode_client_rfq(
                SubmitRfq(
                    self.comp_id,
                    req_id,
                    requests,
                    D(qty),
                    side=side,
                    multileg=len(legs) > 1,
                    expire_at=expire_at,
                    label=label,
                )
            )
        )

    def next(self, *types: str, timeout: float = 10) -> RawMessage:
        """The next message of one of ``types`` (heartbeats skipped; others fail)."""
        while True:
            msg = self.fix.recv(timeout)
            if msg.msg_type == "0":
                continue
            assert msg.msg_type in types, f"expected {types}, got {msg.fields}"
            return msg

    def quote(self, timeout: float = 10) -> rfq_client.QuoteView:
        return rfq_client.decode_quote(self.next("S", timeout=timeout))

    def hit(
        self,
        q: rfq_client.QuoteView,
        side: Side,
        resp_id: str,
        cl_ord_id: str | None = None,
        qty: str | None = None,
    ) -> None:
        self.send(
            rfq_client.encode_quote_response(
                AcceptQuote(
                    self.comp_id,
                    q.quote_id,
                    resp_id,
                    AcceptVia.QUOTE_RESPONSE,
                    side,
                    q.quote_hash,
                    D(qty) if qty else None,
                ),
                symbol=q.symbol,
                cl_ord_id=cl_ord_id or f"cl-{resp_id}",
            )
        )

    def order_on(self, q: rfq_client.QuoteView, side: Side, cl_ord_id: str) -> None:
        self.send(
            rfq_client.encode_accept_order(
                AcceptQuote(
                    self.comp_id, q.quote_id, cl_ord_id, AcceptVia.NEW_ORDER, side, q.quote_hash
                ),
                symbol=q.symbol,
                transact_time=datetime.now(UTC),
            )
        )

    def counter(self, q: rfq_client.QuoteView, side: Side, price: str, resp_id: str) -> None:
        self.send(
            rfq_client.encode_quote_response(
                CounterQuote(self.comp_id, "?", q.quote_id, resp_id, side, D(price)),
                symbol=q.symbol,
            )
        )

    def pass_on(self, q: rfq_client.QuoteView, resp_id: str) -> None:
        self.send(
            rfq_client.encode_quote_response(
                ClientPass(self.comp_id, "?", resp_id, q.quote_id), symbol=q.symbol
            )
        )

    def close(self) -> None:
        self.fix.logout()


class Desk:
    """A desk user: HTTP with its bearer token and its WebSocket event stream."""

    def __init__(self, gw, token: str) -> None:
        self.gw = gw
        self.headers = {"Authorization": f"Bearer {token}"}
        self._connection = ws_connect(
            f"ws://127.0.0.1:{gw.http_port}/desk/stream", additional_headers=self.headers
        )
        self.ws = self._connection.__enter__()

    def event(self, name: str, timeout: float = 10) -> dict:
        """The next event called ``name`` (earlier other events are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {name} event"
            ev = json.loads(self.ws.recv(timeout=left))
            if ev["event"] == name:
                return ev

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return httpx.post(self.gw.http + path, json=body or {}, headers=self.headers)

    def quote(self, rfq_id: str, **terms) -> httpx.Response:
        terms.setdefault("valid_for_ms", 60_000)
        return self.post(
            f"/desk/rfqs/{rfq_id}/quotes",
            {
                k: str(v) if isinstance(v, Decimal | int | float) and k != "valid_for_ms" else v
                for k, v in terms.items()
            },
        )

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
