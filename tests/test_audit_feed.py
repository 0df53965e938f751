"""The gateway's audit feed: entries reach the log in the order the sinks were called, a drain
waits for them, and one refused entry takes nothing else with it."""

from __future__ import annotations

import json
import logging

from gateway.audit.feed import Auditor
from gateway.audit.keys import generate_signing_key

SOH = "\x01"


def _entries(directory) -> list[dict]:
    return [json.loads(line) for line in (directory / "entries.jsonl").read_text().splitlines()]


def test_entries_keep_call_order_and_a_refused_one_takes_nothing_with_it(tmp_path, caplog):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory)
    try:
        auditor.fix("fix.in", "session:C1", f"8=FIX.4.4{SOH}35=D{SOH}11=A{SOH}")
        auditor.append("api.action", "api:ops", {"path": "/orders", "status": 200})
        with caplog.at_level(logging.ERROR, logger="fixbridge.audit"):
            auditor.append("api.action", "api:ops", {"latency": 0.5})  # a float: refused
            auditor.fix("fix.out", "session:C1", f"8=FIX.4.4{SOH}35=8{SOH}11=A{SOH}")
            assert auditor.log.flush() == 3  # flush waits for the feed first
    finally:
        auditor.close()
    entries = _entries(directory)
    kinds = [(e["kind"], e["payload"].get("msg_type")) for e in entries]
    assert kinds[:3] == [("fix.in", "D"), ("api.action", None), ("fix.out", "8")]
    # kept as on the wire: SOH and all (canonical JSON writes it as \u0001)
    assert entries[0]["payload"]["wire"] == f"8=FIX.4.4{SOH}35=D{SOH}11=A{SOH}"
    assert "raw" not in entries[0]["payload"]
    assert any("audit append failed" in r.getMessage() for r in caplog.records)


def test_many_entries_arrive_whole_and_in_order(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory)
    n = 1_500
    try:
        for i in range(n):
            auditor.append("api.action", "api:ops", {"i": i})
        assert auditor.drain()
        assert auditor.log.inner.size == n
    finally:
        auditor.close()
    assert [e["payload"]["i"] for e in _entries(directory)][:n] == list(range(n))
