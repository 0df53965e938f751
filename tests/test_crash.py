"""Crash safety: what a client was told survives a SIGKILL.

The first tests drive the real order core and write what it sends into a real QuickFIX FileStore
(QuickFIX's own ``FileStoreFactory``, so the format is the acceptor's), commit only part of it to
the database, and check that :func:`gateway.recovery.recover` brings the database to the state
every ExecutionReport reported. The last test SIGKILLs a running gateway under mixed order load
while the database cannot commit, restarts it, and checks orders, sequence numbers and the audit
log.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import quickfix as fix
from sqlalchemy import select

from fixspec import codec
from fixspec import messages as m
from fixspec.codec import RawMessage
from fixspec.instruments import parse_symbol
from gateway.fix.convert import OutboundBuilder
from gateway.fix.dictionary import write_dictionary
from gateway.recovery import read_store, recover
from gateway.store.connect import connect
from gateway.store.orders import (
    ExecutionRow,
    OrderRow,
    finished_exposure,
    last_exec_seq,
    load_orders,
    order_row,
)
from gateway.store.writer import Writer
from load.fixclient import FixClient, fix_time
from otc.orders import Order, OrderManager, OrderUpdated, Send
from otc.venue import SimulatedVenue
from tests.harness import ROOT, GatewayProcess, order_fields

GATEWAY = "FIXBRIDGE"
D = Decimal
BUY, SELL = m.Side.BUY, m.Side.SELL
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


# --- recovery against a real QuickFIX FileStore -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=137)
        return self.now


class SessionStore:
    """One session's QuickFIX FileStore, filled the way the acceptor fills it: whole messages."""

    def __init__(self, directory: Path, owner: str) -> None:
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        defaults.setString("ConnectionType", "acceptor")
        defaults.setString("FileStorePath", str(directory))
        settings.set(defaults)
        self.session_id = fix.SessionID("FIX.4.4", GATEWAY, owner)
        settings.set(self.session_id, fix.Dictionary())
        self.factory = fix.FileStoreFactory(settings)
        self.store = self.factory.create(fix.UtcTimeStamp.now(), self.session_id)
        self.owner = owner
        self.seq = 0
        dictionary = write_dictionary(directory / "dictionary")
        self.build = OutboundBuilder(fix.DataDictionary(str(dictionary)))
        self.header = directory / f"FIX.4.4-{GATEWAY}-{owner}.header"
        self.body = directory / f"FIX.4.4-{GATEWAY}-{owner}.body"

    def send(self, msg: m.OutboundMessage, extra: tuple[tuple[int, str], ...] = ()) -> None:
        msg_type, fields = codec.encode(msg)
        message = self.build(msg_type, [*fields, *extra])
        self.seq += 1
        header = message.getHeader()
        for tag, value in (
            (8, "FIX.4.4"),
            (49, GATEWAY),
            (56, self.owner),
            (34, str(self.seq)),
            (52, "20261124-09:00:00.000000"),
        ):
            header.setField(tag, value)
        self.store.set(self.seq, message.toString())


def new(
    cl: str, side: m.Side, qty: str, price: str | None, tif: m.TimeInForce = m.TimeInForce.DAY
) -> m.NewOrder:
    return m.NewOrder(
        cl_ord_id=cl,
        instrument=parse_symbol("BTC-PERP"),
        side=side,
        quantity=D(qty),
        ord_type=m.OrdType.LIMIT if price else m.OrdType.MARKET,
        price=D(price) if price else None,
        time_in_force=tif,
    )


def amend(cl: str, orig: str, qty: str, price: str) -> m.ReplaceRequest:
    return m.ReplaceRequest(
        cl, orig, parse_symbol("BTC-PERP"), BUY, D(qty), m.OrdType.LIMIT, D(price)
    )


# (owner, inbound message): resting, filled, partly filled, cancelled, replaced, crossed
# between clients, a duplicate ClOrdID (an ER with OrderID NONE) and a status request for an
# unknown order (ExecType I).
SCRIPT: list[tuple[str, m.InboundOrderMessage]] = [
    ("CLIENT-1", new("r1", BUY, "3", "60000")),
    ("CLIENT2", new("f1", BUY, "5", "66000")),
    ("CLIENT-1", new("p1", BUY, "15", "66000")),
    ("CLIENT-1", m.CancelRequest("c1", "r1", BUY, "BTC-PERP")),
    ("CLIENT2", new("s1", SELL, "2", "70000")),
    ("CLIENT-1", amend("a1", "p1", "25", "64000")),
    ("CLIENT2", new("x1", SELL, "4", "63000")),
    ("CLIENT2", new("f1", BUY, "1", "66000")),
    ("CLIENT-1", m.StatusRequest("nope", BUY, "BTC-PERP", order_id="O1")),
    ("CLIENT-1", new("r2", SELL, "1", "99000")),
]


