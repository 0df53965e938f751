"""Booking a captured trade: what the gateway does when the negotiation captures one.

The negotiation engine captures a trade (exactly once) and says so with ``TradeCaptured``; this
sink books it: the trade, with the clearing house and firm of ``[clearing]``, is stored with its
clearing message in one transaction; only then may the negotiation confirm it (and archive the
RFQ), so the sink answers with ``ConfirmTrade``; and the client's credit is charged.
"""

from __future__ import annotations

import dataclasses
import threading

from sqlalchemy.engine import Engine

from gateway.config import ClearingSection
from gateway.store.trades import capture
from otc.negotiation import events as ev
from otc.negotiation.commands import Command, ConfirmTrade
from otc.orders import OrderManager
from otc.trades import Party, PartyRole


class TradeBooking:
    """A :data:`gateway.negotiation.Sink`. ``core_lock`` guards the order core, whose credit
    exposure the trade now uses."""

    def __init__(
        self,
        config: ClearingSection,
        database: Engine,
        orders: OrderManager,
        core_lock: threading.RLock,
    ) -> None:
        self.config = config
        self.database = database
        self.orders = orders
        self.core_lock = core_lock

    def __call__(self, events: list[ev.Event]) -> list[Command]:
        confirmations: list[Command] = []
        for event in events:
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
                )
                capture(self.database, trade, event.at, clear=cfg.mode != "off")
                # stored with its clearing message: the RFQ may now be Confirmed (and archived)
                confirmations.append(ConfirmTrade(trade.trade_id))
                with self.core_lock:  # the trade now uses the client's credit
                    self.orders.add_exposure(trade.client.party_id, trade.quantity * trade.price)
        return confirmations
