"""The pure FIX <-> normalised codec: round trips, decode errors and the rejects they produce."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec import messages as m
from fixspec.codec import (
    LEG_TAGS,
    DecodeError,
    RawMessage,
    decode,
    decode_outbound,
    encode,
    encode_inbound,
    fmt_decimal,
    fmt_time,
    groups,
    parse_time,
    reject_for,
    to_raw,
)
from fixspec.instruments import parse_symbol

# --- strategies -------------------------------------------------------------------------

# Finite decimals with a bounded exponent, in every spelling (trailing zeros, exponents).
positive_decimals = st.builds(
    lambda units, exp: Decimal(units).scaleb(exp),
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=-8, max_value=6),
)
signed_decimals = st.builds(
    lambda units, exp: Decimal(units).scaleb(exp),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-8, max_value=6),
)
non_negative_decimals = signed_decimals.map(abs)
utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
# FIX String values: printable, no SOH, never empty (an empty field is not a FIX field).
texts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
)
ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/", min_size=1, max_size=20)
instruments = st.sampled_from(
    [
        parse_symbol(s)
        for s in (
            "BTC-27DEC26-100000-C",
            "ETH-3JAN27-2500.5-P",
            "BTC-27DEC26",
            "BTC-PERP",
            "ETH-PERP",
            "BTC-USD",
            "ETH-BTC",
        )
    ]
)
sides = st.sampled_from(list(m.Side))
tifs = st.sampled_from(list(m.TimeInForce))
optional = st.none


@st.composite
def type_and_price(draw, price=positive_decimals):
    """An OrdType with a price that fits it: limit needs one, market must not have one."""
    ord_type = draw(st.sampled_from(list(m.OrdType)))
    if ord_type is m.OrdType.LIMIT:
        return ord_type, draw(price)
    if ord_type is m.OrdType.MARKET:
        return ord_type, None
    return ord_type, draw(optional() | price)


@st.composite
def new_orders(draw) -> m.NewOrder:
    ord_type, price = draw(type_and_price())
    return m.NewOrder(
        cl_ord_id=draw(ids),
        instrument=draw(instruments),
        side=draw(sides),
        quantity=draw(positive_decimals),
        ord_type=ord_type,
        price=price,
        time_in_force=draw(tifs),
        account=draw(optional() | ids),
        quote_id=draw(optional() | ids),
        transact_time=draw(utc_times),
    )


@st.composite
def cancel_requests(draw) -> m.CancelRequest:
    return m.CancelRequest(
        cl_ord_id=draw(ids),
        orig_cl_ord_id=draw(ids),
        side=draw(sides),
        symbol=draw(instruments).symbol,
        quantity=draw(optional() | positive_decimals),
        order_id=draw(optional() | ids),
        transact_time=draw(utc_times),
    )


@st.composite
def replace_requests(draw) -> m.ReplaceRequest:
    ord_type, price = draw(type_and_price())
    return m.ReplaceRequest(
        cl_ord_id=draw(ids),
        orig_cl_ord_id=draw(ids),
        instrument=draw(instruments),
        side=draw(sides),
        quantity=draw(positive_decimals),
        ord_type=ord_type,
        price=price,
        time_in_force=draw(tifs),
        order_id=draw(optional() | ids),
        transact_time=draw(utc_times),
    )


status_requests = st.builds(
    m.StatusRequest,
    cl_ord_id=ids,
    side=sides,
    symbol=instruments.map(lambda i: i.symbol),
    order_id=optional() | ids,
)
legs = st.builds(m.Leg, instrument=instruments, side=sides, ratio=positive_decimals)


@st.composite
def multileg_orders(draw) -> m.NewMultilegOrder:
    # A package (net) price may be zero or negative, e.g. a credit spread.
    ord_type, price = draw(type_and_price(price=signed_decimals))
    return m.NewMultilegOrder(
        cl_ord_id=draw(ids),
        side=draw(sides),
        quantity=draw(positive_decimals),
        ord_type=ord_type,
        legs=tuple(draw(st.lists(legs, min_size=2, max_size=4))),
        price=price,
        time_in_force=draw(tifs),
        account=draw(optional() | ids),
        transact_time=draw(utc_times),
    )


inbound_messages = st.one_of(
    new_orders(), cancel_requests(), replace_requests(), status_requests, multileg_orders()
)

execution_reports = st.builds(
    m.ExecutionReport,
    order_id=ids,
    exec_id=ids,
    cl_ord_id=ids,
    exec_type=st.sampled_from(list(m.ExecType)),
    ord_status=st.sampled_from(list(m.OrdStatus)),
    symbol=instruments.map(lambda i: i.symbol),
    side=sides,
    order_qty=non_negative_decimals,
    leaves_qty=non_negative_decimals,
    cum_qty=non_negative_decimals,
    avg_px=signed_decimals,
    orig_cl_ord_id=optional() | ids,
    ord_type=optional() | st.sampled_from(list(m.OrdType)),
    price=optional() | signed_decimals,
    last_qty=optional() | positive_decimals,
    last_px=optional() | signed_decimals,
    ord_rej_reason=optional() | st.sampled_from(list(m.OrdRejReason)),
    text=optional() | texts,
    transact_time=utc_times,
)
cancel_rejects = st.builds(
    m.CancelReject,
    order_id=ids,
    cl_ord_id=ids,
    orig_cl_ord_id=ids,
    ord_status=st.sampled_from(list(m.OrdStatus)),
    response_to=st.sampled_from(list(m.CxlRejResponseTo)),
    reason=st.sampled_from(list(m.CxlRejReason)),
    text=optional() | texts,
)
business_rejects = st.builds(
    m.BusinessReject,
    ref_msg_type=st.sampled_from(["D", "F", "G", "H", "AB", "R", "S"]),
    reason=st.sampled_from(list(m.BusinessRejectReason)),
    text=texts,
    ref_seq_num=optional() | st.integers(min_value=1, max_value=2**31 - 1),
    business_reject_ref_id=optional() | ids,
)
outbound_messages = st.one_of(execution_reports, cancel_rejects, business_rejects)


# --- round trips ------------------------------------------------------------------------


@settings(max_examples=200)
@given(inbound_messages)
def test_inbound_round_trip(msg: m.InboundOrderMessage) -> None:
    assert decode(encode_inbound(msg)) == msg


@settings(max_examples=200)
@given(outbound_messages)
def test_outbound_round_trip(msg: m.OutboundMessage) -> None:
    raw = to_raw(msg)
    assert raw.fields[0] == (35, raw.msg_type)
    assert decode_outbound(raw) == msg


@settings(max_examples=200)
@given(st.one_of(inbound_messages.map(encode_inbound), outbound_messages.map(to_raw)))
def test_wire_values_are_plain_fix(raw: RawMessage) -> None:
    """Every value is non-empty and free of SOH; numbers never carry an exponent."""
    numeric = {6, 14, 31, 32, 38, 44, 151, 623}
    for tag, value in raw.fields:
        assert value and "\x01" not in value, (tag, value)
        if tag in numeric:
            assert "E" not in value.upper() and "_" not in value, (tag, value)


@settings(max_examples=200)
@given(signed_decimals)
def test_fmt_decimal_is_plain_and_exact(value: Decimal) -> None:
    text = fmt_decimal(value)
    assert Decimal(text) == value
    assert "E" not in text
    if "." in text:
        assert not text.endswith("0")


@settings(max_examples=200)
@given(utc_times)
def test_time_round_trip_keeps_microseconds(t: datetime) -> None:
    text = fmt_time(t)
    assert len(text) == len("20260101-12:00:00.000000")
    assert parse_time(text) == t
    assert parse_time(text).tzinfo is UTC


def test_time_without_fraction_is_accepted_and_bad_time_is_a_decode_error() -> None:
    assert parse_time("20260102-03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(DecodeError, match="UTCTimestamp"):
        parse_time("2026-01-02T03:04:05")


def test_fmt_decimal_examples() -> None:
    assert fmt_decimal(Decimal("6E+4")) == "60000"
    assert fmt_decimal(Decimal("1.2500")) == "1.25"
    assert fmt_decimal(Decimal("0.00000001")) == "0.00000001"
    assert fmt_decimal(Decimal("0E-8")) == "0"


def test_encode_names_the_msgtype_and_keeps_dictionary_order() -> None:
    er = m.ExecutionReport(
        order_id="O1",
        exec_id="E1",
        cl_ord_id="C1",
        exec_type=m.ExecType.TRADE,
        ord_status=m.OrdStatus.PARTIALLY_FILLED,
        symbol="BTC-PERP",
        side=m.Side.BUY,
        order_qty=Decimal("10"),
        leaves_qty=Decimal("4"),
        cum_qty=Decimal("6"),
        avg_px=Decimal("60000.50"),
        last_qty=Decimal("6"),
        last_px=Decimal("6.00005E+4"),
        transact_time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    msg_type, fields = encode(er)
    assert msg_type == "8"
    assert fields == [
        (37, "O1"),
        (11, "C1"),
        (17, "E1"),
        (150, "F"),
        (39, "1"),
        (55, "BTC-PERP"),
        (54, "1"),
        (38, "10"),
        (32, "6"),
        (31, "60000.5"),
        (151, "4"),
        (14, "6"),
        (6, "60000.5"),
        (60, "20260102-03:04:05.000006"),
    ]


def test_an_empty_text_is_left_out_not_sent_empty() -> None:
    """FIX has no empty values (the gateway's OutboundBuilder refuses one): no text, no 58."""
    br = m.BusinessReject(ref_msg_type="D", reason=m.BusinessRejectReason.OTHER, text="")
    assert 58 not in dict(encode(br)[1])


# --- decode errors ----------------------------------------------------------------------

NEW_ORDER = (
    (35, "D"),
    (11, "C1"),
    (55, "BTC-PERP"),
    (54, "1"),
    (60, "20260102-03:04:05.123456"),
    (38, "2.5"),
    (40, "2"),
    (44, "60000"),
)


def raw_with(base: tuple[tuple[int, str], ...], *, drop=(), **changes: str) -> RawMessage:
    """``base`` with tags dropped and/or values changed (keyword ``t44="1"`` sets tag 44)."""
    updates = {int(k.removeprefix("t")): v for k, v in changes.items()}
    fields = [(t, updates.pop(t, v)) for t, v in base if t not in drop]
    fields += list(updates.items())
    return RawMessage(fields[0][1], tuple(fields))


def test_valid_new_order_decodes() -> None:
    order = decode(RawMessage("D", NEW_ORDER))
    assert isinstance(order, m.NewOrder)
    assert order.quantity == Decimal("2.5") and isinstance(order.quantity, Decimal)
    assert order.price == Decimal(60000)
    assert order.time_in_force is m.TimeInForce.DAY  # the FIX default when 59 is absent
    assert order.transact_time == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize("tag", [11, 55, 54, 38, 40])
def test_missing_required_tag(tag: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(NEW_ORDER, drop={tag}))
    assert info.value.tag == tag
    assert str(tag) in info.value.text


@pytest.mark.parametrize("qty", ["abc", "", "1.2.3", "--1"])
def test_non_numeric_quantity(qty: str) -> None:
    with pytest.raises(DecodeError, match="not a number") as info:
        decode(raw_with(NEW_ORDER, t38=qty))
    assert info.value.tag == 38


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", "inf"])
@pytest.mark.parametrize("tag", [38, 44])
def test_non_finite_numbers(tag: int, value: str) -> None:
    with pytest.raises(DecodeError, match="finite") as info:
        decode(raw_with(NEW_ORDER, **{f"t{tag}": value}))
    assert info.value.tag == tag


@pytest.mark.parametrize("qty", ["-1", "0", "0.000", "-0"])
def test_quantity_must_be_positive(qty: str) -> None:
    with pytest.raises(DecodeError, match="positive") as info:
        decode(raw_with(NEW_ORDER, t38=qty))
    assert info.value.tag == 38


@pytest.mark.parametrize(
    "value",
    [
        "12345678901234567890123456789012",  # passes QuickFIX's Qty format check
        "1.0000000000000000000000000001",  # 29 significant digits
        "1E+100",
    ],
)
def test_quantity_that_cannot_be_echoed_exactly_is_a_decode_error(value: str) -> None:
    # Whatever decode accepts is echoed in OrderQty(38) of every ExecutionReport. fmt_decimal
    # works in a 28-digit context: beyond it, it raises decimal.InvalidOperation (a crash in the
    # middle of sending an ER) or silently rounds. Such a value must be refused here.
    with pytest.raises(DecodeError) as info:
        decode(raw_with(NEW_ORDER, t38=value))
    assert info.value.tag == 38


def test_limit_order_without_price() -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(NEW_ORDER, drop={44}))
    assert info.value.tag == 44


