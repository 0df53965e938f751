"""The command JSON codec the negotiation journal stores: every command type comes back exactly
(the same value, and the same repr: Decimal digits and exponents, time offsets), through real
JSON text; wrong shapes are refused, never turned into another command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from otc.negotiation import commands as c
from otc.negotiation.command_json import (
    COMMAND_TYPES,
    CommandJsonError,
    command_from_json,
    command_to_json,
)
from otc.negotiation.model import AcceptVia, Firmness

text = st.text(min_size=0, max_size=12)
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from([Decimal("1.50"), Decimal("1E+3"), Decimal("-0"), Decimal("0.000")]),
)
offsets = st.one_of(
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
# naive times too: kept as sent (ISO 8601 has no fold: a time with fold=1 is refused, below)
times = st.one_of(st.datetimes(timezones=offsets), st.datetimes()).map(lambda t: t.replace(fold=0))
sides = st.sampled_from(Side)


def optional(strategy):
    return st.one_of(st.none(), strategy)


leg_requests = st.builds(c.LegRequest, text, sides, decimals, st.booleans())
leg_prices = st.builds(c.LegPrice, st.integers(-5, 10), optional(decimals), optional(decimals))
terms = st.builds(
    c.QuoteTerms,
    times,
    optional(decimals),
    optional(decimals),
    optional(decimals),
    optional(decimals),
    st.lists(leg_prices, max_size=3).map(tuple),
    st.sampled_from(Firmness),
    optional(st.sampled_from(QuoteType)),
    optional(text),
)
STRATEGIES = {
    c.SubmitRfq: st.builds(
        c.SubmitRfq,
        text,
        text,
        st.lists(leg_requests, max_size=3).map(tuple),
        decimals,
        optional(sides),
        st.sampled_from(QuoteType),
        st.booleans(),
        optional(times),
        optional(text),  # label
        st.lists(text, max_size=3).map(tuple),
        optional(st.booleans()),
        optional(text),
    ),
    c.CancelRfq: st.builds(c.CancelRfq, text, text),
    c.ClientPass: st.builds(c.ClientPass, text, text, text, optional(text)),
    c.CounterQuote: st.builds(
        c.CounterQuote, text, text, text, text, sides, decimals, optional(decimals)
    ),
    c.AcceptQuote: st.builds(
        c.AcceptQuote,
        text,
        text,
        text,
        st.sampled_from(AcceptVia),
        sides,
        text,
        optional(decimals),
        optional(decimals),
    ),
    c.SubmitQuote: st.builds(c.SubmitQuote, text, text, terms),
    c.ReplaceQuote: st.builds(c.ReplaceQuote, text, text, terms),
    c.SubmitQuotes: st.builds(
        c.SubmitQuotes,
        text,
        st.lists(st.builds(c.MassQuoteEntry, text, terms, optional(text)), max_size=3).map(tuple),
    ),
    c.CancelQuote: st.builds(c.CancelQuote, text, text),
    c.CancelAllQuotes: st.builds(c.CancelAllQuotes, text, optional(text)),
    c.DeskPass: st.builds(c.DeskPass, text, text),
    c.AnswerCounter: st.builds(c.AnswerCounter, text, text, optional(terms), optional(text)),
    c.ConfirmLastLook: st.builds(c.ConfirmLastLook, text, text),
    c.RejectLastLook: st.builds(c.RejectLastLook, text, text, optional(text)),
    c.ConfirmTrade: st.builds(c.ConfirmTrade, text),
    c.PullDeskQuotes: st.builds(c.PullDeskQuotes, text, st.sampled_from(c.PullCause)),
    c.ResetDeskProtection: st.builds(c.ResetDeskProtection, text),
}


def round_trip(command):
    stored = json.dumps(command_to_json(command), ensure_ascii=True)
    return command_from_json(json.loads(stored))


def test_every_command_type_has_a_strategy():
    assert set(STRATEGIES) == set(COMMAND_TYPES.values())


@settings(max_examples=60, deadline=None)
@given(st.one_of(*STRATEGIES.values()))
def test_every_command_comes_back_exactly(command):
    back = round_trip(command)
    assert back == command
    assert repr(back) == repr(command)  # Decimal exponents, time offsets, enum members


def test_a_quotes_prices_keep_their_digits():
    t = c.QuoteTerms(
        datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=UTC),
        bid_px=Decimal("4150.50"),
        offer_px=Decimal("4.2E+3"),
    )
    back = round_trip(c.SubmitQuote("DESK_A", "RFQ-1", t))
    assert str(back.terms.bid_px) == "4150.50" and str(back.terms.offer_px) == "4.2E+3"
    assert back.terms.valid_until.microsecond == 123456 and back.terms.valid_until.tzinfo is UTC


@pytest.mark.parametrize(
    "command",
    [
        c.CancelRfq("CLIENT1", 7),  # an int where the type says str
        c.CounterQuote("C", "R", "Q", "QR", Side.BUY, 5),  # an int where the type says Decimal
        c.SubmitRfq("C", "QR", [], Decimal(1)),  # a list where the type says tuple
        c.ConfirmLastLook("DESK_A", None),
        c.SubmitQuote("DESK_A", "R", c.QuoteTerms(datetime(2026, 11, 1, 1, 30, fold=1))),
    ],
)
def test_a_command_that_would_not_come_back_the_same_is_refused(command):
    with pytest.raises(CommandJsonError):
        command_to_json(command)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Nope", "fields": {}},
        {"type": "CancelRfq", "fields": {"client_id": "C"}},  # missing rfq_id
        {"type": "CancelRfq", "fields": {"client_id": "C", "rfq_id": "R", "extra": 1}},
        {
            "type": "CounterQuote",
            "fields": {
                "client_id": "C",
                "rfq_id": "R",
                "quote_id": "Q",
                "quote_resp_id": "QR",
                "side": "9",
                "price": "1",
            },
        },
        {
            "type": "CounterQuote",
            "fields": {
                "client_id": "C",
                "rfq_id": "R",
                "quote_id": "Q",
                "quote_resp_id": "QR",
                "side": "1",
                "price": "x",
            },
        },
        {"type": "ConfirmTrade", "fields": {"trade_id": 5}},
        ["CancelRfq"],
    ],
)
def test_a_stored_value_of_the_wrong_shape_is_refused(data):
    with pytest.raises(CommandJsonError):
        command_from_json(data)
