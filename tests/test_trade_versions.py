"""Trade versions without a gateway: the chain's rules, the FIXML replace and cancel against the
official schema, the simulated clearinghouse applying them, the outbox holding a later version
behind its predecessor, and reconciliation knowing busted trades."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from gateway.clearinghouse.schemas import SchemaRegistry
from gateway.clearinghouse.simulator import ClearinghouseSimulator
from otc.clearing import fixml
from otc.clearing.codec import parse_ack, read_submission, render
from otc.clearing.model import (
    AckOutcome,
    ClearedTrade,
    ClearingAck,
    ClearingFormatError,
    trade_economics,
)
from otc.clearing.outbox import (
    ClearingState,
    acked,
    hold,
    is_held,
    new_message,
    rejected,
    sequenced,
)
from otc.clearing.recon import BreakKind, reconcile_rows
from otc.clearing.samples import block_multileg_trade, irs_trade, option_trade
from otc.trade_versions import (
    Amendment,
    CorrectionRefused,
    RefusalReason,
    VersionKind,
    VersionState,
    approve,
    captured,
    propose,
)
from tests.harness import shared_dir

D = Decimal
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def schemas() -> SchemaRegistry:
    return SchemaRegistry(shared_dir() / "schemas")


def _v1():
    return captured(option_trade(), T0)


# --- the chain ------------------------------------------------------------------------------


def test_correction_is_the_next_version_referring_to_the_previous_report():
    v1 = _v1()
    v2 = propose(v1, None, Amendment(price=D("4300")), "fat finger", "alice", T0)
    assert (v2.version, v2.kind, v2.state) == (2, VersionKind.CORRECTION, VersionState.PROPOSED)
    assert v2.ref_report_id == v1.report_id == v1.trade_id
    assert v2.report_id == f"{v1.trade_id}-v2"
    assert v2.trade.price == D("4300") and v2.trade.legs[0].price == D("4300")
    assert v2.trade.quantity == v1.trade.quantity


def test_second_approver_must_differ_from_the_proposer():
    v2 = propose(_v1(), None, Amendment(quantity=D("3")), "qty", "alice", T0)
    with pytest.raises(CorrectionRefused) as same:
        approve(v2, "alice", T0)
    assert same.value.reason is RefusalReason.SAME_APPROVER
    done = approve(v2, "bob", T0 + timedelta(seconds=1))
    assert (done.state, done.approved_by) == (VersionState.APPLIED, "bob")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (Amendment(quantity=D("0")), RefusalReason.BAD_AMOUNT),
        (Amendment(price=D("-1")), RefusalReason.BAD_AMOUNT),
        (Amendment(), RefusalReason.NOTHING_CHANGED),
    ],
)
def test_bad_corrections_are_refused(change, reason):
    with pytest.raises(CorrectionRefused) as refused:
        propose(_v1(), None, change, "why", "alice", T0)
    assert refused.value.reason is reason


def test_nothing_follows_a_bust_and_one_proposal_at_a_time():
    v1 = _v1()
    pending = propose(v1, None, Amendment(price=D("1")), "x", "alice", T0)
    with pytest.raises(CorrectionRefused) as busy:
        propose(v1, pending, None, "bust", "bob", T0)
    assert busy.value.reason is RefusalReason.PROPOSAL_PENDING
    bust = approve(propose(v1, None, None, "wrong client", "alice", T0), "bob", T0)
    assert bust.busted
    with pytest.raises(CorrectionRefused) as after:
        propose(bust, None, Amendment(price=D("1")), "x", "alice", T0)
    assert after.value.reason is RefusalReason.TRADE_BUSTED


def test_a_multileg_package_is_not_repriced_but_may_change_account():
    v1 = captured(block_multileg_trade(), T0)
    with pytest.raises(CorrectionRefused) as refused:
        propose(v1, None, Amendment(price=D("1")), "x", "alice", T0)
    assert refused.value.reason is RefusalReason.MULTILEG_ECONOMICS
    moved = propose(v1, None, Amendment(account="ACC-9"), "x", "alice", T0)
    assert moved.trade.account == "ACC-9"


# --- FIXML ----------------------------------------------------------------------------------


def test_fixml_replace_and_cancel_validate_and_refer_to_the_previous_report(schemas):
    trade = option_trade()
    v1 = render(trade, 1)
    corrected = replace(trade, price=D("4300"), account="ACC-7")
    v2 = render(corrected, 2)
    v3 = render(corrected, 3, cancel=True)
    for msg in (v1, v2, v3):
        assert schemas.validate_bytes(msg.body) == [], msg.body.decode()
    replace_view, cancel_view = read_submission(v2.body), read_submission(v3.body)
    assert (replace_view.trans_type, replace_view.ref_report_id) == ("2", v1.key)
    assert (cancel_view.trans_type, cancel_view.ref_report_id) == ("1", v2.key)
    assert replace_view.price == D("4300")
    rpt = etree.fromstring(v2.body).find(f"{{{fixml.FIXML_NS}}}TrdCaptRpt")
    assert rpt.find(f"{{{fixml.FIXML_NS}}}RptSide").get("Acct") == "ACC-7"


def test_an_fpml_trade_has_no_replace_message():
    with pytest.raises(ClearingFormatError, match="FpML"):
        render(irs_trade(), 2)


# --- the simulated clearinghouse ---------------------------------------------------------------


def _post(sim: ClearinghouseSimulator, msg) -> ClearingAck:
    r = httpx.post(
        f"{sim.url}/clearing/messages",
        content=msg.body,
        headers={"Idempotency-Key": msg.key, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    return parse_ack(r.content)


def test_simulator_replaces_then_cancels_a_cleared_trade(schemas):
    trade = option_trade()
    corrected = replace(trade, quantity=D("7"), legs=(replace(trade.legs[0], quantity=D("7")),))
    with ClearinghouseSimulator(schemas=schemas) as sim:
        # a replace of a report it never cleared is refused, with the reason
        early = _post(sim, render(corrected, 5))
        assert not early.accepted and "RptRefID" in (early.reason or "")
        assert _post(sim, render(trade, 1)).accepted
        assert _post(sim, render(corrected, 2)).accepted
        [row] = sim.register_rows()
        assert row.economics.quantity == D("7")
        assert _post(sim, render(corrected, 3, cancel=True)).accepted
        assert sim.register_rows() == []


# --- the outbox holds later versions -------------------------------------------------------


def test_a_held_correction_waits_for_the_originals_ack_then_goes():
    trade = option_trade()
    original = new_message(render(trade, 1), T0)
    later = hold(new_message(render(trade, 2), T0 + timedelta(seconds=1)))
    assert is_held(later) and not later.is_due(T0 + timedelta(days=1))
    assert sequenced(later, [original], T0) is later  # original not acked yet: still held
    ack = ClearingAck(AckOutcome.ACCEPTED, original.key, cleared=(ClearedTrade("C1"),))
    released = sequenced(later, [acked(original, ack, T0)], T0 + timedelta(seconds=2))
    assert released.state is ClearingState.PENDING and released.is_due(T0 + timedelta(seconds=2))


def test_a_held_correction_fails_when_the_original_is_rejected():
    trade = option_trade()
    original = rejected(new_message(render(trade, 1), T0), "RejRsn=99: limit", T0)
    later = hold(new_message(render(trade, 2), T0))
    failed = sequenced(later, [original], T0)
    assert failed.state is ClearingState.REJECTED
    assert original.key in (failed.reject_reason or "") and "limit" in (failed.reject_reason or "")


# --- reconciliation ------------------------------------------------------------------------


def test_reconciliation_knows_busted_trades():
    from otc.clearing.recon import RegisterRow

    live, busted = option_trade(), replace(option_trade(), trade_id="T-BUSTED")
    register = [RegisterRow(trade_economics(live), "C1")]
    clean = reconcile_rows([trade_economics(live)], register, cancelled=["T-BUSTED"])
    assert clean.clean and clean.cancelled == ("T-BUSTED",)
    still = reconcile_rows(
        [trade_economics(live)],
        [*register, RegisterRow(trade_economics(busted), "C2")],
        cancelled=["T-BUSTED"],
    )
    assert [b.kind for b in still.breaks] == [BreakKind.CANCELLED_LIVE]


# --- the gateway's service over a real database --------------------------------------------


class _NothingQueued:
    def flush(self) -> None:
        return None


def test_an_fpml_cleared_trade_is_refused_and_nothing_is_written(tmp_path):
    from gateway.store.connect import connect
    from gateway.store.trades import capture
    from gateway.trade_corrections import TradeCorrections

    database = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    audited: list[tuple] = []
    told: list[tuple] = []
    corrections = TradeCorrections(
        database,
        _NothingQueued(),
        lambda *entry: audited.append(entry),
        lambda *versions: told.append(versions),
        second_approver=False,
        clear=True,
    )
    irs = irs_trade()
    assert capture(database, irs, T0, clear=True)
    with pytest.raises(CorrectionRefused) as refused:
        corrections.correct(irs.trade_id, Amendment(price=D("0.04")), "rate", "alice")
    assert refused.value.reason is RefusalReason.NOT_CORRECTABLE_IN_CLEARING
    assert "FpML" in refused.value.text
    assert len(corrections.chain(irs.trade_id)) == 1 and not audited and not told
    # a listed trade in the same database is corrected: one version, audited, told
    listed = option_trade()
    assert capture(database, listed, T0, clear=True)
    v2 = corrections.correct(listed.trade_id, Amendment(price=D("4300")), "px", "alice")
    assert [v.version for v in corrections.chain(listed.trade_id)] == [1, 2]
    kind, _, payload = audited[0]
    assert (kind, payload["previous_report_id"]) == ("trade.corrected", listed.trade_id)
    assert told == [(corrections.chain(listed.trade_id)[0], v2)]
    database.dispose()


# --- allocations ---------------------------------------------------------------------------


def test_allocations_must_sum_to_the_trade_quantity():
    from otc.trade_versions import allocate
    from otc.trades import Allocation

    v1 = _v1()
    qty = v1.trade.quantity
    with pytest.raises(CorrectionRefused) as short:
        allocate(v1, None, (Allocation("A", qty - 1),), "CLIENT", T0)
    assert short.value.reason is RefusalReason.ALLOCATION_MISMATCH and "sum to" in short.value.text
    split = (Allocation("A", qty - 1, "GIVEUP"), Allocation("B", D(1)))
    v2 = allocate(v1, None, split, "CLIENT", T0)
    assert (v2.kind, v2.state, v2.trade.allocations) == (
        VersionKind.ALLOCATION,
        VersionState.APPLIED,
        split,
    )


def test_fixml_allocations_and_their_ack_validate(schemas):
    from otc.trades import Allocation

    trade = option_trade()
    split = (Allocation("ACC-A", D(3), "GIVEUP"), Allocation("ACC-B", trade.quantity - 3))
    msg = render(replace(trade, allocations=split), 2)
    assert schemas.validate_bytes(msg.body) == [], msg.body.decode()
    view = read_submission(msg.body)
    assert view.side(trade.side).allocations == split
    ack = fixml.build_trade_capture_report_ack(view, accepted=True, clearing_trade_id="C1")
    assert schemas.validate_bytes(ack) == [], ack.decode()
    acked_side = etree.fromstring(ack).find(f"{{{fixml.FIXML_NS}}}TrdCaptRptAck")
    accounts = [a.get("Acct") for a in acked_side.iter(f"{{{fixml.FIXML_NS}}}Alloc")]
    assert accounts == ["ACC-A", "ACC-B"]


def test_a_quantity_correction_drops_allocations_a_price_correction_keeps_them():
    from otc.trade_versions import allocate
    from otc.trades import Allocation

    v1 = _v1()
    split = (Allocation("A", v1.trade.quantity - 1), Allocation("B", D(1)))
    v2 = allocate(v1, None, split, "CLIENT", T0)
    repriced = propose(v2, None, Amendment(price=D("1")), "px", "alice", T0)
    resized = propose(v2, None, Amendment(quantity=D("2")), "qty", "alice", T0)
    assert repriced.trade.allocations == split and resized.trade.allocations == ()
