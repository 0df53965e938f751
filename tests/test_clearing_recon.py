"""Reconciliation of our trades against a clearinghouse register, each kind of break, and the
register file format (written by the simulator, read back by ``reconcile``)."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from fixspec.instruments import parse_symbol
from fixspec.messages import Side
from gateway.clearinghouse.register import cmd_reconcile, reconcile
from gateway.clearinghouse.simulator import ClearinghouseSimulator
from otc.clearing.codec import render
from otc.clearing.model import trade_economics
from otc.clearing.recon import (
    BreakKind,
    RegisterError,
    RegisterRow,
    format_register,
    parse_register,
)
from otc.clearing.samples import all_samples

TRADES = list(all_samples().values())
HEADER = "trade_id,clearing_trade_id,instrument,buyer,seller,quantity,price,currency\n"


@pytest.fixture
def register(tmp_path: Path) -> Path:
    """The register the simulator keeps after clearing every sample trade."""
    sim = ClearinghouseSimulator()  # processing only: no socket needed
    for trade in TRADES:
        msg = render(trade)
        status, _, _ = sim.handle_post(msg.key, msg.body)
        assert status == 200
    path = tmp_path / "register.csv"
    sim.write_register(path)
    return path


def test_clean_reconciliation(register: Path) -> None:
    report = reconcile(TRADES, register)
    assert report.clean
    assert sorted(report.matched) == sorted(t.trade_id for t in TRADES)
    out = io.StringIO()
    assert cmd_reconcile(TRADES, register, out) == 0
    assert out.getvalue() == f"matched {len(TRADES)}, breaks 0\n"


def test_missing_on_their_side_and_on_ours(register: Path) -> None:
    extra = replace(TRADES[0], trade_id="T-LOCAL-ONLY")
    report = reconcile([*TRADES[1:], extra], register)
    assert [(b.kind, b.trade_id) for b in report.breaks] == [  # sorted by trade id
        (BreakKind.MISSING_THEIRS, "T-LOCAL-ONLY"),
        (BreakKind.MISSING_OURS, TRADES[0].trade_id),
    ]
    out = io.StringIO()
    assert cmd_reconcile([*TRADES[1:], extra], register, out) == 1
    assert f"missing_ours {TRADES[0].trade_id}\n" in out.getvalue()
    assert "missing_theirs T-LOCAL-ONLY\n" in out.getvalue()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"quantity": Decimal("26")}, "quantity: ours 26 != theirs 25"),
        ({"price": Decimal("4125.75")}, "price: ours 4125.75 != theirs 4125.5"),
        ({"side": Side.SELL}, "buyer: ours FXB-DESK != theirs ACME-FUND-01"),
    ],
)
def test_economics_breaks(register: Path, change: dict, expected: str) -> None:
    option = next(t for t in TRADES if t.trade_id == "T-OPT-0001")
    ours = [t for t in TRADES if t is not option] + [replace(option, **change)]
    [brk] = reconcile(ours, register).breaks
    assert (brk.kind, brk.trade_id) == (BreakKind.ECONOMICS, "T-OPT-0001")
    assert expected in brk.details


def test_instrument_break(register: Path) -> None:
    option = next(t for t in TRADES if t.trade_id == "T-OPT-0001")
    put = parse_symbol("BTC-27DEC26-100000-P")
    changed = replace(option, legs=(replace(option.legs[0], product=put),))
    [brk] = reconcile([t for t in TRADES if t is not option] + [changed], register).breaks
    assert brk.details == ("instrument: ours BTC-27DEC26-100000-P != theirs BTC-27DEC26-100000-C",)


def test_otc_economics_break(register: Path) -> None:
    irs = next(t for t in TRADES if t.trade_id == "T-IRS-0001")
    terms = replace(irs.legs[0].product, fixed_rate=Decimal("0.0380"))
    ours = [t for t in TRADES if t is not irs] + [
        replace(irs, legs=(replace(irs.legs[0], product=terms),))
    ]
    [brk] = reconcile(ours, register).breaks
    assert (brk.kind, brk.trade_id, brk.details) == (
        BreakKind.ECONOMICS,
        "T-IRS-0001",
        ("price: ours 0.0380 != theirs 0.0375",),
    )


def test_register_round_trips() -> None:
    rows = [RegisterRow(trade_economics(t), f"C{i}") for i, t in enumerate(TRADES)]
    assert parse_register(format_register(rows)) == rows


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "line 1: header must be"),
        ("id,qty\n", "line 1: header must be"),
        (HEADER + "T1,C1,BTC-PERP,A,B,1,2\n", "line 2: expected 8 columns, got 7"),
        (HEADER + "T1,C1,BTC-PERP,A,B,one,2,USD\n", "line 2: quantity is not a decimal: 'one'"),
        (HEADER + "T1,C1,BTC-PERP,A,B,1,NaN,USD\n", "line 2: price is not finite"),
        (HEADER + "T1,C1,,A,B,1,2,USD\n", "line 2: empty instrument"),
        (
            HEADER + "T1,C1,X,A,B,1,2,USD\nT1,C2,X,A,B,1,2,USD\n",
            "line 3: trade T1 already on line 2",
        ),
    ],
)
def test_bad_registers_are_refused_with_the_line(text: str, match: str) -> None:
    with pytest.raises(RegisterError, match=match):
        parse_register(text)


def test_cmd_reconcile_reports_unreadable_input(tmp_path: Path) -> None:
    out = io.StringIO()
    assert cmd_reconcile(TRADES, tmp_path / "missing.csv", out) == 2
    assert out.getvalue().startswith("error: cannot read register")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "T1,C1,X,A,B,1,2\n")
    out = io.StringIO()
    assert cmd_reconcile(TRADES, bad, out) == 2
    assert "line 2: expected 8 columns" in out.getvalue()
