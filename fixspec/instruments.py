"""Instrument symbols parsed into structure.

Symbols follow the crypto-venue convention used by our clients:
``BTC-27DEC26-100000-C`` (option), ``BTC-27DEC26`` (future), ``BTC-PERP`` (perpetual),
``BTC-USD`` (spot pair). Classic OTC products have their own conventions
(:mod:`fixspec.classic`): ``IRS-USD-SOFR-5Y`` (interest rate swap), ``EUR/USD-19MAR27-1.1-C`` (FX
option). Parsing is strict: a symbol that does not fit is an error, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from fixspec.classic import (
    ClassicTermsError,
    FxOptionSpec,
    IrsSpec,
    is_classic_symbol,
    parse_fx_option,
    parse_irs,
)


class InstrumentKind(StrEnum):
    OPTION = "option"
    FUTURE = "future"
    PERPETUAL = "perpetual"
    SPOT = "spot"
    IRS = "irs"
    FX_OPTION = "fx_option"


class PutCall(StrEnum):
    PUT = "P"
    CALL = "C"


class InstrumentError(ValueError):
    """A symbol that does not describe an instrument we know how to trade."""


DEFAULT_QUOTE_CURRENCY = "USD"
_ASSET = r"[A-Z][A-Z0-9]{1,9}"
_EXPIRY = r"\d{1,2}[A-Z]{3}\d{2}"
_OPTION = re.compile(rf"^({_ASSET})-({_EXPIRY})-(\d+(?:\.\d+)?)-([CP])$")
_FUTURE = re.compile(rf"^({_ASSET})-({_EXPIRY})$")
_PERP = re.compile(rf"^({_ASSET})-PERP$")
_SPOT = re.compile(rf"^({_ASSET})-({_ASSET})$")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradeable instrument; ``symbol`` is canonical and round-trips via :func:`parse_symbol`."""

    symbol: str
    kind: InstrumentKind
    underlying: str
    quote_currency: str
    expiry: date | None = None
    strike: Decimal | None = None
    put_call: PutCall | None = None
    terms: IrsSpec | FxOptionSpec | None = None  # classic OTC products only

    @property
    def cfi_code(self) -> str:
        """ISO 10962 CFI code as FIX 4.4 carries it (tag 461 / 608)."""
        if self.kind is InstrumentKind.OPTION:
            return "OCXXXX" if self.put_call is PutCall.CALL else "OPXXXX"
        if self.kind is InstrumentKind.IRS:
            return "SRXXXX"  # ISO 10962:2015 swaps, rates
        if self.kind is InstrumentKind.FX_OPTION:
            return "HFXXXX"  # ISO 10962:2015 non-listed options, foreign exchange
        if self.kind in (InstrumentKind.FUTURE, InstrumentKind.PERPETUAL):
            return "FFXXXX"
        return "MRCXXX"

    @property
    def security_type(self) -> str:
        """FIX 4.4 SecurityType(167)."""
        return {
            InstrumentKind.OPTION: "OPT",
            InstrumentKind.FUTURE: "FUT",
            InstrumentKind.PERPETUAL: "FUT",
            InstrumentKind.SPOT: "FOR",
            InstrumentKind.IRS: "IRS",  # FIX 5.0 SP2's value, added to our 4.4 dictionary
            InstrumentKind.FX_OPTION: "OPT",  # with Product(460) 4 (currency)
        }[self.kind]


def _parse_expiry(text: str, symbol: str) -> date:
    try:
        return datetime.strptime(text.title(), "%d%b%y").date()
    except ValueError as exc:
        raise InstrumentError(f"{symbol!r}: bad expiry {text!r}") from exc


def format_expiry(expiry: date) -> str:
    """``date(2026, 12, 27)`` -> ``27DEC26`` (no zero padding on the day, as venues print it)."""
    return f"{expiry.day}{expiry.strftime('%b%y').upper()}"


def parse_symbol(symbol: str) -> Instrument:
    """Parse a venue symbol into an :class:`Instrument` or raise :class:`InstrumentError`."""
    if not isinstance(symbol, str) or not symbol:
        raise InstrumentError("empty symbol")
    s = symbol.strip().upper()
    if is_classic_symbol(s):
        return classic_instrument(s)
    if m := _OPTION.match(s):
        underlying, exp, strike_text, pc = m.groups()
        expiry = _parse_expiry(exp, symbol)
        try:
            strike = Decimal(strike_text)
        except InvalidOperation as exc:  # pragma: no cover - regex admits only digits
            raise InstrumentError(f"{symbol!r}: bad strike") from exc
        if strike <= 0:
            raise InstrumentError(f"{symbol!r}: strike must be positive")
        return Instrument(
            symbol=f"{underlying}-{format_expiry(expiry)}-{strike.normalize():f}-{pc}",
            kind=InstrumentKind.OPTION,
            underlying=underlying,
            quote_currency=DEFAULT_QUOTE_CURRENCY,
            expiry=expiry,
            strike=strike,
            put_call=PutCall(pc),
        )
    if m := _PERP.match(s):
        (underlying,) = m.groups()
        return Instrument(s, InstrumentKind.PERPETUAL, underlying, DEFAULT_QUOTE_CURRENCY)
    if m := _FUTURE.match(s):
        underlying, exp = m.groups()
        expiry = _parse_expiry(exp, symbol)
        return Instrument(
            f"{underlying}-{format_expiry(expiry)}",
            InstrumentKind.FUTURE,
            underlying,
            DEFAULT_QUOTE_CURRENCY,
            expiry=expiry,
        )
    if m := _SPOT.match(s):
        base, quote = m.groups()
        return Instrument(s, InstrumentKind.SPOT, base, quote)
    raise InstrumentError(f"unknown instrument symbol {symbol!r}")


def classic_instrument(symbol: str) -> Instrument:
    """An IRS or FX option symbol (see :mod:`fixspec.classic`) as an :class:`Instrument`."""
    try:
        terms = parse_irs(symbol) if symbol.startswith("IRS-") else parse_fx_option(symbol)
    except ClassicTermsError as exc:
        raise InstrumentError(str(exc)) from None
    return instrument_of(terms)


def instrument_of(terms: IrsSpec | FxOptionSpec) -> Instrument:
    """The instrument that validated classic terms describe, under their canonical symbol."""
    if isinstance(terms, IrsSpec):
        return Instrument(
            terms.symbol,
            InstrumentKind.IRS,
            terms.index,
            terms.currency,
            expiry=terms.termination_date,
            terms=terms,
        )
    return Instrument(
        terms.symbol,
        InstrumentKind.FX_OPTION,
        terms.base,
        terms.premium_currency,  # the currency the price (premium) is paid in
        expiry=terms.expiry,
        strike=terms.strike,
        put_call=PutCall.CALL if terms.call else PutCall.PUT,
        terms=terms,
    )
