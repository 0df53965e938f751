"""Instrument symbols: strict parsing into structure and a canonical form that round-trips."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec.instruments import (
    InstrumentError,
    InstrumentKind,
    PutCall,
    format_expiry,
    parse_symbol,
)


def test_option_symbol_is_parsed_into_its_parts() -> None:
    inst = parse_symbol("BTC-27DEC26-100000-C")
    assert inst.kind is InstrumentKind.OPTION
    assert inst.underlying == "BTC"
    assert inst.quote_currency == "USD"
    assert inst.expiry == date(2026, 12, 27)
    assert inst.strike == Decimal(100000)
    assert isinstance(inst.strike, Decimal)
    assert inst.put_call is PutCall.CALL
    assert inst.symbol == "BTC-27DEC26-100000-C"
    assert (inst.security_type, inst.cfi_code) == ("OPT", "OCXXXX")


def test_put_option_has_put_cfi_code_and_fractional_strike() -> None:
    inst = parse_symbol("ETH-3JAN27-0.5-P")
    assert inst.put_call is PutCall.PUT
    assert inst.strike == Decimal("0.5")
    assert inst.expiry == date(2027, 1, 3)
    assert inst.cfi_code == "OPXXXX"


def test_future_symbol() -> None:
    inst = parse_symbol("BTC-27DEC26")
    assert inst.kind is InstrumentKind.FUTURE
    assert inst.underlying == "BTC"
    assert inst.expiry == date(2026, 12, 27)
    assert inst.strike is None and inst.put_call is None
    assert (inst.security_type, inst.cfi_code) == ("FUT", "FFXXXX")


def test_perpetual_symbol() -> None:
    inst = parse_symbol("BTC-PERP")
    assert inst.kind is InstrumentKind.PERPETUAL
    assert inst.underlying == "BTC"
    assert inst.quote_currency == "USD"
    assert inst.expiry is None
    assert (inst.security_type, inst.cfi_code) == ("FUT", "FFXXXX")


def test_spot_symbol_names_base_and_quote() -> None:
    inst = parse_symbol("ETH-BTC")
    assert inst.kind is InstrumentKind.SPOT
    assert (inst.underlying, inst.quote_currency) == ("ETH", "BTC")
    assert (inst.security_type, inst.cfi_code) == ("FOR", "MRCXXX")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("btc-27dec26-100000-c", "BTC-27DEC26-100000-C"),
        ("  BTC-PERP ", "BTC-PERP"),
        ("BTC-07DEC26", "BTC-7DEC26"),
        ("btc-usd", "BTC-USD"),
    ],
)
def test_spellings_are_canonicalised(spelling: str, canonical: str) -> None:
    assert parse_symbol(spelling).symbol == canonical
    assert parse_symbol(spelling) == parse_symbol(canonical)


@pytest.mark.parametrize(
    "spelling",
    ["BTC-27DEC26-100000.0-C", "BTC-27DEC26-0100000-C", "BTC-27DEC26-100000.000-C"],
)
def test_one_strike_has_one_canonical_symbol(spelling: str) -> None:
    # A reference price or an order book is keyed by the canonical symbol, so two spellings of
    # the same strike must not become two instruments.
    assert parse_symbol(spelling).symbol == "BTC-27DEC26-100000-C"
    assert parse_symbol(spelling) == parse_symbol("BTC-27DEC26-100000-C")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "BTC",
        "B-PERP",  # asset too short
        "BTC-31FEB26",  # no such day
        "BTC-27XYZ26",  # no such month
        "BTC-27DEC26-0-C",  # strike must be positive
        "BTC-27DEC26-100000-X",
        "BTC-27DEC26-100000",
        "BTC-27DEC26--100000-C",
        "BTC-27DEC26-1e5-C",
        "BTC_PERP",
        "BTC-PERP-C",
        "1BTC-PERP",
        "BTC-USD-EXTRA",
        "BTC-27DEC2026",
    ],
)
def test_bad_symbols_raise_instrument_error_naming_the_symbol(bad: str) -> None:
    with pytest.raises(InstrumentError) as info:
        parse_symbol(bad)
    if bad:
        assert bad in str(info.value)


def test_non_string_symbol_is_an_instrument_error() -> None:
    with pytest.raises(InstrumentError):
        parse_symbol(None)  # type: ignore[arg-type]


def test_format_expiry_does_not_zero_pad_the_day() -> None:
    assert format_expiry(date(2026, 12, 27)) == "27DEC26"
    assert format_expiry(date(2027, 3, 5)) == "5MAR27"


# --- properties -------------------------------------------------------------------------

ASSETS = st.from_regex(r"\A[A-Z][A-Z0-9]{1,9}\Z")
EXPIRIES = st.dates(min_value=date(2000, 1, 1), max_value=date(2068, 12, 31))
STRIKES = st.builds(
    lambda units, exp: Decimal(units).scaleb(exp),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=-6, max_value=3),
)


def _strike_text(strike: Decimal) -> str:
    return format(strike, "f")


@st.composite
def symbols(draw) -> str:
    """Any spelling of a valid symbol, in any of the four families."""
    asset = draw(ASSETS)
    kind = draw(st.sampled_from(list(InstrumentKind)))
    if kind is InstrumentKind.PERPETUAL:
        text = f"{asset}-PERP"
    elif kind is InstrumentKind.SPOT:
        quote = draw(ASSETS.filter(lambda q: q != "PERP"))
        text = f"{asset}-{quote}"
    else:
        expiry = draw(EXPIRIES)
        day = draw(st.sampled_from([str(expiry.day), f"{expiry.day:02d}"]))
        exp = f"{day}{expiry.strftime('%b%y').upper()}"
        if kind is InstrumentKind.FUTURE:
            text = f"{asset}-{exp}"
        else:
            pc = draw(st.sampled_from("CP"))
            text = f"{asset}-{exp}-{_strike_text(draw(STRIKES))}-{pc}"
    return draw(st.sampled_from([text, text.lower(), f" {text} "]))


@settings(max_examples=200)
@given(symbols())
def test_canonical_symbol_round_trips(text: str) -> None:
    inst = parse_symbol(text)
    again = parse_symbol(inst.symbol)
    assert again == inst
    assert again.symbol == inst.symbol
    assert inst.symbol == inst.symbol.strip().upper()


@settings(max_examples=200)
@given(ASSETS, EXPIRIES, STRIKES, st.sampled_from(list(PutCall)))
def test_option_fields_survive_formatting(
    asset: str, expiry: date, strike: Decimal, pc: PutCall
) -> None:
    inst = parse_symbol(f"{asset}-{format_expiry(expiry)}-{_strike_text(strike)}-{pc.value}")
    assert inst.kind is InstrumentKind.OPTION
    assert (inst.underlying, inst.expiry, inst.strike, inst.put_call) == (asset, expiry, strike, pc)
