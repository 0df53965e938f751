"""Routing table: which desks an RFQ goes to, from config-like input."""

from __future__ import annotations

import pytest

from fixspec.instruments import InstrumentKind
from otc.negotiation import RoutingConfigError, RoutingTable

K = InstrumentKind

CONFIG = {
    "C1": {"option": ["A", "B"], "future": ["B", "C"], "*": ["A"]},
    "C2": {"option": []},
    "*": {"perpetual": ["P"], "*": ["Z"]},
}


def test_lookup_order_client_kind_then_client_wildcard_then_defaults():
    table = RoutingTable.from_config(CONFIG)
    assert table.desks_for_kind("C1", K.OPTION) == ("A", "B")
    assert table.desks_for_kind("C1", K.SPOT) == ("A",)
    assert table.desks_for_kind("C3", K.PERPETUAL) == ("P",)
    assert table.desks_for_kind("C3", K.OPTION) == ("Z",)
    assert table.desks_for_kind("C2", K.OPTION) == ()  # explicit empty list: no fall-through
    assert table.desks_for_kind("C2", K.FUTURE) == ("Z",)


def test_multi_kind_package_goes_to_desks_routed_for_every_kind():
    table = RoutingTable.from_config(CONFIG)
    assert table.desks_for("C1", [K.OPTION, K.FUTURE]) == ("B",)
    assert table.desks_for("C1", [K.OPTION]) == ("A", "B")
    assert table.desks_for("C1", []) == ()
    assert table.all_desks() == {"A", "B", "C", "P", "Z"}


def test_empty_table_routes_nothing():
    assert RoutingTable.from_config({}).desks_for("C1", [K.OPTION]) == ()


@pytest.mark.parametrize(
    "config,message",
    [
        ({"C1": {"swaption": ["A"]}}, "unknown instrument kind"),
        ({"C1": {"option": "A"}}, "list of non-empty strings"),
        ({"C1": {"option": ["A", ""]}}, "list of non-empty strings"),
        ({"C1": {"option": ["A", "A"]}}, "listed twice"),
        ({"": {"option": ["A"]}}, "non-empty string"),
        ({"C1": ["A"]}, "table of kinds"),
    ],
)
def test_bad_config_is_refused_with_the_offending_entry(config, message):
    with pytest.raises(RoutingConfigError, match=message):
        RoutingTable.from_config(config)
