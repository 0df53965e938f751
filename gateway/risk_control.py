"""What an operator may do to pre-trade risk at run time (the API's /risk routes): read a
client's limits and exposure, change its limits, engage or lift the kill switch.

Every change is logged and audited with its actor. The kill switch cancels the client's open
orders through the order core (ExecutionReports go out as for any cancel) and withdraws its open
RFQs from the negotiation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gateway.config import RiskSection
from otc.orders import CoreEvent, OrderManager, OrderUpdated
from otc.risk import RiskLimits

log = logging.getLogger("fixbridge")

RunCore = Callable[[Callable[[OrderManager], list[CoreEvent]]], list[CoreEvent]]


def risk_limits(section: RiskSection) -> RiskLimits:
    """The core's limits from a ``[risk]`` (or ``[sessions.risk]``) section."""
    return RiskLimits(
        max_order_qty=section.max_order_qty,
        max_notional=section.max_notional,
        price_band=section.price_band,
        credit_limit=section.credit_limit,
    )


class RiskControl:
    """``run_core`` runs an action on the order core under its lock and sends and persists the
    events it returns (``GatewayApplication.run_core``); ``cancel_rfqs`` withdraws a client's open
    RFQs (``NegotiationService.cancel_client_rfqs``); ``audit`` records an admin action."""

    def __init__(
        self,
        orders: OrderManager,
        core_lock: threading.RLock,
        run_core: RunCore,
        cancel_rfqs: Callable[[str | None, str], int],
        audit: Callable[[str, str, dict[str, Any]], None],
    ) -> None:
        self.orders = orders
        self.core_lock = core_lock
        self.run_core = run_core
        self.cancel_rfqs = cancel_rfqs
        self.audit = audit

    def risk_view(self, client: str) -> dict[str, Any]:
        limits = self.orders.risk.limits_for(client)
        return {
            "client": client,
            "limits": RiskSection(**{k: getattr(limits, k) for k in RiskSection.model_fields}),
            "exposure": self.orders.exposure(client),
            "halted": self.orders.halt_reason(client),
        }

    def set_limits(self, client: str, limits: RiskSection, actor: str) -> dict[str, Any]:
        with self.core_lock:
            self.orders.risk.set_limits(client, risk_limits(limits))
        log.warning("risk limits for %s changed by %s: %s", client, actor, limits.model_dump())
        self.audit("risk.limits", f"api:{actor}", {"client": client, **limits.model_dump()})
        return self.risk_view(client)

    def kill(self, client: str | None, reason: str, actor: str) -> int:
        log.warning("kill switch for %s engaged by %s: %s", client or "ALL", actor, reason)
        self.audit("risk.kill", f"api:{actor}", {"client": client, "reason": reason})
        events = self.run_core(lambda orders: orders.kill(client, reason))
        self.cancel_rfqs(client, reason)
        return sum(1 for e in events if isinstance(e, OrderUpdated))

    def resume(self, client: str | None, actor: str) -> bool:
        log.warning("kill switch for %s lifted by %s", client or "ALL", actor)
        self.audit("risk.resume", f"api:{actor}", {"client": client})
        with self.core_lock:
            return self.orders.resume(client)
