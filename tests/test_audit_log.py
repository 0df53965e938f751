"""The audit log on disk: keys, appends, group commit, checkpoints, recovery, receipts."""

from __future__ import annotations

import itertools
import json
import os
import stat
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.audit.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    AuditKeyError,
    KeyExistsError,
    MissingKeyError,
    generate_signing_key,
    load_signing_key,
)
from gateway.audit.log import AuditLog, AuditLogClosed, AuditLogFailed, AuditLogLocked
from gateway.audit.receipt import build_receipt
from gateway.audit.store import CHECKPOINTS_FILE, ENTRIES_FILE, RECOVERED_DIR, LogCorruptError
from otc.audit.canonical import CanonicalError
from otc.audit.checkpoint import Checkpoint
from otc.audit.entry import GENESIS_PREV_HASH, EntryError, decode_entry
from otc.audit.merkle import MerkleTree
from otc.audit.receipt import verify_receipt


def fake_clock(start: int = 1_714_560_000_000_000, step: int = 1_000):
    ticks = itertools.count(start, step)
    return lambda: next(ticks)


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    return directory


def open_log(directory: Path, **kwargs) -> AuditLog:
    kwargs.setdefault("clock", fake_clock())
    return AuditLog.open(directory, **kwargs)


def lines(directory: Path, name: str = ENTRIES_FILE) -> list[bytes]:
    return (directory / name).read_bytes().splitlines()


def checkpoints(directory: Path) -> list[Checkpoint]:
    return [Checkpoint.from_line(line) for line in lines(directory, CHECKPOINTS_FILE)]


# -- keys -------------------------------------------------------------------------------------


def test_keygen_writes_private_key_0600_and_public_key_and_refuses_to_overwrite(tmp_path):
    private = generate_signing_key(tmp_path / "d")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (tmp_path / "d" / PUBLIC_KEY_FILE).read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    before = private.read_bytes()
    with pytest.raises(KeyExistsError, match="refusing to overwrite"):
        generate_signing_key(tmp_path / "d")
    assert private.read_bytes() == before
    load_signing_key(tmp_path / "d")


def test_missing_key_error_names_path_and_command(tmp_path):
    with pytest.raises(MissingKeyError) as info:
        AuditLog.open(tmp_path / "nokey")
    message = str(info.value)
    assert str(tmp_path / "nokey" / PRIVATE_KEY_FILE) in message
    assert "fixbridge audit keygen" in message


def test_group_readable_key_is_refused(audit_dir):
    os.chmod(audit_dir / PRIVATE_KEY_FILE, 0o640)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_signing_key(audit_dir)


# -- appending --------------------------------------------------------------------------------


def test_entries_are_chained_from_seq_zero_and_durable_on_return(audit_dir):
    with open_log(audit_dir) as log:
        receipts = [
            log.append("rfq.state", "api:alice", {"rfq_id": "R-1", "qty": Decimal("2.5")}),
            log.append("fix.in", "session:CLIENT1", {"raw": "8=FIX.4.4\x0135=R\x01"}),
        ]
        on_disk = lines(audit_dir)  # durable means written before append() returned
        assert len(on_disk) == 2
    entries = [decode_entry(line) for line in on_disk]
    assert [e.seq for e in entries] == [0, 1] == [r.seq for r in receipts]
    assert entries[0].prev_hash == GENESIS_PREV_HASH
    assert entries[1].prev_hash == entries[0].entry_hash.hex() == receipts[0].entry_hash
    assert entries[0].payload == {"rfq_id": "R-1", "qty": "2.5"}
    assert receipts[0].ts <= receipts[1].ts


def test_bad_input_is_refused_and_records_nothing(audit_dir):
    with open_log(audit_dir) as log:
        log.append("api.action", "api:alice", {"ok": True})
        with pytest.raises(CanonicalError, match="float"):
            log.append("api.action", "api:alice", {"price": 1.25})
        with pytest.raises(EntryError, match="kind"):
            log.append("Not A Kind", "api:alice", {})
        with pytest.raises(EntryError, match="actor"):
            log.append("api.action", "", {})
        with pytest.raises(CanonicalError, match="mapping"):
            log.append("api.action", "api:alice", ["not", "a", "dict"])  # type: ignore[arg-type]
        assert log.append("api.action", "api:alice", {}).seq == 1
    assert len(lines(audit_dir)) == 2


def test_concurrent_producers_get_gap_free_sequence_and_group_commit(audit_dir):
    threads, per_thread = 8, 150
    seen: list[int] = []
    lock = threading.Lock()
    with open_log(audit_dir) as log:

        def produce(worker: int) -> None:
            for i in range(per_thread):
                receipt = log.append("fix.out", f"worker-{worker}", {"i": i})
                with lock:
                    seen.append(receipt.seq)

        workers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stats = dict(log.stats)
    total = threads * per_thread
    assert sorted(seen) == list(range(total))
    assert stats["entries"] == total
    assert stats["batches"] < total  # several entries shared one write + fdatasync
    entries = [decode_entry(line) for line in lines(audit_dir)]
    assert [e.seq for e in entries] == list(range(total))
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash.hex()
        assert after.ts >= before.ts


