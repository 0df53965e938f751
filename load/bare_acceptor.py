"""A bare QuickFIX acceptor: the "what QuickFIX alone costs" baseline for load.bench_orders.

It runs the session layer exactly as the gateway configures it (SocketAcceptor, FileStore,
FileLog, stock FIX44.xml validation, the same session settings) and answers every
NewOrderSingle with one ExecutionReport (a full fill at the order's price) built with quickfix
field setters. No front relay, no codec, no order core, no database.

With ``--ack``, each order is answered as the gateway answers it: ExecutionReport New, then the
fill: the cost of the FIX protocol work the gateway does per order, with nothing else.

    python -m load.bare_acceptor --port 9877 --data-dir /tmp/bare [--comp-id FIXBRIDGE]
        [--client BENCH ...] [--ack]

prints ``bare acceptor ready: port P`` once it accepts, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from pathlib import Path

import quickfix as fix
import quickfix44 as fix44

from gateway.fix.dictionary import stock_dictionary_path

READY = "bare acceptor ready"


def settings(
    port: int, data_dir: Path, comp_id: str, client: str | list[str]
) -> fix.SessionSettings:
    """The gateway's acceptor settings (gateway.fix.acceptor), with the stock dictionary; one
    session per client CompID."""
    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": "acceptor",
        "SocketAcceptPort": str(port),
        "SocketReuseAddress": "Y",
        "SocketNodelay": "Y",
        "SenderCompID": comp_id,
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "UseDataDictionary": "Y",
        "DataDictionary": str(stock_dictionary_path()),
        "FileStorePath": str(data_dir / "store"),
        "FileLogPath": str(data_dir / "log"),
        "PersistMessages": "Y",
        "CheckLatency": "Y",
        "MaxLatency": "120",
    }.items():
        defaults.setString(key, value)
    out = fix.SessionSettings()
    out.set(defaults)
    for target in [client] if isinstance(client, str) else client:
        session = fix.Dictionary()
        session.setString("BeginString", "FIX.4.4")
        session.setString("TargetCompID", target)
        session.setString("ResetOnLogon", "Y")
        session.setString("ValidateFieldsHaveValues", "Y")
        out.set(fix.SessionID("FIX.4.4", comp_id, target), session)
    return out


class FillEverything(fix.Application):
    """Answers each NewOrderSingle with one filled ExecutionReport (``ack``: New, then the
    fill); nothing else."""

    def __init__(self, ack: bool = False) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.ack = ack

    def onCreate(self, sessionID: fix.SessionID) -> None:
        return None

    def onLogon(self, sessionID: fix.SessionID) -> None:
        return None

    def onLogout(self, sessionID: fix.SessionID) -> None:
        return None

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        return None

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        return None

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        return None

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) != "D":
            raise fix.UnsupportedMessageType()
        n = next(self._ids)
        qty = message.getField(38)
        px = message.getField(44) if message.isSetField(44) else "0"
        if self.ack:
            new = self._report(message, n, "N", fix.ExecType_NEW, fix.OrdStatus_NEW, qty, px)
            new.setField(32, "0")
            new.setField(31, "0")
            new.setField(151, qty)
            new.setField(14, "0")
            new.setField(6, "0")
            fix.Session.sendToTarget(new, sessionID)
        er = self._report(message, n, "E", fix.ExecType_TRADE, fix.OrdStatus_FILLED, qty, px)
        er.setField(32, qty)
        er.setField(31, px)
        er.setField(151, "0")
        er.setField(14, qty)
        er.setField(6, px)
        fix.Session.sendToTarget(er, sessionID)

    @staticmethod
    def _report(
        order: fix.Message, n: int, kind: str, exec_type: str, status: str, qty: str, px: str
    ) -> fix.Message:
        er = fix44.ExecutionReport()
        er.setField(fix.OrderID(f"B{n}"))
        er.setField(fix.ClOrdID(order.getField(11)))
        er.setField(fix.ExecID(f"B{kind}{n}"))
        er.setField(fix.ExecType(exec_type))
        er.setField(fix.OrdStatus(status))
        er.setField(fix.Symbol(order.getField(55)))
        er.setField(fix.Side(order.getField(54)))
        # Quantities and prices keep the client's exact text: no float round trip.
        er.setField(38, qty)
        er.setField(fix.OrdType(order.getField(40)))
        er.setField(44, px)
        er.setField(fix.TransactTime(6))
        return er


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load.bare_acceptor", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--comp-id", default="FIXBRIDGE", help="our SenderCompID")
    p.add_argument(
        "--client", action="append", help="a client CompID accepted (repeat; default BENCH)"
    )
    p.add_argument("--ack", action="store_true", help="answer with ER New before the fill")
    args = p.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    config = settings(args.port, args.data_dir, args.comp_id, args.client or ["BENCH"])
    app = FillEverything(ack=args.ack)
    acceptor = fix.SocketAcceptor(
        app, fix.FileStoreFactory(config), config, fix.FileLogFactory(config)
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        acceptor.start()
    except (fix.ConfigError, fix.RuntimeError) as exc:
        print(f"bare acceptor: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"{READY}: port {args.port}", flush=True)
    stop.wait()
    acceptor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
