"""Classic OTC instruments: vanilla interest rate swaps and FX options, as symbols.

An RFQ names what it asks for by one canonical symbol, so the negotiation core, its journal and
the trade store keep these products exactly as they keep listed ones:

* ``IRS-USD-SOFR-5Y``: a spot-starting swap, fixed against the index, for a tenor;
  ``IRS-USD-SOFR-20310310`` ends on a date; ``IRS-EUR-ESTR-20270115-2Y`` and
  ``IRS-EUR-ESTR-20270115-20290115`` start forward. Day counts, payment frequencies and the spot
  lag are the market standard of the (currency, index) pair (:data:`SWAP_CONVENTIONS`). The
  price is the fixed rate as a decimal fraction (0.0375 is 3.75 %), the quantity the notional.
* ``EUR/USD-19MAR27-1.1-C``: a European call on the base currency (EUR) at a strike in quote
  currency per base unit; the premium is paid in the quote currency unless a premium currency
  follows (``EUR/USD-19MAR27-1.1-C-EUR``). The price is premium per unit of base notional, the
  quantity the notional in base currency.

Dates derived from the trade date (spot, value date) skip weekends only: this module has no
holiday calendars. Pure functions; no I/O.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation


class ClassicTermsError(ValueError):
    """Terms that do not describe a classic OTC instrument we trade; says which part is wrong."""


@dataclass(frozen=True, slots=True)
class SwapConvention:
    """The market standard of one (currency, floating index): what a swap quoted on that index
    pays unless said otherwise. Day counts use FpML's dayCountFraction names."""

    floating_index: str  # the ISDA / FpML floatingRateIndex
    fixed_frequency: str
    fixed_day_count: str
    floating_frequency: str
    floating_day_count: str
    spot_lag: int  # business days from trade date to effective date


SWAP_CONVENTIONS: dict[tuple[str, str], SwapConvention] = {
    ("USD", "SOFR"): SwapConvention("USD-SOFR-OIS Compound", "1Y", "ACT/360", "1Y", "ACT/360", 2),
    ("EUR", "ESTR"): SwapConvention(
        "EUR-EuroSTR-OIS Compound", "1Y", "ACT/360", "1Y", "ACT/360", 2
    ),
    ("EUR", "EURIBOR"): SwapConvention("EUR-EURIBOR-Reuters", "1Y", "30/360", "6M", "ACT/360", 2),
    ("GBP", "SONIA"): SwapConvention(
        "GBP-SONIA-OIS Compound", "1Y", "ACT/365.FIXED", "1Y", "ACT/365.FIXED", 0
    ),
    ("JPY", "TONA"): SwapConvention(
        "JPY-TONA-OIS Compound", "1Y", "ACT/365.FIXED", "1Y", "ACT/365.FIXED", 2
    ),
}

FX_EXPIRY_TIME = "10:00:00"  # the New York cut, the market's default for G10 options
FX_EXPIRY_BUSINESS_CENTER = "USNY"
FX_SPOT_LAG = 2  # business days; USD/CAD settles T+1
_T_PLUS_ONE_PAIRS = frozenset({("USD", "CAD"), ("CAD", "USD")})
MAX_TENOR_YEARS = 50

_CCY = r"[A-Z]{3}"
_TENOR = re.compile(r"^(\d{1,3})([MY])$")
_IRS = re.compile(
    rf"^IRS-({_CCY})-([A-Z]+)(?:-(\d{{8}}))?-(\d{{1,3}}[MY]|\d{{8}})((?:-(?:FIX|FLT):[^-]+)*)$"
)
_LEG_OVERRIDE = re.compile(r"^(FIX|FLT):(1M|3M|6M|1Y):(.+)$")
FREQUENCIES = ("1M", "3M", "6M", "1Y")
DAY_COUNTS = ("ACT/360", "ACT/365.FIXED", "30/360")
_FXO = re.compile(
    rf"^({_CCY})/({_CCY})-(\d{{1,2}}[A-Z]{{3}}\d{{2}})-(\d+(?:\.\d+)?)-([CP])(?:-({_CCY}))?$"
)


# --- business days and periods ----------------------------------------------------------------