@dataclass
class Run:
    core: OrderManager
    batches: list[list]  # the core events of each inbound message
    stores: dict[str, SessionStore] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Order]:
        """Every order's last snapshot (finished ones have left the core's memory)."""
        return {
            e.order.order_id: e.order
            for events in self.batches
            for e in events
            if isinstance(e, OrderUpdated)
        }


def play(store_dir: Path) -> Run:
    core = OrderManager(SimulatedVenue({"BTC-PERP": D(65000)}, D(10)), clock=Clock())
    stores = {o: SessionStore(store_dir, o) for o in ("CLIENT-1", "CLIENT2")}
    batches = []
    for owner, msg in SCRIPT:
        events = core.handle(owner, msg)
        batches.append(events)
        for event in events:
            if isinstance(event, Send):
                stores[event.to].send(event.message)
    return Run(core, batches, stores)


def persist(database, batches: list[list]) -> None:
    """What the gateway's writer commits for these batches."""
    writer = Writer(database)
    for events in batches:
        for event in events:
            if isinstance(event, OrderUpdated):
                writer.order(event.order)
            elif isinstance(event, Send) and isinstance(event.message, m.ExecutionReport):
                writer.execution(event.to, event.message)
    writer.close()


def orders_in(database) -> dict[str, dict]:
    with database.connect() as conn:
        rows = conn.execute(select(OrderRow.__table__)).mappings().all()
    return {r["order_id"]: dict(r) for r in rows}


def exec_ids_in(database) -> set[str]:
    with database.connect() as conn:
        return set(conn.execute(select(ExecutionRow.__table__.c.exec_id)).scalars())


def reports(run: Run) -> list[m.ExecutionReport]:
    return [
        e.message
        for events in run.batches
        for e in events
        if isinstance(e, Send) and isinstance(e.message, m.ExecutionReport)
    ]


def expected_row(order) -> dict:
    row = order_row(order)
    row.pop("created_at")
    return row


