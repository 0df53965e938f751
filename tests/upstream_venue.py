"""A small FIX 4.4 venue for the upstream-routing tests: a QuickFIX acceptor in its own process.

    python -m tests.upstream_venue --port P --data-dir D [--echo-fills] [--username U
        --password-env VAR]

Every order trades at 65000: a market order, or a limit that crosses 65000 (a buy at or above,
a sell at or below), gets ExecutionReport New, then one fill for its whole quantity; any other
limit order rests until cancelled or replaced (a replace to a crossing price fills it).
Cancels and replaces of what is not resting get an OrderCancelReject. Its book and ExecID
counter are in ``<data-dir>/book.json`` and its sequence numbers in a FileStore (no reset on
logon), so it can be killed and started again like a real venue: a NewOrderSingle it already
knows (a resend with PossDupFlag) is not traded twice. ``--echo-fills`` sends each fill a second
time with PossDupFlag=Y, as a venue recovering its own state might. SIGUSR1 fills every resting
order at once, whether the gateway is logged on or not (then QuickFIX keeps the reports for its
resend). An OrderStatusRequest gets an ExecutionReport with ExecType I: the order's state if it
rests or ended here, OrdStatus Rejected with OrdRejReason 5 if the venue does not know it
(its ``book.json`` deleted). It prints ``upstream venue ready: port P`` once it listens and runs
until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix as fix

from gateway.fix.dictionary import stock_dictionary_path

READY = "upstream venue ready"
VENUE = "VENUE"
GATEWAY = "FIXBRIDGE-UP"
PRICE = Decimal(65000)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Book:
    """Orders by the ClOrdID they go by now, persisted (atomically) after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        state = json.loads(path.read_text()) if path.exists() else {}
        self.orders: dict[str, dict[str, str]] = state.get("orders", {})
        self.seen: list[str] = state.get("seen", [])  # every ClOrdID ever received
        self.done: dict[str, dict[str, str]] = state.get("done", {})  # filled or cancelled
        self.exec_seq: int = state.get("exec_seq", 0)

    def exec_id(self) -> str:
        self.exec_seq += 1
        return f"VX{self.exec_seq}"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "orders": self.orders,
                    "seen": self.seen,
                    "done": self.done,
                    "exec_seq": self.exec_seq,
                }
            )
        )
        os.replace(tmp, self.path)


