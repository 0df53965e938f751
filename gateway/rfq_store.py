"""Finished RFQs leave the negotiation engine's memory for this table, with their whole history,
so a long trading day neither grows the process nor loses what happened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from gateway.db import utc_column
from gateway.jsonable import event_json, to_jsonable


class RfqHistoryRow(SQLModel, table=True):
    __tablename__ = "rfq_histories"
    rfq_id: str = Field(primary_key=True)
    client_id: str = Field(index=True)
    state: str
    closed_at: datetime = utc_column(nullable=False)
    record: dict = Field(sa_column=Column(JSON, nullable=False))


TABLE = RfqHistoryRow.__table__


def record_of(view, history) -> dict:
    """What GET /rfqs/{id} shows, for a live or an archived RFQ alike."""
    return {
        "rfq": to_jsonable(view.rfq),
        "state": view.state.value,
        "desk_ids": list(view.desk_ids),
        "trade_id": view.trade_id,
        "history": [event_json(e) for e in history],
    }


def save(engine: Engine, view, history, closed_at: datetime) -> None:
    row = {"rfq_id": view.rfq.rfq_id, "client_id": view.rfq.client_id,
           "state": view.state.value, "closed_at": closed_at,
           "record": record_of(view, history)}
    with engine.begin() as conn:
        if conn.execute(select(TABLE.c.rfq_id).where(TABLE.c.rfq_id == row["rfq_id"])).first():
            return
        conn.execute(TABLE.insert(), [row])


def load(engine: Engine, rfq_id: str) -> dict | None:
    with engine.connect() as conn:
        return conn.execute(select(TABLE.c.record).where(TABLE.c.rfq_id == rfq_id)).scalar()
