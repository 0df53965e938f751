"""The desk stream's hand-over of a batch of events, and the shared description of an event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.http import streams
from gateway.http.streams import CLOSE, DeskHub
from gateway.jsonable import event_json
from otc.negotiation import events as ev
from otc.negotiation.states import RfqState

AT = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


def withdrawn(desk: str, n: int) -> ev.RfqWithdrawn:
    return ev.RfqWithdrawn(desk, f"RFQ-{n}", RfqState.EXPIRED, "expired", AT)


async def _drain(queue: asyncio.Queue) -> list:
    await asyncio.sleep(0)  # the hub's hand-over runs on this loop
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_a_batch_reaches_each_subscriber_whole_and_in_order_and_only_its_desk():
    hub = DeskHub()

    async def run() -> tuple[list, list]:
        a = hub.subscribe("DESK_A")
        b = hub.subscribe("DESK_B")
        batch: list[ev.Event] = [withdrawn("DESK_A" if n % 3 else "DESK_B", n) for n in range(30)]
        await asyncio.to_thread(hub.sink, batch)  # from another thread, as the negotiation does
        return await _drain(a), await _drain(b)

    got_a, got_b = asyncio.run(run())
    assert [p["rfq_id"] for p in got_a] == [f"RFQ-{n}" for n in range(30) if n % 3]
    assert [p["rfq_id"] for p in got_b] == [f"RFQ-{n}" for n in range(30) if not n % 3]
    assert {p["event"] for p in got_a + got_b} == {"RfqWithdrawn"}


def test_a_subscriber_overflowing_in_a_batch_is_closed_and_gets_nothing_after(monkeypatch):
    monkeypatch.setattr(streams, "MAX_BACKLOG", 5)
    hub = DeskHub()

    async def run() -> list:
        queue = hub.subscribe("DESK_A")
        await asyncio.to_thread(hub.sink, [withdrawn("DESK_A", n) for n in range(8)])
        return await _drain(queue)

    assert asyncio.run(run()) == [CLOSE]


def test_an_events_description_is_shared_but_each_caller_owns_its_copy():
    event = withdrawn("DESK_A", 1)
    first = event_json(event)
    first["rfq_id_extra"] = "changed by one caller"
    second = event_json(event)
    assert "rfq_id_extra" not in second
    assert second == {
        "event": "RfqWithdrawn",
        "desk_id": "DESK_A",
        "rfq_id": "RFQ-1",
        "state": "Expired",
        "reason": "expired",
        "at": "2026-12-07T05:30:00.000000Z",
    }
    assert event_json(withdrawn("DESK_A", 2))["rfq_id"] == "RFQ-2"  # another event, its own text
