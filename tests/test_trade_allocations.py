"""Allocations after the trade over a real FIX session: AllocationInstruction (J) answered by
AllocationInstructionAck (P); the split reaches the trade, GET /trades/{id} and clearing (FIXML
Alloc elements, validated against the official schema by the simulated clearinghouse)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from fixspec.messages import Side
from gateway.fix import rfq_client
from otc.negotiation.commands import AcceptQuote
from otc.negotiation.model import AcceptVia
from tests.harness import DESK_B_TOKEN, VIEWER_TOKEN, GatewayProcess, shared_dir
from tests.otc_support import Desk, RfqClient
from tests.test_trade_corrections import ADMIN, all_acked, make_trade, wait_for

SYMBOL = "BTC-27DEC26-100000-C"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    extra = f'[clearing]\nschema_dir = "{shared_dir() / "schemas"}"\n'
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=extra).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def instruction(alloc_id: str, trade_id: str, split: list[tuple[str, str, str | None]]):
    """J for ``trade_id`` (its fill's ExecID) split as (account, quantity, give-up firm)."""
    total = sum(int(q) for _, q, _ in split)
    fields = [
        (70, alloc_id),
        (71, "0"),  # new
        (626, "1"),  # calculated
        (857, "0"),  # no orders listed
        (124, "1"),
        (32, str(total)),
        (17, trade_id),
        (54, "1"),
        (55, SYMBOL),
        (53, str(total)),
        (6, "4250"),
        (75, datetime.now(UTC).strftime("%Y%m%d")),
        (78, str(len(split))),
    ]
    for account, qty, give_up in split:
        fields += [(79, account), (80, qty)]
        if give_up:
            fields += [(539, "1"), (524, give_up), (525, "D"), (538, "14")]
    return fields


def test_allocation_with_give_up_is_acked_shown_and_cleared(gateway, client):
    trade_id = make_trade(gateway, client, "alloc-1")
    wait_for(gateway, trade_id, all_acked, "original not cleared")
    split = [("ACC-A", "6", "GIVEUP-FIRM"), ("ACC-B", "4", None)]
    client.fix.send("J", instruction("al-1", trade_id, split))
    ack = client.next("P")
    assert (ack.get(70), ack.get(87)) == ("al-1", "0"), ack.fields
    ae = client.next("AE")
    assert (ae.get(487), ae.get(572)) == ("2", trade_id)
    assert (ae.get(78), ae.get(79), ae.get(757), ae.get(759)) == ("2", "ACC-A", "GIVEUP-FIRM", "14")
    body = wait_for(gateway, trade_id, all_acked, "allocation not cleared")
    assert body["allocations"] == [
        {"account": "ACC-A", "quantity": "6", "give_up_firm": "GIVEUP-FIRM"},
        {"account": "ACC-B", "quantity": "4", "give_up_firm": None},
    ]
    assert body["version"] == 2 and len(body["clearing"]) == 2


@pytest.mark.parametrize(
    ("split", "code", "why"),
    [
        ([("ACC-A", "6", None), ("ACC-B", "3", None)], "sum", "sum to 9"),
        ([("ACC-A", "10", None), ("ACC-B", "0", None)], "zero", "tag 80 must be positive"),
    ],
)
def test_allocation_not_summing_to_the_trade_is_rejected_with_the_reason(
    gateway, client, split, code, why
):
    trade_id = make_trade(gateway, client, f"alloc-bad-{code}")
    client.fix.send("J", instruction(f"al-bad-{code}", trade_id, split))
    ack = client.next("P")
    assert (ack.get(87), ack.get(88)) == ("1", "1"), ack.fields  # incorrect quantity
    assert why in (ack.get(58) or "")
    body = httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).json()
    assert body["allocations"] == [] and body["version"] == 1


def test_allocating_someone_elses_or_an_unknown_trade_is_rejected(gateway, client):
    client.fix.send("J", instruction("al-unknown", "NO-SUCH-TRADE", [("ACC-A", "10", None)]))
    ack = client.next("P")
    assert ack.get(87) == "1" and "NO-SUCH-TRADE" in (ack.get(58) or "")


def _accept_with_allocations(gw, client: RfqClient, req_id: str, split, qty: str = "10"):
    """RFQ, desk A quotes, the client accepts with a D (40=D) carrying PreAllocGrp."""
    desks = [Desk(gw, t) for t in (VIEWER_TOKEN, DESK_B_TOKEN)]
    try:
        client.rfq(req_id, qty=qty)
        rfq_id = {d.event("RfqToDesk")["rfq"]["rfq_id"] for d in desks}.pop()
        assert desks[0].quote(rfq_id, bid_px="4100", offer_px="4250").status_code == 201
        q = client.quote()
        order = rfq_client.encode_accept_order(
            AcceptQuote(
                client.comp_id,
                q.quote_id,
                f"{req_id}-ord",
                AcceptVia.NEW_ORDER,
                Side.BUY,
                q.quote_hash,
                Decimal(qty),
            ),
            symbol=q.symbol,
            transact_time=datetime.now(UTC),
        )
        fields = [f for f in order.fields if f[0] != 35] + [(78, str(len(split)))]
        for account, alloc_qty, give_up in split:
            fields += [(79, account), (80, alloc_qty)]
            if give_up:
                fields += [(539, "1"), (524, give_up), (525, "D"), (538, "14")]
        client.fix.send("D", fields)
        er = client.next("8")
        if er.get(150) != "F":
            return er, None
        client.next("AE")
        return er, desks[0].event("TradeCaptured")["trade"]["trade_id"]
    finally:
        for d in desks:
            d.close()


def test_pre_allocation_on_the_accepting_order_is_booked_and_cleared(gateway, client):
    split = [("ACC-P1", "7", "GIVEUP-P"), ("ACC-P2", "3", None)]
    er, trade_id = _accept_with_allocations(gateway, client, "prealloc-1", split)
    assert er.get(150) == "F" and trade_id
    body = wait_for(gateway, trade_id, all_acked, "pre-allocated trade not cleared")
    assert body["version"] == 1 and len(body["clearing"]) == 1  # carried by the capture itself
    assert body["allocations"] == [
        {"account": "ACC-P1", "quantity": "7", "give_up_firm": "GIVEUP-P"},
        {"account": "ACC-P2", "quantity": "3", "give_up_firm": None},
    ]


def test_pre_allocation_not_summing_to_the_order_quantity_is_rejected(gateway, client):
    split = [("ACC-P1", "7", None), ("ACC-P2", "2", None)]
    er, trade_id = _accept_with_allocations(gateway, client, "prealloc-bad", split)
    assert trade_id is None
    assert (er.get(150), er.get(39)) == ("8", "8"), er.fields
    assert "sum to 9" in (er.get(58) or "")
