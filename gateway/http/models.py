"""What the web API reads and writes: request bodies (``...In``), and response models that say
exactly what each route answers.

Domain values reach JSON through :func:`gateway.jsonable.to_jsonable`: Decimals as plain text
(``"4250.5"``), times as ISO 8601 UTC with microseconds and ``Z``, enums as their FIX or wire
values. The response models below describe that JSON as it is, so they type those fields as
text (:data:`DecimalText`, :data:`UtcTime`); a route hands over ``to_jsonable`` output and
FastAPI checks it against the model.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field

from fixspec.classic import (
    ClassicTermsError,
    FxOptionSpec,
    IrsSpec,
    fx_option_spec,
    irs_spec,
)
from gateway.config import RiskSection
from otc.negotiation import commands as c
from otc.negotiation.model import Firmness

# Text that may reach a FIX message: no control characters (an SOH would smuggle fields in)
FixText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
Decimalish = Annotated[Decimal, Field(allow_inf_nan=False)]
DecimalText = Annotated[str, Field(description="a decimal number as text, e.g. 4250.5")]
UtcTime = Annotated[str, Field(description="UTC, ISO 8601 with microseconds and Z")]


# --- FIX sessions, orders, risk --------------------------------------------------------------


class SessionView(BaseModel):
    comp_id: str
    logged_on: bool
    peer: str | None = None
    next_sender_seq_num: int | None = Field(None, description="the next MsgSeqNum we send")
    next_target_seq_num: int | None = Field(None, description="the next MsgSeqNum we expect")
    enabled: bool = Field(True, description="false: an operator disabled logons for the CompID")
    disabled_reason: str | None = None
    reset_on_logon: bool = True
    schedule: str | None = Field(None, description="none: always in session")
    in_session: bool = Field(True, description="within the schedule now")


class SessionLogoutIn(BaseModel):
    reason: FixText = Field(
        "logged out by the operator",
        min_length=1,
        max_length=200,
        description="the Logout's Text (58)",
    )


class SessionDisableIn(BaseModel):
    reason: FixText = Field(
        min_length=1,
        max_length=200,
        description="told to the client in the Logout refusing its logon",
    )


class SeqNumsIn(BaseModel):
    next_sender: int | None = Field(
        None, ge=1, le=2_147_483_647, description="the next MsgSeqNum the gateway sends"
    )
    next_target: int | None = Field(
        None, ge=1, le=2_147_483_647, description="the next MsgSeqNum the gateway expects"
    )


class ReloadOut(BaseModel):
    added: list[str]
    removed: list[str]
    readmitted: list[str] = Field(description="removed earlier in this process, now back")
    changed: list[str] = Field(description="session keys changed in place (read at each logon)")
    still_logged_on: list[str] = Field(
        description="removed sessions that had not logged out "
        "within the wait (they are being logged out)"
    )
    sessions: int


class OrderView(BaseModel):
    order_id: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    symbol: str
    side: str
    ord_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    status: str
    cum_qty: Decimal
    avg_px: Decimal
    text: str | None
    created_at: datetime
    updated_at: datetime


class RiskView(BaseModel):
    client: str
    limits: RiskSection
    exposure: Decimal
    halted: str | None


class KillRequest(BaseModel):
    client: FixText | None = None  # None: every client
    reason: FixText


class HealthOut(BaseModel):
    status: str


class CheckOut(BaseModel):
    ok: bool
    detail: str


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, CheckOut]  # database, db_writer, audit, clearing


class NotReadyOut(BaseModel):
    """A problem (RFC 9457) with every check's verdict."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str  # the failing checks and why
    checks: dict[str, CheckOut]


class KillOut(BaseModel):
    client: str | None
    halted: bool
    cancelled_orders: int


class ResumeOut(BaseModel):
    client: str | None
    resumed: bool


# --- RFQs and quotes: requests -----------------------------------------------------------------


class LegPriceIn(BaseModel):
    leg_no: int = Field(ge=1)
    bid_px: Decimalish | None = None
    offer_px: Decimalish | None = None


