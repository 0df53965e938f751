"""kill -9 in the middle of a burst of appends loses no acknowledged entry and leaves no gap.

A child process appends from several threads (blocking appends and a pipelined producer
that keeps hundreds of entries in flight, so the kill can land inside a large write) and
prints ``seq entry_hash`` for each entry only after its receipt said it was durable. The
parent kills it with SIGKILL, reopens the log (running recovery), checks every acknowledged
entry is there with the same hash, and that an export of the whole log verifies. Three rounds
run against the same directory, so recovery also runs on a log that was recovered before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.audit.export import export_bundle
from gateway.audit.keys import generate_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.store import ENTRIES_FILE
from gateway.audit.verify import verify_bundle
from otc.audit.entry import decode_entry

REPO = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import collections, os, sys, threading
    from gateway.audit.log import AuditLog

    log = AuditLog.open(sys.argv[1], checkpoint_every=500)
    out = threading.Lock()

    def ack(receipt):
        with out:
            os.write(1, f"{receipt.seq} {receipt.entry_hash}\\n".encode())

    def blocking(worker):
        i = 0
        while True:
            ack(log.append("fix.in", f"w{worker}", {"w": worker, "i": i, "pad": "x" * (i % 200)}))
            i += 1

    def pipelined():
        window = collections.deque()
        i = 0
        while True:
            window.append(log.append_nowait("fix.out", "pipe", {"i": i, "pad": "y" * 300}))
            i += 1
            if len(window) >= 400:
                ack(window.popleft().wait())

    for w in range(3):
        threading.Thread(target=blocking, args=(w,), daemon=True).start()
    threading.Thread(target=pipelined, daemon=True).start()
    threading.Event().wait()
    """
)


def _run_and_kill(directory: Path, acks_before_kill: int) -> dict[int, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    acked: dict[int, str] = {}
    assert child.stdout is not None
    try:
        while len(acked) < acks_before_kill:
            line = child.stdout.readline()
            assert line, f"child ended early: {child.stderr.read().decode()}"  # type: ignore[union-attr]
            seq, digest = line.split()
            acked[int(seq)] = digest.decode()
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # acknowledgements written before the kill landed
            parts = line.split()
            if len(parts) == 2:
                acked[int(parts[0])] = parts[1].decode()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL
    return acked


def test_kill_minus_9_loses_no_acknowledged_entry(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    acked: dict[int, str] = {}
    for _round in range(3):
        acked.update(_run_and_kill(directory, acks_before_kill=1500))
        with AuditLog.open(directory) as log:  # recovery: torn tail cut, tail verified
            size = log.size
        lines = (directory / ENTRIES_FILE).read_bytes().splitlines()
        assert len(lines) == size
        entries = [decode_entry(line) for line in lines]
        assert [e.seq for e in entries] == list(range(size))  # no gap
        for before, after in zip(entries, entries[1:], strict=False):
            assert after.prev_hash == before.entry_hash.hex()
        missing = [seq for seq, digest in acked.items() if seq >= size]
        assert not missing, f"acknowledged entries lost: {missing[:5]}"
        for seq, digest in acked.items():
            assert entries[seq].entry_hash.hex() == digest
    export_bundle(directory, tmp_path / "bundle.tar")
    report = verify_bundle(tmp_path / "bundle.tar")
    assert report.ok, report.problem
    assert report.entries == size >= len(acked) >= 4500
