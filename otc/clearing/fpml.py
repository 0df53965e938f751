"""FpML 5.10 (confirmation view) ``requestClearing`` for IRS and FX options, plus readers for
requestClearing (ours and LCH ClearLink's), ``clearingConfirmed`` and ``clearingRefused``.

Conventions our trade model does not carry are fixed here and named, never guessed per trade:
business centres come from the currency (``BUSINESS_CENTERS``), calculation and payment dates
roll MODFOLLOWING, the effective date is unadjusted, the roll day is the effective date's day.
OIS compounded indexes reset in arrears (0 days); term indexes fix two business days before the
period starts and quote an index tenor equal to the floating payment frequency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from lxml import etree

from otc.clearing.model import (
    XML_DECLARATION,
    AckOutcome,
    ClearedTrade,
    ClearingAck,
    ClearingFormatError,
    Economics,
    fmt_date,
    fmt_decimal,
    fmt_timestamp,
    instrument_key,
    parse_date,
    parse_decimal,
)
from otc.trades import DayCount, FxOptionTerms, IrsTerms, OptionStyle, Party, TradeCapture

FPML_NS = "http://www.fpml.org/FpML-5/confirmation"
FPML_VERSION = "5-10"
PARTY_ID_SCHEME = "urn:fixbridge:party-id"
TRADE_ID_SCHEME = "urn:fixbridge:trade-id"
MESSAGE_ID_SCHEME = "urn:fixbridge:message-id"
CORRELATION_ID_SCHEME = "urn:fixbridge:correlation-id"
LEI_SCHEME = "http://www.fpml.org/coding-scheme/external/iso17442"
PRODUCT_TYPE_SCHEME = "http://www.fpml.org/coding-scheme/product-taxonomy"
UTI_SCHEME = "http://www.fpml.org/coding-scheme/external/unique-transaction-identifier"

BUSINESS_CENTERS = {
    "USD": "USNY",
    "EUR": "EUTA",
    "GBP": "GBLO",
    "JPY": "JPTO",
    "CHF": "CHZU",
    "AUD": "AUSY",
    "CAD": "CATO",
    "NZD": "NZAU",
    "SEK": "SEST",
    "NOK": "NOOS",
    "DKK": "DKCO",
    "HKD": "HKHK",
    "SGD": "SGSI",
}
_PERIOD = re.compile(r"^(\d+)([DWMY])$")
_LEI = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
_NSMAP = {None: FPML_NS}

# href ids of the parties in messages we build
_CLIENT, _DESK, _CCP, _FCM = "client", "desk", "clearingHouse", "clearingFirm"


def _q(tag: str) -> str:
    return f"{{{FPML_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _q(tag), attrs)
    if text is not None:
        el.text = text
    return el


def serialize(root: etree._Element) -> bytes:
    body = etree.tostring(root, xml_declaration=False, encoding="UTF-8", pretty_print=True)
    return XML_DECLARATION + body


def _business_center(currency: str) -> str:
    try:
        return BUSINESS_CENTERS[currency]
    except KeyError:
        raise ClearingFormatError(
            f"no business centre configured for currency {currency}"
        ) from None


def _period(text: str, what: str) -> tuple[str, str]:
    m = _PERIOD.match(text.strip().upper())
    if not m:
        raise ClearingFormatError(f"{what}: unsupported period {text!r} (expected e.g. 3M, 1Y)")
    return m.group(1), m.group(2)


def _roll(effective: date) -> str:
    return "EOM" if effective.day == 31 else str(effective.day)


def _is_ois(index: str) -> bool:
    return "OIS" in index.upper()


# --- building -------------------------------------------------------------------------------


def _header(
    root: etree._Element,
    message_id: str,
    sent_by: str,
    send_to: str,
    at: datetime,
    in_reply_to: str | None = None,
) -> None:
    header = _sub(root, "header")
    _sub(header, "messageId", message_id, messageIdScheme=MESSAGE_ID_SCHEME)
    if in_reply_to is not None:
        _sub(header, "inReplyTo", in_reply_to, messageIdScheme=MESSAGE_ID_SCHEME)
    _sub(header, "sentBy", sent_by)
    _sub(header, "sendTo", send_to)
    _sub(header, "creationTimestamp", fmt_timestamp(at))


def _party(root: etree._Element, href: str, party: Party) -> None:
    el = _sub(root, "party", id=href)
    _sub(el, "partyId", party.party_id, partyIdScheme=PARTY_ID_SCHEME)
    if party.lei:
        _sub(el, "partyId", party.lei, partyIdScheme=LEI_SCHEME)
    if party.name:
        _sub(el, "partyName", party.name)


def _adjustments(parent: etree._Element, tag: str, convention: str, center: str | None) -> None:
    adj = _sub(parent, tag)
    _sub(adj, "businessDayConvention", convention)
    if center is not None:
        _sub(_sub(adj, "businessCenters"), "businessCenter", center)


def _frequency(
    parent: etree._Element, tag: str, text: str, what: str, roll: str | None = None
) -> None:
    mult, period = _period(text, what)
    el = _sub(parent, tag)
    _sub(el, "periodMultiplier", mult)
    _sub(el, "period", period)
    if roll is not None:
        _sub(el, "rollConvention", roll)


def _swap_stream(
    swap: etree._Element, terms: IrsTerms, *, fixed: bool, payer: str, receiver: str, center: str
) -> None:
    name = "fixed" if fixed else "floating"
    freq = terms.fixed_payment_frequency if fixed else terms.floating_payment_frequency
    stream = _sub(swap, "swapStream", id=f"{name}Leg")
    _sub(stream, "payerPartyReference", href=payer)
    _sub(stream, "receiverPartyReference", href=receiver)
    dates_id = f"{name}CalcPeriodDates"
    cpd = _sub(stream, "calculationPeriodDates", id=dates_id)
    eff = _sub(cpd, "effectiveDate")
    _sub(eff, "unadjustedDate", fmt_date(terms.effective_date))
    _adjustments(eff, "dateAdjustments", "NONE", None)
    term = _sub(cpd, "terminationDate")
    _sub(term, "unadjustedDate", fmt_date(terms.termination_date))
    _adjustments(term, "dateAdjustments", "MODFOLLOWING", center)
    _adjustments(cpd, "calculationPeriodDatesAdjustments", "MODFOLLOWING", center)
    _frequency(
        cpd, "calculationPeriodFrequency", freq, f"{name} frequency", _roll(terms.effective_date)
    )
    pay = _sub(stream, "paymentDates")
    _sub(pay, "calculationPeriodDatesReference", href=dates_id)
    _frequency(pay, "paymentFrequency", freq, f"{name} frequency")
    _sub(pay, "payRelativeTo", "CalculationPeriodEndDate")
    _adjustments(pay, "paymentDatesAdjustments", "MODFOLLOWING", center)
    if not fixed:
        ois = _is_ois(terms.floating_index)
        reset = _sub(stream, "resetDates", id="resetDates")
        _sub(reset, "calculationPeriodDatesReference", href=dates_id)
        _sub(
            reset,
            "resetRelativeTo",
            "CalculationPeriodEndDate" if ois else "CalculationPeriodStartDate",
        )
        fixing = _sub(reset, "fixingDates")
        _sub(fixing, "periodMultiplier", "0" if ois else "-2")
        _sub(fixing, "period", "D")
        _sub(fixing, "dayType", "Business")
        _sub(fixing, "businessDayConvention", "NONE")
        _sub(_sub(fixing, "businessCenters"), "businessCenter", center)
        _sub(fixing, "dateRelativeTo", href="resetDates")
        _frequency(reset, "resetFrequency", freq, "floating frequency")
        _adjustments(reset, "resetDatesAdjustments", "MODFOLLOWING", center)
    calc = _sub(_sub(stream, "calculationPeriodAmount"), "calculation")
    notional = _sub(_sub(calc, "notionalSchedule"), "notionalStepSchedule")
    _sub(notional, "initialValue", fmt_decimal(terms.notional))
    _sub(notional, "currency", terms.currency)
    if fixed:
        _sub(_sub(calc, "fixedRateSchedule"), "initialValue", fmt_decimal(terms.fixed_rate))
        _sub(calc, "dayCountFraction", terms.fixed_day_count.value)
    else:
        frc = _sub(calc, "floatingRateCalculation")
        _sub(frc, "floatingRateIndex", terms.floating_index)
        if not _is_ois(terms.floating_index):
            _frequency(frc, "indexTenor", freq, "floating frequency")
        _sub(calc, "dayCountFraction", terms.floating_day_count.value)


def _swap(trade_el: etree._Element, terms: IrsTerms, hrefs: dict[str, str]) -> None:
    payer = hrefs.get(terms.payer_of_fixed)
    if payer is None:
        raise ClearingFormatError(
            f"fixed payer {terms.payer_of_fixed!r} is neither the client nor the desk"
        )
    receiver = _DESK if payer == _CLIENT else _CLIENT
    center = _business_center(terms.currency)
    swap = _sub(trade_el, "swap")
    _sub(
        swap, "productType", "InterestRate:IRSwap:FixedFloat", productTypeScheme=PRODUCT_TYPE_SCHEME
    )
    _swap_stream(swap, terms, fixed=True, payer=payer, receiver=receiver, center=center)
    _swap_stream(swap, terms, fixed=False, payer=receiver, receiver=payer, center=center)


def _strike_basis(terms: FxOptionTerms) -> str:
    """Which way the strike is quoted, read off the amounts (our model has no field for it)."""
    call_per_put = abs(terms.put_amount * terms.strike - terms.call_amount)
    put_per_call = abs(terms.call_amount * terms.strike - terms.put_amount)
    if call_per_put <= put_per_call:
        return "CallCurrencyPerPutCurrency"
    return "PutCurrencyPerCallCurrency"


def _fx_option(
    trade_el: etree._Element, terms: FxOptionTerms, hrefs: dict[str, str], trade_date: date
) -> None:
    buyer, seller = hrefs.get(terms.buyer), hrefs.get(terms.seller)
    if buyer is None or seller is None or buyer == seller:
        raise ClearingFormatError(
            f"FX option buyer {terms.buyer!r} / seller {terms.seller!r} must be the client and "
            "the desk"
        )
    opt = _sub(trade_el, "fxOption")
    _sub(opt, "buyerPartyReference", href=buyer)
    _sub(opt, "sellerPartyReference", href=seller)
    american = terms.style is OptionStyle.AMERICAN
    ex = _sub(opt, "americanExercise" if american else "europeanExercise")
    if american:
        comm = _sub(ex, "commencementDate")
        adjustable = _sub(comm, "adjustableDate")
        _sub(adjustable, "unadjustedDate", fmt_date(trade_date))
        _adjustments(adjustable, "dateAdjustments", "NONE", None)
    _sub(ex, "expiryDate", fmt_date(terms.expiry_date))
    et = _sub(ex, "expiryTime")
    _sub(et, "hourMinuteTime", terms.expiry_time)
    _sub(et, "businessCenter", terms.expiry_business_center)
    _sub(ex, "valueDate", fmt_date(terms.value_date))
    for tag, ccy, amount in (
        ("putCurrencyAmount", terms.put_currency, terms.put_amount),
        ("callCurrencyAmount", terms.call_currency, terms.call_amount),
    ):
        money = _sub(opt, tag)
        _sub(money, "currency", ccy)
        _sub(money, "amount", fmt_decimal(amount))
    strike = _sub(opt, "strike")
    _sub(strike, "rate", fmt_decimal(terms.strike))
    _sub(strike, "strikeQuoteBasis", _strike_basis(terms))
    prem = _sub(opt, "premium")
    _sub(prem, "payerPartyReference", href=buyer)
    _sub(prem, "receiverPartyReference", href=seller)
    pdate = _sub(_sub(prem, "paymentDate"), "adjustableDate")
    _sub(pdate, "unadjustedDate", fmt_date(terms.premium_payment_date))
    _adjustments(pdate, "dateAdjustments", "NONE", None)
    amt = _sub(prem, "paymentAmount")
    _sub(amt, "currency", terms.premium_currency)
    _sub(amt, "amount", fmt_decimal(terms.premium_amount))


def build_request_clearing(trade: TradeCapture, message_id: str) -> bytes:
    """FpML requestClearing for an IRS or FX option trade, sent by the desk to the CCP.

    ``creationTimestamp`` is the execution time: the message is created in the same transaction
    that captures the trade, and a resend must be byte-identical.
    """
    if len(trade.legs) != 1 or not isinstance(trade.legs[0].product, IrsTerms | FxOptionTerms):
        raise ClearingFormatError(
            f"trade {trade.trade_id}: requestClearing carries one IRS or FX option leg"
        )
    if trade.clearing_house is None:
        raise ClearingFormatError(f"trade {trade.trade_id}: no clearing house to submit to")
    product = trade.legs[0].product
    hrefs = {trade.client.party_id: _CLIENT, trade.desk.party_id: _DESK}

    root = etree.Element(_q("requestClearing"), nsmap=_NSMAP, fpmlVersion=FPML_VERSION)
    _header(root, message_id, trade.desk.party_id, trade.clearing_house.party_id, trade.executed_at)
    _sub(root, "isCorrection", "false")
    _sub(root, "correlationId", trade.trade_id, correlationIdScheme=CORRELATION_ID_SCHEME)
    _sub(root, "sequenceNumber", "1")
    trade_el = _sub(root, "trade")
    header = _sub(trade_el, "tradeHeader")
    for href in (_DESK, _CLIENT):
        pti = _sub(header, "partyTradeIdentifier")
        _sub(pti, "partyReference", href=href)
        _sub(pti, "tradeId", trade.trade_id, tradeIdScheme=TRADE_ID_SCHEME)
    if trade.clearing_firm is not None:
        info = _sub(header, "partyTradeInformation")
        _sub(info, "partyReference", href=_CLIENT)
        rel = _sub(info, "relatedParty")
        _sub(rel, "partyReference", href=_FCM)
        _sub(rel, "role", "ClearingFirm")
    _sub(header, "tradeDate", fmt_date(trade.trade_date))
    if isinstance(product, IrsTerms):
        _swap(trade_el, product, hrefs)
    else:
        _fx_option(trade_el, product, hrefs, trade.trade_date)
    _party(root, _CLIENT, trade.client)
    _party(root, _DESK, trade.desk)
    _party(root, _CCP, trade.clearing_house)
    if trade.clearing_firm is not None:
        _party(root, _FCM, trade.clearing_firm)
    return serialize(root)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FpmlParty:
    href: str
    party_id: str
    lei: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ClearingRequestView:
    """A requestClearing mapped onto our model: ``product`` is an :class:`IrsTerms` or
    :class:`FxOptionTerms` built from the FpML, comparable with a :class:`TradeCapture` leg.

    ``floating_spread`` is kept apart because :class:`IrsTerms` has no spread (LCH trades do).
    """

    message_id: str
    sent_by: str
    send_to: str
    created_at: str
    correlation_id: str | None
    sequence_number: int | None
    trade_id: str
    trade_date: date
    product: IrsTerms | FxOptionTerms
    parties: dict[str, FpmlParty]
    counterparties: tuple[str, str]  # (fixed payer | buyer, fixed receiver | seller) party ids
    clearing_brokers: dict[str, str]  # principal party id -> clearing broker party id
    uti: str | None = None
    floating_spread: Decimal | None = None

    def economics(self) -> Economics:
        p = self.product
        buyer, seller = self.counterparties
        if isinstance(p, IrsTerms):
            return Economics(
                self.trade_id,
                instrument_key(p),
                buyer,
                seller,
                p.notional,
                p.fixed_rate,
                p.currency,
            )
        return Economics(
            self.trade_id,
            instrument_key(p),
            buyer,
            seller,
            p.put_amount,
            p.strike,
            p.premium_currency,
        )


def _text(el: etree._Element, path: str, what: str | None = None) -> str:
    found = el.find(path, {"f": FPML_NS})
    if found is None or found.text is None or not found.text.strip():
        raise ClearingFormatError(f"missing {what or path.replace('f:', '')}")
    return found.text.strip()


def _opt_text(el: etree._Element, path: str) -> str | None:
    found = el.find(path, {"f": FPML_NS})
    return found.text.strip() if found is not None and found.text else None


def _fpml_root(root: etree._Element, expected: tuple[str, ...]) -> str:
    qn = etree.QName(root)
    if qn.namespace != FPML_NS or qn.localname not in expected:
        raise ClearingFormatError(
            f"expected FpML {'/'.join(expected)}, got {qn.localname} in {qn.namespace}"
        )
    return qn.localname


def _parties(root: etree._Element) -> dict[str, FpmlParty]:
    parties = {}
    for el in root.findall(_q("party")):
        href = el.get("id")
        ids = el.findall(_q("partyId"))
        if not href or not ids:
            raise ClearingFormatError("party without id or partyId")
        lei = next(
            (
                (i.text or "").strip()
                for i in ids
                if i.get("partyIdScheme") == LEI_SCHEME and _LEI.match((i.text or "").strip())
            ),
            None,
        )
        texts = [(i.get("partyIdScheme"), (i.text or "").strip()) for i in ids]
        own = [t for scheme, t in texts if scheme != LEI_SCHEME and t]
        party_id = own[0] if own else next((t for _, t in texts if t), None)
        if not party_id:
            raise ClearingFormatError(f"party {href}: no usable partyId")
        parties[href] = FpmlParty(href, party_id, lei, _opt_text(el, "f:partyName"))
    return parties


def _party_id(parties: dict[str, FpmlParty], href: str | None, what: str) -> str:
    if href is None or href not in parties:
        raise ClearingFormatError(f"{what}: unknown party reference {href!r}")
    return parties[href].party_id


def _day_count(text: str, what: str) -> DayCount:
    try:
        return DayCount(text)
    except ValueError:
        raise ClearingFormatError(f"{what}: unsupported day count {text!r}") from None


def _read_frequency(el: etree._Element, path: str, what: str) -> str:
    return _text(el, f"{path}/f:periodMultiplier", what) + _text(el, f"{path}/f:period", what)


def _read_swap(
    swap: etree._Element, parties: dict[str, FpmlParty]
) -> tuple[IrsTerms, str, Decimal | None]:
    streams = swap.findall(_q("swapStream"))
    fixed = [s for s in streams if s.find(".//f:fixedRateSchedule", {"f": FPML_NS}) is not None]
    floating = [
        s for s in streams if s.find(".//f:floatingRateCalculation", {"f": FPML_NS}) is not None
    ]
    if len(streams) != 2 or len(fixed) != 1 or len(floating) != 1:
        raise ClearingFormatError("only fixed-for-floating swaps with two streams are supported")
    fx, fl = fixed[0], floating[0]
    calc = fcalc = "f:calculationPeriodAmount/f:calculation"
    notional = f"{calc}/f:notionalSchedule/f:notionalStepSchedule"
    spread = _opt_text(fl, f"{fcalc}/f:floatingRateCalculation/f:spreadSchedule/f:initialValue")
    payer = fx.find(_q("payerPartyReference"))
    receiver = fx.find(_q("receiverPartyReference"))
    terms = IrsTerms(
        currency=_text(fx, f"{notional}/f:currency", "notional currency"),
        notional=parse_decimal(_text(fx, f"{notional}/f:initialValue", "notional"), "notional"),
        effective_date=parse_date(
            _text(fx, "f:calculationPeriodDates/f:effectiveDate/f:unadjustedDate", "effectiveDate"),
            "effectiveDate",
        ),
        termination_date=parse_date(
            _text(
                fx, "f:calculationPeriodDates/f:terminationDate/f:unadjustedDate", "terminationDate"
            ),
            "terminationDate",
        ),
        fixed_rate=parse_decimal(
            _text(fx, f"{calc}/f:fixedRateSchedule/f:initialValue", "fixed rate"), "fixed rate"
        ),
        floating_index=_text(
            fl, f"{fcalc}/f:floatingRateCalculation/f:floatingRateIndex", "floatingRateIndex"
        ),
        fixed_day_count=_day_count(_text(fx, f"{calc}/f:dayCountFraction"), "fixed leg"),
        floating_day_count=_day_count(_text(fl, f"{fcalc}/f:dayCountFraction"), "floating leg"),
        fixed_payment_frequency=_read_frequency(
            fx, "f:paymentDates/f:paymentFrequency", "fixed paymentFrequency"
        ),
        floating_payment_frequency=_read_frequency(
            fl, "f:paymentDates/f:paymentFrequency", "floating paymentFrequency"
        ),
        payer_of_fixed=_party_id(
            parties, payer.get("href") if payer is not None else None, "fixed leg payer"
        ),
    )
    receiver_id = _party_id(
        parties, receiver.get("href") if receiver is not None else None, "fixed leg receiver"
    )
    return terms, receiver_id, parse_decimal(spread, "spread") if spread is not None else None


def _read_fx_option(opt: etree._Element, parties: dict[str, FpmlParty]) -> FxOptionTerms:
    american = opt.find(_q("americanExercise"))
    ex = american if american is not None else opt.find(_q("europeanExercise"))
    if ex is None:
        raise ClearingFormatError("fxOption: only european or american exercise is supported")
    buyer = opt.find(_q("buyerPartyReference"))
    seller = opt.find(_q("sellerPartyReference"))
    prem = "f:premium"
    return FxOptionTerms(
        put_currency=_text(opt, "f:putCurrencyAmount/f:currency"),
        put_amount=parse_decimal(_text(opt, "f:putCurrencyAmount/f:amount"), "put amount"),
        call_currency=_text(opt, "f:callCurrencyAmount/f:currency"),
        call_amount=parse_decimal(_text(opt, "f:callCurrencyAmount/f:amount"), "call amount"),
        strike=parse_decimal(_text(opt, "f:strike/f:rate"), "strike"),
        expiry_date=parse_date(_text(ex, "f:expiryDate"), "expiryDate"),
        expiry_time=_text(ex, "f:expiryTime/f:hourMinuteTime"),
        expiry_business_center=_text(ex, "f:expiryTime/f:businessCenter"),
        value_date=parse_date(_text(ex, "f:valueDate"), "valueDate"),
        style=OptionStyle.AMERICAN if american is not None else OptionStyle.EUROPEAN,
        premium_currency=_text(opt, f"{prem}/f:paymentAmount/f:currency"),
        premium_amount=parse_decimal(_text(opt, f"{prem}/f:paymentAmount/f:amount"), "premium"),
        premium_payment_date=parse_date(
            _text(
                opt,
                f"{prem}/f:paymentDate/f:adjustableDate/f:unadjustedDate",
                "premium paymentDate",
            ),
            "premium paymentDate",
        ),
        buyer=_party_id(parties, buyer.get("href") if buyer is not None else None, "buyer"),
        seller=_party_id(parties, seller.get("href") if seller is not None else None, "seller"),
    )


def read_request_clearing(root: etree._Element) -> ClearingRequestView:
    """Map a requestClearing (ours, or LCH ClearLink's fpmlVersion 5-7) onto our trade model.

    The trade id is the one assigned by the sender (``sentBy``'s partyTradeIdentifier), falling
    back to the first party-assigned id; a UTI/USI (issuer-assigned id) is kept separately.
    """
    _fpml_root(root, ("requestClearing",))
    parties = _parties(root)
    trade = root.find(_q("trade"))
    if trade is None:
        raise ClearingFormatError("requestClearing: no trade (packages are not supported)")
    sent_by = _text(root, "f:header/f:sentBy")
    trade_ids, uti = {}, None
    for pti in trade.findall("f:tradeHeader/f:partyTradeIdentifier", {"f": FPML_NS}):
        ref = pti.find(_q("partyReference"))
        tid = _opt_text(pti, "f:tradeId")
        if ref is not None and tid and (href := ref.get("href")) in parties:
            trade_ids[parties[href].party_id] = tid
        elif pti.find(_q("issuer")) is not None and tid:
            uti = uti or f"{_text(pti, 'f:issuer')}{tid}"
    if not trade_ids:
        raise ClearingFormatError("requestClearing: no party-assigned trade id")
    trade_id = trade_ids.get(sent_by) or next(iter(trade_ids.values()))
    brokers = {}
    for info in trade.findall("f:tradeHeader/f:partyTradeInformation", {"f": FPML_NS}):
        ref = info.find(_q("partyReference"))
        for rel in info.findall(_q("relatedParty")):
            role = _opt_text(rel, "f:role")
            rel_ref = rel.find(_q("partyReference"))
            if (
                role in ("ClearingBroker", "ClearingFirm")
                and ref is not None
                and rel_ref is not None
            ):
                brokers[_party_id(parties, ref.get("href"), "partyTradeInformation")] = _party_id(
                    parties, rel_ref.get("href"), "relatedParty"
                )
    swap, fx_opt = trade.find(_q("swap")), trade.find(_q("fxOption"))
    spread = None
    product: IrsTerms | FxOptionTerms
    if swap is not None:
        product, receiver, spread = _read_swap(swap, parties)
        counterparties = (product.payer_of_fixed, receiver)
    elif fx_opt is not None:
        product = _read_fx_option(fx_opt, parties)
        counterparties = (product.buyer, product.seller)
    else:
        raise ClearingFormatError("requestClearing: product is neither swap nor fxOption")
    seq = _opt_text(root, "f:sequenceNumber")
    return ClearingRequestView(
        message_id=_text(root, "f:header/f:messageId"),
        sent_by=sent_by,
        send_to=_text(root, "f:header/f:sendTo"),
        created_at=_text(root, "f:header/f:creationTimestamp"),
        correlation_id=_opt_text(root, "f:correlationId"),
        sequence_number=int(seq) if seq and seq.isdigit() else None,
        trade_id=trade_id,
        trade_date=parse_date(_text(trade, "f:tradeHeader/f:tradeDate"), "tradeDate"),
        product=product,
        parties=parties,
        counterparties=counterparties,
        clearing_brokers=brokers,
        uti=uti,
        floating_spread=spread,
    )


# --- clearinghouse answers ------------------------------------------------------------------


def _reply_root(
    tag: str, request: ClearingRequestView, message_id: str, at: datetime
) -> etree._Element:
    root = etree.Element(_q(tag), nsmap=_NSMAP, fpmlVersion=FPML_VERSION)
    _header(root, message_id, request.send_to, request.sent_by, at, in_reply_to=request.message_id)
    if request.correlation_id:
        _sub(
            root, "correlationId", request.correlation_id, correlationIdScheme=CORRELATION_ID_SCHEME
        )
    _sub(root, "sequenceNumber", str((request.sequence_number or 0) + 1))
    return root


def _reply_parties(root: etree._Element, request: ClearingRequestView, clearer: str) -> None:
    for p in request.parties.values():
        el = _sub(root, "party", id=p.href)
        _sub(el, "partyId", p.party_id, partyIdScheme=PARTY_ID_SCHEME)
    if not any(p.party_id == clearer for p in request.parties.values()):
        _sub(_sub(root, "party", id="clearer"), "partyId", clearer, partyIdScheme=PARTY_ID_SCHEME)


def _href_of(request: ClearingRequestView, party_id: str) -> str:
    for p in request.parties.values():
        if p.party_id == party_id:
            return p.href
    return "clearer"


def build_clearing_confirmed(
    request: ClearingRequestView,
    message_id: str,
    cleared: Sequence[tuple[str, str]],
    at: datetime,
) -> bytes:
    """clearingConfirmed in LCH's shape: the submitted trade id, then the two cleared trades
    (FpML requires exactly two), given as ``(counterparty party id, clearing trade id)``."""
    if len(cleared) != 2:
        raise ClearingFormatError(f"clearingConfirmed needs 2 cleared trades, got {len(cleared)}")
    root = _reply_root("clearingConfirmed", request, message_id, at)
    clearer = _href_of(request, request.send_to)
    clearing = _sub(root, "clearing")
    sub_pti = _sub(
        _sub(_sub(clearing, "submitted"), "tradeReferenceInformation"), "partyTradeIdentifier"
    )
    _sub(sub_pti, "partyReference", href=_href_of(request, request.sent_by))
    _sub(sub_pti, "tradeId", request.trade_id, tradeIdScheme=TRADE_ID_SCHEME)
    for principal, clearing_id in cleared:
        tri = _sub(_sub(clearing, "cleared"), "tradeReferenceInformation")
        pti = _sub(tri, "partyTradeIdentifier")
        _sub(pti, "partyReference", href=clearer)
        _sub(pti, "tradeId", clearing_id, tradeIdScheme=TRADE_ID_SCHEME)
        info = _sub(tri, "partyTradeInformation")
        _sub(info, "partyReference", href=clearer)
        rel = _sub(info, "relatedParty")
        _sub(rel, "partyReference", href=_href_of(request, principal))
        _sub(rel, "role", "Counterparty")
    _reply_parties(root, request, request.send_to)
    return serialize(root)


def build_clearing_refused(
    request: ClearingRequestView, message_id: str, reason_code: str, description: str, at: datetime
) -> bytes:
    root = _reply_root("clearingRefused", request, message_id, at)
    reason = _sub(root, "reason")
    _sub(reason, "reasonCode", reason_code)
    _sub(reason, "description", description)
    return serialize(root)


def read_clearing_answer(root: etree._Element) -> ClearingAck:
    """clearingConfirmed / clearingRefused -> :class:`ClearingAck` (LCH or ours)."""
    kind = _fpml_root(root, ("clearingConfirmed", "clearingRefused"))
    parties = _parties(root)
    reference = _opt_text(root, "f:header/f:inReplyTo")
    message_id = _opt_text(root, "f:header/f:messageId")
    correlation_id = _opt_text(root, "f:correlationId")
    if kind == "clearingRefused":
        reasons = [
            ": ".join(x for x in (_opt_text(r, "f:reasonCode"), _opt_text(r, "f:description")) if x)
            for r in root.findall(_q("reason"))
        ]
        return ClearingAck(
            AckOutcome.REJECTED,
            reference=reference,
            message_id=message_id,
            correlation_id=correlation_id,
            reason="; ".join(reasons) or "refused",
        )
    ns = {"f": FPML_NS}
    submitted = None
    for pti in root.findall(
        "f:clearing/f:submitted/f:tradeReferenceInformation/f:partyTradeIdentifier", ns
    ):
        submitted = submitted or _opt_text(pti, "f:tradeId")
    cleared = []
    for tri in root.findall("f:clearing/f:cleared/f:tradeReferenceInformation", ns):
        clearing_id, uti = None, None
        for pti in tri.findall(_q("partyTradeIdentifier")):
            if pti.find(_q("partyReference")) is not None:
                clearing_id = clearing_id or _opt_text(pti, "f:tradeId")
            elif (tid := pti.find(_q("tradeId"))) is not None and tid.get(
                "tradeIdScheme"
            ) == UTI_SCHEME:
                uti = uti or (tid.text or "").strip()
        counterparty = None
        for rel in tri.findall("f:partyTradeInformation/f:relatedParty", ns):
            if _opt_text(rel, "f:role") == "Counterparty":
                ref = rel.find(_q("partyReference"))
                counterparty = _party_id(
                    parties, ref.get("href") if ref is not None else None, "cleared counterparty"
                )
        if clearing_id is None:
            raise ClearingFormatError("clearingConfirmed: cleared trade without a trade id")
        cleared.append(ClearedTrade(clearing_id, counterparty, uti))
    return ClearingAck(
        AckOutcome.ACCEPTED,
        reference=reference,
        message_id=message_id,
        correlation_id=correlation_id,
        submitted_trade_id=submitted,
        cleared=tuple(cleared),
    )
