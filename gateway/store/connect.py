"""The database: connecting (SQLite in the data directory, or PostgreSQL) and migrating the
schema. Every table is registered here, so whoever connects gets the whole schema."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, create_engine

# every table module, imported for its tables: create_all makes what is registered
from gateway.store import clearing, orders, rfqs, sessions, trade_versions, trades  # noqa: F401
from gateway.store.columns import utc_column

log = logging.getLogger("gateway.db")
SCHEMA_VERSION = 2


class SchemaVersionRow(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime = utc_column(nullable=False)


# Each migration takes the schema from version N-1 to N. Version 1 is the initial schema.
MIGRATIONS: dict[int, list[str]] = {
    1: [],
    # 2: start-up reads open orders only, finished ones are found by ClOrdID (the clordids
    # table itself is made by create_all)
    2: [
        "CREATE INDEX IF NOT EXISTS ix_orders_status ON orders (status)",
        "CREATE INDEX IF NOT EXISTS ix_orders_created_at ON orders (created_at)",
        "CREATE INDEX IF NOT EXISTS ix_orders_orig_cl_ord_id ON orders (orig_cl_ord_id)",
    ],
}


def connect(url: str) -> Engine:
    """The database (a SQLAlchemy ``Engine``) with the schema created or migrated to
    :data:`SCHEMA_VERSION`."""
    if url.startswith("sqlite"):
        database = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(database, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        database = create_engine(url, pool_pre_ping=True)
    migrate(database)
    return database


def migrate(database: Engine) -> int:
    SQLModel.metadata.create_all(database)
    with database.begin() as conn:
        current = conn.execute(select(func.max(SchemaVersionRow.version))).scalar() or 0
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:  # idempotent: create_all may have done it
                conn.execute(text(statement))
        if current < SCHEMA_VERSION:  # one row: the version the schema is now at
            conn.execute(
                SchemaVersionRow.__table__.insert().values(
                    version=SCHEMA_VERSION, applied_at=datetime.now(UTC)
                )
            )
            log.info("database schema migrated from version %d to %d", current, SCHEMA_VERSION)
    return SCHEMA_VERSION