class QuoteIn(BaseModel):
    """A two-way or one-way quote. ``valid_for_ms`` or ``valid_until`` (UTC) bounds its life."""

    bid_px: Decimalish | None = None
    offer_px: Decimalish | None = None
    bid_size: Decimalish | None = None
    offer_size: Decimalish | None = None
    legs: list[LegPriceIn] = Field(default_factory=list)
    firmness: Firmness = Firmness.FIRM
    valid_until: datetime | None = None
    valid_for_ms: int | None = Field(default=None, ge=1, le=3_600_000)
    desk_quote_ref: FixText | None = Field(default=None, max_length=64)

    def terms(self, now: datetime) -> c.QuoteTerms:
        if self.valid_until is not None:
            until = self.valid_until
            if until.tzinfo is None:
                raise HTTPException(422, "valid_until must carry a UTC offset")
        else:
            until = now + timedelta(milliseconds=self.valid_for_ms or 30_000)
        return c.QuoteTerms(
            valid_until=until.astimezone(UTC),
            bid_px=self.bid_px,
            offer_px=self.offer_px,
            bid_size=self.bid_size,
            offer_size=self.offer_size,
            legs=tuple(c.LegPrice(p.leg_no, p.bid_px, p.offer_px) for p in self.legs),
            firmness=self.firmness,
            desk_quote_ref=self.desk_quote_ref,
        )


class MassQuoteItemIn(QuoteIn):
    """One quote of a mass quote: a new quote on ``rfq_id``, or a replacement of the desk's live
    quote ``replaces_quote_id`` on it."""

    rfq_id: FixText = Field(min_length=1, max_length=64)
    replaces_quote_id: FixText | None = Field(default=None, min_length=1, max_length=64)


class MassQuoteIn(BaseModel):
    """Quotes for up to ``MAX_MASS_QUOTES`` RFQs, each applied on its own."""

    quotes: list[MassQuoteItemIn] = Field(min_length=1)

    def command(self, desk_id: str, now: datetime) -> c.SubmitQuotes:
        return c.SubmitQuotes(
            desk_id,
            tuple(
                c.MassQuoteEntry(q.rfq_id, q.terms(now), q.replaces_quote_id) for q in self.quotes
            ),
        )


class MassQuoteResultOut(BaseModel):
    """One quote's outcome: ``accepted`` with its id, hash and signature (hex), or ``refused``
    with the core's reason ``code`` and text."""

    rfq_id: str
    status: Literal["accepted", "refused"]
    quote_id: str | None = None
    quote_hash: str | None = None
    signature: str | None = None
    code: str | None = None
    reason: str | None = None


class MassQuoteOut(BaseModel):
    results: list[MassQuoteResultOut]


class CounterAnswerIn(BaseModel):
    """New terms answer the counter with a fresh quote; no terms decline it."""

    quote: QuoteIn | None = None
    text: FixText | None = Field(default=None, max_length=200)


class LastLookRejectIn(BaseModel):
    text: FixText | None = Field(default=None, max_length=200)


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. USD")]
_STD = "default: the market standard of the currency and index"


class IrsIn(BaseModel):
    """A vanilla fixed-for-floating swap: day counts, payment frequencies and the spot lag are
    the market standard of (currency, index). Give its maturity as ``tenor`` (from spot, or from
    ``effective_date``) or as ``termination_date``. Quantity is the notional, prices the fixed
    rate as a decimal fraction (0.0375 is 3.75 %); buying pays fixed."""

    currency: Currency
    index: str = Field(pattern=r"^[A-Z]{2,12}$", description="SOFR, ESTR, EURIBOR, SONIA, TONA")
    tenor: str | None = Field(None, pattern=r"^\d{1,3}[MY]$", description="e.g. 5Y, 18M")
    effective_date: date | None = Field(None, description="default: spot from the trade date")
    termination_date: date | None = None
    fixed_frequency: Literal["1M", "3M", "6M", "1Y"] | None = Field(None, description=_STD)
    fixed_day_count: Literal["ACT/360", "ACT/365.FIXED", "30/360"] | None = Field(
        None, description=_STD
    )
    floating_frequency: Literal["1M", "3M", "6M", "1Y"] | None = Field(None, description=_STD)
    floating_day_count: Literal["ACT/360", "ACT/365.FIXED", "30/360"] | None = Field(
        None, description=_STD
    )

    def spec(self) -> IrsSpec:
        return irs_spec(
            self.currency,
            self.index,
            tenor=self.tenor,
            effective_date=self.effective_date,
            termination_date=self.termination_date,
            fixed_frequency=self.fixed_frequency,
            fixed_day_count=self.fixed_day_count,
            floating_frequency=self.floating_frequency,
            floating_day_count=self.floating_day_count,
        )


class FxOptionIn(BaseModel):
    """A European FX option on the base currency of ``pair``. Quantity is the notional in base
    currency, prices the premium per unit of base notional in ``premium_currency``."""

    pair: str = Field(pattern=r"^[A-Z]{3}/[A-Z]{3}$", description="BASE/QUOTE, e.g. EUR/USD")
    expiry: date
    strike: Decimalish = Field(description="quote currency units per base unit")
    put_call: Literal["call", "put"]
    premium_currency: Currency | None = Field(None, description="default: the quote currency")

    def spec(self) -> FxOptionSpec:
        return fx_option_spec(
            self.pair, self.expiry, self.strike, self.put_call == "call", self.premium_currency
        )


