"""Finished RFQs leave the negotiation engine's memory for this table, with their whole history,
so a long trading day neither grows the process nor loses what happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from fixspec.messages import utcnow
from gateway.jsonable import event_json, to_jsonable
from gateway.store.columns import utc_column
from otc.negotiation.engine import RfqView
from otc.negotiation.events import Event


class RfqHistoryRow(SQLModel, table=True):
    __tablename__ = "rfq_histories"
    rfq_id: str = Field(primary_key=True)
    client_id: str = Field(index=True)
    state: str
    closed_at: datetime = utc_column(nullable=False)
    record: dict = Field(sa_column=Column(JSON, nullable=False))


TABLE = RfqHistoryRow.__table__


def record_of(view: RfqView, history: tuple[Event, ...]) -> dict[str, Any]:
    """What GET /rfqs/{id} shows, for a live or an archived RFQ alike."""
    return {
        "rfq": to_jsonable(view.rfq),
        "state": view.state.value,
        "desk_ids": list(view.desk_ids),
        "trade_id": view.trade_id,
        "history": [event_json(e) for e in history],
    }


class RfqArchive:
    """Where finished RFQs go (``NegotiationService(archive=...)``) and are read back from."""

    def __init__(self, database: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock

    def save(self, view: RfqView, history: tuple[Event, ...]) -> None:
        """Store a finished RFQ once; a second save of the same RFQ changes nothing."""
        row = {
            "rfq_id": view.rfq.rfq_id,
            "client_id": view.rfq.client_id,
            "state": view.state.value,
            "closed_at": self.clock(),
            "record": record_of(view, history),
        }
        with self.database.begin() as conn:
            if conn.execute(select(TABLE.c.rfq_id).where(TABLE.c.rfq_id == row["rfq_id"])).first():
                return
            conn.execute(TABLE.insert(), [row])

    def load(self, rfq_id: str) -> dict[str, Any] | None:
        with self.database.connect() as conn:
            return conn.execute(select(TABLE.c.record).where(TABLE.c.rfq_id == rfq_id)).scalar()
