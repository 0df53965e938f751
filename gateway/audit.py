"""What goes into the signed audit log, from every edge of the process.

Every FIX message in and out (admin and application, valid or not), every API action with its
actor, every auth failure, and every state change of orders, RFQs, quotes, trades, clearing
messages and sessions. Appends never block the caller on disk: entries are ordered and hashed
at once and made durable by the log's group commit.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.jsonable import event_json, to_jsonable
from otc.audit import AuditLog
from otc.negotiation import events as ev
from otc.orders import OrderUpdated

log = logging.getLogger("fixbridge.audit")
SOH = "\x01"


class Auditor:
    def __init__(self, directory: Path) -> None:
        self.log = AuditLog.open(directory)

    def close(self) -> None:
        self.log.close()

    def append(self, kind: str, actor: str, payload: dict) -> None:
        try:
            self.log.append_nowait(kind, actor, payload)
        except Exception:  # the audit trail failing is loud, but never takes trading down
            log.exception("audit append failed: %s by %s", kind, actor)

    # -- sinks, one per edge ---------------------------------------------------------------

    def fix(self, kind: str, actor: str, text: str) -> None:
        msg_type = ""
        start = text.find(SOH + "35=")
        if start >= 0:
            msg_type = text[start + 4 : text.find(SOH, start + 4)]
        self.append(kind, actor, {"msg_type": msg_type, "raw": text.replace(SOH, "|")})

    def api_action(self, actor: str, method: str, path: str, status: int, peer: str) -> None:
        self.append(
            "api.action", actor, {"method": method, "path": path, "status": status, "peer": peer}
        )

    def auth_failure(self, **details) -> None:
        self.append("api.auth_failure", details.get("token_name") or "anonymous", details)

    def orders(self, events) -> None:
        for event in events:
            if isinstance(event, OrderUpdated):
                o = event.order
                self.append("order.state", f"client:{o.owner}", {
                    "order_id": o.order_id, "cl_ord_id": o.cl_ord_id, "status": o.status.value,
                    "symbol": o.instrument.symbol, "side": o.side.value,
                    "quantity": to_jsonable(o.quantity), "price": to_jsonable(o.price),
                    "cum_qty": to_jsonable(o.cum_qty), "avg_px": to_jsonable(o.avg_px),
                })

    def negotiation(self, events) -> None:
        for event in events:
            actor = (f"desk:{event.desk_id}" if hasattr(event, "desk_id")
                     else f"client:{getattr(event, 'client_id', '?')}")
            payload = event_json(event)
            payload["rfq_id"] = ev.rfq_id_of(event)
            self.append(f"otc.{type(event).__name__}", actor, payload)

    def session(self, comp_id: str, event: str, peer: str | None, text: str | None) -> None:
        self.append(f"session.{event}", f"session:{comp_id}", {"peer": peer, "text": text})

    def admin(self, kind: str, actor: str, payload: dict) -> None:
        self.append(kind, actor, to_jsonable(payload))
