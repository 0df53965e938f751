"""FIX session events (logons, logouts, refusals, throttling, TLS refusals): the table and the
record the FIX edge hands to :class:`gateway.store.writer.Writer`. And which CompIDs an operator
has disabled (``session_controls``), so that survives a restart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
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


class SessionControlRow(SQLModel, table=True):
    """A CompID whose logons an operator disabled; no row: enabled."""

    __tablename__ = "session_controls"
    comp_id: str = Field(primary_key=True)
    reason: str
    actor: str
    at: datetime = utc_column(nullable=False)


SESSION_CONTROLS = SessionControlRow.__table__


@dataclass(frozen=True, slots=True)
class Disabled:
    reason: str
    actor: str
    at: datetime


class SessionControls:
    """Disabled CompIDs in the database: read once at start, written on every change (rare, by
    an operator, so straight through and not via the batching writer)."""

    def __init__(self, database: Engine) -> None:
        self.database = database

    def load(self) -> dict[str, Disabled]:
        with self.database.connect() as conn:
            rows = conn.execute(select(SESSION_CONTROLS)).mappings().all()
        return {r["comp_id"]: Disabled(r["reason"], r["actor"], r["at"]) for r in rows}

    def disable(self, comp_id: str, disabled: Disabled) -> None:
        with self.database.begin() as conn:
            conn.execute(delete(SESSION_CONTROLS).where(SESSION_CONTROLS.c.comp_id == comp_id))
            conn.execute(
                SESSION_CONTROLS.insert().values(
                    comp_id=comp_id, reason=disabled.reason, actor=disabled.actor, at=disabled.at
                )
            )

    def enable(self, comp_id: str) -> None:
        with self.database.begin() as conn:
            conn.execute(delete(SESSION_CONTROLS).where(SESSION_CONTROLS.c.comp_id == comp_id))