def test_market_order_with_price() -> None:
    with pytest.raises(DecodeError, match="market order") as info:
        decode(raw_with(NEW_ORDER, t40="1"))
    assert info.value.tag == 44


def test_market_order_without_price_decodes() -> None:
    order = decode(raw_with(NEW_ORDER, t40="1", drop={44}))
    assert order.ord_type is m.OrdType.MARKET and order.price is None


@pytest.mark.parametrize("price", ["0", "-5"])
def test_order_price_must_be_positive(price: str) -> None:
    with pytest.raises(DecodeError, match="positive"):
        decode(raw_with(NEW_ORDER, t44=price))


@pytest.mark.parametrize(("tag", "value"), [(54, "9"), (40, "Z"), (59, "6")])
def test_unsupported_enum_values(tag: int, value: str) -> None:
    with pytest.raises(DecodeError, match="unsupported value") as info:
        decode(raw_with(NEW_ORDER, **{f"t{tag}": value}))
    assert info.value.tag == tag


def test_bad_transact_time() -> None:
    with pytest.raises(DecodeError, match="UTCTimestamp"):
        decode(raw_with(NEW_ORDER, t60="yesterday"))


def test_unknown_symbol_is_flagged() -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(NEW_ORDER, t55="NOT A SYMBOL"))
    assert info.value.unknown_symbol is True
    assert info.value.tag == 55


