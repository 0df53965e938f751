"""Booking a captured trade: what the gateway does when the negotiation captures one.

The negotiation engine captures a trade (exactly once) and says so with ``TradeCaptured``; this
sink books it: the trade, with the clearing house and firm of ``[clearing]``, is stored with its
clearing message in one transaction; only then may the negotiation confirm it (and archive the
RFQ), so the sink answers with ``ConfirmTrade``; and the client's credit is charged.

A capture the database cannot take (it is down) is not lost: the trade is held and retried
every ``retry_seconds`` on a thread of its own until it is stored (``capture`` is idempotent by
trade id), and then confirmed through ``confirm`` (the negotiation's ``submit``) and charged.
While any is held, :meth:`TradeBooking.refusal` closes the admission gate.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from gateway.config import ClearingSection
from gateway.store.trades import capture
from otc.negotiation import events as ev
from otc.negotiation.commands import Command, ConfirmTrade
from otc.orders import OrderManager
from otc.rfq_risk import trade_exposure
from otc.trades import Allocation, Party, PartyRole, TradeCapture

log = logging.getLogger("fixbridge.trades")


class PreAllocations:
    """Splits a client sent with its acceptance (a D's PreAllocGrp), kept by (client, ClOrdID)
    until the trade it accepts is booked with them, or the acceptance is refused."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], tuple[Allocation, ...]] = {}
        self._lock = threading.Lock()

    def put(self, client_id: str, client_ref: str, split: tuple[Allocation, ...]) -> None:
        with self._lock:
            self._pending[(client_id, client_ref)] = split

    def take(self, client_id: str, client_ref: str) -> tuple[Allocation, ...]:
        with self._lock:
            return self._pending.pop((client_id, client_ref), ())


class TradeBooking:
    """A :data:`gateway.negotiation.Sink`. ``core_lock`` guards the order core, whose credit
    exposure the trade now uses."""

    def __init__(
        self,
        config: ClearingSection,
        database: Engine,
        orders: OrderManager,
        core_lock: threading.RLock,
        confirm: Callable[[Command], object] | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        self.config = config
        self.database = database
        self.orders = orders
        self.core_lock = core_lock
        self.confirm = confirm  # set once the negotiation exists (it holds this sink)
        self.retry_seconds = retry_seconds
        self._held: list[tuple[TradeCapture, datetime]] = []
        self._held_lock = threading.Lock()
        self._retrying: threading.Thread | None = None
        self.last_error: str | None = None
        self.pre_allocations = PreAllocations()

    def __call__(self, events: list[ev.Event]) -> list[Command]:
        confirmations: list[Command] = []
        for event in events:
            if isinstance(event, ev.AcceptanceRejected):
                self.pre_allocations.take(event.client_id, event.client_ref)
            if isinstance(event, ev.TradeCaptured):
                cfg = self.config
                trade = dataclasses.replace(
                    event.trade,
                    clearing_house=Party(cfg.clearing_house, PartyRole.CLEARING_ORGANIZATION),
                    clearing_firm=(
                        Party(cfg.clearing_firm, PartyRole.CLEARING_FIRM)
                        if cfg.clearing_firm
                        else None
                    ),
                    allocations=self._split(event),
                )
                try:
                    capture(self.database, trade, event.at, clear=cfg.mode != "off")
                except Exception as exc:
                    self._hold(trade, event.at, exc)
                    continue
                # stored with its clearing message: the RFQ may now be Confirmed (and archived)
                confirmations.append(ConfirmTrade(trade.trade_id))
                self._charge(trade)
        return confirmations

    def _split(self, event: ev.TradeCaptured) -> tuple[Allocation, ...]:
        split = self.pre_allocations.take(event.client_id, event.client_ref)
        if split and sum(a.quantity for a in split) != event.trade.quantity:
            log.warning(
                "trade %s: pre-allocation of %s does not match the traded quantity %s; booked "
                "unallocated (the client may allocate with an AllocationInstruction)",
                event.trade.trade_id,
                sum(a.quantity for a in split),
                event.trade.quantity,
            )
            return ()
        return split

    def _charge(self, trade: TradeCapture) -> None:
        with self.core_lock:  # the trade now uses the client's credit
            self.orders.add_exposure(trade.client.party_id, trade_exposure(trade))

    def refusal(self) -> str | None:
        """Why new business must wait (trades captured but not yet stored), or None."""
        if not self._held:
            return None
        return f"database unavailable: {len(self._held)} trades not yet stored ({self.last_error})"

    @property
    def held(self) -> int:
        return len(self._held)

    def _hold(self, trade: TradeCapture, at: datetime, exc: Exception) -> None:
        self.last_error = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        log.error("trade %s not stored yet, held and retried: %s", trade.trade_id, self.last_error)
        with self._held_lock:
            self._held.append((trade, at))
            if self._retrying is None or not self._retrying.is_alive():
                self._retrying = threading.Thread(
                    target=self._retry, name="trade-capture-retry", daemon=True
                )
                self._retrying.start()

    def _retry(self) -> None:
        wait = threading.Event()
        clear = self.config.mode != "off"
        while True:
            wait.wait(self.retry_seconds)
            with self._held_lock:
                if not self._held:
                    self._retrying = None
                    return
                trade, at = self._held[0]
            try:
                capture(self.database, trade, at, clear=clear)
            except Exception as exc:
                self.last_error = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
                continue
            log.warning("held trade %s stored", trade.trade_id)
            self._charge(trade)
            if self.confirm is not None:
                try:
                    self.confirm(ConfirmTrade(trade.trade_id))
                except Exception:
                    log.exception("confirming trade %s failed", trade.trade_id)
            with self._held_lock:
                self._held.pop(0)