def test_append_nowait_then_wait_and_flush(audit_dir):
    with open_log(audit_dir) as log:
        pending = [log.append_nowait("fix.in", "s", {"i": i}) for i in range(50)]
        assert log.flush() == 50
        assert all(p.durable for p in pending)
        assert [p.wait().seq for p in pending] == list(range(50))
        assert len(lines(audit_dir)) == 50


def test_checkpoint_every_n_entries_covers_durable_entries_with_matching_roots(audit_dir):
    with open_log(audit_dir, checkpoint_every=10, checkpoint_interval=3600) as log:
        for i in range(35):
            log.append("fix.in", "s", {"i": i})
            latest = log.latest_checkpoint
            # a checkpoint never covers more than what is already in the file
            assert latest is None or latest.size <= len(lines(audit_dir))
    sizes = [c.size for c in checkpoints(audit_dir)]
    assert sizes == [10, 20, 30, 35]  # the last one is the final checkpoint of close()
    tree = MerkleTree()
    tree.extend(decode_entry(line).entry_hash for line in lines(audit_dir))
    public_key = load_signing_key(audit_dir).public_key()
    for checkpoint in checkpoints(audit_dir):
        checkpoint.verify(public_key)
        assert checkpoint.root == tree.root(checkpoint.size)


def test_idle_log_checkpoints_on_its_own_within_the_interval(audit_dir):
    with open_log(audit_dir, checkpoint_interval=0.05) as log:
        log.append("fix.in", "s", {"i": 0})
        deadline = time.monotonic() + 10
        while (log.latest_checkpoint is None or log.latest_checkpoint.size < 1) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        assert log.latest_checkpoint is not None and log.latest_checkpoint.size == 1


def test_forced_checkpoint_covers_everything_appended(audit_dir):
    with open_log(audit_dir, checkpoint_interval=3600) as log:
        for i in range(7):
            log.append_nowait("fix.in", "s", {"i": i})
        checkpoint = log.checkpoint()
        assert checkpoint.size == 7
        assert checkpoint.root == log.root(7)


def test_second_writer_is_locked_out(audit_dir):
    with open_log(audit_dir), pytest.raises(AuditLogLocked, match="already open"):
        open_log(audit_dir)


def test_closed_log_refuses_appends(audit_dir):
    log = open_log(audit_dir)
    log.close()
    with pytest.raises(AuditLogClosed):
        log.append("fix.in", "s", {})


def test_write_failure_interrupts_the_log_and_a_close_then_fail_stops_it(audit_dir):
    log = open_log(audit_dir)
    log.append("fix.in", "s", {"i": 0})
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._entries_fd)  # the disk is now full for the writer
    os.close(full)
    pending = log.append_nowait("fix.in", "s", {"i": 1})
    deadline = time.monotonic() + 10
    while log.interruption is None:  # held and retried, not stopped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "No space left" in str(log.interruption) and log.failure is None
    log.close()  # a close during the interruption gives up after a few attempts
    with pytest.raises(AuditLogFailed, match="No space left"):
        pending.wait(5)
    with pytest.raises(AuditLogFailed):
        log.append("fix.in", "s", {"i": 2})
    assert len(lines(audit_dir)) == 1


# -- recovery ---------------------------------------------------------------------------------


def test_reopen_continues_sequence_and_chain(audit_dir):
    with open_log(audit_dir) as log:
        for i in range(5):
            log.append("fix.in", "s", {"i": i})
    with open_log(audit_dir, clock=fake_clock(start=1)) as log:  # clock went backwards
        receipt = log.append("fix.in", "s", {"i": 5})
    entries = [decode_entry(line) for line in lines(audit_dir)]
    assert receipt.seq == 5
    assert entries[5].prev_hash == entries[4].entry_hash.hex()
    assert entries[5].ts >= entries[4].ts  # never goes backwards


def test_torn_last_line_is_cut_kept_and_sequence_continues(audit_dir):
    with open_log(audit_dir, checkpoint_interval=3600, checkpoint_every=3) as log:
        for i in range(5):
            log.append("fix.in", "s", {"i": i})
    # A crash in the middle of the final checkpoint write and of an entry write:
    with (audit_dir / ENTRIES_FILE).open("ab") as f:
        f.write(b'{"actor":"s","kind":"fix.in","payload":{"i":5},"payl')
    with (audit_dir / CHECKPOINTS_FILE).open("ab") as f:
        f.write(b'{"key_id":"00')
    with open_log(audit_dir) as log:
        assert log.size == 5
        assert log.append("fix.in", "s", {"i": 5}).seq == 5
    kept = sorted((audit_dir / RECOVERED_DIR).iterdir())
    assert [p.name.split(".")[0] for p in kept] == ["checkpoints", "entries"]
    assert any(p.read_bytes().endswith(b'"payl') for p in kept)
    assert [decode_entry(line).seq for line in lines(audit_dir)] == list(range(6))


