"""Trade versions: every correction and bust of a captured trade, and its proposals.

The chain of a trade that was never corrected is its ``trades`` row alone (version 1). The first
change writes version 1 here too, so the table then holds the whole chain. Applying a version is
ONE transaction: the version row, the ``trades`` row rewritten to the latest version (what GET
/trades and reconciliation read, with ``version`` and ``status`` in its record) and, for a trade
sent to clearing, the version's clearing message, held behind the trade's earlier ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, and_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from gateway.jsonable import to_jsonable
from gateway.store.clearing import TABLE as CLEARING
from gateway.store.clearing import SqlOutbox
from gateway.store.columns import utc_column
from gateway.store.trades import TRADES, trade_from_record
from otc.clearing import dispatcher as clearing_dispatch
from otc.clearing.outbox import ClearingMessage
from otc.trade_versions import TradeVersion, VersionKind, VersionState, captured


class TradeVersionRow(SQLModel, table=True):
    __tablename__ = "trade_versions"
    trade_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    kind: str
    state: str
    report_id: str
    ref_report_id: str | None = None
    reason: str
    proposed_by: str
    proposed_at: datetime = utc_column(nullable=False)
    approved_by: str | None = None
    applied_at: datetime | None = utc_column(nullable=True)
    record: dict = Field(sa_column=Column(JSON, nullable=False))  # the version's TradeCapture


VERSIONS = TradeVersionRow.__table__


def _row(v: TradeVersion) -> dict[str, Any]:
    return {
        "trade_id": v.trade_id,
        "version": v.version,
        "kind": v.kind.value,
        "state": v.state.value,
        "report_id": v.report_id,
        "ref_report_id": v.ref_report_id,
        "reason": v.reason,
        "proposed_by": v.proposed_by,
        "proposed_at": v.proposed_at,
        "approved_by": v.approved_by,
        "applied_at": v.applied_at,
        "record": to_jsonable(v.trade),
    }


def _version(r: Any) -> TradeVersion:
    return TradeVersion(
        trade_id=r["trade_id"],
        version=r["version"],
        kind=VersionKind(r["kind"]),
        state=VersionState(r["state"]),
        report_id=r["report_id"],
        ref_report_id=r["ref_report_id"],
        trade=trade_from_record(r["record"]),
        reason=r["reason"],
        proposed_by=r["proposed_by"],
        proposed_at=r["proposed_at"],
        approved_by=r["approved_by"],
        applied_at=r["applied_at"],
    )


def _chain(conn: Connection, trade_id: str) -> list[TradeVersion]:
    rows = conn.execute(
        select(VERSIONS).where(VERSIONS.c.trade_id == trade_id).order_by(VERSIONS.c.version)
    ).mappings()
    chain = [_version(r) for r in rows]
    if chain:
        return chain
    found = conn.execute(
        select(TRADES.c.record, TRADES.c.executed_at).where(TRADES.c.trade_id == trade_id)
    ).first()
    if found is None:
        return []
    record = {k: v for k, v in found[0].items() if k not in ("version", "status")}
    return [captured(trade_from_record(record), found[1])]


def chain(database: Engine, trade_id: str) -> list[TradeVersion]:
    """Every version of the trade, oldest first (proposals included); [] for no such trade."""
    with database.connect() as conn:
        return _chain(conn, trade_id)


def _ensure_first(conn: Connection, trade_id: str) -> None:
    """Write version 1 (the capture) before the first change."""
    exists = conn.execute(
        select(VERSIONS.c.version).where(VERSIONS.c.trade_id == trade_id).limit(1)
    ).first()
    if not exists:
        conn.execute(VERSIONS.insert(), [_row(_chain(conn, trade_id)[0])])


def propose(database: Engine, proposal: TradeVersion) -> None:
    """Store a proposal (not yet in effect: the trades row and clearing are untouched)."""
    with database.begin() as conn:
        _ensure_first(conn, proposal.trade_id)
        conn.execute(VERSIONS.insert(), [_row(proposal)])


def withdraw(database: Engine, proposal: TradeVersion) -> bool:
    """Remove a declined proposal (the audit trail keeps it); False if it is no longer one."""
    with database.begin() as conn:
        return (
            conn.execute(
                VERSIONS.delete().where(
                    and_(
                        VERSIONS.c.trade_id == proposal.trade_id,
                        VERSIONS.c.version == proposal.version,
                        VERSIONS.c.state == VersionState.PROPOSED.value,
                    )
                )
            ).rowcount
            == 1
        )


def apply(
    database: Engine, version: TradeVersion, now: datetime, clear: bool
) -> ClearingMessage | None:
    """Put an applied ``version`` into effect in one transaction (see the module docstring).
    Returns its clearing message, or None when the trade was never sent for clearing."""
    trade = version.trade
    with database.begin() as conn:
        _ensure_first(conn, version.trade_id)
        done = conn.execute(
            update(VERSIONS)
            .where(
                and_(
                    VERSIONS.c.trade_id == version.trade_id,
                    VERSIONS.c.version == version.version,
                    VERSIONS.c.state == VersionState.PROPOSED.value,
                )
            )
            .values(**{k: v for k, v in _row(version).items() if k not in ("trade_id", "version")})
        ).rowcount
        if done != 1:
            conn.execute(VERSIONS.insert(), [_row(version)])
        record = to_jsonable(trade) | {
            "version": version.version,
            "status": "busted" if version.kind is VersionKind.BUST else "active",
        }
        conn.execute(
            update(TRADES)
            .where(TRADES.c.trade_id == version.trade_id)
            .values(quantity=trade.quantity, price=trade.price, record=record)
        )
        sent = conn.execute(
            select(CLEARING.c.key).where(CLEARING.c.trade_id == version.trade_id).limit(1)
        ).first()
        if not clear or sent is None:
            return None
        return clearing_dispatch.enqueue(
            SqlOutbox(database, conn),
            trade,
            now,
            version.version,
            cancel=version.kind is VersionKind.BUST,
            held=True,
        )
