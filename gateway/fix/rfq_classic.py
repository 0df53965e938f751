"""The FIX 4.4 layout of classic OTC instruments (swaps, FX options), both directions.

FIX 4.4 has no swap or FX option vocabulary, so we use the Instrument component as FIX 5.0 SP2
does, with that version's SecurityType ``IRS`` added to our dictionary
(:mod:`fixspec.dictionary`):

======================  ===================================  ===================================
field                   interest rate swap                   FX option (European)
======================  ===================================  ===================================
SecurityType(167)       ``IRS`` (required)                   ``OPT``
Product(460)            --                                   ``4`` (currency)
Symbol(55)              ``<currency>-<index>``: ``USD-SOFR``  the pair ``BASE/QUOTE``: ``EUR/USD``
MaturityDate(541)       termination date (required)          expiry date (required)
StartDate(916)          effective date (default: spot)       --
StrikePrice(202)        --                                   quote units per base unit (req.)
PutOrCall(201)          --                                   0 put / 1 call on base (required)
Currency(15)            notional currency (= the symbol's)   premium currency (default: quote)
OrderQty(38)            notional                             notional in base currency
prices (132/133/44/31)  the fixed rate, 0.0375 = 3.75 %      premium per unit of base notional
======================  ===================================  ===================================

A swap by tenor, or with a leg off the index's market standard, names its canonical symbol in
Symbol(55) instead (``IRS-USD-SOFR-5Y``, ``IRS-EUR-EURIBOR-10Y-FLT:3M:ACT/360``, see
:mod:`fixspec.classic`); detail fields then must agree with it. Side
BUY is paying fixed on a swap and buying the option. Answers (S, ER, AE) carry the same fields.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from fixspec.classic import ClassicTermsError, FxOptionSpec, IrsSpec, fx_option_spec, irs_spec
from fixspec.codec import DecodeError, OutField, RawMessage, decode_decimal
from fixspec.instruments import Instrument, instrument_of

IRS_SECURITY_TYPE = "IRS"
CURRENCY_PRODUCT = "4"  # Product(460)
_INDEX_SYMBOL = re.compile(r"([A-Z]{3})-([A-Z]+)")
_PAIR_SYMBOL = re.compile(r"([A-Z]{3})/([A-Z]{3})")


def _date(fields: RawMessage, tag: int, name: str, what: str) -> date | None:
    text = fields.get(tag)
    if text is None:
        return None
    try:
        if not re.fullmatch(r"\d{8}", text):
            raise ValueError(text)
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise DecodeError(
            f"{name}({tag}) ({what}) is not a YYYYMMDD date: {text!r}", tag=tag
        ) from None


def _terms_error(exc: ClassicTermsError, tag: int) -> DecodeError:
    return DecodeError(str(exc), tag=tag, unknown_symbol=True)


def _currency(fields: RawMessage, expected: str | None, what: str) -> str | None:
    value = fields.get(15)
    if value is not None and expected is not None and value != expected:
        raise DecodeError(f"Currency(15) {value!r} contradicts {what} {expected}", tag=15)
    return value


def _decode_irs(fields: RawMessage, symbol: str) -> Instrument:
    m = _INDEX_SYMBOL.fullmatch(symbol.upper())
    if not m:
        raise DecodeError(
            f"Symbol(55) of an IRS must be <currency>-<index> such as USD-SOFR, or a swap symbol "
            f"such as IRS-USD-SOFR-5Y; got {symbol!r}",
            tag=55,
            unknown_symbol=True,
        )
    currency, index = m.groups()
    _currency(fields, currency, "the swap's currency")
    termination = _date(fields, 541, "MaturityDate", "termination date")
    if termination is None:
        raise DecodeError(
            "MaturityDate(541) is required: an IRS needs its termination date (or name a "
            "spot-starting swap by tenor in Symbol(55), e.g. IRS-USD-SOFR-5Y)",
            tag=541,
        )
    effective = _date(fields, 916, "StartDate", "effective date")
    try:
        spec = irs_spec(currency, index, effective_date=effective, termination_date=termination)
    except ClassicTermsError as exc:
        raise _terms_error(exc, 55) from None
    return instrument_of(spec)


def _decode_fx_option(fields: RawMessage, symbol: str) -> Instrument:
    if (sec_type := fields.get(167)) not in (None, "OPT"):
        raise DecodeError(
            f"SecurityType(167) of an FX option must be OPT, got {sec_type!r}", tag=167
        )
    if (product := fields.get(460)) not in (None, CURRENCY_PRODUCT):
        raise DecodeError(
            f"Product(460) of an FX option must be 4 (currency), got {product!r}", tag=460
        )
    expiry = _date(fields, 541, "MaturityDate", "expiry date")
    if expiry is None:
        raise DecodeError("MaturityDate(541) is required: an FX option needs its expiry", tag=541)
    strike = decode_decimal(fields, 202, required=False, positive=True)
    if strike is None:
        raise DecodeError("StrikePrice(202) is required for an FX option", tag=202)
    put_call = fields.get(201)
    if put_call not in ("0", "1"):
        raise DecodeError(
            f"PutOrCall(201) is required for an FX option: 0 (put) or 1 (call), got {put_call!r}",
            tag=201,
        )
    try:
        spec = fx_option_spec(symbol, expiry, strike, put_call == "1", fields.get(15))
    except ClassicTermsError as exc:
        raise _terms_error(exc, 15 if "premium" in str(exc) else 55) from None
    return instrument_of(spec)


def decode_classic(fields: RawMessage) -> Instrument | None:
    """The swap or FX option a request's Instrument fields describe, None when they use no
    classic convention (a listed symbol, or a full classic symbol :func:`decode_instrument`
    reads). A defect is a :class:`DecodeError` naming the tag."""
    symbol = fields.get(55)
    if symbol is None:
        return None
    if fields.get(167) == IRS_SECURITY_TYPE and not symbol.upper().startswith("IRS-"):
        return _decode_irs(fields, symbol)
    if _PAIR_SYMBOL.fullmatch(symbol.upper()):
        return _decode_fx_option(fields, symbol.upper())
    return None


def wire_symbol(inst: Instrument) -> str:
    """Symbol(55) of an instrument: the index or pair when the detail fields carry the rest,
    the canonical symbol otherwise (a swap by tenor or off-standard, every listed instrument)."""
    terms = inst.terms
    if isinstance(terms, IrsSpec) and terms.tenor is None and terms.standard:
        return f"{terms.currency}-{terms.index}"
    if isinstance(terms, FxOptionSpec):
        return terms.pair
    return inst.symbol


def detail_fields(inst: Instrument, *, currency: bool = True) -> list[OutField]:
    """The classic instrument's detail fields after Symbol(55) (nothing for a listed one);
    ``currency`` adds Currency(15) where the message has it at that level."""
    terms = inst.terms
    out: list[OutField] = []
    if isinstance(terms, IrsSpec):
        out.append((167, IRS_SECURITY_TYPE))
        if terms.tenor is None and terms.termination_date is not None:
            out.append((541, f"{terms.termination_date:%Y%m%d}"))
        if terms.effective_date is not None:
            out.append((916, f"{terms.effective_date:%Y%m%d}"))
        if currency:
            out.append((15, terms.currency))
    elif isinstance(terms, FxOptionSpec):
        out += [
            (167, "OPT"),
            (460, CURRENCY_PRODUCT),
            (541, f"{terms.expiry:%Y%m%d}"),
            (201, "1" if terms.call else "0"),
            (202, f"{terms.strike.normalize():f}"),
        ]
        if currency:
            out.append((15, terms.premium_currency))
    return out


def instrument_fields(inst: Instrument, *, currency: bool = True) -> list[OutField]:
    """Symbol(55) and the detail fields of a classic instrument, in one run."""
    return [(55, wire_symbol(inst)), *detail_fields(inst, currency=currency)]
