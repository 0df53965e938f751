"""The order benchmark's machinery, end to end at a tiny size: counts and ERs, never timings."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing

from load import bench_memory, bench_sessions
from load.bench_orders import ABLATIONS, gateway_dir, report, run_benchmark
from load.fastclient import OrderTemplate, field_value
from load.stats import percentile
from otc.audit.command import parts_of


def test_order_template_frames_a_valid_message() -> None:
    stamp = b"20260101-00:00:00.000001"
    msg = OrderTemplate("BENCH", "FIXBRIDGE", "BTC-PERP").build(7, b"C1", stamp)
    head, _, rest = msg.partition(b"\x019=")
    length, _, body_and_trailer = rest.partition(b"\x01")
    body, _, checksum = body_and_trailer.rpartition(b"10=")
    assert head == b"8=FIX.4.4"
    assert int(length) == len(body)
    assert int(checksum[:-1]) == sum(msg[: len(msg) - len(checksum) - 3]) % 256
    assert field_value(msg, b"34") == b"7"
    assert field_value(msg, b"11") == b"C1"
    assert field_value(msg, b"55") == b"BTC-PERP"


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([5], 99) == 5


def test_benchmark_runs_both_targets_and_counts_every_report(tmp_path) -> None:
    result = run_benchmark(
        orders=50, latency_samples=20, rounds=1, warmup=10, batch=8, work_dir=tmp_path
    )
    bare, bare_ack, gateway = result.bare, result.bare_ack, result.gateway
    assert bare_ack is not None
    (bare_run,) = bare.throughput
    (ack_run,) = bare_ack.throughput
    (gw_run,) = gateway.throughput
    assert (bare_run.fills, bare_run.execution_reports, bare_run.acks) == (50, 50, 0)
    assert (ack_run.fills, ack_run.execution_reports, ack_run.acks) == (50, 100, 50)
    assert (gw_run.fills, gw_run.execution_reports, gw_run.acks) == (50, 100, 50)
    # ClOrdIDs are numbered in phase order: warm-ups (10 + 1 each), latency (3 x 20), then
    # throughput bare (94..143), bare ack (144..193) and gateway (194..243); the last fill read
    # is the last order's
    assert bare_run.last_fill_cl_ord_id.endswith(b"-143")
    assert ack_run.last_fill_cl_ord_id.endswith(b"-193")
    assert gw_run.last_fill_cl_ord_id.endswith(b"-243")
    assert len(bare.latency) == len(bare_ack.latency) == len(gateway.latency) == 20
    assert all(s.execution_reports == 1 and s.first_er_ns == s.fill_ns for s in bare.latency)
    for acked in (bare_ack, gateway):
        assert all(s.execution_reports == 2 and s.first_er_ns <= s.fill_ns for s in acked.latency)
    # every order and ER the gateway answered is in its FIX message log
    log_dir = tmp_path / "gateway" / "log"
    log = (log_dir / "FIX.4.4-FIXBRIDGE-BENCH.messages.current.log").read_bytes()
    assert log.count(b"\x0135=8\x01") == 2 * (10 + 1 + 20 + 50)
    text = report(result)
    assert "bare QuickFIX" in text and "gateway" in text and "p50 order -> first ER" in text
    assert "bare ack+fill" in text


def _orders_and_logon_peer(data_dir) -> tuple[int, str | None]:
    with closing(sqlite3.connect(data_dir / "fixbridge.db")) as conn:
        (orders,) = conn.execute("SELECT count(*) FROM orders").fetchone()
        (peer,) = conn.execute("SELECT peer FROM session_events WHERE event = 'logon'").fetchone()
    return orders, peer


def _audited_fix_messages(data_dir) -> int:
    """FIX messages in the trail, counting those inside command entries."""
    entries = (data_dir / "audit" / "entries.jsonl").read_text().splitlines()
    return sum(
        1
        for e in map(json.loads, entries)
        for kind, _, _ in parts_of(e["kind"], e["actor"], e["payload"])
        if kind in ("fix.in", "fix.out")
    )


def test_ablation_leaves_out_exactly_the_part_it_names(tmp_path) -> None:
    result = run_benchmark(
        orders=20,
        latency_samples=5,
        rounds=1,
        warmup=5,
        batch=8,
        work_dir=tmp_path,
        ablation=True,
    )
    assert [t.name for t in result.ablations] == list(ABLATIONS)
    for target in result.ablations:  # every variant still answers every order, New then fill
        (run,) = target.throughput
        assert (run.fills, run.execution_reports, run.acks) == (20, 40, 20), target.name
    seen = {
        name: (
            *_orders_and_logon_peer(gateway_dir(tmp_path, without)),
            _audited_fix_messages(gateway_dir(tmp_path, without)),
        )
        for name, without in {"gateway": (), **ABLATIONS}.items()
    }
    orders = 5 + 1 + 5 + 20  # warm-up pipelined + sequential, latency, throughput
    full_orders, full_peer, full_fix = seen["gateway"]
    assert full_orders == orders and full_peer is not None and full_fix >= 3 * orders
    # without the front nobody announced the peer; without the database no order is stored;
    # without the audit trail no FIX message is in it
    assert seen["gateway, no front relay"][1] is None and seen["gateway, no front relay"][2] > 0
    assert seen["gateway, no database"][0] == 0 and seen["gateway, no database"][1] is not None
    assert seen["gateway, no audit trail"][2] == 0 and seen["gateway, no audit trail"][0] == orders
    assert seen["gateway, none of the three"] == (0, None, 0)
    assert "where the time goes" in report(result)


def test_mass_quote_benchmark_reports_every_phase_with_positive_figures(tmp_path) -> None:
    from load.bench_mass_quote import parse_args, report
    from load.bench_mass_quote import run_benchmark as run_mass_quote

    args = parse_args(
        ["--rfqs", "200", "--rounds", "2", "--warmup", "1", "--in-flight", "2"]
        + ["--rest-quotes", "20", "--work-dir", str(tmp_path)]
    )
    result = run_mass_quote(args, tmp_path)
    assert (result.ws.quotes, result.ws.refused, result.ws.messages) == (400, 0, 4)
    assert (result.rest.quotes, result.echo.quotes) == (20, 400)
    assert len(result.ws.latencies_us) == 400 and len(result.rest.latencies_us) == 20
    for phase in (result.ws, result.rest, result.echo):
        assert phase.per_second > 0 and phase.cpu_us_per_quote >= 0
    # CPU time is counted in clock ticks: only the gateway's 400 signed quotes surely show
    assert result.ws.cpu_us_per_quote > 0
    assert min(result.ws.latencies_us) > 0
    text = report(result)
    assert [line.split()[0] for line in text.splitlines()[2:5]] == ["ws", "rest", "echo"]
    assert "quotes/s" in text and "target:" in text


FIGURE = re.compile(r"(-?[\d,]+(?:\.\d+)?) (?:MB|KB|s|µs)")


def _figures(line: str) -> list[float]:
    return [float(x.replace(",", "")) for x in FIGURE.findall(line)]


def test_memory_benchmark_prints_rss_at_every_checkpoint_and_start_up_times(tmp_path) -> None:
    out = bench_memory.run(orders=400, n_sessions=2, seed=2000, work=tmp_path)
    rows = [line for line in out.splitlines() if re.match(r"\s+[\d,]+ \|", line)]
    assert [int(r.split("|")[0].replace(",", "")) for r in rows] == [0, 40, 100, 200, 400]
    for row in rows:
        bare, gateway, ours = _figures(row)
        assert bare > 0 and gateway > bare and abs(ours - (gateway - bare)) < 0.15
    entries = [int(r.split("|")[4].replace(",", "")) for r in rows]
    assert entries == sorted(entries) and entries[-1] >= 400  # an order command at least
    starts = [line for line in out.splitlines() if line.strip().startswith(("empty", "after", "+"))]
    assert len(starts) == 3
    assert all(_figures(line) for line in starts)  # times: well formed only
    # the run's orders are in the database the restarts read, and the seeded ones too
    with closing(sqlite3.connect(tmp_path / "gateway" / "fixbridge.db")) as db:
        assert db.execute("select count(*) from orders where status = '2'").fetchone() == (2400,)
        assert db.execute("select count(*) from clordids").fetchone() == (2400,)


def test_sessions_benchmark_answers_every_order_of_every_session(tmp_path) -> None:
    out = bench_sessions.run(n=4, rate=5, duration=1.0, work=tmp_path)
    table = {
        cells[0].strip(): [c.strip() for c in cells[1:]]
        for cells in (line.split("|") for line in out.splitlines() if "|" in line)
    }
    assert table["orders answered"][0] == table["orders answered"][1]
    assert int(table["orders answered"][1]) >= 4 * 4  # ~5 per session per second
    per_session = [_figures(cell) for cell in table["RSS per idle session"]]
    assert all(len(f) == 1 for f in per_session)  # a difference: noise may make it negative
    for key in ("RSS, 4 sessions idle", "RSS after the load"):  # memory: positive
        assert all(_figures(cell)[0] > 0 for cell in table[key]), key
    times = ["process start -> ready + logon storm", "logon storm (connect -> all on)"]
    times += ["order -> first ER p50", "order -> first ER p99", "order -> first ER max"]
    for key in times:  # times: well formed only
        assert all(len(_figures(cell)) == 1 for cell in table[key]), key
