"""The readiness checks and the metrics' pure parts, each against the real part it watches: an
audit log that fail-stops, a database writer whose writes fail, a SQLite file that disappears.
No wall-clock assertions: waits poll with a deadline."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from gateway.audit.feed import Auditor
from gateway.audit.keys import generate_signing_key
from gateway.config import ClearingSection
from gateway.metrics import Metrics, Sources, backlog, reject_reason
from gateway.readiness import (
    AuditCheck,
    ClearingCheck,
    DatabaseCheck,
    Probe,
    Readiness,
    Verdict,
    WriterCheck,
)
from gateway.store.connect import connect, migrate
from gateway.store.sessions import SessionEvent
from gateway.store.writer import Writer


def eventually(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def red(check) -> Verdict | None:
    """The check's verdict if it is red."""
    verdict = check()
    return None if verdict.ok else verdict


# --- what counts as a reject ------------------------------------------------------------------


def test_reject_reason_reads_the_reason_of_each_kind_of_reject():
    new = [(37, "O1"), (11, "c1"), (17, "E1"), (150, "0"), (39, "0"), (55, "BTC-PERP")]
    rejected = [(37, "O1"), (11, "c1"), (17, "E2"), (150, "8"), (39, "8"), (103, "3")]
    assert reject_reason("8", new) is None
    assert reject_reason("8", rejected) == "3"
    assert reject_reason("8", [(150, "8"), (39, "8")]) == "none"  # a reject without a reason
    assert reject_reason("9", [(37, "O1"), (39, "8"), (434, "1"), (102, "1")]) == "1"
    assert reject_reason("j", [(45, "7"), (372, "AF"), (380, "3")]) == "3"
    assert reject_reason("AG", [(131, "q"), (658, "1"), (146, [[(55, "X")]])]) == "1"
    assert reject_reason("S", [(117, "Q1"), (132, "1")]) is None


def test_backlog_counts_only_unanswered_states():
    counts = {"pending": 2, "sent": 1, "unknown": 1, "acked": 7, "rejected": 1, "failed": 3}
    assert backlog(counts) == 4


def samples(metrics: Metrics) -> dict[tuple, float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_a_failing_source_leaves_the_others_in_the_scrape():
    metrics = Metrics()

    def broken() -> dict[str, int]:
        raise RuntimeError("database down")

    metrics.watch(
        Sources(
            sessions=lambda: [{"comp_id": "A", "logged_on": True}, {"comp_id": "B"}],
            clearing_counts=broken,
            readiness=lambda: {"database": False, "audit": True},
        )
    )
    found = samples(metrics)
    assert found[("fixbridge_fix_sessions_logged_on", ())] == 1
    assert found[("fixbridge_fix_session_logged_on", (("comp_id", "B"),))] == 0
    assert ("fixbridge_clearing_backlog", ()) not in found
    assert found[("fixbridge_ready", ())] == 0
    assert found[("fixbridge_ready_check", (("check", "audit"),))] == 1


def test_two_metrics_objects_never_share_a_counter():
    one, two = Metrics(), Metrics()
    one.fix.received("D")
    one.fix.sent("8", "3")
    assert (
        samples(one)[("fixbridge_fix_messages_total", (("direction", "in"), ("msg_type", "D")))]
        == 1
    )
    assert (
        samples(two)[("fixbridge_fix_messages_total", (("direction", "in"), ("msg_type", "D")))]
        == 0
    )
    assert samples(one)[("fixbridge_fix_rejects_total", (("msg_type", "8"), ("reason", "3")))] == 1


# --- the probe ---------------------------------------------------------------------------------


def test_probe_answers_from_its_cache_and_never_waits_past_its_timeout():
    calls = []
    release = threading.Event()

    def slow() -> int:
        calls.append(1)
        if len(calls) == 2:
            release.wait(10)
        return len(calls)

    probe = Probe(slow, ttl=3600, timeout=0.2)
    assert probe().get() == 1
    assert probe().get() == 1 and len(calls) == 1  # cached
    probe.ttl = 0
    stuck = probe()  # the second call hangs: the caller is told, not kept waiting
    assert stuck.error is not None and stuck.error.startswith("no answer after")
    again = probe()  # still the same call in flight: no second one piles up
    assert again.error is not None and len(calls) == 2
    release.set()
    probe.ttl = 3600
    assert eventually(lambda: probe().value == 2)  # the hung call's answer serves the next


def test_probe_reports_an_exception_in_one_line():
    def broken() -> int:
        raise OSError("connection refused\n  at line 2")

    answer = Probe(broken)()
    assert answer.value is None and answer.error == "connection refused at line 2"


# --- transitions are logged once ---------------------------------------------------------------


def test_a_check_turning_red_is_logged_once_and_green_again_once(caplog):
    state = {"ok": True}
    readiness = Readiness(
        {
            "disk": lambda: Verdict(state["ok"], "fine" if state["ok"] else "disk full"),
            "broken": lambda: 1 / 0,
        }
    )
    with caplog.at_level(logging.INFO, logger="fixbridge.ready"):
        readiness.evaluate()
        state["ok"] = False
        readiness.evaluate()
        readiness.evaluate()
        state["ok"] = True
        verdicts = readiness.evaluate()
        readiness.evaluate()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "not ready: broken: the check failed: division by zero"),
        ("WARNING", "not ready: disk: disk full"),
        ("INFO", "ready again: disk: fine"),
    ]
    assert verdicts["disk"].ok and not verdicts["broken"].ok
    assert readiness.last() == {"disk": True, "broken": False}


