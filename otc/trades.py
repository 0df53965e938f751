"""TradeCapture: the record of one executed trade, as clearing and reporting consume it.

A TradeCapture value never changes; a correction or bust is a new version of the trade
(:mod:`otc.trade_versions`). Listed-style instruments (crypto options, futures,
perpetuals) carry an :class:`~fixspec.instruments.Instrument` per leg; classic OTC products carry
their economic terms (:class:`IrsTerms`, :class:`FxOptionTerms`) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from fixspec.instruments import Instrument
from fixspec.messages import Side


class PartyRole(IntEnum):
    """FIX PartyRole(452) values used on trade reports."""

    EXECUTING_FIRM = 1
    CLEARING_FIRM = 4
    CLEARING_ORGANIZATION = 21
    CUSTOMER_ACCOUNT = 24


@dataclass(frozen=True, slots=True)
class Party:
    party_id: str
    role: PartyRole
    name: str | None = None
    lei: str | None = None


class DayCount(StrEnum):
    ACT_360 = "ACT/360"
    ACT_365_FIXED = "ACT/365.FIXED"
    THIRTY_360 = "30/360"


@dataclass(frozen=True, slots=True)
class IrsTerms:
    """A vanilla fixed-for-floating interest rate swap. ``payer_of_fixed`` is the party id paying
    the fixed leg."""

    currency: str
    notional: Decimal
    effective_date: date
    termination_date: date
    fixed_rate: Decimal
    floating_index: str  # e.g. "USD-SOFR-OIS Compound"
    fixed_day_count: DayCount
    floating_day_count: DayCount
    fixed_payment_frequency: str  # e.g. "1Y", "6M"
    floating_payment_frequency: str
    payer_of_fixed: str
    instrument_symbol: str | None = None  # the symbol it was negotiated as, if it was


class OptionStyle(StrEnum):
    EUROPEAN = "European"
    AMERICAN = "American"


@dataclass(frozen=True, slots=True)
class FxOptionTerms:
    """A vanilla FX option: the buyer may exchange ``put_amount`` of ``put_currency`` for
    ``call_amount`` of ``call_currency`` at ``strike`` (quoted ``strike_quote_basis``)."""

    put_currency: str
    put_amount: Decimal
    call_currency: str
    call_amount: Decimal
    strike: Decimal
    expiry_date: date
    expiry_time: str  # e.g. "10:00:00"
    expiry_business_center: str  # e.g. "USNY"
    value_date: date
    style: OptionStyle
    premium_currency: str
    premium_amount: Decimal
    premium_payment_date: date
    buyer: str
    seller: str
    instrument_symbol: str | None = None  # the symbol it was negotiated as, if it was


Product = Instrument | IrsTerms | FxOptionTerms


@dataclass(frozen=True, slots=True)
class TradeLeg:
    """One leg of a trade; ``side`` is the client's side on this leg."""

    leg_no: int
    product: Product
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class Allocation:
    """Part of the client's side booked to one account, optionally given up to another firm
    (the firm that clears it: PartyRole 14, give-up)."""

    account: str
    quantity: Decimal
    give_up_firm: str | None = None


@dataclass(frozen=True, slots=True)
class TradeCapture:
    """One executed trade between a client and a desk.

    ``price`` and ``quantity`` are the package figures the client agreed; ``legs`` hold what each
    leg traded at. Single-instrument trades have exactly one leg. Timestamps are UTC with
    microseconds: when the client asked, when the winning quote was made, when it was accepted,
    and when the trade executed.
    """

    trade_id: str
    side: Side  # the client's side of the package
    quantity: Decimal
    price: Decimal
    currency: str
    legs: tuple[TradeLeg, ...]
    client: Party
    desk: Party
    requested_at: datetime
    quoted_at: datetime
    accepted_at: datetime
    executed_at: datetime
    trade_date: date
    rfq_id: str | None = None
    quote_id: str | None = None
    clearing_house: Party | None = None
    clearing_firm: Party | None = None
    label: str | None = None  # the client's name for a strategy, from its RFQ
    account: str | None = None  # Account(1) of the client's side; set by a correction
    allocations: tuple[Allocation, ...] = ()  # the client's side split over accounts

    @property
    def is_multileg(self) -> bool:
        return len(self.legs) > 1

    @property
    def buyer(self) -> Party:
        return self.client if self.side is Side.BUY else self.desk

    @property
    def seller(self) -> Party:
        return self.desk if self.side is Side.BUY else self.client