def add_business_days(start: date, days: int) -> date:
    """``start`` moved forward by ``days`` weekdays (weekends skipped, no holidays)."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def add_tenor(start: date, tenor: str) -> date:
    """``start`` plus a tenor of months or years; a day past the month's end clips to it."""
    m = _TENOR.match(tenor)
    if not m:
        raise ClassicTermsError(f"tenor {tenor!r} is not months or years such as 6M or 5Y")
    months = int(m.group(1)) * (12 if m.group(2) == "Y" else 1)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def _date8(text: str, what: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ClassicTermsError(f"{what} {text!r} is not a YYYYMMDD date") from None


def _expiry(text: str) -> date:
    try:
        return datetime.strptime(text.title(), "%d%b%y").date()
    except ValueError:
        raise ClassicTermsError(f"expiry {text!r} is not a date such as 19MAR27") from None


def _fmt_expiry(expiry: date) -> str:
    return f"{expiry.day}{expiry.strftime('%b%y').upper()}"


# --- interest rate swaps ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IrsSpec:
    """A vanilla fixed-for-floating swap as it is asked for: either a tenor (from spot or from
    ``effective_date``) or a ``termination_date``. Dates are unadjusted."""

    currency: str
    index: str
    convention: SwapConvention
    tenor: str | None = None
    effective_date: date | None = None
    termination_date: date | None = None

    @property
    def symbol(self) -> str:
        start = f"-{self.effective_date:%Y%m%d}" if self.effective_date else ""
        end = self.tenor if self.tenor else f"{self.termination_date:%Y%m%d}"
        legs = ""
        std, conv = SWAP_CONVENTIONS[(self.currency, self.index)], self.convention
        if (conv.fixed_frequency, conv.fixed_day_count) != (
            std.fixed_frequency,
            std.fixed_day_count,
        ):
            legs += f"-FIX:{conv.fixed_frequency}:{conv.fixed_day_count}"
        if (conv.floating_frequency, conv.floating_day_count) != (
            std.floating_frequency,
            std.floating_day_count,
        ):
            legs += f"-FLT:{conv.floating_frequency}:{conv.floating_day_count}"
        return f"IRS-{self.currency}-{self.index}{start}-{end}{legs}"

    @property
    def standard(self) -> bool:
        """Whether both legs follow the market standard of the index."""
        return self.convention == SWAP_CONVENTIONS[(self.currency, self.index)]

    def dates(self, trade_date: date) -> tuple[date, date]:
        """(effective, termination) for a trade on ``trade_date``: spot unless a start was
        asked for, then the tenor or the asked end date."""
        effective = self.effective_date or add_business_days(trade_date, self.convention.spot_lag)
        if self.tenor is not None:
            return effective, add_tenor(effective, self.tenor)
        assert self.termination_date is not None  # irs_spec guarantees a tenor or an end
        return effective, self.termination_date


def irs_spec(
    currency: str,
    index: str,
    *,
    tenor: str | None = None,
    effective_date: date | None = None,
    termination_date: date | None = None,
    fixed_frequency: str | None = None,
    fixed_day_count: str | None = None,
    floating_frequency: str | None = None,
    floating_day_count: str | None = None,
) -> IrsSpec:
    """Validated swap terms: a known (currency, index), exactly one of tenor or termination
    date, a termination after the start; a leg's frequency or day count only when it departs
    from the market standard (a given one equal to it is the standard)."""
    ccy, idx = currency.strip().upper(), index.strip().upper()
    convention = SWAP_CONVENTIONS.get((ccy, idx))
    if convention is None:
        known = ", ".join(f"{c} {i}" for c, i in sorted(SWAP_CONVENTIONS))
        raise ClassicTermsError(f"no swap convention for {ccy} {idx} (known: {known})")
    if (tenor is None) == (termination_date is None):
        raise ClassicTermsError(
            "a swap needs its maturity: a tenor or a termination date, not both"
        )
    if tenor is not None:
        tenor = tenor.strip().upper()
        m = _TENOR.match(tenor)
        years = int(m.group(1)) / (1 if m.group(2) == "Y" else 12) if m else 0
        if not m or years <= 0 or years > MAX_TENOR_YEARS:
            raise ClassicTermsError(
                f"tenor {tenor!r} must be months or years (e.g. 6M, 5Y) up to {MAX_TENOR_YEARS}Y"
            )
    if termination_date and effective_date and termination_date <= effective_date:
        raise ClassicTermsError(
            f"termination date {termination_date} is not after effective date {effective_date}"
        )
    overrides = {
        "fixed_frequency": fixed_frequency,
        "fixed_day_count": fixed_day_count,
        "floating_frequency": floating_frequency,
        "floating_day_count": floating_day_count,
    }
    for name, value in overrides.items():
        allowed = FREQUENCIES if name.endswith("frequency") else DAY_COUNTS
        if value is not None and value not in allowed:
            raise ClassicTermsError(
                f"{name.replace('_', ' ')} {value!r} is not one of {', '.join(allowed)}"
            )
    convention = replace(
        convention,
        fixed_frequency=fixed_frequency or convention.fixed_frequency,
        fixed_day_count=fixed_day_count or convention.fixed_day_count,
        floating_frequency=floating_frequency or convention.floating_frequency,
        floating_day_count=floating_day_count or convention.floating_day_count,
    )
    return IrsSpec(ccy, idx, convention, tenor, effective_date, termination_date)


def parse_irs(symbol: str) -> IrsSpec:
    m = _IRS.match(symbol)
    if not m:
        raise ClassicTermsError(
            f"{symbol!r} is not IRS-<currency>-<index>[-<start YYYYMMDD>]-<tenor or end "
            "YYYYMMDD>[-FIX:<frequency>:<day count>][-FLT:<frequency>:<day count>]"
        )
    ccy, idx, start, end, legs = m.groups()
    legs_given: dict[str, tuple[str, str]] = {}
    for part in filter(None, legs.split("-")):
        leg = _LEG_OVERRIDE.match(part)
        if not leg:
            raise ClassicTermsError(
                f"{part!r} is not FIX|FLT:<{'|'.join(FREQUENCIES)}>:<day count>"
            )
        which = "fixed" if leg.group(1) == "FIX" else "floating"
        if which in legs_given:
            raise ClassicTermsError(f"the {which} leg is given twice in {symbol!r}")
        legs_given[which] = (leg.group(2), leg.group(3))
    fixed, floating = legs_given.get("fixed"), legs_given.get("floating")
    effective = _date8(start, "effective date") if start else None
    tenor = end if end[-1] in "MY" else None
    return irs_spec(
        ccy,
        idx,
        tenor=tenor,
        effective_date=effective,
        termination_date=None if tenor else _date8(end, "termination date"),
        fixed_frequency=fixed[0] if fixed else None,
        fixed_day_count=fixed[1] if fixed else None,
        floating_frequency=floating[0] if floating else None,
        floating_day_count=floating[1] if floating else None,
    )


# --- FX options ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FxOptionSpec:
    """A European FX option on ``base``/``quote``: a call gives the right to buy base (and sell
    quote) at ``strike`` quote units per base unit on ``expiry``."""

    base: str
    quote: str
    expiry: date
    strike: Decimal
    call: bool
    premium_currency: str

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def symbol(self) -> str:
        premium = "" if self.premium_currency == self.quote else f"-{self.premium_currency}"
        pc = "C" if self.call else "P"
        return f"{self.pair}-{_fmt_expiry(self.expiry)}-{self.strike.normalize():f}-{pc}{premium}"

    def value_date(self) -> date:
        lag = 1 if (self.base, self.quote) in _T_PLUS_ONE_PAIRS else FX_SPOT_LAG
        return add_business_days(self.expiry, lag)

    def premium_date(self, trade_date: date) -> date:
        """The premium settles spot from the trade date."""
        lag = 1 if (self.base, self.quote) in _T_PLUS_ONE_PAIRS else FX_SPOT_LAG
        return add_business_days(trade_date, lag)


def fx_option_spec(
    pair: str,
    expiry: date,
    strike: Decimal,
    call: bool,
    premium_currency: str | None = None,
) -> FxOptionSpec:
    """Validated FX option terms; ``pair`` is ``BASE/QUOTE``, the premium currency one of them."""
    m = re.fullmatch(rf"({_CCY})/({_CCY})", pair.strip().upper())
    if not m:
        raise ClassicTermsError(f"currency pair {pair!r} is not BASE/QUOTE such as EUR/USD")
    base, quote = m.groups()
    if base == quote:
        raise ClassicTermsError(f"currency pair {pair!r} names one currency twice")
    if not isinstance(strike, Decimal) or not strike.is_finite() or strike <= 0:
        raise ClassicTermsError(f"strike {strike!r} must be a positive decimal")
    premium = (premium_currency or quote).strip().upper()
    if premium not in (base, quote):
        raise ClassicTermsError(f"premium currency {premium} is neither {base} nor {quote}")
    return FxOptionSpec(base, quote, expiry, strike, call, premium)


def parse_fx_option(symbol: str) -> FxOptionSpec:
    m = _FXO.match(symbol)
    if not m:
        raise ClassicTermsError(
            f"{symbol!r} is not <BASE>/<QUOTE>-<expiry e.g. 19MAR27>-<strike>-<C|P>[-<premium "
            "currency>]"
        )
    base, quote, exp, strike_text, pc, premium = m.groups()
    try:
        strike = Decimal(strike_text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise ClassicTermsError(f"strike {strike_text!r} is not a number") from None
    return fx_option_spec(f"{base}/{quote}", _expiry(exp), strike, pc == "C", premium)


def is_classic_symbol(symbol: str) -> bool:
    """Whether a symbol follows a classic OTC convention (an IRS prefix or a slashed pair)."""
    return symbol.startswith("IRS-") or "/" in symbol
