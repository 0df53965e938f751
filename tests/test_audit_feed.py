"""The gateway's audit feed: entries reach the log in the order the sinks were called, a drain
waits for them, and one refused entry takes nothing else with it."""

from __future__ import annotations

import json
import logging
import threading

from gateway.audit.feed import Auditor
from gateway.audit.keys import generate_signing_key
from otc.audit.command import parts_of
from otc.audit.refs import entry_refs

SOH = "\x01"


def _entries(directory) -> list[dict]:
    return [json.loads(line) for line in (directory / "entries.jsonl").read_text().splitlines()]


def test_entries_keep_call_order_and_a_refused_one_takes_nothing_with_it(tmp_path, caplog):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory, commands=frozenset())  # every message an entry of its own
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


NOS = f"8=FIX.4.4{SOH}35=D{SOH}49=C1{SOH}11=A{SOH}"
ER_NEW = f"8=FIX.4.4{SOH}35=8{SOH}11=A{SOH}37=O1{SOH}39=0{SOH}"
ER_FILL = f"8=FIX.4.4{SOH}35=8{SOH}11=A{SOH}37=O1{SOH}39=2{SOH}17=T1{SOH}"


def test_an_order_message_and_what_it_caused_are_one_command_entry(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory)
    try:
        auditor.fix("fix.in", "session:C1", NOS)
        # another thread's entry while the command is handled is an entry of its own
        other = threading.Thread(
            target=auditor.append, args=("api.action", "api:ops", {"path": "/orders"})
        )
        other.start()
        other.join()
        auditor.fix("fix.out", "session:C1", ER_NEW)
        auditor.fix("fix.out", "session:C2", ER_FILL)  # a contra client's fill: caused too
        auditor.end_command()
        auditor.fix("fix.out", "session:C1", f"8=FIX.4.4{SOH}35=0{SOH}")  # after: on its own
        assert auditor.log.flush() == 3
    finally:
        auditor.close()
    entries = _entries(directory)
    assert [e["kind"] for e in entries] == ["fix.command", "api.action", "fix.out"]
    command = entries[0]
    assert command["actor"] == "session:C1" and command["payload"]["msg_type"] == "D"
    parts = parts_of(command["kind"], command["actor"], command["payload"])
    assert [(k, a, p["wire"]) for k, a, p in parts] == [
        ("fix.in", "session:C1", NOS),
        ("fix.out", "session:C1", ER_NEW),
        ("fix.out", "session:C2", ER_FILL),
    ]
    refs = entry_refs(command["kind"], command["actor"], command["payload"])
    assert {("client", "C1"), ("client", "C2"), ("cl_ord_id", "A"), ("order_id", "O1")} <= refs
    assert ("trade_id", "T1") in refs


def test_a_command_never_ended_is_sealed_and_nothing_after_it_is_lost(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory, command_grace=0.01)
    try:
        auditor.fix("fix.in", "session:C1", NOS)  # e.g. refused by the session layer
        assert auditor.drain()  # the feed seals it after the grace
        auditor.fix("fix.out", "session:C1", f"8=FIX.4.4{SOH}35=3{SOH}")
        auditor.fix("fix.in", "session:C1", f"8=FIX.4.4{SOH}35=0{SOH}")  # not an order message
        assert auditor.log.flush() == 3
    finally:
        auditor.close()
    kinds = [(e["kind"], e["payload"].get("msg_type")) for e in _entries(directory)]
    assert kinds == [("fix.command", "D"), ("fix.out", "3"), ("fix.in", "0")]


def test_the_next_message_in_ends_a_command_and_rfq_acceptances_are_not_commands(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory)
    try:
        auditor.fix("fix.in", "session:C1", NOS)
        auditor.fix("fix.out", "session:C1", ER_NEW)
        accept = f"8=FIX.4.4{SOH}35=D{SOH}11=B{SOH}40=D{SOH}"
        auditor.fix("fix.in", "session:C1", accept)  # ends the first; not a command itself
        auditor.fix("fix.out", "session:C1", ER_FILL)
        assert auditor.log.flush() == 3
    finally:
        auditor.close()
    entries = _entries(directory)
    assert [e["kind"] for e in entries] == ["fix.command", "fix.in", "fix.out"]
    assert len(entries[0]["payload"]["parts"]) == 2


def test_a_part_the_log_refuses_takes_only_itself_with_it(tmp_path, caplog):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    auditor = Auditor(directory)
    try:
        auditor.fix("fix.in", "session:C1", NOS)
        auditor.fix("fix.out", "session:C1", ER_NEW)
        auditor.fix("fix.out", "x" * 300, ER_FILL)  # an actor the log refuses
        auditor.end_command()
        with caplog.at_level(logging.ERROR, logger="fixbridge.audit"):
            assert auditor.log.flush() == 2
    finally:
        auditor.close()
    kinds = [(e["kind"], e["payload"].get("msg_type")) for e in _entries(directory)]
    assert kinds == [("fix.in", "D"), ("fix.out", "8")]
    assert any("command refused whole" in r.getMessage() for r in caplog.records)
