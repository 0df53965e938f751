"""The desk stream's hand-over of a batch of events, and the shared description of an event."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.jsonable import event_json
from otc.negotiation import events as ev
from otc.negotiation.states import RfqState

AT = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


def withdrawn(desk: str, n: int) -> ev.RfqWithdrawn:
    return ev.RfqWithdrawn(desk, f"RFQ-{n}", RfqState.EXPIRED, "expired", AT)


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