def test_other_errors_are_not_flagged_as_unknown_symbol() -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(NEW_ORDER, t38="x"))
    assert info.value.unknown_symbol is False


def test_replace_follows_the_same_price_rules() -> None:
    base = (*NEW_ORDER[:1], (41, "C0"), *NEW_ORDER[1:])
    replace = raw_with(base, t35="G")
    assert isinstance(decode(replace), m.ReplaceRequest)
    with pytest.raises(DecodeError):
        decode(raw_with(base, t35="G", drop={44}))
    with pytest.raises(DecodeError):
        decode(raw_with(base, t35="G", t40="1"))
    with pytest.raises(DecodeError) as info:
        decode(raw_with(base, t35="G", drop={41}))
    assert info.value.tag == 41


def test_cancel_needs_orig_cl_ord_id_and_keeps_symbol_text() -> None:
    cancel = RawMessage("F", ((35, "F"), (41, "C0"), (11, "C1"), (55, "whatever"), (54, "2")))
    decoded = decode(cancel)
    assert isinstance(decoded, m.CancelRequest)
    assert decoded.symbol == "whatever"  # a cancel names an order, not an instrument
    with pytest.raises(DecodeError) as info:
        decode(RawMessage("F", tuple(f for f in cancel.fields if f[0] != 41)))
    assert info.value.tag == 41