def test_the_monitor_logs_a_failure_nobody_asked_about(caplog):
    state = {"ok": True}
    readiness = Readiness({"part": lambda: Verdict(state["ok"], "why")}, interval=0.05)
    with caplog.at_level(logging.WARNING, logger="fixbridge.ready"):
        readiness.start()
        try:
            state["ok"] = False
            eventually(lambda: any("not ready: part" in r.getMessage() for r in caplog.records))
        finally:
            readiness.stop()


# --- each check against the real part ----------------------------------------------------------


def test_audit_check_goes_red_while_the_audit_log_cannot_write_and_green_after(tmp_path):
    generate_signing_key(tmp_path / "audit")
    auditor = Auditor(tmp_path / "audit")
    check = AuditCheck(auditor)
    try:
        auditor.append("test.entry", "tester", {"n": 1})
        auditor.log.flush(10)
        assert check() == Verdict(True, "1 entries durable, 0 waiting")
        # the disk goes away under the writer: its writes fail, it holds the entry and retries
        inner = auditor.log.inner
        good_fd = inner._entries_fd
        inner._entries_fd = os.open(tmp_path / "read-only", os.O_RDONLY | os.O_CREAT)
        auditor.append("test.entry", "tester", {"n": 2})
        verdict = eventually(lambda: red(check))
        assert verdict.detail.startswith("the audit trail cannot make entries durable (")
        assert "retrying" in verdict.detail
        bad_fd, inner._entries_fd = inner._entries_fd, good_fd  # the disk is back
        eventually(lambda: check().ok)
        os.close(bad_fd)
    finally:
        auditor.close()
    assert not check().ok


def test_writer_check_goes_red_while_database_writes_fail_and_green_when_they_work(tmp_path):
    database = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    writer = Writer(database)
    check = WriterCheck(writer)
    try:
        assert check().ok
        with database.begin() as conn:
            conn.execute(text("DROP TABLE session_events"))
        writer.session_event(SessionEvent("C1", "logon", None, None, datetime.now(UTC)))
        verdict = eventually(lambda: red(check))
        assert verdict.detail.startswith("database writes are failing (no such table")
        migrate(database)  # the table is back: the retried batch (or the next) commits
        writer.session_event(SessionEvent("C1", "logout", None, None, datetime.now(UTC)))
        eventually(lambda: check().ok)
        assert writer.flush()
    finally:
        writer.close()
        database.dispose()
    assert not check().ok and "stopped" in check().detail


def test_database_check_goes_red_when_the_sqlite_file_is_gone(tmp_path):
    database = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    check = DatabaseCheck(database, ttl=0)
    try:
        assert check() == Verdict(True, "SELECT 1 answered")
        (tmp_path / "db.sqlite").unlink()
        verdict = check()
        assert not verdict.ok and "is gone" in verdict.detail
    finally:
        database.dispose()


@dataclass
class FakeClearing:
    config: ClearingSection = field(default_factory=ClearingSection)
    running: bool = True
    last_error: str | None = None


def test_clearing_check_compares_the_backlog_with_its_limit():
    counts = {"pending": 1, "acked": 5}
    clearing = FakeClearing()
    check = ClearingCheck(clearing, Probe(lambda: dict(counts), ttl=0), max_backlog=1)  # type: ignore[arg-type]
    assert check() == Verdict(True, "1 clearing messages unanswered (limit 1)")
    counts["unknown"] = 1
    clearing.last_error = "connection refused"
    assert check() == Verdict(
        False,
        "2 clearing messages unanswered, over the limit of 1; "
        "last delivery error: connection refused",
    )
    clearing.running = False
    assert check() == Verdict(False, "the clearing worker has stopped")
    off = FakeClearing(ClearingSection(mode="off"), running=False)
    assert ClearingCheck(off, Probe(dict), 0)() == Verdict(True, "clearing is off")  # type: ignore[arg-type]
