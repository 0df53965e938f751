"""Smoke tests of the OTC load-test plumbing with tiny counts: the in-process path benchmark, the
locust runner (a real gateway, real locust processes) and the pieces they report with. Timings
are never asserted, only that every request kind ran, nothing failed and the figures add up."""

from __future__ import annotations

import json
import math

import pytest

from load import bench_otc, run_locust
from load.run_locust import partition


def test_bench_otc_drives_every_path_through_fix_to_a_trade():
    result = bench_otc.run_benchmark(iterations=20, warmup=3)
    assert len(result.fix.path) == len(result.core.path) == 20
    assert len(result.fix.path_cpu) == len(result.core.path_cpu) == 20
    assert len(result.fix.quote) == len(result.core.quote) == 20 * len(bench_otc.DESKS)
    # per RFQ the client gets 3 Quotes, then ER + AE + one QuoteStatusReport per losing quote
    assert result.messages_out == 20 * (3 + 2 + 2)
    assert all(f >= r for f, r in zip(result.fix.path, result.fix.rfq, strict=True))
    text = bench_otc.report(result)
    assert "path: R -> 3 S -> AJ -> ER + AE" in text and "target path p99" in text


def test_wire_text_is_a_valid_fix_frame():
    raw = bench_otc.rfq_client.encode_quote_cancel("QR-1")
    text = bench_otc.wire(raw, 7)
    body_start = text.index("35=")
    checksum_at = text.rindex("10=")
    assert int(text.split("\x01")[1][2:]) == checksum_at - body_start
    assert int(text[checksum_at + 3 : -1]) == sum(text[:checksum_at].encode()) % 256
    assert "\x0134=7\x01" in text


@pytest.mark.parametrize(("users", "desks"), [(1, 3), (7, 3), (12, 3), (5, 1)])
def test_partition_gives_each_rfq_to_one_user_per_desk(users, desks):
    rfqs = [f"RFQ-{i:03d}" for i in range(40)]
    by_desk: dict[int, list[str]] = {}
    for slot in range(users):
        by_desk.setdefault(slot % desks, []).extend(partition(rfqs, slot, desks, users))
    for taken in by_desk.values():
        assert len(taken) == len(set(taken))  # no two users of a desk share an RFQ
    if users % desks == 0:  # every desk has as many users as RFQ shares: all are quoted
        assert all(sorted(taken) == sorted(rfqs) for taken in by_desk.values())


def test_histogram_percentiles_and_merge():
    a = run_locust.Entry("POST", "a", 4, 0, 2.0, {1: 2, 5: 2}, 5.0)
    b = run_locust.Entry("PUT", "b", 6, 1, 2.0, {2: 5, 40: 1}, 40.0)
    both = run_locust.merge("HTTP", "both", [a, b])
    assert (both.requests, both.failures, both.max_ms, both.per_second) == (10, 1, 40.0, 5.0)
    assert both.histogram == {1: 2, 2: 5, 5: 2, 40: 1}
    assert (both.percentile(50), both.percentile(90), both.percentile(99)) == (2.0, 5.0, 40.0)
    assert math.isnan(run_locust.histogram_percentile({}, 99))


def test_runner_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        run_locust.parse_args(["--phases", "desk,warp"])
    with pytest.raises(SystemExit):
        run_locust.parse_args(["--users", "0"])
    with pytest.raises(SystemExit):  # more seeded RFQs than one GET /desk/rfqs can list
        run_locust.parse_args(["--users", "16", "--rfqs-per-user", "200"])
    assert run_locust.seeded_per_desk(run_locust.parse_args(["--users", "16"])) == 6 * 32