def test_unhandled_msgtype_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        decode(RawMessage("R", ((35, "R"),)))


# --- multileg and groups ----------------------------------------------------------------

MULTILEG = (
    (35, "AB"),
    (11, "M1"),
    (54, "1"),
    (555, "2"),
    (600, "BTC-27DEC26-100000-C"),
    (623, "1"),
    (624, "1"),
    (600, "BTC-27DEC26-120000-C"),
    (623, "1"),
    (624, "2"),
    (60, "20260102-03:04:05"),
    (38, "10"),
    (40, "2"),
    (44, "-150.5"),
)


def test_multileg_decodes_legs_and_allows_a_negative_package_price() -> None:
    order = decode(RawMessage("AB", MULTILEG))
    assert isinstance(order, m.NewMultilegOrder)
    assert [leg.instrument.symbol for leg in order.legs] == [
        "BTC-27DEC26-100000-C",
        "BTC-27DEC26-120000-C",
    ]
    assert [leg.side for leg in order.legs] == [m.Side.BUY, m.Side.SELL]
    assert order.price == Decimal("-150.5")


def test_multileg_leg_ratio_defaults_to_one() -> None:
    fields = tuple(f for f in MULTILEG if f[0] != 623)
    order = decode(RawMessage("AB", fields))
    assert [leg.ratio for leg in order.legs] == [Decimal(1), Decimal(1)]


