"""Deterministic sample trades, one per cleared product, for golden files, demos and benchmarks.

Every figure is fixed, so rendering them twice yields identical bytes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fixspec.instruments import parse_symbol
from fixspec.messages import Side
from otc.trades import (
    DayCount,
    FxOptionTerms,
    IrsTerms,
    OptionStyle,
    Party,
    PartyRole,
    Product,
    TradeCapture,
    TradeLeg,
)

CLIENT = Party(
    "ACME-FUND-01", PartyRole.CUSTOMER_ACCOUNT, "Acme Macro Fund", "5493001KJTIIGC8Y1R12"
)
DESK = Party(
    "FXB-DESK", PartyRole.EXECUTING_FIRM, "Fixbridge Derivatives Desk", "213800ABCDEFGH123456"
)
CCP = Party("SIMCCP", PartyRole.CLEARING_ORGANIZATION, "Simulated CCP")
CLEARING_FIRM = Party("FCM-ONE", PartyRole.CLEARING_FIRM, "FCM One Clearing")

_BASE = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)


def _trade(
    trade_id: str,
    side: Side,
    quantity: str,
    price: str,
    currency: str,
    legs: tuple[TradeLeg, ...],
    *,
    minutes: int,
    rfq_id: str | None = None,
) -> TradeCapture:
    executed = _BASE + timedelta(minutes=minutes)
    return TradeCapture(
        trade_id=trade_id,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        currency=currency,
        legs=legs,
        client=CLIENT,
        desk=DESK,
        requested_at=executed - timedelta(seconds=3, microseconds=250),
        quoted_at=executed - timedelta(seconds=2, microseconds=500),
        accepted_at=executed - timedelta(microseconds=750),
        executed_at=executed,
        trade_date=executed.date(),
        rfq_id=rfq_id,
        quote_id=f"Q-{rfq_id}" if rfq_id else None,
        clearing_house=CCP,
        clearing_firm=CLEARING_FIRM,
    )


def _leg(no: int, product: Product, side: Side, qty: str, px: str) -> TradeLeg:
    return TradeLeg(no, product, side, Decimal(qty), Decimal(px))


def option_trade() -> TradeCapture:
    opt = parse_symbol("BTC-27DEC26-100000-C")
    return _trade(
        "T-OPT-0001",
        Side.BUY,
        "25",
        "4125.5",
        "USD",
        (_leg(1, opt, Side.BUY, "25", "4125.5"),),
        minutes=0,
    )


def future_trade() -> TradeCapture:
    fut = parse_symbol("ETH-26JUN26")
    return _trade(
        "T-FUT-0001",
        Side.SELL,
        "150",
        "3512.25",
        "USD",
        (_leg(1, fut, Side.SELL, "150", "3512.25"),),
        minutes=1,
    )


def perpetual_trade() -> TradeCapture:
    perp = parse_symbol("BTC-PERP")
    return _trade(
        "T-PERP-0001",
        Side.BUY,
        "0.75",
        "87654.5",
        "USD",
        (_leg(1, perp, Side.BUY, "0.75", "87654.5"),),
        minutes=2,
    )


def block_multileg_trade() -> TradeCapture:
    """A call spread negotiated by RFQ: reported as a block trade with two legs."""
    long_call = parse_symbol("BTC-27DEC26-100000-C")
    short_call = parse_symbol("BTC-27DEC26-120000-C")
    return _trade(
        "T-BLK-0001",
        Side.BUY,
        "200",
        "1830",
        "USD",
        (
            _leg(1, long_call, Side.BUY, "200", "4120"),
            _leg(2, short_call, Side.SELL, "200", "2290"),
        ),
        minutes=3,
        rfq_id="RFQ-0042",
    )


def irs_trade() -> TradeCapture:
    terms = IrsTerms(
        currency="USD",
        notional=Decimal("50000000"),
        effective_date=date(2026, 3, 4),
        termination_date=date(2031, 3, 4),
        fixed_rate=Decimal("0.0375"),
        floating_index="USD-SOFR-OIS Compound",
        fixed_day_count=DayCount.ACT_360,
        floating_day_count=DayCount.ACT_360,
        fixed_payment_frequency="1Y",
        floating_payment_frequency="1Y",
        payer_of_fixed=CLIENT.party_id,
    )
    return _trade(
        "T-IRS-0001",
        Side.BUY,
        "50000000",
        "0.0375",
        "USD",
        (_leg(1, terms, Side.BUY, "50000000", "0.0375"),),
        minutes=4,
        rfq_id="RFQ-0043",
    )


def fx_option_trade() -> TradeCapture:
    terms = FxOptionTerms(
        put_currency="EUR",
        put_amount=Decimal("10000000"),
        call_currency="USD",
        call_amount=Decimal("11000000"),
        strike=Decimal("1.1"),
        expiry_date=date(2026, 6, 2),
        expiry_time="10:00:00",
        expiry_business_center="USNY",
        value_date=date(2026, 6, 4),
        style=OptionStyle.EUROPEAN,
        premium_currency="USD",
        premium_amount=Decimal("145000"),
        premium_payment_date=date(2026, 3, 4),
        buyer=CLIENT.party_id,
        seller=DESK.party_id,
    )
    return _trade(
        "T-FXO-0001",
        Side.BUY,
        "10000000",
        "0.0145",
        "USD",
        (_leg(1, terms, Side.BUY, "10000000", "0.0145"),),
        minutes=5,
        rfq_id="RFQ-0044",
    )


def all_samples() -> dict[str, TradeCapture]:
    """Product name -> sample trade; the names are the golden file stems."""
    return {
        "option": option_trade(),
        "future": future_trade(),
        "perpetual": perpetual_trade(),
        "block_multileg": block_multileg_trade(),
        "irs": irs_trade(),
        "fx_option": fx_option_trade(),
    }