class LegIn(BaseModel):
    """One leg, named by ``symbol`` (any instrument, ``IRS-USD-SOFR-5Y`` and
    ``EUR/USD-19MAR27-1.1-C`` included) or by the terms of a swap (``irs``) or FX option
    (``fx_option``): exactly one of the three."""

    symbol: FixText | None = Field(None, min_length=1, max_length=64)
    irs: IrsIn | None = None
    fx_option: FxOptionIn | None = None
    side: Literal["buy", "sell"]
    ratio: Decimalish = Decimal(1)
    hedge: bool = False

    def instrument_symbol(self, leg_no: int) -> str:
        """The leg's canonical symbol; bad terms are a 422 naming the leg."""
        given = [x for x in (self.symbol, self.irs, self.fx_option) if x is not None]
        if len(given) != 1:
            raise HTTPException(422, f"leg {leg_no}: give exactly one of symbol, irs or fx_option")
        if self.symbol is not None:
            return self.symbol
        terms = self.irs or self.fx_option
        assert terms is not None
        try:
            return terms.spec().symbol
        except ClassicTermsError as exc:
            raise HTTPException(422, f"unknown_instrument: leg {leg_no}: {exc}") from None


class RfqIn(BaseModel):
    """An RFQ entered for a client (voice or chat); validated exactly like a FIX QuoteRequest."""

    client_id: FixText = Field(min_length=1, max_length=64)
    quote_req_id: FixText = Field(min_length=1, max_length=64)
    legs: list[LegIn] = Field(min_length=1, max_length=8)
    quantity: Decimalish
    side: Literal["buy", "sell"] | None = None
    quote_type: Literal["indicative", "tradeable"] = "tradeable"
    expire_at: datetime | None = None
    # the client's choice of dealers, within its routing (empty: every routed desk)
    desks: list[FixText] = Field(default_factory=list, max_length=32)
    # show desks the client's id (true) or only a per-RFQ alias (false); none: otc default
    disclosed: bool | None = None


# --- RFQs, quotes and trades: what the routes answer --------------------------------------------


class InstrumentOut(BaseModel):
    symbol: str
    kind: str
    underlying: str
    quote_currency: str
    expiry: str | None  # ISO date
    strike: DecimalText | None
    put_call: str | None
    terms: dict[str, Any] | None = Field(
        None, description="a swap's or FX option's terms as asked for (classic OTC only)"
    )


class RfqLegOut(BaseModel):
    leg_no: int
    instrument: InstrumentOut
    side: str  # Side(54): 1 buy, 2 sell
    ratio: DecimalText
    hedge: bool


class RfqOut(BaseModel):
    rfq_id: str
    client_id: str
    quote_req_id: str
    legs: list[RfqLegOut]
    quantity: DecimalText
    side: str | None  # None: a two-way request
    quote_type: str  # QuoteType(537): 0 indicative, 1 tradeable
    multileg: bool
    requested_at: UtcTime
    expire_at: UtcTime
    label: str | None = None  # the client's name for the strategy (Symbol of its MLEG R)
    disclosed: bool = True
    alias: str | None = None  # what desks see instead of client_id when not disclosed


class LegQuoteOut(BaseModel):
    leg_no: int
    symbol: str
    side: str
    ratio: DecimalText
    hedge: bool
    bid_px: DecimalText | None
    offer_px: DecimalText | None


class QuoteOut(BaseModel):
    quote_id: str
    rfq_id: str
    client_id: str
    desk_id: str
    quote_type: str
    firmness: str
    bid_px: DecimalText | None
    offer_px: DecimalText | None
    bid_size: DecimalText | None
    offer_size: DecimalText | None
    legs: list[LegQuoteOut]
    valid_until: UtcTime
    quoted_at: UtcTime
    replaces_quote_id: str | None
    counter_id: str | None
    desk_quote_ref: str | None


class SealedQuoteOut(BaseModel):
    """A quote as signed: its canonical hash and the desk's Ed25519 signature (hex)."""

    quote: QuoteOut
    quote_hash: str
    signature: str | None


class DeskRfqOut(BaseModel):
    """An RFQ routed to the caller's desk, with that desk's live quotes on it only."""

    rfq: RfqOut
    state: str
    my_quotes: list[SealedQuoteOut]


class DeskProtectionOut(BaseModel):
    """The caller's desk's market maker protection: frozen (no quoting) until reset."""

    desk_id: str
    frozen: bool
    tripped_at: UtcTime | None
    reason: str | None
    fills_in_window: int
    notional_in_window: DecimalText