@pytest.mark.parametrize("count", ["3", "1", "x", "-1"])
def test_bad_group_count(count: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(MULTILEG, t555=count))
    assert "group" in info.value.text
    if count == "x":
        assert info.value.tag == 555


def test_multileg_needs_two_legs() -> None:
    fields = tuple(f for f in MULTILEG[:4]) + MULTILEG[7:]
    with pytest.raises(DecodeError, match="two legs"):
        decode(raw_with(fields, t555="1"))
    without_group = tuple(f for f in MULTILEG if f[0] not in LEG_TAGS and f[0] != 555)
    with pytest.raises(DecodeError, match="two legs"):
        decode(RawMessage("AB", without_group))


def test_multileg_unknown_leg_symbol_is_flagged_on_tag_600() -> None:
    fields = tuple((t, "BAD") if t == 600 else (t, v) for t, v in MULTILEG)
    with pytest.raises(DecodeError) as info:
        decode(RawMessage("AB", fields))
    assert info.value.unknown_symbol and info.value.tag == 600


def test_multileg_market_order_with_price_is_refused() -> None:
    # NewOrderSingle and Replace refuse a market order with a price; a package order must too.
    with pytest.raises(DecodeError) as info:
        decode(raw_with(MULTILEG, t40="1"))
    assert info.value.tag == 44


def test_multileg_limit_order_needs_a_price() -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw_with(MULTILEG, drop={44}))
    assert info.value.tag == 44


def test_groups_splits_entries_on_the_first_member_tag() -> None:
    entries = groups(RawMessage("AB", MULTILEG), 555, LEG_TAGS)
    assert [e.fields for e in entries] == [
        ((600, "BTC-27DEC26-100000-C"), (623, "1"), (624, "1")),
        ((600, "BTC-27DEC26-120000-C"), (623, "1"), (624, "2")),
    ]
    assert all(e.msg_type == "AB" for e in entries)
    assert groups(RawMessage("D", NEW_ORDER), 555, LEG_TAGS) == []


def test_raw_message_parse_splits_a_wire_string() -> None:
    raw = RawMessage.parse("8=FIX.4.4\x019=5\x0135=D\x0111=A=B\x0110=000\x01")
    assert raw.msg_type == "D"
    assert raw.get(11) == "A=B"  # only the first '=' separates tag from value
    assert raw.get(999) is None


# --- reject_for -------------------------------------------------------------------------


def _error(raw: RawMessage) -> DecodeError:
    try:
        decode(raw)
    except DecodeError as exc:
        return exc
    raise AssertionError(f"{raw} decoded")


