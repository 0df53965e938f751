"""Venues behind one small adapter interface, and the deterministic simulated venue.

A venue takes commands and answers with :data:`VenueEvent` values. A synchronous venue (the
simulator) answers at once; a remote venue adapter returns ``[]`` and hands its events to
``OrderManager.on_venue`` when they arrive. Either way the order state machine is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from fixspec.instruments import Instrument
from fixspec.messages import OrdType, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class VenueOrder:
    order_id: str
    instrument: Instrument
    side: Side
    quantity: Decimal
    ord_type: OrdType
    price: Decimal | None
    time_in_force: TimeInForce


@dataclass(frozen=True, slots=True)
class Accepted:
    order_id: str


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The venue removed the rest of the order: on request or by its time in force."""

    order_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Replaced:
    order_id: str
    quantity: Decimal
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """The venue refused a new order, a cancel or a replace; ``unknown_symbol`` tells why it did."""

    order_id: str
    text: str
    unknown_symbol: bool = False


VenueEvent = Accepted | Fill | Cancelled | Replaced | Rejected


class Venue(Protocol):
    def submit(self, order: VenueOrder) -> list[VenueEvent]: ...

    def cancel(self, order_id: str) -> list[VenueEvent]: ...

    def replace(self, order_id: str, quantity: Decimal, price: Decimal | None) -> list[VenueEvent]:
        """``quantity`` is the new total order quantity (FIX OrderQty semantics)."""
        ...

    def reference_price(self, symbol: str) -> Decimal | None: ...

    def resume(self, order: VenueOrder, filled: Decimal) -> None:
        """Take back an order that was open before a restart, without matching it again."""
        ...


@dataclass(slots=True)
class _Resting:
    order: VenueOrder
    quantity: Decimal  # total order quantity
    price: Decimal | None
    filled: Decimal = Decimal(0)
    seq: int = 0

    @property
    def open_qty(self) -> Decimal:
        return self.quantity - self.filled


@dataclass
class SimulatedVenue:
    """Deterministic venue: a reference price per instrument and a fixed depth at that price.

    Marketable limit and market orders first cross resting contra orders (price-time priority, at
    the resting price), then take up to ``depth`` at the reference price; what is left of a limit
    order rests until cancelled, replaced or crossed, what is left of a market order is cancelled.
    IOC cancels any remainder; FOK fills completely or not at all.
    """

    reference_prices: Mapping[str, Decimal]
    depth: Decimal = Decimal(10)
    _resting: dict[str, _Resting] = field(default_factory=dict)
    _seq: int = 0

    def reference_price(self, symbol: str) -> Decimal | None:
        return self.reference_prices.get(symbol)

    def resume(self, order: VenueOrder, filled: Decimal) -> None:
        self._seq += 1
        rest = _Resting(order, order.quantity, order.price, filled, self._seq)
        self._resting[order.order_id] = rest

    # -- commands --------------------------------------------------------------------------

    def submit(self, order: VenueOrder) -> list[VenueEvent]:
        ref = self.reference_prices.get(order.instrument.symbol)
        if ref is None:
            return [Rejected(order.order_id, f"no market in {order.instrument.symbol}", True)]
        self._seq += 1
        rest = _Resting(order, order.quantity, order.price, seq=self._seq)
        if order.time_in_force is TimeInForce.FOK and self._available(rest, ref) < order.quantity:
            return [Accepted(order.order_id), Cancelled(order.order_id, "FOK not filled")]
        events: list[VenueEvent] = [Accepted(order.order_id)]
        events += self._match(rest, ref)
        if rest.open_qty > 0:
            if order.ord_type is OrdType.MARKET or order.time_in_force is TimeInForce.IOC:
                events.append(Cancelled(order.order_id, "no more liquidity"))
            else:
                self._resting[order.order_id] = rest
        return events

    def cancel(self, order_id: str) -> list[VenueEvent]:
        if self._resting.pop(order_id, None) is None:
            return [Rejected(order_id, "order is not open at the venue")]
        return [Cancelled(order_id, "cancelled on request")]

    def replace(self, order_id: str, quantity: Decimal, price: Decimal | None) -> list[VenueEvent]:
        rest = self._resting.get(order_id)
        if rest is None:
            return [Rejected(order_id, "order is not open at the venue")]
        if quantity <= rest.filled:
            return [Rejected(order_id, "new quantity does not exceed the filled quantity")]
        if price != rest.price or quantity > rest.quantity:
            self._seq += 1  # loses time priority, as on a real book
            rest.seq = self._seq
        rest.quantity, rest.price = quantity, price
        events: list[VenueEvent] = [Replaced(order_id, quantity, price)]
        del self._resting[order_id]
        events += self._match(rest, self.reference_prices[rest.order.instrument.symbol])
        if rest.open_qty > 0:
            self._resting[order_id] = rest
        return events

    # -- matching --------------------------------------------------------------------------

    def _crosses(self, rest: _Resting, px: Decimal) -> bool:
        if rest.order.ord_type is OrdType.MARKET or rest.price is None:
            return True
        return px <= rest.price if rest.order.side is Side.BUY else px >= rest.price

    def _contra(self, rest: _Resting) -> list[tuple[_Resting, Decimal]]:
        """The resting contra orders ``rest`` crosses, best first, each with its price."""
        symbol, side = rest.order.instrument.symbol, rest.order.side
        book = [
            (r, r.price)
            for r in self._resting.values()
            if r.order.instrument.symbol == symbol and r.order.side is not side and r.price
        ]
        sign = 1 if side is Side.BUY else -1  # a buyer wants the lowest offers first
        book.sort(key=lambda entry: (sign * entry[1], entry[0].seq))
        return [(r, price) for r, price in book if self._crosses(rest, price)]

    def _available(self, rest: _Resting, ref: Decimal) -> Decimal:
        total = sum((r.open_qty for r, _ in self._contra(rest)), Decimal(0))
        return total + (self.depth if self._crosses(rest, ref) else Decimal(0))

    def _match(self, rest: _Resting, ref: Decimal) -> list[VenueEvent]:
        events: list[VenueEvent] = []
        for other, price in self._contra(rest):
            qty = min(rest.open_qty, other.open_qty)
            if qty <= 0:
                break
            rest.filled += qty
            other.filled += qty
            events.append(Fill(rest.order.order_id, qty, price))
            events.append(Fill(other.order.order_id, qty, price))
            if other.open_qty == 0:
                del self._resting[other.order.order_id]
        if rest.open_qty > 0 and self._crosses(rest, ref):
            qty = min(rest.open_qty, self.depth)
            rest.filled += qty
            events.append(Fill(rest.order.order_id, qty, ref))
        return events
