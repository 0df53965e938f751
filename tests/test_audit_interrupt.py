"""An audit log whose writes fail (disk full, I/O error) holds its entries, retries, and resumes
with no gap in sequence numbers, recording the interruption in the trail itself.

The failure is injected through the log's ``write`` parameter: while broken, a write puts part
of its bytes in the file (a torn line) and then raises ENOSPC, as a full disk does.
"""

from __future__ import annotations

import errno
import os
import time

from gateway.audit.export import export_bundle
from gateway.audit.feed import Auditor
from gateway.audit.keys import generate_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.store import ENTRIES_FILE
from gateway.audit.verify import verify_bundle
from otc.audit.entry import decode_entry


class Disk:
    def __init__(self) -> None:
        self.full = False
        self.refused = 0

    def write(self, fd: int, data: bytes) -> None:
        if self.full:
            self.refused += 1
            os.write(fd, data[: max(1, len(data) // 2)])  # part of a line reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_full_disk_interrupts_the_log_which_resumes_with_no_gap(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    disk = Disk()
    log = AuditLog.open(directory, retry_interval=0.05, write=disk.write)
    try:
        before = [log.append("fix.in", "c", {"i": i}) for i in range(5)]
        disk.full = True
        held = [log.append_nowait("fix.in", "c", {"i": i}) for i in range(5, 20)]
        wait_for(lambda: log.interruption is not None)
        assert log.failure is None  # not stopped: held and retried
        assert log.durable_size == 5
        more = [log.append_nowait("fix.out", "c", {"i": i}) for i in range(20, 30)]
        wait_for(lambda: disk.refused >= 3)
        assert log.interruption is not None and log.durable_size == 5
        disk.full = False
        log.flush(10)
        wait_for(lambda: log.interruption is None)
        receipts = [p.wait(5) for p in held + more]
        assert [r.seq for r in receipts] == list(range(5, 30))
        log.flush(10)
    finally:
        log.close()
    entries = [decode_entry(line) for line in (directory / ENTRIES_FILE).read_bytes().splitlines()]
    assert [e.seq for e in entries] == list(range(len(entries)))  # no gap, no torn line
    assert [e.seq for e in entries[:5]] == [r.seq for r in before]
    interrupted = [e for e in entries if e.kind == "audit.interrupted"]
    assert len(interrupted) == 1
    payload = interrupted[0].payload
    assert payload["from_seq"] == 5 and "No space left" in payload["error"]
    with AuditLog.open(directory) as reopened:  # recovery finds nothing to cut
        assert reopened.size == len(entries)
    export_bundle(directory, tmp_path / "bundle.tar")
    report = verify_bundle(tmp_path / "bundle.tar")
    assert report.ok, report.problem
    assert [i["from_seq"] for i in report.interruptions] == [5]


def test_the_auditor_names_the_interruption_for_the_admission_gate(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    disk = Disk()
    auditor = Auditor(directory, write=disk.write)
    auditor.log.inner._retry_interval = 0.05
    try:
        auditor.admin("a", "t", {"n": 1})
        auditor.log.flush(5)
        assert auditor.refusal() is None
        disk.full = True
        auditor.admin("a", "t", {"n": 2})
        wait_for(lambda: auditor.refusal() is not None)
        assert auditor.refusal() == "audit trail unavailable: [Errno 28] No space left on device"
        disk.full = False
        wait_for(lambda: auditor.refusal() is None)
    finally:
        auditor.close()