def test_reject_for_new_order_is_a_rejected_execution_report() -> None:
    raw = raw_with(NEW_ORDER, t38="abc", t54="2")
    er = reject_for(raw, _error(raw))
    assert isinstance(er, m.ExecutionReport)
    assert (er.exec_type, er.ord_status) == (m.ExecType.REJECTED, m.OrdStatus.REJECTED)
    assert er.ord_rej_reason is m.OrdRejReason.OTHER
    assert (er.cl_ord_id, er.symbol, er.side) == ("C1", "BTC-PERP", m.Side.SELL)
    assert er.order_qty == 0  # "abc" is not a quantity
    assert er.leaves_qty == 0 and er.cum_qty == 0
    assert "38" in er.text
    assert decode_outbound(to_raw(er)) == er  # it can be sent


def test_reject_for_unknown_symbol_uses_ord_rej_reason_unknown_symbol() -> None:
    raw = raw_with(NEW_ORDER, t55="XX")
    er = reject_for(raw, _error(raw))
    assert isinstance(er, m.ExecutionReport)
    assert er.ord_rej_reason is m.OrdRejReason.UNKNOWN_SYMBOL
    assert er.order_qty == Decimal("2.5")
    assert er.symbol == "XX"


@pytest.mark.parametrize("qty", ["NaN", "Infinity"])
def test_reject_for_non_finite_quantity_reports_zero(qty: str) -> None:
    raw = raw_with(NEW_ORDER, t38=qty)
    er = reject_for(raw, _error(raw))
    assert er.order_qty == 0
    to_raw(er)


def test_reject_for_unencodable_quantity_can_still_be_sent() -> None:
    raw = raw_with(NEW_ORDER, t38="1E+100", t44="x")
    er = reject_for(raw, _error(raw))
    assert isinstance(er, m.ExecutionReport)
    assert decode_outbound(to_raw(er)).ord_status is m.OrdStatus.REJECTED


def test_reject_for_multileg_without_symbol_says_not_applicable() -> None:
    raw = raw_with(MULTILEG, t555="5")
    er = reject_for(raw, _error(raw))
    assert isinstance(er, m.ExecutionReport)
    assert er.symbol == "[N/A]"
    assert er.ord_status is m.OrdStatus.REJECTED
    assert er.order_qty == Decimal(10)


@pytest.mark.parametrize(
    ("msg_type", "response_to"),
    [("F", m.CxlRejResponseTo.CANCEL), ("G", m.CxlRejResponseTo.REPLACE)],
)
def test_reject_for_cancel_and_replace_is_a_cancel_reject(
    msg_type: str, response_to: m.CxlRejResponseTo
) -> None:
    raw = RawMessage(
        msg_type, ((35, msg_type), (37, "O9"), (41, "C0"), (11, "C1"), (54, "7"), (55, "X"))
    )
    rej = reject_for(raw, _error(raw))
    assert isinstance(rej, m.CancelReject)
    assert rej.response_to is response_to
    assert (rej.order_id, rej.cl_ord_id, rej.orig_cl_ord_id) == ("O9", "C1", "C0")
    assert rej.reason is m.CxlRejReason.OTHER
    assert rej.text
    assert decode_outbound(to_raw(rej)) == rej


def test_reject_for_cancel_without_order_ids_fills_none() -> None:
    raw = RawMessage("F", ((35, "F"), (11, "C1"), (54, "1"), (55, "BTC-PERP")))
    rej = reject_for(raw, _error(raw))
    assert isinstance(rej, m.CancelReject)
    assert (rej.order_id, rej.orig_cl_ord_id) == ("NONE", "NONE")


def test_reject_for_status_request_is_a_business_reject() -> None:
    raw = RawMessage("H", ((35, "H"), (34, "42"), (11, "C1"), (55, "BTC-PERP")))
    rej = reject_for(raw, _error(raw))
    assert isinstance(rej, m.BusinessReject)
    assert (rej.ref_msg_type, rej.ref_seq_num, rej.business_reject_ref_id) == ("H", 42, "C1")
    assert rej.reason is m.BusinessRejectReason.OTHER
    assert "54" in rej.text
    assert decode_outbound(to_raw(rej)) == rej