def test_locust_desk_and_fix_users_against_a_gateway(tmp_path):
    args = run_locust.parse_args(
        [
            "--users",
            "3",
            "--duration",
            "2",
            "--warmup",
            "1",
            "--rfqs-per-user",
            "2",
            "--fix-rfq-rate",
            "5",
            "--phases",
            "health,desk",
        ]
    )
    results = run_locust.run(args, tmp_path, lambda _text: None)
    health, desk = results
    assert health.phase == "health" and health.entry("GET /health").requests > 0
    assert desk.errors == {}
    for name in (*run_locust.QUOTE_NAMES, "DELETE /desk/quotes/{quote_id}"):
        entry = desk.entry(name)
        assert entry is not None and entry.requests > 0 and entry.failures == 0, name
    quotes = desk.quotes()
    assert quotes.requests == sum(desk.entry(n).requests for n in run_locust.QUOTE_NAMES)
    # the FIX user is the seeded RFQs' client: it gets a Quote for every desk quote and a
    # QuoteStatusReport for every replace and cancel, and its own RFQs were sent
    assert desk.entry("S").requests > 0 and desk.entry("AI").requests > 0
    assert desk.entry("R QuoteRequest").requests > 0
    assert set(desk.cpu) == {"server", "locust", "machine"}
    text = run_locust.report(results, args)
    assert "quote submissions (POST + PUT)" in text and "target [desk]" in text


def test_bare_desk_baseline_serves_the_desk_users_cycle(tmp_path):
    """The baseline answers the same quote/replace/cancel cycle the desk users drive."""
    args = run_locust.parse_args(
        ["--users", "2", "--duration", "1", "--warmup", "1", "--phases", "bare-desk"]
    )
    (bare,) = run_locust.run(args, tmp_path, lambda _text: None)
    assert bare.phase == "bare-desk" and bare.errors == {}
    for name in (*run_locust.QUOTE_NAMES, "DELETE /desk/quotes/{quote_id}"):
        entry = bare.entry(name)
        assert entry is not None and entry.requests > 0 and entry.failures == 0, name
    assert "bare-desk" in run_locust.report([bare], args)


def test_desk_ablation_runs_each_variant_and_leaves_out_what_it_names(tmp_path):
    """``--ablation``: the desk phase against gateways without the audit trail, without quote
    signatures, and without both; each still answers the whole cycle and sends the FIX client
    its Quotes, and each leaves out exactly what it names."""
    args = run_locust.parse_args(
        [
            "--users",
            "2",
            "--duration",
            "1",
            "--warmup",
            "1",
            "--rfqs-per-user",
            "2",
            "--fix-rfq-rate",
            "5",
            "--phases",
            "desk",
            "--ablation",
        ]
    )
    results = run_locust.run(args, tmp_path, lambda _text: None)
    assert [r.target for r in results] == [
        "gateway",
        "gateway without audit",
        "gateway without sign",
        "gateway without audit, sign",
    ]
    for r in results:
        assert r.errors == {}, r.target
        assert r.quotes().requests > 0 and r.entry("S").requests > 0, r.target
    keys = {
        r.target: list((tmp_path / d / "gateway" / "desk-keys").glob("*"))
        for r, d in zip(results, ["", "audit", "sign", "audit-sign"], strict=True)
    }
    assert keys["gateway"] and keys["gateway without audit"]
    assert not keys["gateway without sign"] and not keys["gateway without audit, sign"]
    entries = {
        d: _audit_entries(tmp_path / d / "gateway" / "audit")
        for d in ("", "audit", "sign", "audit-sign")
    }
    assert entries[""] > 0 and entries["sign"] > 0
    assert entries["audit"] == entries["audit-sign"] == 0
    text = run_locust.report(results, args)
    assert "where the time goes" in text and "gateway without audit, sign" in text


def _audit_entries(directory) -> int:
    """Entries the desk cycle leaves in a gateway's audit log (API actions, negotiation events,
    FIX messages); 0 where the log was never written."""
    path = directory / "entries.jsonl"
    kinds = (
        [json.loads(line)["kind"] for line in path.read_text().splitlines()]
        if path.exists()
        else []
    )
    return sum(1 for k in kinds if k.startswith(("api.action", "otc.", "fix.")))