class QuoteCancelledOut(BaseModel):
    quote_id: str
    cancelled: bool


class QuotesCancelledOut(BaseModel):
    cancelled: int


class RfqPassedOut(BaseModel):
    rfq_id: str
    passed: bool


class CounterDeclinedOut(BaseModel):
    counter_id: str
    declined: bool


class LastLookRejectedOut(BaseModel):
    quote_id: str
    rejected: bool


class DeskLastLookStatsOut(BaseModel):
    desk_id: str
    requested: int
    confirmed: int
    rejected: int
    timed_out: int
    hold_times: list[int]  # microseconds


class DeskMeOut(BaseModel):
    """Who a desk token signs in as."""

    desk_id: str
    token_name: str


class DeskPublicKeyOut(BaseModel):
    desk_id: str
    public_key_pem: str


class RfqCreatedOut(BaseModel):
    rfq: RfqOut
    desk_ids: list[str]


class RfqRecordOut(BaseModel):
    """An RFQ with its whole negotiation history (each event as ``{"event": name, ...}``)."""

    rfq: RfqOut
    state: str
    desk_ids: list[str]
    trade_id: str | None
    history: list[dict[str, Any]]


class PartyOut(BaseModel):
    party_id: str
    role: int  # PartyRole(452)
    name: str | None
    lei: str | None


class TradeLegOut(BaseModel):
    leg_no: int
    product: InstrumentOut | dict[str, Any]  # a listed instrument, or classic OTC terms
    side: str
    quantity: DecimalText
    price: DecimalText


class AllocationOut(BaseModel):
    """Part of the client's side booked to an account, given up to ``give_up_firm`` if set."""

    account: str
    quantity: DecimalText
    give_up_firm: str | None = None


class TradeOut(BaseModel):
    trade_id: str
    side: str
    quantity: DecimalText
    price: DecimalText
    currency: str
    legs: list[TradeLegOut]
    client: PartyOut
    desk: PartyOut
    requested_at: UtcTime
    quoted_at: UtcTime
    accepted_at: UtcTime
    executed_at: UtcTime
    trade_date: str  # ISO date
    rfq_id: str | None
    quote_id: str | None
    clearing_house: PartyOut | None
    clearing_firm: PartyOut | None
    label: str | None = None  # the client's name for the strategy, from its RFQ
    account: str | None = None
    allocations: list[AllocationOut] = []


class LastLookConfirmedOut(BaseModel):
    trade: TradeOut | None


class ClearingMessageOut(BaseModel):
    key: str
    trade_id: str
    format: str
    state: str
    attempts: int
    last_error: str | None
    reject_reason: str | None
    clearing_trade_ids: list[str]
    updated_at: str  # ISO 8601


class ClearingExceptionOut(BaseModel):
    key: str
    trade_id: str
    format: str
    state: str
    reason: str
    attempts: int
    updated_at: str  # ISO 8601


class CapturedTradeOut(TradeOut):
    """A captured trade with the delivery state of its clearing messages."""

    clearing_status: Literal["not_cleared", "cleared", "rejected", "failed", "pending"]
    clearing: list[ClearingMessageOut]
    version: int = 1  # 1 as captured; each correction or bust adds one
    status: Literal["active", "busted"] = "active"


class CorrectionIn(BaseModel):
    """New figures for a trade (at least one), and why."""

    quantity: Annotated[Decimalish, Field(gt=0)] | None = None
    price: Annotated[Decimalish, Field(gt=0)] | None = None
    account: Annotated[FixText, Field(min_length=1, max_length=64)] | None = None
    reason: Annotated[FixText, Field(min_length=1, max_length=500)]


class BustIn(BaseModel):
    reason: Annotated[FixText, Field(min_length=1, max_length=500)]


class TradeVersionOut(BaseModel):
    """One version of a trade: 1 is the capture; later ones correct or bust it."""

    trade_id: str
    version: int
    kind: Literal["new", "correction", "bust", "allocation"]
    state: Literal["proposed", "applied", "declined"]
    report_id: str  # TradeReportID(571) of its TradeCaptureReport
    previous_report_id: str | None  # TradeReportRefID(572): the version it replaces
    reason: str
    proposed_by: str
    proposed_at: UtcTime
    approved_by: str | None
    applied_at: UtcTime | None
    quantity: DecimalText
    price: DecimalText
    account: str | None
    allocations: list[AllocationOut] = []


# --- audit ----------------------------------------------------------------------------------------


class ExportIn(BaseModel):
    """Entries from ``frm`` to ``to`` (UTC); both open-ended when omitted."""

    frm: datetime | None = None
    to: datetime | None = None