def test_recovery_completes_the_database_from_the_store(tmp_path):
    run = play(tmp_path / "store")
    database = connect(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    persist(database, run.batches[:3])  # the writer's later batches died with the process

    done = recover(database, tmp_path / "store")

    assert done.stores == 2 and done.torn == 0 and done.unreadable == 0
    assert exec_ids_in(database) == {er.exec_id for er in reports(run)}
    rows = orders_in(database)
    assert set(rows) == set(run.final)
    for order_id, order in run.final.items():
        row = rows[order_id]
        assert row["created_at"] <= row["updated_at"]
        assert {k: v for k, v in row.items() if k != "created_at"} == expected_row(order)
    changed_later = {
        e.order.order_id
        for events in run.batches[3:]
        for e in events
        if isinstance(e, OrderUpdated)
    }
    assert sorted(done.order_ids) == sorted(changed_later) and len(changed_later) >= 4
    # fills of orders that finished in what was lost count towards their client's exposure
    persisted = {
        e.order.order_id: e.order
        for events in run.batches[:3]
        for e in events
        if isinstance(e, OrderUpdated)
    }
    lost_fills: dict[str, Decimal] = {}
    for order_id, order in run.final.items():
        kept = persisted.get(order_id)
        if not order.is_open and (kept is None or kept.is_open) and order.cum_qty:
            notional = order.cum_qty * order.avg_px
            lost_fills[order.owner] = lost_fills.get(order.owner, D(0)) + notional
    assert lost_fills and finished_exposure(database) == lost_fills
    # the core restored from the recovered database continues where the clients left off
    core = OrderManager(SimulatedVenue({"BTC-PERP": D(65000)}, D(10)))
    core.restore(load_orders(database), [])
    core.set_exec_seq(last_exec_seq(database))
    assert set(core.orders) == {o.order_id for o in run.final.values() if o.is_open}
    after = core.handle("CLIENT2", new("later", BUY, "1", "50000"))
    er = next(e.message for e in after if isinstance(e, Send))
    issued = {int(r.exec_id[2:]) for r in reports(run)}
    assert int(er.exec_id[2:]) > max(issued)
    assert int(er.order_id[1:]) > max(int(o[1:]) for o in run.final)


def test_recovery_is_idempotent_and_leaves_a_complete_database_alone(tmp_path):
    run = play(tmp_path / "store")
    database = connect(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    persist(database, run.batches)
    before = orders_in(database)

    first = recover(database, tmp_path / "store")
    second = recover(database, tmp_path / "store")

    assert first.reports == second.reports == len(reports(run))
    assert (first.executions, first.orders, second.executions, second.orders) == (0, 0, 0, 0)
    assert orders_in(database) == before


def test_recovery_never_moves_an_order_back(tmp_path):
    """A lost ER of an order whose later snapshot did commit: the ER is added, the row kept."""
    run = play(tmp_path / "store")
    database = connect(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    persist(database, run.batches)
    partial = run.batches[2]  # p1: New, then a partial fill
    lost = [e.message for e in partial if isinstance(e, Send)][-1]
    with database.begin() as conn:
        table = ExecutionRow.__table__
        conn.execute(table.delete().where(table.c.exec_id == lost.exec_id))
    before = orders_in(database)

    done = recover(database, tmp_path / "store")

    assert (done.executions, done.orders) == (1, 0)
    assert lost.exec_id in exec_ids_in(database)
    assert orders_in(database) == before


def test_torn_and_foreign_entries_are_skipped(tmp_path):
    store_dir = tmp_path / "store"
    run = play(store_dir)
    client = run.stores["CLIENT2"]
    # a decode reject answered by the adapter (never persisted by the writer either)
    client.send(
        codec.reject_for(
            RawMessage("D", ((35, "D"), (11, "bad"), (54, "1"))), codec.DecodeError("bad price")
        )
    )
    # a resting GTC order whose ER carries TimeInForce(59)
    gtc = run.core.handle("CLIENT2", new("g1", BUY, "2", "61000", m.TimeInForce.GTC))
    for event in gtc:
        if isinstance(event, Send):
            client.send(event.message, extra=((59, "1"),))
    # the process died inside FileStore::set: the header entry is there, the body is not
    with client.header.open("ab") as f:
        f.write(f"{client.seq + 1},{client.body.stat().st_size},180 ".encode())
    messages, torn = read_store(client.header, client.body)
    assert torn == 1 and len(messages) == client.seq

    database = connect(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    done = recover(database, store_dir)

    assert done.torn == 1
    ids = exec_ids_in(database)
    assert not any(i.startswith("REJ-") for i in ids)
    g1 = next(o for o in run.core.orders.values() if o.cl_ord_id == "g1")
    row = orders_in(database)[g1.order_id]
    assert (row["time_in_force"], row["status"]) == ("1", "0")


def test_missing_store_directory_recovers_nothing(tmp_path):
    database = connect(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    done = recover(database, tmp_path / "no-such-store")
    assert (done.stores, done.executions, done.orders) == (0, 0, 0)


# --- SIGKILL under load ---------------------------------------------------------------------------

LOAD_SESSIONS = ("LOADA", "LOADB", "RESUME")
EXTRA = "".join(
    f'\n[[sessions]]\ncomp_id = "{s}"\nreset_on_logon = {"false" if s == "RESUME" else "true"}\n'
    "throttle = { reject_above = 100000, logout_above = 100000 }\n"
    for s in LOAD_SESSIONS
)
TERMINAL = {"2", "4", "8"}


class Trader:
    """A client session under load: sends a seeded mix of orders, records every message."""

    def __init__(self, gw: GatewayProcess, comp_id: str, seed: int, reset: bool = True) -> None:
        self.client = FixClient("127.0.0.1", gw.fix_port, comp_id, GATEWAY)
        reply = self.client.logon(reset=reset)
        assert reply.msg_type == "A", reply.fields
        self.comp_id = comp_id
        self.next_in = int(reply.get(34)) + 1
        self.rng = random.Random(seed)
        self.received: list[RawMessage] = []
        self.acked: set[str] = set()  # ClOrdIDs with at least one answer
        self.pending: set[str] = set()  # ClOrdIDs sent and not answered yet
        self.resting: list[str] = []
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.client.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        sock, buf = self.client.sock, b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.stop.set()
                    self.cond.notify_all()
                return
            buf += data
            self.client.buf, frames = buf, []
            while (frame := self.client._frame()) is not None:
                frames.append(RawMessage.parse(frame.decode("latin-1")))
            buf = self.client.buf
            with self.cond:
                for msg in frames:
                    self.received.append(msg)
                    self.next_in = int(msg.get(34)) + 1
                    if msg.msg_type in ("8", "9") and msg.get(11):
                        self.acked.add(msg.get(11))
                        self.pending.discard(msg.get(11))
                        if msg.get(41):
                            self.acked.add(msg.get(41))
                self.cond.notify_all()

    def ers(self) -> list[RawMessage]:
        with self.cond:
            return [r for r in self.received if r.msg_type == "8"]

    def _order(self, cl: str) -> list[tuple[int, object]]:
        kind = self.rng.random()
        symbol, side, qty, px = "BTC-PERP", "1", "5", "66000"  # fills against the venue
        if kind < 0.2:
            qty = "15"  # fills 10, rests 5 at 66000
        elif kind < 0.55:
            side, px = (
                ("1", str(self.rng.randint(50000, 60000)))
                if self.rng.random() < 0.5
                else ("2", str(self.rng.randint(80000, 90000)))
            )
            qty = str(self.rng.randint(1, 4))
            self.resting.append(cl)
        elif kind < 0.7:
            side, qty, px = "2", "3", "66000"  # crosses resting buys at 66000 first
        if kind < 0.2:
            self.resting.append(cl)
        return order_fields(cl, qty, px, side, symbol)

    def run(self, window: int = 20) -> None:
        """Send until stopped or disconnected, never more than ``window`` requests unanswered."""
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                cl = f"{self.comp_id}-{n}"
                with self.cond:
                    self.pending.add(cl)
                if self.resting and self.rng.random() < 0.1:
                    orig = self.resting.pop(self.rng.randrange(len(self.resting)))
                    self.client.send(
                        "F", [(41, orig), (11, cl), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]
                    )
                else:
                    self.client.send("D", self._order(cl))
                with self.cond:
                    self.cond.wait_for(
                        lambda: self.stop.is_set() or len(self.pending) < window, timeout=10
                    )
        except OSError:
            self.stop.set()


def er_total(traders: list[Trader]) -> int:
    return sum(len(t.ers()) for t in traders)


def wait_for_ers(traders: list[Trader], count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while er_total(traders) < count:
        assert time.monotonic() < deadline, f"only {er_total(traders)} ERs of {count}"
        time.sleep(0.02)


def resume(client: FixClient, expected_in: int) -> tuple[RawMessage, list[RawMessage]]:
    """Log on again without reset, fill the gateway's gaps, ask for ours; return what came.

    Our messages the gateway never read (orders sent as it died, and the admin messages of
    this logon queued behind the gap) are filled with a SequenceReset-GapFill: those orders
    never happened. A TestRequest's Heartbeat ends the exchange.
    """
    reply = client.logon(reset=False)
    assert reply.msg_type == "A", reply.fields
    got: list[RawMessage] = []
    if int(reply.get(34)) > expected_in:
        client.send("2", [(7, expected_in), (16, 0)])
    for attempt in range(5):
        mark = f"resumed-{attempt}"
        client.send("1", [(112, mark)])
        while True:
            msg = client.recv(10)
            got.append(msg)
            assert msg.msg_type not in ("5", "3"), msg.fields
            if msg.msg_type == "0" and msg.get(112) == mark:
                return reply, got
            if msg.msg_type == "2":
                client.send(
                    "4",
                    [(123, "Y"), (36, client.next_seq)],
                    seq=int(msg.get(7)),
                    header=[(43, "Y"), (122, fix_time())],
                )
                break  # the TestRequest was inside the gap: ask again
    raise AssertionError(f"session did not resume: {[m.fields for m in got]}")


def test_sigkill_under_load_loses_no_acknowledged_execution(tmp_path):
    gw = GatewayProcess(tmp_path, extra=EXTRA).start()
    db_file = gw.data_dir / "fixbridge.db"
    lock: sqlite3.Connection | None = None
    try:
        # a session without ResetOnLogon that is idle (all answered) when the gateway dies
        # (its orders fill at once or rest far from any price the load reaches, so nothing
        # more is sent to it until it logs on again)
        keep = Trader(gw, "KEEPSEQ", seed=7, reset=False)
        keep_resting = [f"KEEPSEQ-{i}" for i in range(3)]
        for i in range(6):
            px, qty = ("55000", "2") if i < 3 else ("66000", "5")
            keep.client.send("D", order_fields(f"KEEPSEQ-{i}", qty, px))
        deadline = time.monotonic() + 10
        while len(keep.ers()) < 9:  # New for each, and a fill for the last three
            assert time.monotonic() < deadline, [e.fields for e in keep.ers()]
            time.sleep(0.01)

        traders = [Trader(gw, s, seed=i, reset=s != "RESUME") for i, s in enumerate(LOAD_SESSIONS)]
        threads = [threading.Thread(target=t.run, daemon=True) for t in traders]
        for t in threads:
            t.start()
        wait_for_ers(traders, 300)
        # the database stalls: from here on, nothing the writer holds reaches it
        lock = sqlite3.connect(db_file, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        stalled_from = {t.comp_id: len(t.ers()) for t in traders}
        wait_for_ers(traders, er_total(traders) + 600)
        gw.kill()
        for t in threads:
            t.join(10)
        lock.execute("ROLLBACK")
        lock.close()
        lock = None
        acknowledged = [er for t in [keep, *traders] for er in t.ers()]
        assert all(not t.reader.is_alive() or t.stop.is_set() for t in traders)

        gw.start()
        assert "recovered from the FIX store" in gw.stderr()
        database = connect(f"sqlite:///{db_file}")
        try:
            assert _check_database(database, acknowledged) >= 100
            stalled = {er.get(17) for t in traders for er in t.ers()[stalled_from[t.comp_id] :]}
            assert len(stalled) >= 600 and stalled <= exec_ids_in(database)

            # KEEPSEQ resumes with exactly the sequence numbers both sides expect
            client = FixClient("127.0.0.1", gw.fix_port, "KEEPSEQ", GATEWAY)
            client.next_seq = keep.client.next_seq
            reply, after = resume(client, keep.next_in)
            assert int(reply.get(34)) == keep.next_in and reply.get(141) is None
            assert [m.msg_type for m in after] == ["0"]  # no ResendRequest, no gap fill
            # and its resting orders came back live
            cl = keep_resting[0]
            client.send(
                "F", [(41, cl), (11, "keep-cxl"), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]
            )
            done = client.expect("8")
            assert (done.get(39), done.get(41)) == ("4", cl)
            client.logout()

            # RESUME was sending when the gateway died: gaps both ways are filled, and any ER
            # it had not received comes as a PossDup resend that the database also holds
            resumer = traders[2]
            client = FixClient("127.0.0.1", gw.fix_port, "RESUME", GATEWAY)
            client.next_seq = resumer.client.next_seq
            _, after = resume(client, resumer.next_in)
            resent = [m for m in after if m.msg_type == "8"]
            assert all(m.get(43) == "Y" for m in resent)
            assert {m.get(17) for m in resent} <= exec_ids_in(database)
            _check_database(database, resent)
            client.send("D", order_fields("after-restart", qty="1"))
            assert client.expect("8").get(39) == "0"
            client.logout()
        finally:
            database.dispose()
        assert gw.stop() == 0, gw.stderr()
    finally:
        if lock is not None:
            lock.close()
        if gw.proc is not None:
            gw.stop()

    bundle = tmp_path / "audit.tar"
    cli = [sys.executable, "-m", "gateway.cli", "audit"]
    export = subprocess.run(
        [*cli, "export", str(bundle), "--config", str(gw.config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    verify = subprocess.run(
        [*cli, "verify", str(bundle)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _check_database(database, acknowledged: list[RawMessage]) -> int:
    """Every ER a client holds is in the database, and its order is at least in that state.

    Returns how many orders were checked."""
    table = ExecutionRow.__table__
    with database.connect() as conn:
        rows = {r["exec_id"]: r for r in conn.execute(select(table)).mappings()}
    orders = orders_in(database)
    latest: dict[str, RawMessage] = {}
    for er in acknowledged:
        row = rows.get(er.get(17))
        assert row is not None, f"ER {er.get(17)} for {er.get(11)} is not in the database"
        assert (row["order_id"], row["exec_type"], row["ord_status"], row["cum_qty"]) == (
            er.get(37),
            er.get(150),
            er.get(39),
            D(er.get(14)),
        )
        order_id = er.get(37)
        if order_id == "NONE" or er.get(150) == "I":
            continue
        held = latest.get(order_id)
        if held is None or int(er.get(17)[2:]) > int(held.get(17)[2:]):
            latest[order_id] = er
    for order_id, er in latest.items():
        row = orders.get(order_id)
        assert row is not None, f"order {order_id} ({er.get(11)}) is not in the database"
        told = codec.parse_time(er.get(60))
        assert row["updated_at"] >= told and row["cum_qty"] >= D(er.get(14)), (order_id, row)
        if row["updated_at"] == told or er.get(39) in TERMINAL:
            assert (row["status"], row["cum_qty"]) == (er.get(39), D(er.get(14))), (order_id, row)
    return len(latest)
