"""The FIX messages a correction or bust sends, validated by QuickFIX against the FIX 4.4
dictionary the gateway loads (required fields, enums, group order)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.fix.trade_amendments import amendment_messages
from otc.clearing.samples import block_multileg_trade, option_trade
from otc.trade_versions import Amendment, apply_directly, captured, propose
from tests.test_fix_rfq import dd, to_client  # noqa: F401 - dd is the dictionary fixture

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_correction_is_er_trade_correct_and_ae_replace(dd):  # noqa: F811
    v1 = captured(option_trade(), T0)
    v2 = apply_directly(
        propose(v1, None, Amendment(price=Decimal("4300"), account="ACC-1"), "px", "a", T0), T0
    )
    er, ae = to_client(dd, amendment_messages(v1, v2))
    assert (er.msg_type, er.get(150), er.get(39), er.get(19)) == ("8", "G", "2", v1.trade_id)
    assert (er.get(31), er.get(32), er.get(1)) == ("4300", str(v1.trade.quantity), "ACC-1")
    assert (ae.msg_type, ae.get(487), ae.get(856), ae.get(572)) == ("AE", "2", "5", v1.report_id)
    assert (ae.get(571), ae.get(31), ae.get(1)) == (v2.report_id, "4300", "ACC-1")


def test_bust_is_er_trade_cancel_and_ae_cancel_of_the_latest_report(dd):  # noqa: F811
    v1 = captured(block_multileg_trade(), T0)
    v2 = apply_directly(propose(v1, None, Amendment(account="ACC-2"), "acct", "a", T0), T0)
    v3 = apply_directly(propose(v2, None, None, "wrong client", "a", T0), T0)
    er, ae = to_client(dd, amendment_messages(v2, v3))
    assert (er.get(150), er.get(39), er.get(14), er.get(19)) == ("H", "4", "0", v1.trade_id)
    assert (ae.get(487), ae.get(856), ae.get(572), ae.get(571)) == (
        "1",
        "6",
        v2.report_id,
        v3.report_id,
    )


def test_allocation_is_an_ae_replace_listing_each_account_and_give_up(dd):  # noqa: F811
    from otc.trade_versions import allocate
    from otc.trades import Allocation

    v1 = captured(option_trade(), T0)
    qty = v1.trade.quantity
    split = (Allocation("ACC-A", qty - 1, "GIVEUP"), Allocation("ACC-B", Decimal(1)))
    v2 = allocate(v1, None, split, "CLIENT", T0)
    [ae] = to_client(dd, amendment_messages(v1, v2))
    assert (ae.msg_type, ae.get(487), ae.get(572)) == ("AE", "2", v1.report_id)
    tags = [t for t, _ in ae.fields]
    assert ae.get(78) == "2" and tags.count(79) == 2 and ae.get(757) == "GIVEUP"
    assert ae.get(759) == "14"
