"""Classic OTC instruments (swaps, FX options): symbols, FIX layout, capture and FpML.

The FIX messages go through QuickFIX's parser and validator against the gateway's dictionary
(the helpers of tests/test_fix_rfq.py); the negotiation is a real engine; the FpML is validated
against the official FpML 5.10 confirmation schema.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import quickfix as fix
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from fixspec.classic import add_business_days, add_tenor, fx_option_spec, irs_spec
from fixspec.codec import DecodeError, RawMessage, groups
from fixspec.instruments import InstrumentError, InstrumentKind, PutCall, parse_symbol
from fixspec.messages import Side
from gateway.clearinghouse.schemas import FPML_MAIN, compile_schema
from gateway.fix.dictionary import write_dictionary
from gateway.fix.rfq_client import decode_quote, encode_client_rfq
from gateway.fix.rfq_fields import RELATED_SYM_MEMBERS
from gateway.fix.rfq_inbound import decode_client
from gateway.fix.rfq_outbound import encode_for_client, reject_for_rfq
from otc.clearing import fpml
from otc.clearing.codec import render
from otc.clearing.model import ClearingFormat
from otc.negotiation import LegRequest, SubmitQuote, SubmitRfq
from otc.negotiation import events as ev
from otc.trades import DayCount, FxOptionTerms, IrsTerms, OptionStyle, Party, PartyRole
from tests.harness import shared_dir
from tests.test_fix_rfq import from_client, rfq_of, to_client
from tests.test_negotiation_support import (
    CLIENT,
    D,
    accept,
    at,
    make_engine,
    one,
    open_rfq,
    quote,
    terms,
)

SWAP = "IRS-USD-SOFR-5Y"
DATED_SWAP = "IRS-USD-SOFR-20260304-20310304"
FX_CALL = "EUR/USD-19MAR27-1.1-C"
ROUTES = {CLIENT: {"irs": ["DESK-A"], "fx_option": ["DESK-B"], "*": ["DESK-C"]}}


@pytest.fixture(scope="module")
def dd(tmp_path_factory) -> fix.DataDictionary:
    """The dictionary the gateway loads (stock FIX44.xml plus our fields and values)."""
    return fix.DataDictionary(str(write_dictionary(tmp_path_factory.mktemp("dict"))))


# --- symbols --------------------------------------------------------------------------------


def test_swap_by_tenor_takes_the_market_conventions_of_its_index() -> None:
    inst = parse_symbol("irs-usd-sofr-5y")
    assert (inst.symbol, inst.kind, inst.quote_currency) == (SWAP, InstrumentKind.IRS, "USD")
    assert (inst.security_type, inst.cfi_code) == ("IRS", "SRXXXX")
    conv = inst.terms.convention
    assert (conv.floating_index, conv.fixed_day_count, conv.fixed_frequency) == (
        "USD-SOFR-OIS Compound",
        "ACT/360",
        "1Y",
    )
    # Friday 2026-03-06 + 2 business days = Tuesday 2026-03-10, then five years
    assert inst.terms.dates(date(2026, 3, 6)) == (date(2026, 3, 10), date(2031, 3, 10))


def test_euribor_swap_pays_fixed_annual_30_360_against_six_month_floating() -> None:
    conv = parse_symbol("IRS-EUR-EURIBOR-10Y").terms.convention
    assert (conv.fixed_day_count, conv.floating_frequency, conv.floating_day_count) == (
        "30/360",
        "6M",
        "ACT/360",
    )


def test_a_leg_off_the_market_standard_is_named_in_the_symbol() -> None:
    inst = parse_symbol("IRS-EUR-EURIBOR-10Y-FLT:3M:ACT/360")
    conv = inst.terms.convention
    assert (conv.fixed_frequency, conv.fixed_day_count) == ("1Y", "30/360")  # standard
    assert (conv.floating_frequency, conv.floating_day_count) == ("3M", "ACT/360")
    assert not inst.terms.standard
    explicit = irs_spec("USD", "SOFR", tenor="5Y", fixed_frequency="1Y", fixed_day_count="ACT/360")
    assert (explicit.symbol, explicit.standard) == (SWAP, True)  # the standard, said aloud
    spec = irs_spec("USD", "SOFR", tenor="5Y", fixed_frequency="6M", fixed_day_count="30/360")
    assert spec.symbol == "IRS-USD-SOFR-5Y-FIX:6M:30/360"
    assert parse_symbol(spec.symbol).terms == spec


def test_dated_and_forward_starting_swaps() -> None:
    dated = parse_symbol(DATED_SWAP)
    assert dated.terms.dates(date(2026, 3, 2)) == (date(2026, 3, 4), date(2031, 3, 4))
    assert dated.expiry == date(2031, 3, 4)
    forward = parse_symbol("IRS-GBP-SONIA-20270131-18M")
    assert forward.terms.dates(date(2026, 3, 2)) == (date(2027, 1, 31), date(2028, 7, 31))


def test_fx_option_symbol_carries_pair_expiry_strike_side_and_premium_currency() -> None:
    inst = parse_symbol("EUR/USD-19MAR27-1.10-C")
    assert (inst.symbol, inst.kind, inst.underlying) == (FX_CALL, InstrumentKind.FX_OPTION, "EUR")
    assert (inst.expiry, inst.strike, inst.put_call) == (date(2027, 3, 19), D("1.1"), PutCall.CALL)
    assert inst.quote_currency == "USD"  # the premium's currency
    in_base = parse_symbol("EUR/USD-19MAR27-1.1-P-EUR")
    assert (in_base.quote_currency, in_base.symbol) == ("EUR", "EUR/USD-19MAR27-1.1-P-EUR")
    assert parse_symbol("EUR/USD-19MAR27-1.1-C-USD").symbol == FX_CALL  # the default, dropped
    assert inst.terms.value_date() == date(2027, 3, 23)  # Friday expiry, settles Tuesday


@pytest.mark.parametrize(
    ("symbol", "words"),
    [
        ("IRS-USD-LIBOR-5Y", "no swap convention for USD LIBOR"),
        ("IRS-USD-SOFR", "IRS-<currency>-<index>"),
        ("IRS-USD-SOFR-0Y", "tenor '0Y'"),
        ("IRS-USD-SOFR-60Y", "up to 50Y"),
        ("IRS-USD-SOFR-20270101-20260101", "not after effective date"),
        ("IRS-USD-SOFR-20261341", "termination date '20261341'"),
        ("IRS-USD-SOFR-5Y-FIX:2M:ACT/360", "is not FIX|FLT"),
        ("IRS-USD-SOFR-5Y-FLT:3M:ACT/999", "floating day count 'ACT/999' is not one of"),
        ("IRS-USD-SOFR-5Y-FIX:6M:30/360-FIX:1Y:30/360", "fixed leg is given twice"),
        ("EUR/EUR-19MAR27-1.1-C", "names one currency twice"),
        ("EUR/USD-19MAR27-1.1-C-GBP", "premium currency GBP is neither EUR nor USD"),
        ("EUR/USD-31FEB27-1.1-C", "expiry '31FEB27'"),
        ("EUR/USD-19MAR27-0-C", "strike"),
        ("EUR/USD-19MAR27-1.1", "<BASE>/<QUOTE>-<expiry"),
    ],
)
def test_bad_classic_symbols_are_instrument_errors_saying_what_is_wrong(symbol, words) -> None:
    with pytest.raises(InstrumentError) as info:
        parse_symbol(symbol)
    assert words in str(info.value)


def test_a_swap_needs_exactly_one_maturity() -> None:
    with pytest.raises(ValueError, match="needs its maturity"):
        irs_spec("USD", "SOFR")
    with pytest.raises(ValueError, match="needs its maturity"):
        irs_spec("USD", "SOFR", tenor="5Y", termination_date=date(2031, 3, 4))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([("USD", "SOFR"), ("EUR", "ESTR"), ("EUR", "EURIBOR"), ("GBP", "SONIA")]),
    st.one_of(
        st.builds(lambda n, u: f"{n}{u}", st.integers(1, 40), st.sampled_from("MY")),
        st.dates(date(2027, 1, 1), date(2060, 1, 1)),
    ),
    st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
)
def test_swap_symbols_round_trip(pair, maturity, start) -> None:
    kw = {"tenor": maturity} if isinstance(maturity, str) else {"termination_date": maturity}
    spec = irs_spec(*pair, effective_date=start, **kw)
    assert parse_symbol(spec.symbol).terms == spec


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["EUR/USD", "USD/JPY", "GBP/USD", "USD/CAD"]),
    st.dates(date(2026, 1, 1), date(2035, 12, 31)),
    st.builds(lambda u, p: Decimal(u).scaleb(-p), st.integers(1, 10**6), st.integers(0, 4)),
    st.booleans(),
    st.booleans(),
)
def test_fx_option_symbols_round_trip(pair, expiry, strike, call, premium_in_base) -> None:
    spec = fx_option_spec(pair, expiry, strike, call, pair[:3] if premium_in_base else None)
    again = parse_symbol(spec.symbol).terms
    assert (again.pair, again.expiry, again.strike, again.call) == (pair, expiry, strike, call)
    assert again.premium_currency == spec.premium_currency


def test_business_days_and_tenors() -> None:
    assert add_business_days(date(2026, 3, 6), 2) == date(2026, 3, 10)
    assert add_business_days(date(2026, 3, 2), 0) == date(2026, 3, 2)
    assert add_tenor(date(2026, 1, 31), "1M") == date(2026, 2, 28)
    assert add_tenor(date(2024, 2, 29), "1Y") == date(2025, 2, 28)


# --- negotiation and capture ----------------------------------------------------------------


def _trade_for(symbol: str, side: Side, bid: str, offer: str, desk: str, qty: str):
    engine = make_engine(ROUTES)
    rfq_id = open_rfq(engine, legs=(LegRequest(symbol, Side.BUY),), quantity=D(qty))
    sealed = quote(engine, desk, rfq_id, bid, offer, at(1))
    events = engine.handle(accept(sealed, side), at(2))
    return engine, one(events, ev.TradeCaptured)


def test_swaps_and_fx_options_route_to_their_own_desks() -> None:
    engine = make_engine(ROUTES)
    events = engine.handle(
        SubmitRfq(CLIENT, "QR-S", (LegRequest(SWAP, Side.BUY),), D("10000000")), at(0)
    )
    assert one(events, ev.RfqAcknowledged).desk_ids == ("DESK-A",)
    events = engine.handle(
        SubmitRfq(CLIENT, "QR-F", (LegRequest(FX_CALL, Side.BUY),), D("5000000")), at(0)
    )
    assert one(events, ev.RfqAcknowledged).desk_ids == ("DESK-B",)


def test_a_classic_instrument_is_not_a_strategy_leg() -> None:
    engine = make_engine(ROUTES)
    legs = (LegRequest(SWAP, Side.BUY), LegRequest("IRS-USD-SOFR-10Y", Side.SELL))
    events = engine.handle(SubmitRfq(CLIENT, "QR-2", legs, D("1"), multileg=True), at(0))
    assert "negotiated alone" in one(events, ev.QuoteRequestRejected).text


def test_paying_fixed_captures_swap_terms_dated_from_the_trade_date() -> None:
    _, captured = _trade_for(SWAP, Side.BUY, "0.0371", "0.0375", "DESK-A", "25000000")
    trade = captured.trade
    (leg,) = trade.legs
    assert isinstance(leg.product, IrsTerms)
    assert leg.product == IrsTerms(
        currency="USD",
        notional=D("25000000"),
        effective_date=date(2026, 3, 4),  # trade date Monday 2026-03-02, T+2
        termination_date=date(2031, 3, 4),
        fixed_rate=D("0.0375"),
        floating_index="USD-SOFR-OIS Compound",
        fixed_day_count=DayCount.ACT_360,
        floating_day_count=DayCount.ACT_360,
        fixed_payment_frequency="1Y",
        floating_payment_frequency="1Y",
        payer_of_fixed=CLIENT,
        instrument_symbol=SWAP,
    )
    assert (trade.currency, trade.price, trade.quantity) == ("USD", D("0.0375"), D("25000000"))


def test_receiving_fixed_makes_the_desk_the_payer_at_its_bid() -> None:
    _, captured = _trade_for(SWAP, Side.SELL, "0.0371", "0.0375", "DESK-A", "25000000")
    (leg,) = captured.trade.legs
    assert (leg.product.payer_of_fixed, leg.product.fixed_rate) == ("DESK-A", D("0.0371"))


def test_a_swap_rate_may_be_negative_but_an_option_premium_may_not() -> None:
    _, captured = _trade_for("IRS-EUR-ESTR-2Y", Side.SELL, "-0.0025", "-0.0015", "DESK-A", "1000")
    (leg,) = captured.trade.legs
    assert (leg.product.fixed_rate, leg.product.payer_of_fixed) == (D("-0.0025"), "DESK-A")
    engine = make_engine(ROUTES)
    rfq_id = open_rfq(engine, legs=(LegRequest(FX_CALL, Side.BUY),), quantity=D("1000"))
    events = engine.handle(SubmitQuote("DESK-B", rfq_id, terms("-0.01", "0.01", now=at(1))), at(1))
    assert "must be positive" in one(events, ev.DeskActionRejected).text


def test_buying_an_fx_call_captures_option_terms_and_premium() -> None:
    _, captured = _trade_for(FX_CALL, Side.BUY, "0.0140", "0.0145", "DESK-B", "10000000")
    (leg,) = captured.trade.legs
    assert leg.product == FxOptionTerms(
        put_currency="USD",
        put_amount=D("11000000.0"),
        call_currency="EUR",
        call_amount=D("10000000"),
        strike=D("1.1"),
        expiry_date=date(2027, 3, 19),
        expiry_time="10:00:00",
        expiry_business_center="USNY",
        value_date=date(2027, 3, 23),
        style=OptionStyle.EUROPEAN,
        premium_currency="USD",
        premium_amount=D("145000.0000"),
        premium_payment_date=date(2026, 3, 4),
        buyer=CLIENT,
        seller="DESK-B",
        instrument_symbol=FX_CALL,
    )


@pytest.fixture(scope="module")
def fpml_schema():
    return compile_schema(shared_dir() / "schemas" / "fpml-5-10" / "confirmation" / FPML_MAIN)


@pytest.mark.parametrize(
    ("symbol", "desk", "product"),
    [(SWAP, "DESK-A", IrsTerms), ("IRS-EUR-EURIBOR-20270115-7Y", "DESK-A", IrsTerms),
     ("IRS-GBP-SONIA-20310304-FIX:6M:ACT/365.FIXED-FLT:3M:ACT/365.FIXED", "DESK-A", IrsTerms),
     (FX_CALL, "DESK-B", FxOptionTerms), ("USD/JPY-2SEP26-150-P-USD", "DESK-B", FxOptionTerms)],
)  # fmt: skip
def test_negotiated_trades_render_as_schema_valid_fpml(fpml_schema, symbol, desk, product) -> None:
    _, captured = _trade_for(symbol, Side.BUY, "0.02", "0.021", desk, "1000000")
    trade = captured.trade.__class__(
        **{
            **{f: getattr(captured.trade, f) for f in captured.trade.__dataclass_fields__},
            "clearing_house": Party("SIMCCP", PartyRole.CLEARING_ORGANIZATION),
        }
    )
    message = render(trade)
    assert message.fmt is ClearingFormat.FPML_REQUEST_CLEARING
    assert fpml_schema.errors(etree.fromstring(message.body)) == []
    view = fpml.read_request_clearing(etree.fromstring(message.body))
    assert isinstance(view.product, product)


# --- FIX ------------------------------------------------------------------------------------


def _request(entry: list[tuple[int, str]], req_id: str = "QR-C") -> RawMessage:
    body = [(131, req_id), (146, "1"), *entry]
    return RawMessage("R", ((35, "R"), *body))


DATED_SWAP_FIELDS = [(55, "USD-SOFR"), (167, "IRS"), (541, "20310304"), (916, "20260304")]
FX_FIELDS = [(55, "EUR/USD"), (167, "OPT"), (460, "4"), (541, "20270319"), (201, "1"),
             (202, "1.1")]  # fmt: skip


def test_swap_request_in_instrument_fields_passes_quickfix_and_decodes(dd) -> None:
    raw = from_client(dd, _request([*DATED_SWAP_FIELDS, (15, "USD"), (54, "1"), (38, "1000000")]))
    cmd = decode_client(raw, CLIENT)
    assert cmd.legs == (LegRequest(DATED_SWAP, Side.BUY),)
    assert (cmd.quantity, cmd.side) == (D("1000000"), Side.BUY)


def test_fx_option_request_in_instrument_fields_decodes(dd) -> None:
    raw = from_client(dd, _request([*FX_FIELDS, (15, "EUR"), (38, "5000000")]))
    assert decode_client(raw, CLIENT).legs == (LegRequest("EUR/USD-19MAR27-1.1-C-EUR", Side.BUY),)


@pytest.mark.parametrize(
    "symbol",
    [
        SWAP,
        DATED_SWAP,
        "IRS-EUR-EURIBOR-20310304-FLT:3M:ACT/360",
        FX_CALL,
        "EUR/USD-19MAR27-1.1-P-EUR",
    ],
)
@pytest.mark.parametrize("details", [True, False])
def test_classic_requests_round_trip_through_the_dictionary(dd, symbol, details) -> None:
    cmd = SubmitRfq(CLIENT, "QR-RT", (LegRequest(symbol, Side.BUY),), D("2500000"), Side.SELL)
    raw = encode_client_rfq(cmd, details=details)
    assert decode_client(from_client(dd, raw), CLIENT) == cmd


@pytest.mark.parametrize(
    ("entry", "tag", "words"),
    [
        ([(55, "USD-SOFR"), (167, "IRS"), (38, "1000000")], 541, "MaturityDate(541) is required"),
        ([(55, "SOFR"), (167, "IRS"), (541, "20310304")], 55, "<currency>-<index>"),
        ([(55, "USD-LIBOR"), (167, "IRS"), (541, "20310304")], 55, "no swap convention"),
        ([*DATED_SWAP_FIELDS, (15, "EUR")], 15, "Currency(15) 'EUR' contradicts"),
        ([(55, "USD-SOFR"), (167, "IRS"), (541, "2031-03-04")], 541, "YYYYMMDD"),
        ([f for f in FX_FIELDS if f[0] != 202], 202, "StrikePrice(202) is required"),
        ([f for f in FX_FIELDS if f[0] != 201], 201, "PutOrCall(201) is required"),
        ([f for f in FX_FIELDS if f[0] != 541], 541, "needs its expiry"),
        ([*FX_FIELDS, (15, "GBP")], 15, "premium currency GBP"),
        ([(55, SWAP), (167, "IRS"), (541, "20310304")], 541, "contradicts Symbol"),
    ],
)
def test_bad_classic_requests_are_decode_errors_naming_the_tag(entry, tag, words) -> None:
    with pytest.raises(DecodeError) as info:
        decode_client(_request([*entry, (38, "1")]), CLIENT)
    assert info.value.tag == tag
    assert words in info.value.text


def test_swap_request_without_maturity_is_answered_with_quote_request_reject(dd) -> None:
    raw = from_client(dd, _request([(55, "USD-SOFR"), (167, "IRS"), (54, "1"), (38, "5000000")]))
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    assert (answer.msg_type, answer.get(131), answer.get(658)) == ("AG", "QR-C", "99")
    assert "MaturityDate(541) is required" in answer.get(58)
    (echo,) = groups(answer, 146, RELATED_SYM_MEMBERS)
    assert echo.get(55) == "USD-SOFR"


def test_quote_execution_and_trade_report_carry_the_instrument_back(dd) -> None:
    engine = make_engine(ROUTES)
    cmd = SubmitRfq(CLIENT, "QR-B", (LegRequest(FX_CALL, Side.BUY),), D("10000000"))
    events = engine.handle(cmd, at(0))
    rfq = rfq_of(engine, one(events, ev.RfqAcknowledged))
    sealed = quote(engine, "DESK-B", rfq.rfq_id, "0.0140", "0.0145", at(1))
    events = engine.handle(accept(sealed, Side.BUY, "ORD-FX"), at(2))
    trade_event = one(events, ev.TradeCaptured)
    answers = to_client(dd, encode_for_client(trade_event, rfq=rfq))
    by_type = {m.msg_type: m for m in answers}
    er, ae = by_type["8"], by_type["AE"]
    for msg in (er, ae):
        assert [msg.get(t) for t in (55, 167, 460, 541, 201, 202)] == [
            "EUR/USD", "OPT", "4", "20270319", "1", "1.1"
        ]  # fmt: skip
    assert (er.get(15), er.get(31), er.get(32)) == ("USD", "0.0145", "10000000")


def test_forward_swap_fill_reports_carry_start_and_end_dates(dd) -> None:
    engine = make_engine(ROUTES)
    cmd = SubmitRfq(CLIENT, "QR-W", (LegRequest(DATED_SWAP, Side.BUY),), D("10000000"))
    rfq = rfq_of(engine, one(engine.handle(cmd, at(0)), ev.RfqAcknowledged))
    sealed = quote(engine, "DESK-A", rfq.rfq_id, "0.0371", "0.0375", at(1))
    captured = one(engine.handle(accept(sealed, Side.SELL, "ORD-W"), at(2)), ev.TradeCaptured)
    by_type = {m.msg_type: m for m in to_client(dd, encode_for_client(captured, rfq=rfq))}
    for msg in (by_type["8"], by_type["AE"]):
        assert [msg.get(t) for t in (55, 167, 541, 916)] == [
            "USD-SOFR", "IRS", "20310304", "20260304"
        ]  # fmt: skip
    assert (by_type["8"].get(54), by_type["8"].get(31)) == ("2", "0.0371")


def test_quote_to_client_carries_the_swap_fields(dd) -> None:
    engine = make_engine(ROUTES)
    cmd = SubmitRfq(CLIENT, "QR-Q", (LegRequest(DATED_SWAP, Side.BUY),), D("10000000"))
    rfq = rfq_of(engine, one(engine.handle(cmd, at(0)), ev.RfqAcknowledged))
    events = engine.handle(
        SubmitQuote("DESK-A", rfq.rfq_id, terms("0.0371", "0.0375", now=at(1))), at(1)
    )
    (s,) = to_client(dd, encode_for_client(one(events, ev.QuoteToClient), rfq=rfq))
    assert [s.get(t) for t in (55, 167, 541, 916, 15)] == [
        "USD-SOFR", "IRS", "20310304", "20260304", "USD"
    ]  # fmt: skip
    view = decode_quote(s)
    assert (view.bid_px, view.offer_px) == (D("0.0371"), D("0.0375"))


def test_an_unknown_swap_index_is_refused_by_the_negotiation() -> None:
    engine = make_engine(ROUTES)
    events = engine.handle(
        SubmitRfq(CLIENT, "QR-U", (LegRequest("IRS-USD-FOO-5Y", Side.BUY),), D("1")), at(0)
    )
    refusal = one(events, ev.QuoteRequestRejected)
    assert "no swap convention for USD FOO" in refusal.text
