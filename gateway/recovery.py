"""Start-up recovery: executions the database writer had not committed when the process died.

The writer commits in batches on its own thread, so a SIGKILL can lose the last batch although
the client already holds those ExecutionReports. It commits them in the order they were sent, so
only the store's tail is compared with the database. QuickFIX persists every message before sending
it (``PersistMessages=Y``), so its FileStore is the record of what clients were told. Before the
acceptor starts, every ExecutionReport in the store whose ExecID the database lacks is inserted,
and each order it names is brought up to the newest such report (an order that finished in
what was lost adds its fills to the client's finished exposure). The order core is restored from
the database afterwards, so a recovered resting order is live again and ids continue after the
highest one a client has seen.

Store format (QuickFIX 1.16 ``FileStore.cpp``): ``<Begin>-<Sender>-<Target>.header`` holds
``"seq,offset,size "`` triples, ``.body`` the sent messages concatenated. ``set`` writes the
triple, then the message, and flushes both (no fsync: this covers a process crash, not a power
loss). A triple whose message never reached the body file points past its end and is skipped; a
sequence number stored twice keeps its later entry, as ``FileStore::populateCache`` does.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import InvalidOperation
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from fixspec import messages as m
from fixspec.codec import DecodeError, RawMessage, decode_outbound
from fixspec.instruments import InstrumentError, parse_symbol
from gateway.store.orders import (
    QUERY_CHUNK,
    add_finished_exposure,
    execution_row,
    insert_executions,
    insert_used_clordids,
    known_exec_ids,
    put_order,
    stored_order,
)
from otc.orders import ClOrdIdUsed, Order, TradingDay, utc_day

log = logging.getLogger("fixbridge.recovery")

HEADER_ENTRY = re.compile(rb"(\d+),(-?\d+),(\d+) ")
EXECUTION_REPORT = b"\x0135=8\x01"
EXEC_ID = re.compile(rb"\x0117=([^\x01]*)\x01")
# a drop copy's copy (CopyMsgIndicator=Y) of a report whose original is in the client's store
COPY = b"\x01797=Y\x01"
LOGGED_ORDERS = 20
# ExecIDs the order core mints ("OE17"); the adapter's decode rejects ("REJ-<ClOrdID>") are
# never persisted by the writer, so recovery leaves them out too.
CORE_EXEC_ID = re.compile(r"[A-Za-z]*E\d+")
# ERs for a cancel or replace still waiting on the venue name the request's ClOrdID in 11 and
# the order's own in 41; the order keeps its ClOrdID until the venue answers.
PENDING = frozenset({m.ExecType.PENDING_CANCEL, m.ExecType.PENDING_REPLACE})


@dataclass(frozen=True, slots=True)
class StoredReport:
    """An ExecutionReport the acceptor sent, as read back from its store."""

    owner: str  # the client's CompID: TargetCompID(56) of the message we sent
    store_seq: int
    report: m.ExecutionReport
    time_in_force: m.TimeInForce | None


@dataclass(slots=True)
class Recovery:
    """What one recovery pass found and wrote."""

    stores: int = 0
    messages: int = 0
    reports: int = 0
    executions: int = 0
    orders: int = 0
    torn: int = 0  # header entries pointing past the end of the body file
    unreadable: int = 0  # stored 35=8 messages that did not decode
    order_ids: list[str] = field(default_factory=list)


def store_entries(header: Path, body_size: int) -> tuple[dict[int, tuple[int, int]], int]:
    """``seq -> (offset, size)`` of one session store, and how many entries were torn."""
    entries: dict[int, tuple[int, int]] = {}
    torn = 0
    for match in HEADER_ENTRY.finditer(header.read_bytes()):
        seq, offset, size = (int(g) for g in match.groups())
        if offset < 0 or offset + size > body_size:
            torn += 1
            continue
        entries[seq] = (offset, size)
    return entries, torn


def read_store(header: Path, body: Path) -> tuple[dict[int, bytes], int]:
    """Every message of one session store by sequence number, and how many entries were torn."""
    data = body.read_bytes() if body.exists() else b""
    entries, torn = store_entries(header, len(data))
    return {seq: data[o : o + n] for seq, (o, n) in entries.items()}, torn


@contextlib.contextmanager
def _mapped(body: Path) -> Iterator[bytes | mmap.mmap]:
    """The body file without reading it into memory (stores of long-lived sessions grow)."""
    size = body.stat().st_size if body.exists() else 0
    if size == 0:
        yield b""
        return
    with body.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def _stored_exec_ids(header: Path, data: bytes | mmap.mmap, summary: Recovery) -> list[tuple]:
    """(ExecID, seq, offset, size) of the order core's ExecutionReports in one store, found
    with byte searches only: on an ordinary start every one of them is in the database."""
    entries, torn = store_entries(header, len(data))
    summary.stores += 1
    summary.messages += len(entries)
    summary.torn += torn
    found = []
    for seq in sorted(entries):
        offset, size = entries[seq]
        wire = data[offset : offset + size]
        if EXECUTION_REPORT not in wire or COPY in wire:
            continue
        match = EXEC_ID.search(wire)
        exec_id = match.group(1).decode("ascii", "replace") if match else ""
        if CORE_EXEC_ID.fullmatch(exec_id):
            found.append((exec_id, seq, offset, size))
    summary.reports += len(found)
    return found


def _report(seq: int, wire: bytes) -> StoredReport | None:
    try:
        raw = RawMessage.parse(wire.decode("utf-8", "replace"))
        owner = raw.get(56)
        tif = raw.get(59)
        report = decode_outbound(raw)
        if not owner or not isinstance(report, m.ExecutionReport) or not report.exec_id:
            return None
        return StoredReport(owner, seq, report, m.TimeInForce(tif) if tif else None)
    except (ValueError, KeyError, TypeError, DecodeError, InvalidOperation):
        return None


def recover(database: Engine, store_dir: Path, trading_day: TradingDay = utc_day) -> Recovery:
    """Write to the database every stored ExecutionReport it lacks, and the orders they name.

    Idempotent: a second pass finds every ExecID present and writes nothing. An order row is
    only moved forward: a report older than the row (by TransactTime, which the core sets to the
    order's update time) leaves it alone. The ClOrdIDs the reports name are recorded as used on
    their ``trading_day``. Each session store is one transaction.
    """
    summary = Recovery()
    if not store_dir.is_dir():
        return summary
    for header in sorted(store_dir.glob("*.header")):
        with _mapped(header.with_suffix(".body")) as data, database.begin() as conn:
            _recover_store(conn, header, data, summary, trading_day)
    if summary.executions:
        shown = ", ".join(summary.order_ids[:LOGGED_ORDERS])
        more = len(summary.order_ids) - LOGGED_ORDERS
        log.warning(
            "recovered from the FIX store: %d executions and %d orders the database had not "
            "committed (orders %s%s)",
            summary.executions,
            summary.orders,
            shown or "none",
            f" and {more} more" if more > 0 else "",
        )
    elif summary.reports:
        log.info("FIX store checked: all %d executions already in the database", summary.reports)
    return summary


def _recover_store(
    conn: Connection,
    header: Path,
    data: bytes | mmap.mmap,
    summary: Recovery,
    trading_day: TradingDay,
) -> None:
    stored = _stored_exec_ids(header, data, summary)
    if not stored:
        return
    # The writer commits records in the order it was handed them, which is the order they were
    # sent: once a run of stored reports is all in the database, every earlier one is too. So
    # only the tail is looked up (start-up does not grow with the day's messages).
    known: set[str] = set()
    start = len(stored)
    while start > 0:
        chunk = {exec_id for exec_id, *_ in stored[max(0, start - QUERY_CHUNK) : start]}
        found = known_exec_ids(conn, chunk)
        known |= found
        start = max(0, start - QUERY_CHUNK)
        if found == chunk:
            break
    missing: dict[str, StoredReport] = {}
    for exec_id, seq, offset, size in stored[start:]:
        if exec_id in known or exec_id in missing:
            continue
        found = _report(seq, bytes(data[offset : offset + size]))
        if found is None:
            summary.unreadable += 1
            log.warning("%s: message %d is an unreadable ExecutionReport", header.name, seq)
        else:
            missing[exec_id] = found
    if not missing:
        return
    insert_executions(conn, [execution_row(s.owner, s.report) for s in missing.values()])
    used = {
        ClOrdIdUsed(s.owner, cid, trading_day(s.owner, s.report.transact_time))
        for s in missing.values()
        for cid in (s.report.cl_ord_id, s.report.orig_cl_ord_id)
        if cid
    }
    insert_used_clordids(conn, sorted(used, key=lambda u: (u.owner, u.cl_ord_id)))
    summary.executions += len(missing)
    first_seen = _first_seen(missing.values())  # an order without a row has all its ERs here
    for found in _latest_per_order(missing.values()):
        if _apply_order(conn, found, first_seen[found.report.order_id]):
            summary.order_ids.append(found.report.order_id)
            summary.orders += 1


def _exec_number(exec_id: str) -> int:
    return int(exec_id.rsplit("E", 1)[-1])


def _first_seen(reports: Iterable[StoredReport]) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for stored in reports:
        order_id, at = stored.report.order_id, stored.report.transact_time
        if order_id not in first or at < first[order_id]:
            first[order_id] = at
    return first


def _latest_per_order(reports: Iterable[StoredReport]) -> list[StoredReport]:
    """The newest state-changing report of each order (ExecIDs are issued in order)."""
    latest: dict[str, StoredReport] = {}
    for stored in reports:
        er = stored.report
        if er.order_id == "NONE" or er.exec_type is m.ExecType.ORDER_STATUS:
            continue  # refused before an order existed, or a status answer that changes nothing
        held = latest.get(er.order_id)
        if held is None or _exec_number(er.exec_id) > _exec_number(held.report.exec_id):
            latest[er.order_id] = stored
    return sorted(latest.values(), key=lambda s: _exec_number(s.report.exec_id))


def _apply_order(conn: Connection, stored: StoredReport, created_at: datetime) -> bool:
    er = stored.report
    before = stored_order(conn, er.order_id)
    if before is not None and before.updated_at > er.transact_time:
        return False  # the database already holds a later state of this order
    try:
        order = _order_from_report(stored, before, created_at)
    except (InstrumentError, ValueError) as exc:
        log.error("cannot recover order %s from ExecID %s: %s", er.order_id, er.exec_id, exc)
        return False
    put_order(conn, order, exists=before is not None)
    if not order.is_open and (before is None or before.is_open) and order.cum_qty:
        # it finished in what was lost: its fills join the client's finished exposure
        notional = abs(order.cum_qty * order.avg_px)
        add_finished_exposure(conn, order.owner, notional, er.transact_time)
    return True


def _order_from_report(stored: StoredReport, before: Order | None, created_at: datetime) -> Order:
    er = stored.report
    cl_ord_id, orig_cl_ord_id = er.cl_ord_id, er.orig_cl_ord_id
    if er.exec_type in PENDING:
        cl_ord_id = er.orig_cl_ord_id or er.cl_ord_id
        orig_cl_ord_id = before.orig_cl_ord_id if before else None
    tif = stored.time_in_force or (before.time_in_force if before else m.TimeInForce.DAY)
    return Order(
        order_id=er.order_id,
        owner=stored.owner,
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig_cl_ord_id,
        instrument=parse_symbol(er.symbol),
        side=er.side,
        ord_type=er.ord_type or (before.ord_type if before else m.OrdType.LIMIT),
        quantity=er.order_qty,
        price=er.price,
        time_in_force=tif,
        status=er.ord_status,
        cum_qty=er.cum_qty,
        avg_px=er.avg_px,
        created_at=before.created_at if before else created_at,
        updated_at=er.transact_time,
        account=before.account if before else None,
        text=er.text if er.text is not None else (before.text if before else None),
    )
