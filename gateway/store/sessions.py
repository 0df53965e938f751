"""FIX session events (logons, logouts, refusals, throttling, TLS refusals): the table and the
record the FIX edge hands to :class:`gateway.store.writer.Writer`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Field, SQLModel

from gateway.store.columns import utc_column


class SessionEventRow(SQLModel, table=True):
    __tablename__ = "session_events"
    id: int | None = Field(default=None, primary_key=True)
    comp_id: str = Field(index=True)
    event: str
    peer: str | None = None
    text: str | None = None
    at: datetime = utc_column(nullable=False)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    comp_id: str
    event: str
    peer: str | None
    text: str | None
    at: datetime


SESSION_EVENTS = SessionEventRow.__table__
# The writer binds plain tuples in this column order (the id is the database's)
SESSION_EVENT_COLUMNS = ("comp_id", "event", "peer", "text", "at")
assert set(SESSION_EVENT_COLUMNS + ("id",)) == {c.name for c in SESSION_EVENTS.columns}
