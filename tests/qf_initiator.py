"""A QuickFIX SocketInitiator client, run as its own process by the interop test.

It logs on as CLIENT2, sends one NewOrderSingle, prints each ExecutionReport it receives as
``ER tag=value ...`` and exits. QuickFIX lives in a separate process so that its threads (and
its teardown) never share the test runner's interpreter.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile

import quickfix as fix


class Client(fix.Application):
    def __init__(self) -> None:
        super().__init__()
        self.logged_on: queue.Queue = queue.Queue()
        self.received: queue.Queue = queue.Queue()

    def onCreate(self, sessionID):
        pass

    def onLogon(self, sessionID):
        self.logged_on.put(sessionID)

    def onLogout(self, sessionID):
        pass

    def toAdmin(self, message, sessionID):
        pass

    def fromAdmin(self, message, sessionID):
        pass

    def toApp(self, message, sessionID):
        pass

    def fromApp(self, message, sessionID):
        self.received.put(fix.Message(message))


def main(port: int, count: int) -> int:
    data = tempfile.mkdtemp(prefix="qf-initiator-")
    cfg = os.path.join(data, "client.cfg")
    with open(cfg, "w") as f:
        f.write(
            f"[DEFAULT]\nConnectionType=initiator\nReconnectInterval=1\nFileStorePath={data}\n"
            "StartTime=00:00:00\nEndTime=00:00:00\nHeartBtInt=30\nUseDataDictionary=N\n"
            "ResetOnLogon=Y\n\n[SESSION]\nBeginString=FIX.4.4\nSenderCompID=CLIENT2\n"
            f"TargetCompID=FIXBRIDGE\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n"
        )
    app = Client()
    settings = fix.SessionSettings(cfg)
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings)
    initiator.start()
    session_id = app.logged_on.get(timeout=15)
    order = fix.Message()
    order.getHeader().setField(fix.MsgType(fix.MsgType_NewOrderSingle))
    order.setField(fix.ClOrdID("qf-1"))
    order.setField(fix.Symbol("BTC-PERP"))
    order.setField(fix.Side(fix.Side_SELL))
    order.setField(fix.TransactTime())
    order.setField(fix.OrderQty(2))
    order.setField(fix.OrdType(fix.OrdType_LIMIT))
    order.setField(fix.Price(64000))
    fix.Session.sendToTarget(order, session_id)
    for _ in range(count):
        msg = app.received.get(timeout=10)
        fields = " ".join(
            f"{t}={msg.getField(t)}" for t in (11, 37, 39, 150, 31, 32) if msg.isSetField(t)
        )
        print(f"ER {fields}", flush=True)
    fix.Session.lookupSession(session_id).logout()
    os._exit(0)  # QuickFIX's own stop() races its thread; see gateway.fix.acceptor


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
