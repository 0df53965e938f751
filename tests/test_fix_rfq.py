"""FIX 4.4 <-> negotiation translation for RFQs (gateway/fix/rfq_*.py).

Every message the codec builds, and every client message the tests build with its helpers, is
framed as a full FIX string and parsed and validated by QuickFIX against the assembled dictionary
(stock FIX44.xml plus our fields), so a wrong group layout, a missing required field or a field
in the wrong message fails here and not at a counterparty. Events come from a real engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec.codec import DecodeError, RawMessage, decode_outbound, flatten, groups
from fixspec.instruments import format_expiry, parse_symbol
from fixspec.messages import ExecType, OrdRejReason, OrdStatus, Side
from fixspec.rfq_codes import QuoteStatus
from gateway.fix.convert import OutboundBuilder
from gateway.fix.dictionary import write_dictionary
from gateway.fix.rfq_client import (
    decode_quote,
    encode_accept_order,
    encode_client_rfq,
    encode_quote_cancel,
    encode_quote_response,
)
from gateway.fix.rfq_fields import LEG_MEMBER_TAGS, MULTILEG_SYMBOL, RELATED_SYM_MEMBERS, Outgoing
from gateway.fix.rfq_inbound import decode_client, hedge_flags, is_rfq_message
from gateway.fix.rfq_outbound import encode_for_client, reject_for_rfq
from otc.negotiation import (
    AcceptQuote,
    AcceptVia,
    AnswerCounter,
    CancelRfq,
    ClientPass,
    CounterQuote,
    DeskPass,
    Firmness,
    LegRequest,
    NegotiationEngine,
    QuoteType,
    RejectLastLook,
    SubmitQuote,
    SubmitRfq,
    verify_quote,
)
from otc.negotiation import events as ev
from otc.negotiation.model import Rfq
from tests.test_negotiation_support import (
    CLIENT,
    KEYS,
    OPTION,
    D,
    accept,
    at,
    make_engine,
    one,
    open_rfq,
    terms,
)

SOH = "\x01"
HEADER_TAGS = frozenset({8, 9, 10, 34, 35, 49, 52, 56})
SIDE_TAGS = frozenset({54, 37, 11, 453, 448, 447, 452, 15})
PARTY_TAGS = frozenset({448, 447, 452})
DESK = "DESK-A"
CALL_SPREAD = (
    LegRequest("BTC-27DEC26-100000-C", Side.BUY),
    LegRequest("BTC-27DEC26-120000-C", Side.SELL),
    LegRequest("BTC-27DEC26", Side.SELL, D("0.25"), hedge=True),
)
SPREAD_LEGS = ((1, "0.050", "0.055"), (2, "0.020", "0.024"), (3, "60000", "60010"))


# --- framing and validation -----------------------------------------------------------------


@pytest.fixture(scope="module")
def dd(tmp_path_factory) -> fix.DataDictionary:
    """The dictionary the gateway loads: stock FIX44.xml plus QuoteSignature/Hash/SignerKeyID."""
    return fix.DataDictionary(str(write_dictionary(Path(tmp_path_factory.mktemp("dict")))))


def wire(msg_type: str, body: Iterable[tuple[int, str]]) -> str:
    header = [(35, msg_type), (49, "CLIENT-1"), (56, "FIXBRIDGE"), (34, "2")]
    header.append((52, "20260302-12:00:00.000000"))
    text = "".join(f"{t}={v}{SOH}" for t, v in [*header, *body])
    head = f"8=FIX.4.4{SOH}9={len(text)}{SOH}{text}"
    return f"{head}10={sum(head.encode()) % 256:03d}{SOH}"


def body_of(raw: RawMessage) -> list[tuple[int, str]]:
    return [(t, v) for t, v in raw.fields if t not in HEADER_TAGS]


def through_quickfix(dd: fix.DataDictionary, msg_type: str, body) -> RawMessage:
    """Parse and validate as the engine would; return the message as QuickFIX re-serialises it
    (fields reordered by tag, groups in dictionary order), which is what the gateway decodes."""
    message = fix.Message(wire(msg_type, body), dd, True)
    dd.validate(message)
    return RawMessage.parse(message.toString())


def from_client(dd: fix.DataDictionary, raw: RawMessage) -> RawMessage:
    return through_quickfix(dd, raw.msg_type, body_of(raw))


def to_client(dd: fix.DataDictionary, outgoing: list[Outgoing]) -> list[RawMessage]:
    """Each outgoing message must be valid as we order it and as the gateway's OutboundBuilder
    builds it; returns them parsed back."""
    parsed = []
    build = OutboundBuilder(dd)
    for msg_type, fields in outgoing:
        parsed.append(through_quickfix(dd, msg_type, flatten(fields)))
        message = build(msg_type, fields)
        assert body_of(RawMessage.parse(message.toString())) == body_of(parsed[-1])
        header = message.getHeader()
        for tag, value in ((8, "FIX.4.4"), (49, "FIXBRIDGE"), (56, CLIENT), (34, "3")):
            header.setField(tag, value)
        header.setField(52, "20260302-12:00:00.000")
        dd.validate(fix.Message(message.toString(), dd, True))
    return parsed


class Lookup:
    """The RfqLookup an edge provides, over a real engine and the requests it acknowledged."""

    def __init__(self, engine: NegotiationEngine) -> None:
        self.engine = engine
        self.requests: dict[tuple[str, str], str] = {}

    def rfq_of_quote(self, client_id: str, quote_id: str) -> str | None:
        try:
            quote = self.engine.quote(quote_id).sealed.quote
        except KeyError:
            return None
        return quote.rfq_id if quote.client_id == client_id else None

    def rfq_of_request(self, client_id: str, quote_req_id: str) -> str | None:
        return self.requests.get((client_id, quote_req_id))

    def handle(self, command, now: datetime) -> list[ev.Event]:
        events = self.engine.handle(command, now)
        for e in events:
            if isinstance(e, ev.RfqAcknowledged):
                self.requests[(e.client_id, e.rfq.quote_req_id)] = e.rfq.rfq_id
        return events


def open_request(lookup: Lookup, cmd: SubmitRfq) -> str:
    return one(lookup.handle(cmd, at(0)), ev.RfqAcknowledged).rfq.rfq_id


def rfq_of(engine: NegotiationEngine, event: ev.Event) -> Rfq:
    return engine.rfq(ev.rfq_id_of(event)).rfq


def submit_quote(engine, rfq_id, bid, offer, now, **kw) -> ev.QuoteToClient:
    return one(
        engine.handle(SubmitQuote(DESK, rfq_id, terms(bid, offer, now=now, **kw)), now),
        ev.QuoteToClient,
    )


# --- QuoteRequest (R) -> SubmitRfq ----------------------------------------------------------

UNDERLYINGS = st.sampled_from(["BTC", "ETH", "SOL"])
EXPIRIES = st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31))
STRIKES = st.builds(
    lambda units, places: Decimal(units).scaleb(-places),
    st.integers(1, 10**7),
    st.integers(0, 2),
)
OPTIONS = st.builds(
    lambda u, d, k, pc: parse_symbol(f"{u}-{format_expiry(d)}-{k:f}-{pc}").symbol,
    UNDERLYINGS,
    EXPIRIES,
    STRIKES,
    st.sampled_from("CP"),
)
FUTURES = st.builds(lambda u, d: f"{u}-{format_expiry(d)}", UNDERLYINGS, EXPIRIES)
LINEAR = st.one_of(FUTURES, st.builds(lambda u: f"{u}-PERP", UNDERLYINGS))
ANY_SYMBOL = st.one_of(OPTIONS, LINEAR, st.builds(lambda u: f"{u}-USD", UNDERLYINGS))
SIDES = st.sampled_from([Side.BUY, Side.SELL])
RATIOS = st.builds(
    lambda units, places: Decimal(units).scaleb(-places), st.integers(1, 500), st.integers(0, 2)
)
IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/", min_size=1, max_size=20)


def _legs(symbols: list[str], sides, ratios, hedge: bool = False) -> list[LegRequest]:
    return [
        LegRequest(s, side, r, hedge) for s, side, r in zip(symbols, sides, ratios, strict=False)
    ]


@st.composite
def quote_requests(draw) -> SubmitRfq:
    """Every shape a client can ask for: one instrument; an option strategy with or without a
    delta hedge; a futures calendar; one option with its hedge."""
    shape = draw(st.sampled_from(["single", "options", "calendar", "hedged_option"]))
    sides, ratios = (
        st.lists(SIDES, min_size=4, max_size=4),
        st.lists(RATIOS, min_size=4, max_size=4),
    )
    if shape == "single":
        legs = [LegRequest(draw(ANY_SYMBOL), Side.BUY)]
    elif shape == "calendar":
        symbols = draw(st.lists(LINEAR, min_size=2, max_size=3, unique=True))
        legs = _legs(symbols, draw(sides), draw(ratios))
    else:
        count = (2, 4) if shape == "options" else (1, 1)
        symbols = draw(st.lists(OPTIONS, min_size=count[0], max_size=count[1], unique=True))
        legs = _legs(symbols, draw(sides), draw(ratios))
        if shape == "hedged_option" or draw(st.booleans()):
            legs += _legs([draw(LINEAR)], [draw(SIDES)], [draw(RATIOS)], hedge=True)
    return SubmitRfq(
        client_id=CLIENT,
        quote_req_id=draw(IDS),
        legs=tuple(legs),
        quantity=draw(RATIOS),
        side=draw(st.none() | SIDES),
        quote_type=draw(st.sampled_from(list(QuoteType))),
        multileg=sum(not leg.hedge for leg in legs) > 1,
        expire_at=draw(
            st.none()
            | st.datetimes(datetime(2026, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))
        ),
    )


def test_a_status_report_with_an_empty_reason_has_no_text(dd) -> None:
    """A desk may send an empty text: it is left out, never an empty (unsendable) 58."""
    event = ev.QuoteStatusChanged(
        CLIENT,
        DESK,
        "R-1",
        "Q-1",
        QuoteStatus.REMOVED_FROM_MARKET,
        "",
        datetime(2026, 3, 2, 12, tzinfo=UTC),
    )
    ((msg_type, fields),) = encode_for_client(event, rfq=None, answering=None)
    (report,) = to_client(dd, [(msg_type, fields)])
    assert msg_type == "AI" and report.get(117) == "Q-1" and report.get(58) is None


@pytest.mark.parametrize("value", ["", "late\x0144=1"])
def test_outbound_builder_refuses_a_value_that_cannot_travel_as_fix(dd, value: str) -> None:
    """An empty value is not FIX; an SOH inside one would smuggle fields into the message."""
    build = OutboundBuilder(dd)
    party = [(448, DESK), (447, "D"), (452, "1")]
    with pytest.raises(ValueError, match="tag 58"):
        build("AI", [(117, "Q-1"), (297, "5"), (453, [party]), (58, value)])
    with pytest.raises(ValueError, match="tag 448"):
        build("AI", [(117, "Q-1"), (297, "5"), (453, [[(448, value), *party[1:]]])])


@settings(max_examples=150, deadline=None)
@given(cmd=quote_requests(), details=st.booleans())
def test_quote_request_round_trips_through_the_dictionary(dd, cmd: SubmitRfq, details) -> None:
    raw = encode_client_rfq(cmd, details=details)
    assert decode_client(raw, CLIENT) == cmd
    assert decode_client(from_client(dd, raw), CLIENT) == cmd  # as the gateway sees it


def test_single_instrument_request_in_detail(dd) -> None:
    cmd = SubmitRfq(
        CLIENT,
        "QR-9",
        (LegRequest(OPTION, Side.BUY),),
        D("25"),
        Side.SELL,
        QuoteType.INDICATIVE,
        expire_at=datetime(2026, 3, 2, 12, 5, tzinfo=UTC),
    )
    raw = from_client(dd, encode_client_rfq(cmd))
    (entry,) = groups(raw, 146, RELATED_SYM_MEMBERS)
    assert [entry.get(t) for t in (55, 461, 167, 541, 201, 202, 537, 54, 38, 126)] == [
        OPTION,
        "OCXXXX",
        "OPT",
        "20261227",
        "1",
        "100000",
        "0",
        "2",
        "25",
        "20260302-12:05:00.000000",
    ]
    assert decode_client(raw, CLIENT) == cmd


def test_strategy_with_hedge_leg_travels_as_na_symbol_and_legs(dd) -> None:
    cmd = SubmitRfq(CLIENT, "QR-2", CALL_SPREAD, D("10"), multileg=True)
    raw = from_client(dd, encode_client_rfq(cmd, details=False))
    (entry,) = groups(raw, 146, RELATED_SYM_MEMBERS)
    assert entry.get(55) == MULTILEG_SYMBOL and entry.get(54) is None  # two-way
    legs = groups(entry, 555, LEG_MEMBER_TAGS)
    assert [(leg.get(600), leg.get(624), leg.get(623)) for leg in legs] == [
        ("BTC-27DEC26-100000-C", "1", "1"),
        ("BTC-27DEC26-120000-C", "2", "1"),
        ("BTC-27DEC26", "2", "0.25"),
    ]
    decoded = decode_client(raw, CLIENT)
    assert [leg.hedge for leg in decoded.legs] == [False, False, True] and decoded.multileg


def test_hedge_legs_are_the_linear_legs_of_an_option_strategy_only() -> None:
    def flags(*symbols: str) -> list[bool]:
        return hedge_flags([parse_symbol(s) for s in symbols])

    assert flags(OPTION, "BTC-PERP") == [False, True]
    assert flags(OPTION, "BTC-27DEC26-90000-P", "BTC-27DEC26") == [False, False, True]
    assert flags("BTC-27DEC26", "BTC-PERP") == [False, False]  # a calendar: both priced
    assert flags(OPTION, "BTC-USD") == [False, False]  # spot is never a hedge


def test_leg_details_that_agree_with_the_symbol_are_accepted(dd) -> None:
    raw = strategy_request(
        legs=[
            raw_leg("BTC-27DEC26-90000-P", "1", {608: "OPXXXX", 610: "202612w4", 612: "90000.00"}),
            raw_leg(OPTION, "2", {608: "OXXXXX", 610: "20261227", 611: "20261227"}),
            raw_leg("BTC-PERP", "2", {608: "FFXXXX", 609: "FUT"}),
        ]
    )
    cmd = decode_client(from_client(dd, raw), CLIENT)
    assert [(leg.symbol, leg.hedge) for leg in cmd.legs] == [
        ("BTC-27DEC26-90000-P", False),
        (OPTION, False),
        ("BTC-PERP", True),
    ]


# R built by hand, for the error cases the helpers would never produce.


def raw_leg(symbol: str, side: str = "1", extra: dict[int, str] | None = None) -> list:
    fields = [(600, symbol)]
    order = (608, 609, 610, 611, 612, 623, 624, 687)
    values = {**(extra or {}), 624: side}
    fields += [(t, values[t]) for t in order if t in values]
    return fields


def strategy_request(legs: list[list], quote_req_id: str | None = "QR-X", qty: str = "10"):
    body: list = [(131, quote_req_id)] if quote_req_id else []
    body.append((146, [[(55, MULTILEG_SYMBOL), (38, qty), (555, legs)]]))
    return RawMessage("R", ((35, "R"), *flatten(body)))


def single_request(symbol: str, extra: Iterable[tuple[int, str]] = (), quote_req_id="QR-X"):
    entry = [(55, symbol), *extra, (38, "5")]
    body: list = [(131, quote_req_id)] if quote_req_id else []
    body.append((146, [entry]))
    return RawMessage("R", ((35, "R"), *flatten(body)))


SPREAD = [raw_leg(OPTION, "1"), raw_leg("BTC-27DEC26-120000-C", "2")]


@pytest.mark.parametrize(
    ("raw", "tag", "words"),
    [
        (single_request("BTC-NOPE-1"), 55, "unknown instrument symbol"),
        (strategy_request([raw_leg(OPTION), raw_leg("XX")]), 600, "unknown instrument symbol"),
        (single_request(OPTION, quote_req_id=None), 131, "QuoteReqID(131) is required"),
        (strategy_request([raw_leg(OPTION, "1", {611: "20261226"}), SPREAD[1]]), 611,
         "LegMaturityDate(611) '20261226' contradicts leg 1 BTC-27DEC26-100000-C (expiry 2026"),
        (strategy_request([SPREAD[0], raw_leg("BTC-PERP", "2", {611: "20261227"})]), 611,
         "contradicts leg 2 BTC-PERP (no expiry)"),
        (strategy_request([raw_leg(OPTION, "1", {612: "110000"}), SPREAD[1]]), 612,
         "LegStrikePrice(612) '110000' contradicts leg 1 BTC-27DEC26-100000-C (strike 100000)"),
        (strategy_request([raw_leg(OPTION, "1", {608: "OPXXXX"}), SPREAD[1]]), 608,
         "contradicts leg 1 BTC-27DEC26-100000-C (a call option, CFI OCXXXX)"),
        (strategy_request([SPREAD[0], raw_leg("BTC-27DEC26", "2", {608: "OCXXXX"})]), 608,
         "(a future, CFI FFXXXX)"),
        (strategy_request([raw_leg(OPTION, "1", {609: "FUT"}), SPREAD[1]]), 609,
         "LegSecurityType(609) 'FUT' contradicts leg 1"),
        (strategy_request([raw_leg(OPTION, "1", {610: "202611"}), SPREAD[1]]), 610,
         "LegMaturityMonthYear(610) '202611' contradicts"),
        (strategy_request([raw_leg(OPTION, "1", {687: "11"}), SPREAD[1]]), 687,
         "LegQty(687) 11 on leg 1 is not OrderQty(38) x LegRatioQty(623) = 10"),
        (strategy_request([[(600, OPTION)], SPREAD[1]]), 624, "LegSide(624) is required"),
        (strategy_request([raw_leg(OPTION, "7"), SPREAD[1]]), 624, "must be 1 (buy) or 2 (sell)"),
        (single_request(OPTION, [(201, "0")]), 201, "PutOrCall(201) '0' contradicts Symbol"),
        (single_request(OPTION, [(541, "2026-12-27")]), 541, "is not a YYYYMMDD date"),
        (single_request(MULTILEG_SYMBOL), 55, "needs the legs in NoLegs(555)"),
        (single_request(OPTION, [(537, "3")]), 537, "QuoteType(537) must be 0 (indicative)"),
        (single_request(OPTION, [(126, "tomorrow")]), 126, "ExpireTime(126) is not a UTC"),
        (single_request(OPTION, [(38, "0")]), 38, "must be positive"),
    ],
)  # fmt: skip
def test_bad_quote_requests_are_decode_errors_naming_the_tag(raw, tag, words) -> None:
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    assert info.value.tag == tag
    assert words in info.value.text


def test_two_instruments_in_one_request_are_refused() -> None:
    body = [(131, "QR-1"), (146, [[(55, OPTION), (38, "1")], [(55, "BTC-PERP"), (38, "1")]])]
    with pytest.raises(DecodeError, match="exactly one instrument") as info:
        decode_client(RawMessage("R", ((35, "R"), *flatten(body))), CLIENT)
    assert info.value.tag == 146


def test_rejected_request_gets_quote_request_reject_echoing_the_ask(dd) -> None:
    raw = from_client(dd, strategy_request([raw_leg(OPTION, "1", {612: "1"}), SPREAD[1]]))
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    assert answer.msg_type == "AG"
    assert (answer.get(131), answer.get(658)) == ("QR-X", "99")  # 99 other: inconsistent legs
    assert "LegStrikePrice(612)" in answer.get(58)
    (echo,) = groups(answer, 146, RELATED_SYM_MEMBERS)
    assert (echo.get(55), echo.get(38)) == (MULTILEG_SYMBOL, "10")
    legs = groups(echo, 555, LEG_MEMBER_TAGS)
    assert [(leg.get(600), leg.get(624)) for leg in legs] == [
        (OPTION, "1"),
        ("BTC-27DEC26-120000-C", "2"),
    ]


def test_unknown_symbol_is_quote_request_reject_reason_1(dd) -> None:
    raw = from_client(dd, single_request("BTC-27DEC26-ABC", [(54, "1")]))
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    assert info.value.unknown_symbol
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    (echo,) = groups(answer, 146, RELATED_SYM_MEMBERS)
    assert (answer.get(658), echo.get(55), echo.get(54)) == ("1", "BTC-27DEC26-ABC", "1")


def test_reject_of_a_request_without_id_or_group_is_still_valid(dd) -> None:
    raw = RawMessage("R", ((35, "R"), (146, "2"), (55, OPTION)))  # count says 2, one entry
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    assert (answer.get(131), answer.get(55)) == ("NONE", OPTION)


# --- QuoteResponse (AJ), NewOrderSingle (D), QuoteCancel (Z) ---------------------------------


@pytest.fixture
def live() -> tuple[Lookup, ev.QuoteToClient]:
    """An open RFQ from CLIENT with one live two-way quote from DESK-A."""
    lookup = Lookup(make_engine())
    rfq_id = open_request(lookup, SubmitRfq(CLIENT, "QR-1", (LegRequest(OPTION, Side.BUY),), D(10)))
    return lookup, submit_quote(lookup.engine, rfq_id, "0.050", "0.060", at(1))


def test_hit_by_quote_response_round_trips_and_carries_cl_ord_id(dd, live) -> None:
    _, shown = live
    cmd = accept(
        shown.sealed, Side.BUY, "RESP-1", AcceptVia.QUOTE_RESPONSE, quantity=D("4"), price=D("0.06")
    )
    raw = from_client(dd, encode_quote_response(cmd, symbol=OPTION, cl_ord_id="ORD-7"))
    assert (raw.get(694), raw.get(11), raw.get(5002)) == ("1", "ORD-7", shown.sealed.quote_hash)
    assert decode_client(raw, CLIENT) == cmd


def test_counter_and_pass_resolve_their_rfq_through_the_lookup(dd, live) -> None:
    lookup, shown = live
    quote = shown.sealed.quote
    counter = CounterQuote(CLIENT, quote.rfq_id, quote.quote_id, "RESP-2", Side.BUY, D("0.055"))
    raw = from_client(dd, encode_quote_response(counter, symbol=OPTION))
    assert raw.get(133) == "0.055" and raw.get(132) is None  # a buyer counters the offer
    assert decode_client(raw, CLIENT, lookup) == counter
    sell = CounterQuote(
        CLIENT, quote.rfq_id, quote.quote_id, "RESP-3", Side.SELL, D("0.052"), D("5")
    )
    assert decode_client(from_client(dd, encode_quote_response(sell)), CLIENT, lookup) == sell
    passed = ClientPass(CLIENT, quote.rfq_id, "RESP-4", quote.quote_id)
    assert decode_client(from_client(dd, encode_quote_response(passed)), CLIENT, lookup) == passed


def test_resolving_an_rfq_without_a_lookup_is_a_wiring_error_not_a_client_error(live) -> None:
    _, shown = live
    passed = encode_quote_response(ClientPass(CLIENT, "?", "RESP-1", shown.sealed.quote.quote_id))
    with pytest.raises(TypeError, match="needs an RfqLookup"):
        decode_client(passed, CLIENT)
    with pytest.raises(TypeError, match="needs an RfqLookup"):
        decode_client(encode_quote_cancel("QR-1"), CLIENT)


def test_counter_price_may_come_as_price_44(live) -> None:
    lookup, shown = live
    q = shown.sealed.quote
    body = [(693, "R9"), (117, q.quote_id), (694, "2"), (55, OPTION), (54, "2"), (44, "0.051")]
    decoded = decode_client(RawMessage("AJ", ((35, "AJ"), *body)), CLIENT, lookup)
    assert isinstance(decoded, CounterQuote) and decoded.price == D("0.051")


def aj(*fields: tuple[int, str]) -> RawMessage:
    return RawMessage("AJ", ((35, "AJ"), (693, "R1"), *fields, (55, OPTION)))


@pytest.mark.parametrize(
    ("raw", "tag", "words"),
    [
        (aj((117, "Q-1"), (694, "2"), (54, "1"), (132, "1")), 132, "BidPx(132) on a BUY counter"),
        (aj((117, "Q-1"), (694, "2"), (54, "1"), (44, "1"), (133, "2")), 133, "disagree"),
        (aj((117, "Q-1"), (694, "2"), (54, "2")), 44, "a counter needs Price(44) or BidPx(132)"),
        (aj((117, "Q-1"), (694, "1"), (54, "1")), 5002, "QuoteHash(5002) is required"),
        (aj((117, "Q-1"), (694, "1"), (5002, "ab")), 54, "Side(54) is required"),
        (aj((117, "Q-1"), (694, "4")), 694, "is a dealer's answer"),
        (aj((117, "Q-1"), (694, "9")), 694, "not a FIX 4.4 value"),
        (aj((694, "6")), 117, "QuoteID(117) is required"),
        (aj((117, "Q-404"), (694, "6")), 117, "QuoteID(117) 'Q-404' names no quote of yours"),
    ],
)  # fmt: skip
def test_bad_quote_responses_are_decode_errors(live, raw, tag, words) -> None:
    lookup, _ = live
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT, lookup)
    assert info.value.tag == tag and words in info.value.text


def test_another_clients_quote_is_unknown(live) -> None:
    lookup, shown = live
    raw = aj((117, shown.sealed.quote.quote_id), (694, "6"))
    with pytest.raises(DecodeError, match="names no quote of yours"):
        decode_client(raw, "CLIENT-2", lookup)


def test_refused_quote_response_gets_a_quote_status_report(dd, live) -> None:
    lookup, _ = live
    for raw, status in ((aj((117, "Q-404"), (694, "6")), "9"), (aj((117, "Q-1"), (694, "4")), "5")):
        with pytest.raises(DecodeError) as info:
            decode_client(raw, CLIENT, lookup)
        (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
        assert answer.msg_type == "AI"
        assert [answer.get(t) for t in (117, 693, 297, 55)] == [raw.get(117), "R1", status, OPTION]
    raw = aj((694, "1"))  # no QuoteID to report on: BusinessMessageReject
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    assert [answer.get(t) for t in (372, 379, 380)] == ["AJ", "R1", "0"]


def test_previously_quoted_fok_order_round_trips(dd, live) -> None:
    _, shown = live
    cmd = accept(shown.sealed, Side.SELL, "ORD-1", AcceptVia.NEW_ORDER, quantity=D("10"))
    raw = from_client(dd, encode_accept_order(cmd, symbol=OPTION, transact_time=at(2)))
    assert [raw.get(t) for t in (40, 59, 117)] == ["D", "4", shown.sealed.quote.quote_id]
    assert is_rfq_message(raw)
    assert decode_client(raw, CLIENT) == cmd


def order(*fields: tuple[int, str]) -> RawMessage:
    base = [(11, "ORD-2"), (55, OPTION), (54, "1"), (60, "20260302-12:00:01"), (38, "10")]
    return RawMessage("D", ((35, "D"), *base, *fields))


@pytest.mark.parametrize(
    ("raw", "tag", "words"),
    [
        (order((40, "D"), (117, "Q-1"), (59, "0"), (5002, "ab")), 59,
         "TimeInForce(59) must be 4 (fill or kill) to accept a quote, got 0"),
        (order((40, "D"), (117, "Q-1"), (5002, "ab")), 59, "got none (day)"),
        (order((40, "2"), (117, "Q-1"), (59, "4"), (5002, "ab")), 40, "OrdType(40) must be D"),
        (order((40, "D"), (59, "4"), (5002, "ab")), 117, "QuoteID(117) is required"),
        (order((40, "D"), (117, "Q-1"), (59, "4")), 5002, "QuoteHash(5002) is required"),
    ],
)  # fmt: skip
def test_bad_accepting_orders_are_decode_errors(raw, tag, words) -> None:
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    assert info.value.tag == tag and words in info.value.text


def test_refused_order_gets_a_rejected_execution_report(dd) -> None:
    raw = from_client(dd, order((40, "D"), (117, "Q-1"), (59, "1"), (5002, "ab")))
    with pytest.raises(DecodeError) as info:
        decode_client(raw, CLIENT)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    er = decode_outbound(answer)
    assert (er.exec_type, er.ord_status, er.ord_rej_reason) == (
        ExecType.REJECTED,
        OrdStatus.REJECTED,
        OrdRejReason.OTHER,
    )
    assert (er.order_id, er.cl_ord_id, er.side, er.symbol, er.order_qty) == (
        "NONE",
        "ORD-2",
        Side.BUY,
        OPTION,
        D("10"),
    )
    assert "TimeInForce(59)" in er.text


def test_quote_cancel_withdraws_the_request(dd, live) -> None:
    lookup, shown = live
    raw = from_client(dd, encode_quote_cancel("QR-1"))
    assert decode_client(raw, CLIENT, lookup) == CancelRfq(CLIENT, shown.sealed.quote.rfq_id)
    with pytest.raises(DecodeError, match="names no request of yours") as info:
        decode_client(raw, "CLIENT-2", lookup)
    (answer,) = to_client(dd, reject_for_rfq(raw, info.value))
    assert [answer.get(t) for t in (35, 372, 379)] == ["j", "Z", "QR-1"]
    wrong_type = RawMessage("Z", ((35, "Z"), (131, "QR-1"), (117, "*"), (298, "1")))
    with pytest.raises(DecodeError, match="QuoteCancelType"):
        decode_client(wrong_type, CLIENT, lookup)


def test_only_rfq_messages_are_routed_here() -> None:
    assert is_rfq_message(RawMessage("R", ()))
    assert is_rfq_message(RawMessage("AJ", ()))
    assert not is_rfq_message(order((40, "2")))
    assert not is_rfq_message(RawMessage("F", ()))
    with pytest.raises(DecodeError, match="not part of the RFQ flow"):
        decode_client(RawMessage("F", ((35, "F"),)), CLIENT)


# --- outbound: quotes -----------------------------------------------------------------------


def test_quote_carries_prices_hash_and_a_signature_that_verifies(dd, live) -> None:
    lookup, shown = live
    rfq = rfq_of(lookup.engine, shown)
    (raw,) = to_client(dd, encode_for_client(shown, rfq=rfq))
    view = decode_quote(raw)
    quote = shown.sealed.quote
    assert (view.quote_id, view.quote_req_id, view.symbol) == (quote.quote_id, "QR-1", OPTION)
    assert (view.bid_px, view.offer_px, view.bid_size, view.offer_size) == (
        D("0.05"),
        D("0.06"),
        D("10"),
        D("10"),
    )
    assert (view.valid_until, view.transact_time) == (quote.valid_until, quote.quoted_at)
    assert view.quote_type is QuoteType.TRADEABLE and view.legs == ()
    assert view.quote_hash == shown.sealed.quote_hash and view.signer_key_id == DESK
    assert verify_quote(quote, view.signature, KEYS[DESK].public_key())
    assert raw.get(448) == DESK and raw.get(38) == "10"


def test_multileg_quote_lists_leg_prices_in_the_quote_leg_group(dd) -> None:
    lookup = Lookup(make_engine())
    rfq_id = open_request(lookup, SubmitRfq(CLIENT, "QR-5", CALL_SPREAD, D(10), multileg=True))
    shown = submit_quote(lookup.engine, rfq_id, "0.026", "0.035", at(1), legs=SPREAD_LEGS)
    (raw,) = to_client(dd, encode_for_client(shown))  # without the RFQ: no QuoteReqID
    view = decode_quote(raw)
    assert (view.symbol, raw.get(167), view.quote_req_id) == (MULTILEG_SYMBOL, "MLEG", None)
    assert [(leg.symbol, leg.side, leg.ratio, leg.bid_px, leg.offer_px) for leg in view.legs] == [
        ("BTC-27DEC26-100000-C", Side.BUY, D(1), D("0.050"), D("0.055")),
        ("BTC-27DEC26-120000-C", Side.SELL, D(1), D("0.020"), D("0.024")),
        ("BTC-27DEC26", Side.SELL, D("0.25"), D("60000"), D("60010")),
    ]
    assert verify_quote(shown.sealed.quote, view.signature, KEYS[DESK].public_key())


def test_unsigned_quote_has_hash_but_no_signature_fields(dd) -> None:
    engine = make_engine(signing=False)
    shown = submit_quote(engine, open_rfq(engine), "0.05", "0.06", at(1))
    (raw,) = to_client(dd, encode_for_client(shown))
    view = decode_quote(raw)
    assert view.quote_hash == shown.sealed.quote_hash
    assert (view.signature, view.signer_key_id) == (None, None)


def test_decode_quote_rejects_a_bad_signature_field() -> None:
    raw = RawMessage("S", ((35, "S"), (117, "Q"), (55, OPTION), (5001, "not base64!")))
    with pytest.raises(DecodeError, match="QuoteSignature"):
        decode_quote(raw)


# --- outbound: rejects and status reports ---------------------------------------------------


def test_refused_request_gets_ag_echoing_what_the_client_sent(dd) -> None:
    lookup = Lookup(make_engine(routes={}))  # nobody routed: the core refuses with NO_ROUTE
    raw = from_client(
        dd, encode_client_rfq(SubmitRfq(CLIENT, "QR-7", CALL_SPREAD, D("3"), multileg=True))
    )
    refused = one(lookup.handle(decode_client(raw, CLIENT), at(0)), ev.QuoteRequestRejected)
    (answer,) = to_client(dd, encode_for_client(refused, answering=raw))
    assert [answer.get(t) for t in (131, 658)] == ["QR-7", "6"]  # 6: not authorized
    (echo,) = groups(answer, 146, RELATED_SYM_MEMBERS)
    assert [leg.get(600) for leg in groups(echo, 555, LEG_MEMBER_TAGS)] == [
        leg.symbol for leg in CALL_SPREAD
    ]
    (bare,) = to_client(dd, encode_for_client(refused))  # nothing to echo: still valid
    assert groups(bare, 146, RELATED_SYM_MEMBERS)[0].fields == ((55, MULTILEG_SYMBOL),)


def test_every_desk_passing_is_ag_pass_echoing_the_rfq(dd) -> None:
    lookup = Lookup(make_engine(routes={CLIENT: {"*": [DESK]}}))
    rfq_id = open_request(
        lookup, SubmitRfq(CLIENT, "QR-8", CALL_SPREAD, D(3), Side.BUY, multileg=True)
    )
    events = lookup.handle(DeskPass(DESK, rfq_id), at(1))
    passed, refused = one(events, ev.DeskPassed), one(events, ev.QuoteRequestRejected)
    rfq = lookup.engine.rfq(rfq_id).rfq
    (report,) = to_client(dd, encode_for_client(passed, rfq=rfq))
    assert [report.get(t) for t in (131, 117, 297, 448, 55)] == [
        "QR-8",
        "NONE",
        "11",
        DESK,
        MULTILEG_SYMBOL,
    ]
    (answer,) = to_client(dd, encode_for_client(refused, rfq=rfq))
    assert answer.get(658) == "10"  # pass
    (echo,) = groups(answer, 146, RELATED_SYM_MEMBERS)
    assert [echo.get(t) for t in (55, 54, 38, 537)] == [MULTILEG_SYMBOL, "1", "3", "1"]
    assert [
        (leg.get(600), leg.get(623), leg.get(624)) for leg in groups(echo, 555, LEG_MEMBER_TAGS)
    ][2] == ("BTC-27DEC26", "0.25", "2")


def test_quote_and_rfq_endings_are_quote_status_reports(dd, live) -> None:
    lookup, shown = live
    rfq = rfq_of(lookup.engine, shown)
    expired = one(lookup.engine.tick(at(40)), ev.QuoteStatusChanged)
    (report,) = to_client(dd, encode_for_client(expired, rfq=rfq))
    assert [report.get(t) for t in (131, 117, 297, 55)] == [
        "QR-1",
        shown.sealed.quote.quote_id,
        "7",
        OPTION,
    ]
    ended = one(lookup.handle(CancelRfq(CLIENT, rfq.rfq_id), at(41)), ev.RfqEnded)
    (report,) = to_client(dd, encode_for_client(ended))
    assert [report.get(t) for t in (131, 117, 297)] == ["QR-1", "NONE", "4"]
    assert report.get(58) == "cancelled by client"


def test_counter_refused_and_declined_are_quote_status_reports(dd, live) -> None:
    lookup, shown = live
    q = shown.sealed.quote
    not_better = CounterQuote(CLIENT, q.rfq_id, q.quote_id, "RESP-1", Side.BUY, D("0.07"))
    refused = one(lookup.handle(not_better, at(2)), ev.ClientActionRejected)
    (report,) = to_client(dd, encode_for_client(refused))
    assert [report.get(t) for t in (117, 693, 297)] == [q.quote_id, "RESP-1", "5"]
    assert report.get(58).startswith("counter refused: counter 0.07 does not improve")
    counter = CounterQuote(CLIENT, q.rfq_id, q.quote_id, "RESP-2", Side.BUY, D("0.055"))
    counter_id = one(lookup.handle(counter, at(3)), ev.CounterToDesk).counter.counter_id
    declined = one(
        lookup.handle(AnswerCounter(DESK, counter_id, None, "no"), at(4)), ev.CounterDeclined
    )
    (report,) = to_client(dd, encode_for_client(declined))
    assert [report.get(t) for t in (117, 297)] == [q.quote_id, "5"]
    assert report.get(58) == f"counter {counter_id} declined by desk {DESK}: no"


def test_refused_quote_response_acceptance_is_a_quote_status_report(dd, live) -> None:
    lookup, shown = live
    cmd = AcceptQuote(
        CLIENT, shown.sealed.quote.quote_id, "RESP-9", AcceptVia.QUOTE_RESPONSE, Side.BUY, "0" * 64
    )
    refused = one(lookup.handle(cmd, at(2)), ev.AcceptanceRejected)
    (report,) = to_client(dd, encode_for_client(refused))
    assert [report.get(t) for t in (117, 693, 297)] == [cmd.quote_id, "RESP-9", "5"]
    assert "quote_hash" in report.get(58)


# --- outbound: acceptance by order, last look, trades ---------------------------------------


@pytest.fixture
def last_look(dd) -> tuple[Lookup, ev.QuoteToClient, RawMessage, list[ev.Event]]:
    """A last-look quote accepted by a NewOrderSingle, so the desk holds it."""
    lookup = Lookup(make_engine())
    rfq_id = open_request(lookup, SubmitRfq(CLIENT, "QR-1", (LegRequest(OPTION, Side.BUY),), D(10)))
    shown = submit_quote(
        lookup.engine, rfq_id, "0.050", "0.060", at(1), firmness=Firmness.LAST_LOOK
    )
    cmd = accept(shown.sealed, Side.BUY, "ORD-1", AcceptVia.NEW_ORDER)
    raw = from_client(dd, encode_accept_order(cmd, symbol=OPTION, transact_time=at(2)))
    return lookup, shown, raw, lookup.handle(decode_client(raw, CLIENT), at(2))


def test_held_order_is_pending_new_then_rejected_by_the_desk(dd, last_look) -> None:
    lookup, shown, raw, events = last_look
    pending = one(events, ev.AcceptancePending)
    rfq = rfq_of(lookup.engine, pending)
    (answer,) = to_client(dd, encode_for_client(pending, rfq=rfq))  # no Side in a two-way RFQ
    assert [answer.get(t) for t in (35, 117, 297)] == ["AI", shown.sealed.quote.quote_id, "10"]
    (answer,) = to_client(dd, encode_for_client(pending, rfq=rfq, answering=raw))
    er = decode_outbound(answer)
    assert (er.exec_type, er.ord_status, er.cl_ord_id, er.order_id) == (
        ExecType.PENDING_NEW,
        OrdStatus.PENDING_NEW,
        "ORD-1",
        shown.sealed.quote.quote_id,
    )
    assert (er.side, er.order_qty, er.leaves_qty, er.cum_qty) == (Side.BUY, D(10), D(10), 0)
    rejected = one(
        lookup.handle(RejectLastLook(DESK, shown.sealed.quote.quote_id, "moved"), at(3)),
        ev.AcceptanceRejected,
    )
    (answer,) = to_client(dd, encode_for_client(rejected, rfq=rfq, answering=raw))
    er = decode_outbound(answer)
    assert (er.exec_type, er.ord_status, er.ord_rej_reason) == (
        ExecType.REJECTED,
        OrdStatus.REJECTED,
        rejected.ord_rej_reason,
    )
    assert er.order_id == shown.sealed.quote.quote_id  # the pending order existed
    assert "moved" in er.text
    (answer,) = to_client(dd, encode_for_client(rejected))  # side unknown: no invented ER
    assert [answer.get(t) for t in (35, 372, 379)] == ["j", "D", "ORD-1"]


def test_order_refused_on_arrival_is_rejected_er_with_order_id_none(dd, live) -> None:
    lookup, shown = live
    cmd = AcceptQuote(
        CLIENT,
        shown.sealed.quote.quote_id,
        "ORD-5",
        AcceptVia.NEW_ORDER,
        Side.SELL,
        shown.sealed.quote_hash,
        D("11"),
    )
    raw = from_client(dd, encode_accept_order(cmd, symbol=OPTION, transact_time=at(2)))
    refused = one(lookup.handle(decode_client(raw, CLIENT), at(2)), ev.AcceptanceRejected)
    (answer,) = to_client(dd, encode_for_client(refused, answering=raw))
    er = decode_outbound(answer)
    assert (er.order_id, er.side, er.order_qty, er.ord_rej_reason) == (
        "NONE",
        Side.SELL,
        D("11"),
        OrdRejReason.ORDER_EXCEEDS_LIMIT,
    )


def test_single_instrument_trade_is_one_fill_and_one_trade_capture_report(dd, live) -> None:
    lookup, shown = live
    cmd = accept(shown.sealed, Side.BUY, "RESP-1", AcceptVia.QUOTE_RESPONSE)
    raw = from_client(dd, encode_quote_response(cmd, symbol=OPTION, cl_ord_id="ORD-1"))
    captured = one(lookup.handle(decode_client(raw, CLIENT), at(2)), ev.TradeCaptured)
    trade = captured.trade
    fill, report = to_client(dd, encode_for_client(captured, answering=raw))
    er = decode_outbound(fill)
    assert (er.exec_type, er.ord_status, er.cl_ord_id, er.symbol, er.side) == (
        ExecType.TRADE,
        OrdStatus.FILLED,
        "ORD-1",
        OPTION,
        Side.BUY,
    )
    assert (er.last_qty, er.last_px, er.cum_qty, er.avg_px, er.leaves_qty) == (
        D(10),
        D("0.06"),
        D(10),
        D("0.06"),
        0,
    )
    assert (fill.get(693), fill.get(442), fill.get(75)) == ("RESP-1", None, "20260302")
    assert report.msg_type == "AE"
    expected = {571: trade.trade_id, 487: "0", 856: "0", 828: "1", 570: "N", 55: OPTION}
    expected |= {167: "OPT", 32: "10", 31: "0.06", 75: "20260302", 442: "1", 573: "0"}
    assert {tag: report.get(tag) for tag in expected} == expected
    client_side, desk_side = groups(report, 552, SIDE_TAGS)
    assert [client_side.get(t) for t in (54, 37, 11, 448, 447, 452)] == [
        "1",
        shown.sealed.quote.quote_id,
        "ORD-1",
        CLIENT,
        "D",
        "24",
    ]
    assert [desk_side.get(t) for t in (54, 448, 452)] == ["2", DESK, "1"]


def test_multileg_trade_reports_package_and_each_leg(dd) -> None:
    lookup = Lookup(make_engine())
    rfq_id = open_request(lookup, SubmitRfq(CLIENT, "QR-3", CALL_SPREAD, D(10), multileg=True))
    shown = submit_quote(lookup.engine, rfq_id, "0.026", "0.035", at(1), legs=SPREAD_LEGS)
    cmd = accept(shown.sealed, Side.SELL, "ORD-9", AcceptVia.NEW_ORDER)
    raw = from_client(dd, encode_accept_order(cmd, symbol=MULTILEG_SYMBOL, transact_time=at(2)))
    captured = one(lookup.handle(decode_client(raw, CLIENT), at(2)), ev.TradeCaptured)
    messages = to_client(dd, encode_for_client(captured, answering=raw))
    assert [msg.msg_type for msg in messages] == ["8", "8", "8", "8", "AE"]
    package, *legs, report = messages
    er = decode_outbound(package)
    assert (er.symbol, er.side, er.last_px, er.cl_ord_id, package.get(442)) == (
        MULTILEG_SYMBOL,
        Side.SELL,
        D("0.026"),
        "ORD-9",
        "3",
    )
    expected = [
        ("BTC-27DEC26-100000-C", "2", "10", "0.05"),
        ("BTC-27DEC26-120000-C", "1", "10", "0.024"),
        ("BTC-27DEC26", "1", "2.5", "60010"),
    ]
    in_package = groups(package, 555, LEG_MEMBER_TAGS)
    assert [tuple(leg.get(t) for t in (600, 624, 687, 637)) for leg in in_package] == expected
    assert [
        (leg_er.symbol, leg_er.side.value, fmt(leg_er.last_qty), fmt(leg_er.last_px))
        for leg_er in map(decode_outbound, legs)
    ] == expected
    assert {leg.get(442) for leg in legs} == {"2"}
    assert len({msg.get(17) for msg in (package, *legs)}) == 4  # ExecIDs are unique
    assert [report.get(t) for t in (55, 167, 442, 32, 31)] == [
        MULTILEG_SYMBOL,
        "MLEG",
        "3",
        "10",
        "0.026",
    ]
    in_report = groups(report, 555, LEG_MEMBER_TAGS)
    assert [tuple(leg.get(t) for t in (600, 624, 687, 637)) for leg in in_report] == expected
    client_side, desk_side = groups(report, 552, SIDE_TAGS)
    assert (client_side.get(54), desk_side.get(54)) == ("2", "1")


def fmt(value: Decimal | None) -> str:
    return format(value.normalize(), "f") if value is not None else ""


def test_events_a_client_never_sees_encode_to_nothing(live) -> None:
    lookup, shown = live
    engine = lookup.engine
    routed = engine.handle(
        SubmitRfq(CLIENT, "QR-2", (LegRequest(OPTION, Side.BUY),), D("1")), at(2)
    )
    for event in routed:  # RfqAcknowledged (web API only), RfqToDesk, state changes
        assert encode_for_client(event) == []


# --- end to end ------------------------------------------------------------------------------


def test_client_asks_reads_the_quote_and_lifts_it_over_fix(dd) -> None:
    """R -> SubmitRfq -> engine -> S -> the client reads it -> AJ with the hash -> fill + AE."""
    lookup = Lookup(make_engine())
    request = SubmitRfq(CLIENT, "QR-E2E", (LegRequest(OPTION, Side.BUY),), D("2"), Side.BUY)
    r = from_client(dd, encode_client_rfq(request))
    ack = one(lookup.handle(decode_client(r, CLIENT, lookup), at(0)), ev.RfqAcknowledged)
    shown = submit_quote(lookup.engine, ack.rfq.rfq_id, None, "0.061", at(1))
    (s,) = to_client(dd, encode_for_client(shown, rfq=rfq_of(lookup.engine, shown)))
    view = decode_quote(s)
    assert (view.quote_req_id, s.get(54), view.price_for(Side.BUY)) == ("QR-E2E", "1", D("0.061"))
    lift = AcceptQuote(
        CLIENT,
        view.quote_id,
        "RESP-1",
        AcceptVia.QUOTE_RESPONSE,
        Side.BUY,
        view.quote_hash,
        price=view.offer_px,
    )
    aj_raw = from_client(dd, encode_quote_response(lift, symbol=view.symbol, cl_ord_id="C-1"))
    captured = one(lookup.handle(decode_client(aj_raw, CLIENT, lookup), at(2)), ev.TradeCaptured)
    fill, report = to_client(dd, encode_for_client(captured, answering=aj_raw))
    assert decode_outbound(fill).cl_ord_id == "C-1"
    assert (report.get(32), report.get(31)) == ("2", "0.061")
    assert captured.trade.executed_at - captured.trade.requested_at == timedelta(seconds=2)


def test_the_dictionary_check_catches_layout_mistakes(dd, live) -> None:
    """The validation the tests rely on is not vacuous: a required field dropped, or a group
    entry not led by its delimiter, fails."""
    lookup, shown = live
    cmd = accept(shown.sealed, Side.BUY, "RESP-1", AcceptVia.QUOTE_RESPONSE)
    captured = one(lookup.handle(cmd, at(2)), ev.TradeCaptured)
    _, (msg_type, fields) = encode_for_client(captured)
    with pytest.raises(fix.RequiredTagMissing):
        to_client(dd, [(msg_type, [f for f in fields if f[0] != 570])])
    side_not_first = [
        (tag, [entry[1:] + entry[:1] for entry in value] if tag == 552 else value)
        for tag, value in fields
    ]
    with pytest.raises(fix.RequiredTagMissing, match="54"):  # the entries lost their Side
        to_client(dd, [(msg_type, side_not_first)])


# --- a strategy the client names (Symbol on an MLEG QuoteRequest) ---------------------------

STRATEGY_NAME = "BTC-27DEC26-100000-120000-CS"


def test_a_strategy_named_by_the_client_is_its_label_echoed_on_the_quote(dd) -> None:
    cmd = SubmitRfq(CLIENT, "QR-L", CALL_SPREAD, D(10), multileg=True, label=STRATEGY_NAME)
    raw = from_client(dd, encode_client_rfq(cmd))
    entry = groups(raw, 146, RELATED_SYM_MEMBERS)[0]
    assert (entry.get(55), entry.get(167)) == (STRATEGY_NAME, "MLEG")
    decoded = decode_client(raw, CLIENT)
    assert isinstance(decoded, SubmitRfq) and decoded.label == STRATEGY_NAME
    lookup = Lookup(make_engine())
    rfq_id = open_request(lookup, decoded)
    rfq = lookup.engine.rfq(rfq_id).rfq
    assert rfq.label == STRATEGY_NAME
    shown = submit_quote(lookup.engine, rfq_id, "0.026", "0.035", at(1), legs=SPREAD_LEGS)
    (quote,) = to_client(dd, encode_for_client(shown, rfq=rfq))
    assert (quote.get(55), quote.get(167)) == (STRATEGY_NAME, "MLEG")
    unnamed = decode_client(from_client(dd, strategy_request(SPREAD)), CLIENT)
    assert isinstance(unnamed, SubmitRfq) and unnamed.label is None  # [N/A] still works


def test_a_strategy_name_without_security_type_mleg_is_refused() -> None:
    raw = strategy_request(SPREAD)
    named = RawMessage("R", tuple((t, STRATEGY_NAME if t == 55 else v) for t, v in raw.fields))
    with pytest.raises(DecodeError, match="SecurityType\\(167\\)=MLEG") as info:
        decode_client(named, CLIENT)
    assert info.value.tag == 55