class Venue(fix.Application):
    def __init__(
        self,
        book: Book,
        echo_fills: bool,
        username: str | None,
        password: str | None,
    ):
        super().__init__()
        self.book = book
        self.echo_fills = echo_fills
        self.username, self.password = username, password
        self.lock = threading.Lock()

    def onCreate(self, sessionID: fix.SessionID) -> None:
        return None

    def onLogon(self, sessionID: fix.SessionID) -> None:
        print(f"logon {sessionID}", file=sys.stderr, flush=True)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        return None

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        return None

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) != "A" or self.username is None:
            return
        user = message.getField(553) if message.isSetField(553) else None
        word = message.getField(554) if message.isSetField(554) else None
        if (user, word) != (self.username, self.password):
            raise fix.RejectLogon("bad credentials")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        return None

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        fields = {
            int(k): v
            for k, _, v in (f.partition("=") for f in message.toString().split("\x01") if f)
        }
        with self.lock:
            if msg_type == "D":
                self.new_order(fields, sessionID)
            elif msg_type in ("F", "G"):
                self.amend(msg_type, fields, sessionID)
            elif msg_type == "H":
                self.status(fields, sessionID)
            else:
                raise fix.UnsupportedMessageType()

    # -- orders ------------------------------------------------------------------------------

    def new_order(self, f: dict[int, str], sid: fix.SessionID) -> None:
        cl = f[11]
        if cl in self.book.seen:  # a resend of an order already handled
            print(f"duplicate order {cl} ignored", file=sys.stderr, flush=True)
            return
        self.book.seen.append(cl)
        order = {
            "cl": cl,
            "orig": cl,
            "vid": f"V{len(self.book.seen)}",
            "symbol": f[55],
            "side": f[54],
            "qty": f[38],
            "type": f[40],
            "price": f.get(44, ""),
            "cum": "0",
        }
        self.book.orders[cl] = order
        new = self.report(order, "0", "0", self.book.exec_id())
        self.book.save()
        self.send(new, sid)
        self.maybe_fill(cl, sid)

    def amend(self, msg_type: str, f: dict[int, str], sid: fix.SessionID) -> None:
        cl, orig = f[11], f[41]
        if cl in self.book.seen:
            return
        self.book.seen.append(cl)
        order = self.book.orders.get(orig)
        if order is None:
            reject = fix.Message()
            reject.getHeader().setField(35, "9")
            for tag, value in (
                (37, "NONE"),
                (11, cl),
                (41, orig),
                (39, "8"),
                (434, "1" if msg_type == "F" else "2"),
                (102, "1"),
                (58, "order not resting"),
            ):
                reject.setField(tag, value)
            self.book.save()
            self.send(reject, sid)
            return
        del self.book.orders[orig]
        order["orig"], order["cl"] = orig, cl
        if msg_type == "F":
            order["end"] = "4"
            self.book.done[cl] = self.book.done[orig] = order
            er = self.report(order, "4", "4", self.book.exec_id())
            self.book.save()
            self.send(er, sid)
            return
        order["qty"], order["price"] = f[38], f.get(44, "")
        self.book.orders[cl] = order
        er = self.report(order, "5", "0", self.book.exec_id())
        self.book.save()
        self.send(er, sid)
        self.maybe_fill(cl, sid)

    def status(self, f: dict[int, str], sid: fix.SessionID) -> None:
        order = self.book.orders.get(f[11]) or self.book.done.get(f[11])
        if order is not None:
            cum, qty = Decimal(order["cum"]), Decimal(order["qty"])
            state = "2" if cum >= qty else order.get("end") or ("1" if cum else "0")
            er = self.report(order, "I", state, self.book.exec_id())
        else:
            er = fix.Message()
            er.getHeader().setField(35, "8")
            for tag, value in (
                (37, "NONE"),
                (11, f[11]),
                (17, self.book.exec_id()),
                (150, "I"),
                (39, "8"),
                (103, "5"),
                (55, f[55]),
                (54, f[54]),
                (151, "0"),
                (14, "0"),
                (6, "0"),
                (58, "unknown order"),
            ):
                er.setField(tag, value)
        if 790 in f:
            er.setField(790, f[790])
        self.book.save()
        self.send(er, sid)

    def fill_resting(self, sid: fix.SessionID) -> None:
        with self.lock:
            for cl in list(self.book.orders):
                self.maybe_fill(cl, sid, at_any_price=True)

    def maybe_fill(self, cl: str, sid: fix.SessionID, at_any_price: bool = False) -> None:
        order = self.book.orders[cl]
        if order["type"] == "2" and not at_any_price:
            limit = Decimal(order["price"])
            if (limit < PRICE) if order["side"] == "1" else (limit > PRICE):
                return  # rests
        last = Decimal(order["qty"]) - Decimal(order["cum"])
        order["cum"] = order["qty"]
        del self.book.orders[cl]
        self.book.done[cl] = order
        fill = self.report(order, "F", "2", self.book.exec_id(), last)
        self.book.save()
        self.send(fill, sid)
        if self.echo_fills:
            again = fix.Message(fill)
            again.getHeader().setField(43, "Y")
            again.getHeader().setField(122, _now())
            self.send(again, sid)

    def report(
        self,
        order: dict[str, str],
        exec_type: str,
        status: str,
        exec_id: str,
        last: Decimal | None = None,
    ) -> fix.Message:
        er = fix.Message()
        er.getHeader().setField(35, "8")
        cum = Decimal(order["cum"])
        leaves = Decimal(0) if status in ("2", "4") else Decimal(order["qty"]) - cum
        values: list[tuple[int, Any]] = [
            (37, order["vid"]),
            (11, order["cl"]),
            (17, exec_id),
            (150, exec_type),
            (39, status),
            (55, order["symbol"]),
            (54, order["side"]),
            (38, order["qty"]),
            (40, order["type"]),
            (151, leaves),
            (14, cum),
            (6, PRICE if cum else 0),
            (60, _now()),
        ]
        if order["orig"] != order["cl"]:
            values.append((41, order["orig"]))
        if order["price"]:
            values.append((44, order["price"]))
        if last is not None:
            values += [(32, last), (31, PRICE)]
        for tag, value in values:
            er.setField(tag, str(value))
        return er

    @staticmethod
    def send(message: fix.Message, sid: fix.SessionID) -> None:
        fix.Session.sendToTarget(message, sid)


def settings(port: int, data_dir: Path) -> fix.SessionSettings:
    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": "acceptor",
        "SocketAcceptPort": str(port),
        "SocketReuseAddress": "Y",
        "SenderCompID": VENUE,
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "UseDataDictionary": "Y",
        "DataDictionary": str(stock_dictionary_path()),
        "FileStorePath": str(data_dir / "store"),
        "FileLogPath": str(data_dir / "log"),
        "PersistMessages": "Y",
    }.items():
        defaults.setString(key, value)
    session = fix.Dictionary()
    session.setString("BeginString", "FIX.4.4")
    session.setString("TargetCompID", GATEWAY)
    session.setString("ResetOnLogon", "N")
    out = fix.SessionSettings()
    out.set(defaults)
    out.set(fix.SessionID("FIX.4.4", VENUE, GATEWAY), session)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.upstream_venue", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--echo-fills", action="store_true")
    p.add_argument("--username")
    p.add_argument("--password-env")
    args = p.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    password = os.environ[args.password_env] if args.password_env else None
    config = settings(args.port, args.data_dir)
    app = Venue(Book(args.data_dir / "book.json"), args.echo_fills, args.username, password)
    acceptor = fix.SocketAcceptor(
        app, fix.FileStoreFactory(config), config, fix.FileLogFactory(config)
    )
    stop, fill_all = threading.Event(), threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: fill_all.set())
    acceptor.start()
    print(f"{READY}: port {args.port}", flush=True)
    while not stop.wait(0.1):
        if fill_all.is_set():
            fill_all.clear()
            app.fill_resting(fix.SessionID("FIX.4.4", VENUE, GATEWAY))
            print("filled every resting order", file=sys.stderr, flush=True)
    os._exit(0)  # QuickFIX's stop() races its own thread (see gateway.fix.acceptor)


if __name__ == "__main__":
    sys.exit(main())
