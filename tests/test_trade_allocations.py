"""Allocations after the trade over a real FIX session: AllocationInstruction (J) answered by
AllocationInstructionAck (P); the split reaches the trade, GET /trades/{id} and clearing (FIXML
Alloc elements, validated against the official schema by the simulated clearinghouse)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.harness import GatewayProcess, shared_dir
from tests.otc_support import RfqClient
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