@pytest.mark.parametrize("msg_type", ["D", "AB", "F", "G"])
def test_reject_for_message_without_cl_ord_id_is_a_business_reject(msg_type: str) -> None:
    raw = RawMessage(msg_type, ((35, msg_type), (34, "x"), (55, "NOPE")))
    err = DecodeError("required tag 11 missing", tag=11)
    rej = reject_for(raw, err)
    assert isinstance(rej, m.BusinessReject)
    assert rej.ref_msg_type == msg_type
    assert rej.ref_seq_num is None  # "x" is not a sequence number
    assert rej.business_reject_ref_id is None


def test_reject_for_unknown_symbol_without_cl_ord_id_says_unknown_security() -> None:
    raw = RawMessage("D", ((35, "D"), (55, "NOPE")))
    rej = reject_for(raw, DecodeError("unknown", tag=55, unknown_symbol=True))
    assert isinstance(rej, m.BusinessReject)
    assert rej.reason is m.BusinessRejectReason.UNKNOWN_SECURITY


def test_decode_outbound_refuses_inbound_msgtypes() -> None:
    with pytest.raises(KeyError):
        decode_outbound(RawMessage("D", NEW_ORDER))


def test_encode_refuses_what_is_not_an_outbound_message() -> None:
    status = m.StatusRequest(cl_ord_id="C1", side=m.Side.BUY, symbol="BTC-PERP")
    with pytest.raises(KeyError):
        encode(status)  # type: ignore[arg-type]  # the wrong type is what is tested


_SENT = (
    m.ExecutionReport(
        order_id="O1",
        exec_id="E1",
        cl_ord_id="C1",
        exec_type=m.ExecType.NEW,
        ord_status=m.OrdStatus.NEW,
        symbol="BTC-PERP",
        side=m.Side.SELL,
        order_qty=Decimal(2),
        leaves_qty=Decimal(2),
        cum_qty=Decimal(0),
        avg_px=Decimal(0),
    ),
    m.CancelReject(
        order_id="O1",
        cl_ord_id="C2",
        orig_cl_ord_id="C1",
        ord_status=m.OrdStatus.NEW,
        response_to=m.CxlRejResponseTo.CANCEL,
        reason=m.CxlRejReason.OTHER,
    ),
    m.BusinessReject(ref_msg_type="D", reason=m.BusinessRejectReason.OTHER, text="no"),
)
_REQUIRED_OUT = {
    "8": (37, 17, 11, 150, 39, 55, 54, 38, 151, 14, 6, 60),
    "9": (37, 11, 41, 39, 434, 102),
    "j": (372, 380),
}


@pytest.mark.parametrize(
    ("msg", "tag"),
    [
        pytest.param(msg, tag, id=f"{encode(msg)[0]}-{tag}")
        for msg in _SENT
        for tag in _REQUIRED_OUT[encode(msg)[0]]
    ],
)
def test_decode_outbound_names_a_missing_required_tag(msg: m.OutboundMessage, tag: int) -> None:
    raw = to_raw(msg)
    assert decode_outbound(raw) == msg
    with pytest.raises(DecodeError) as info:
        decode_outbound(raw_with(raw.fields, drop={tag}))
    assert (info.value.tag, info.value.text) == (tag, f"required tag {tag} missing")


def test_decode_outbound_reads_a_business_reject_without_text_as_the_empty_text() -> None:
    """Text(58) is optional in a BusinessMessageReject, and an empty text is sent as none."""
    br = m.BusinessReject(ref_msg_type="D", reason=m.BusinessRejectReason.OTHER, text="")
    assert decode_outbound(to_raw(br)) == br


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_number_that_is_not_finite_has_no_plain_notation(value: str) -> None:
    with pytest.raises(TypeError):
        fmt_decimal(Decimal(value))
