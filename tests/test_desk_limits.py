"""The pieces of the desk protections that need no running gateway: each desk's request bucket,
the configuration's checks, the journal keeping each desk's latest protection state, the
service's default disclosure and aliases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fixspec.codec import DecodeError, RawMessage
from fixspec.messages import Side
from gateway.config import ConfigError, load_config
from gateway.fix import rfq_client
from gateway.fix.rfq_inbound import decode_client
from gateway.http.limits import DeskRateLimits, TooManyRequests
from gateway.journal import GUARD, NegotiationJournal
from gateway.negotiation import NegotiationService, protection_limits
from otc.negotiation import LegRequest, RoutingTable, SubmitRfq
from otc.negotiation.engine import NegotiationEngine
from otc.negotiation.events import RfqAcknowledged, RfqToDesk
from otc.negotiation.protection import DeskGuard, Fill, guard_from_json, guard_to_json

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_desk_spends_its_burst_then_waits_for_tokens() -> None:
    clock = Clock()
    rates = DeskRateLimits(rate=2, burst=3, clock=clock)
    for _ in range(3):
        rates.take("DESK_A")
    with pytest.raises(TooManyRequests) as err:
        rates.take("DESK_A")
    assert err.value.status_code == 429
    assert err.value.headers == {"Retry-After": "1"}
    rates.take("DESK_B")  # a bucket of its own
    clock.now += 0.5  # one token back at 2 a second
    rates.take("DESK_A")
    with pytest.raises(TooManyRequests):
        rates.take("DESK_A")


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    rates = DeskRateLimits(rate=0.25, burst=1, clock=Clock())
    rates.take("DESK_A")
    with pytest.raises(TooManyRequests) as err:
        rates.take("DESK_A")
    assert err.value.headers == {"Retry-After": "4"}


BASE = """
[otc]
desks = ["DESK_A"]
{otc}
{tables}

[[sessions]]
comp_id = "CLIENT1"
"""


@pytest.mark.parametrize(
    ("otc", "tables", "expected"),
    [
        ("", "[otc.protection.DESK_Z]\nwindow_ms = 10\nmax_fills = 1", "DESK_Z"),
        ("", "[otc.protection.DESK_A]\nwindow_ms = 10", "max_fills, max_notional"),
        ("", "[otc.protection.DESK_A]\nwindow_ms = 0\nmax_fills = 1", "window_ms"),
        ('cancel_on_disconnect = ["DESK_Q"]', "", "DESK_Q"),
    ],
)
def test_bad_protection_config_names_file_and_key(
    tmp_path: Path, otc: str, tables: str, expected: str
) -> None:
    path = tmp_path / "fixbridge.toml"
    path.write_text(BASE.format(otc=otc, tables=tables))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_protection_config_becomes_engine_limits(tmp_path: Path) -> None:
    path = tmp_path / "fixbridge.toml"
    path.write_text(
        BASE.format(
            otc="",
            tables='[otc.protection."*"]\nwindow_ms = 250\nmax_notional = "1000000.5"',
        )
    )
    limits = protection_limits(load_config(path).otc.protection)["*"]
    assert limits.window == timedelta(milliseconds=250)
    assert (limits.max_fills, str(limits.max_notional)) == (None, "1000000.5")


def test_the_journal_keeps_each_desks_latest_guard_only(tmp_path: Path) -> None:
    journal = NegotiationJournal(tmp_path)
    journal.load()
    journal.begin_boot(T0, {"negotiation": {}, "routing": {}})
    tripped = DeskGuard((Fill(T0, Decimal("42000.5")),), T0, "2 fills within 1000 ms")
    journal.guard(T0, "DESK_A", guard_to_json(DeskGuard()))
    journal.guard(T0, "DESK_A", guard_to_json(tripped))
    journal.guard(T0, "DESK_B", guard_to_json(DeskGuard()))
    journal.flush()
    journal.close()

    again = NegotiationJournal(tmp_path)
    guards = {
        r.payload["desk_id"]: guard_from_json(r.payload["guard"])
        for r in again.load()
        if r.kind == GUARD
    }
    assert guards == {"DESK_A": tripped, "DESK_B": DeskGuard()}
    again.close()


def test_the_service_gives_each_anonymous_rfq_its_own_alias_by_default() -> None:

    seen: list = []
    engine = NegotiationEngine(RoutingTable.from_config({"*": {"*": ["DESK_A"]}}), None)
    service = NegotiationService(engine, sinks=[seen.extend], disclose_clients=False)
    legs = (LegRequest("BTC-27DEC26-100000-C", Side.BUY),)
    aliases = []
    for n in range(2):
        events = service.submit(SubmitRfq("CLIENT1", f"QR-{n}", legs, Decimal(1)))
        rfq = next(e for e in events if isinstance(e, RfqAcknowledged)).rfq
        assert rfq.disclosed is False and rfq.alias is not None
        assert service.client_alias(rfq.rfq_id) == ("CLIENT1", rfq.alias)
        aliases.append(rfq.alias)
    assert len(set(aliases)) == 2 and all(len(a) == len("ANON-") + 16 for a in aliases)
    shown = service.submit(SubmitRfq("CLIENT1", "QR-D", legs, Decimal(1), disclosed=True))
    rfq = next(e for e in shown if isinstance(e, RfqToDesk)).rfq
    assert rfq.disclosed is True and service.client_alias(rfq.rfq_id) is None


def test_a_quote_request_names_desks_in_parties_and_says_whether_it_discloses() -> None:
    legs = (LegRequest("BTC-27DEC26-100000-C", Side.BUY),)
    sent = SubmitRfq(
        "CLIENT1", "QR-P", legs, Decimal(1), desks=("DESK_B", "DESK_C"), disclosed=False
    )
    raw = rfq_client.encode_client_rfq(sent)
    got = decode_client(raw, "CLIENT1")
    assert isinstance(got, SubmitRfq)
    assert (got.desks, got.disclosed) == (("DESK_B", "DESK_C"), False)
    plain = decode_client(
        rfq_client.encode_client_rfq(replace(sent, desks=(), disclosed=None)), "C"
    )
    assert isinstance(plain, SubmitRfq) and (plain.desks, plain.disclosed) == ((), None)

    # a party in another role (here ExecutingFirm) chooses no dealer
    first_role = next(i for i, (t, _) in enumerate(raw.fields) if t == 452)
    fields = list(raw.fields)
    fields[first_role] = (452, "1")
    other = decode_client(RawMessage(raw.msg_type, tuple(fields)), "CLIENT1")
    assert isinstance(other, SubmitRfq) and other.desks == ("DESK_C",)

    bad = [(t, "X" if t == 5004 else v) for t, v in raw.fields]
    with pytest.raises(DecodeError) as err:
        decode_client(RawMessage(raw.msg_type, tuple(bad)), "CLIENT1")
    assert err.value.tag == 5004 and "ClientDisclosed(5004)" in str(err.value)