def test_unchecked_tail_is_verified_on_open(audit_dir):
    with open_log(audit_dir, checkpoint_interval=3600) as log:
        for i in range(3):
            log.append("fix.in", "s", {"i": i})
    # Append entries that were never checkpointed and whose last line is garbage (NULs).
    body = lines(audit_dir)
    (audit_dir / ENTRIES_FILE).write_bytes(b"\n".join(body) + b"\n" + b"\0" * 40 + b"\n")
    with open_log(audit_dir) as log:
        assert log.size == 3


def test_damage_inside_signed_data_refuses_to_open(audit_dir):
    with open_log(audit_dir) as log:
        for i in range(4):
            log.append("fix.in", "s", {"i": i})
    data = bytearray((audit_dir / ENTRIES_FILE).read_bytes())
    data[data.index(b'"i":1') + 4] = ord("7")
    (audit_dir / ENTRIES_FILE).write_bytes(bytes(data))
    with pytest.raises(LogCorruptError, match="do not match the root signed"):
        open_log(audit_dir)


def test_damage_followed_by_valid_entries_is_not_taken_for_a_torn_tail(audit_dir):
    with open_log(audit_dir, checkpoint_interval=3600, checkpoint_every=1000) as log:
        log.append("fix.in", "s", {"i": 0})
        log.checkpoint()
        for i in range(1, 4):
            log.append("fix.in", "s", {"i": i})
        # close() would seal them; simulate a crash instead by copying the files now
        snapshot = {n: (audit_dir / n).read_bytes() for n in (ENTRIES_FILE, CHECKPOINTS_FILE)}
    for name, data in snapshot.items():
        (audit_dir / name).write_bytes(data)
    body = lines(audit_dir)
    body[2] = body[2].replace(b'"i":2', b'"i":9')
    (audit_dir / ENTRIES_FILE).write_bytes(b"\n".join(body) + b"\n")
    with pytest.raises(LogCorruptError, match=r"line 3 \(seq 2\).*valid entries follow"):
        open_log(audit_dir)


def test_checkpoint_beyond_entries_refuses_to_open(audit_dir):
    with open_log(audit_dir) as log:
        for i in range(4):
            log.append("fix.in", "s", {"i": i})
    body = lines(audit_dir)
    (audit_dir / ENTRIES_FILE).write_bytes(b"\n".join(body[:2]) + b"\n")
    with pytest.raises(LogCorruptError, match="durable entries are missing"):
        open_log(audit_dir)


# -- receipts ---------------------------------------------------------------------------------


def test_receipt_for_an_rfq_holds_only_its_entries_and_verifies(audit_dir):
    with open_log(audit_dir, checkpoint_interval=3600) as log:
        for i in range(30):
            log.append("rfq.state", "api:alice", {"rfq_id": f"R-{i % 3}", "step": i})
        log.append("rfq.state", "api:alice", {"note": '"rfq_id":"R-1"'})  # pre-filter decoy
        receipt = build_receipt(log, {"rfq_id": "R-1"})
        key_id = log.key_id
    doc = json.loads(json.dumps(receipt.to_json()))  # survives a trip through HTTP
    assert [item["seq"] for item in doc["entries"]] == list(range(1, 30, 3))
    assert doc["checkpoint"]["size"] == 31
    report = verify_receipt(doc, expected_key_id=key_id)
    assert report.ok, report.problem
    assert report.entries == 10

    tampered = json.loads(json.dumps(doc))
    tampered["entries"][2]["entry"] = tampered["entries"][2]["entry"].replace(
        "api:alice", "api:eve"
    )
    bad = verify_receipt(tampered)
    assert not bad.ok and bad.problem.seq == 7 and "inclusion proof" in bad.problem.message

    tampered = json.loads(json.dumps(doc))
    tampered["entries"][0]["proof"][0] = "00" * 32
    assert verify_receipt(tampered).problem.seq == 1

    assert "expected" in verify_receipt(doc, expected_key_id="0" * 16).problem.message


def test_receipt_with_a_predicate(audit_dir):
    with open_log(audit_dir) as log:
        for i in range(5):
            log.append("fix.in" if i % 2 else "fix.out", "s", {"i": i})
        receipt = build_receipt(log, lambda entry: entry.kind == "fix.in")
    assert [item.seq for item in receipt.items] == [1, 3]
    assert verify_receipt(receipt).ok
