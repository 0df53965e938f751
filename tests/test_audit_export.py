"""Compliance bundles: export, offline verification, tamper location, extension proofs, CLI."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.cli import cmd_export, cmd_extends, cmd_keygen, cmd_verify, parse_time
from gateway.audit.export import ExportError, export_bundle
from gateway.audit.keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, generate_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.store import ENTRIES_FILE
from gateway.audit.verify import prove_extends, verify_bundle
from otc.audit.bundle import CHECKPOINTS, ENTRIES, MANIFEST, PROOFS, PUBLIC_KEY
from otc.audit.canonical import canonical_bytes, parse_ts
from otc.audit.entry import decode_entry, entry_ts
from otc.audit.signing import public_key_pem, sign_document

START = 1_714_560_000_000_000  # 2024-05-01T10:40:00Z in microseconds


def fake_clock(start: int = START, step: int = 1_000):
    ticks = itertools.count(start, step)
    return lambda: next(ticks)


def make_log(directory: Path, n: int, *, every: int = 10, key: bool = True, start: int = START):
    if key:
        generate_signing_key(directory)
    with AuditLog.open(
        directory, clock=fake_clock(start), checkpoint_every=every, checkpoint_interval=3600
    ) as log:
        for i in range(n):
            log.append("rfq.state", f"api:user{i % 4}", {"rfq_id": f"R-{i % 5}", "step": i})
    return directory


def entry_times(directory: Path) -> list[str]:
    return [entry_ts(line) for line in (directory / ENTRIES_FILE).read_bytes().splitlines()]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return make_log(tmp_path_factory.mktemp("audit") / "log", 60)


@pytest.fixture(scope="module")
def full_bundle(log_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "full"
    export_bundle(log_dir, out)
    return out


def copy_bundle(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def rewrite_entries(bundle: Path, change) -> None:
    lines = (bundle / ENTRIES).read_bytes().split(b"\n")[:-1]
    (bundle / ENTRIES).write_bytes(change(lines))


def joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# -- exports that verify ----------------------------------------------------------------------


def test_full_export_verifies(full_bundle, log_dir):
    report = verify_bundle(full_bundle)
    assert report.ok, report.problem
    assert (report.first_seq, report.entries) == (0, 60)
    assert report.checkpoints == 6  # sizes 10, 20, ... 60, each root recomputed
    assert report.final_checkpoint.size == 60
    assert (full_bundle / ENTRIES).read_bytes() == (log_dir / ENTRIES_FILE).read_bytes()
    assert not (full_bundle / PRIVATE_KEY_FILE).exists()


def test_time_ranged_export_proves_its_start_and_end(log_dir, tmp_path):
    times = entry_times(log_dir)
    frm, to = parse_ts(times[23]), parse_ts(times[37])
    summary = export_bundle(log_dir, tmp_path / "range", frm, to)
    assert (summary.first_seq, summary.count) == (23, 14)
    assert summary.tree_size == 40  # the first checkpoint covering the successor (seq 37)
    report = verify_bundle(tmp_path / "range")
    assert report.ok, report.problem
    assert report.checkpoints == 2  # 30 and 40, recomputed from prefix, entries and suffix
    exported = [
        decode_entry(line) for line in (tmp_path / "range" / ENTRIES).read_bytes().split(b"\n")[:-1]
    ]
    assert [e.seq for e in exported] == list(range(23, 37))
    assert all(times[23] <= e.ts < times[37] for e in exported)


def test_range_with_no_entries_still_verifies(log_dir, tmp_path):
    times = entry_times(log_dir)
    frm = parse_ts(times[10]) + timedelta(microseconds=1)
    summary = export_bundle(log_dir, tmp_path / "empty", frm, frm + timedelta(microseconds=1))
    assert summary.count == 0
    assert verify_bundle(tmp_path / "empty").ok


def test_range_after_all_entries(log_dir, tmp_path):
    later = parse_ts(entry_times(log_dir)[-1]) + timedelta(days=1)
    assert export_bundle(log_dir, tmp_path / "late", later).count == 0
    assert verify_bundle(tmp_path / "late").ok


def test_tar_bundle_verifies_and_detects_tampering(log_dir, tmp_path):
    out = tmp_path / "audit.tar"
    export_bundle(log_dir, out)
    assert tarfile.is_tarfile(out)
    assert verify_bundle(out).ok
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(out) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == ENTRIES:
                data = data.replace(b'"step":42', b'"step":43')
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    report = verify_bundle(tampered)
    assert not report.ok and report.problem.seq == 42


def test_only_sealed_entries_are_exported_from_a_live_log(tmp_path):
    directory = tmp_path / "live"
    generate_signing_key(directory)
    with AuditLog.open(directory, checkpoint_every=1000, checkpoint_interval=3600) as log:
        for i in range(5):
            log.append("fix.in", "s", {"i": i})
        log.checkpoint()
        for i in range(5, 8):
            log.append("fix.in", "s", {"i": i})  # durable, not yet sealed
        summary = export_bundle(directory, tmp_path / "b")
    assert summary.count == 5
    assert verify_bundle(tmp_path / "b").ok


def test_progress_is_reported(log_dir, tmp_path):
    calls: list[tuple[int, int]] = []
    export_bundle(log_dir, tmp_path / "p", progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] == (log_dir / ENTRIES_FILE).stat().st_size
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_export_refuses_bad_requests(log_dir, full_bundle, tmp_path):
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(log_dir, full_bundle)
    with pytest.raises(ExportError, match="naive datetime"):
        export_bundle(log_dir, tmp_path / "x", datetime(2024, 5, 1))
    now = datetime.now(UTC)
    with pytest.raises(ExportError, match="empty time range"):
        export_bundle(log_dir, tmp_path / "x", now, now)
    assert not (tmp_path / "x").exists()


def test_export_refuses_a_tampered_log(tmp_path):
    directory = make_log(tmp_path / "log", 25)
    data = (directory / ENTRIES_FILE).read_bytes()
    (directory / ENTRIES_FILE).write_bytes(data.replace(b'"step":12', b'"step":13'))
    with pytest.raises(ExportError, match=r"line 13 \(seq 12\): payload_hash does not match"):
        export_bundle(directory, tmp_path / "b")
    # Outside the exported range the signed checkpoint roots still catch it.
    later = parse_ts(entry_times(directory)[22])
    with pytest.raises(ExportError, match="checkpoint 20: the log was altered"):
        export_bundle(directory, tmp_path / "b", later)
    assert not (tmp_path / "b").exists()


# -- tampering is detected and located --------------------------------------------------------


def _flip(lines, seq, old, new):
    lines[seq] = lines[seq].replace(old, new, 1)
    assert old != new
    return joined(lines)


TAMPER = {
    "payload byte": (lambda ls: _flip(ls, 17, b'"step":17', b'"step":71'), 17),
    "actor byte": (lambda ls: _flip(ls, 17, b"api:user1", b"api:user7"), 17),
    "own prev_hash": (lambda ls: _flip(ls, 17, b'"prev_hash":"', b'"prev_hash":"0'), 17),
    "ts before a checkpoint": (lambda ls: _flip(ls, 19, b".0", b".1"), 19),
    "ts of last entry": (lambda ls: _flip(ls, 59, b".0", b".1"), 59),
    "first entry": (lambda ls: _flip(ls, 0, b"api:user0", b"api:userX"), 0),
    "dropped line": (lambda ls: joined(ls[:17] + ls[18:]), 17),
    "inserted line": (lambda ls: joined(ls[:17] + [ls[10]] + ls[17:]), 17),
    "swapped lines": (lambda ls: joined(ls[:17] + [ls[18], ls[17]] + ls[19:]), 17),
    "truncated mid-line": (lambda ls: joined(ls[:40]) + ls[40][:30], 40),
    "truncated last lines": (lambda ls: joined(ls[:55]), 55),
    "emptied": (lambda ls: b"", 0),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_tampering_is_detected_at_the_first_bad_entry(full_bundle, tmp_path, case):
    change, seq = TAMPER[case]
    bundle = copy_bundle(full_bundle, tmp_path)
    rewrite_entries(bundle, change)
    report = verify_bundle(bundle)
    assert not report.ok
    assert report.problem.file == ENTRIES
    assert report.problem.seq == seq, str(report.problem)
    assert report.problem.line == seq + 1


def test_any_single_byte_flip_is_located(full_bundle, tmp_path):
    original = (full_bundle / ENTRIES).read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(original) if b == ord("\n")][:-1]
    bundle = copy_bundle(full_bundle, tmp_path)
    for offset in range(7, len(original), 997):
        data = bytearray(original)
        data[offset] ^= 0x01
        (bundle / ENTRIES).write_bytes(bytes(data))
        report = verify_bundle(bundle)
        seq = max(i for i, start in enumerate(starts) if start <= offset)
        assert not report.ok, offset
        assert report.problem.seq == seq, (offset, str(report.problem))


def test_tampered_checkpoint_manifest_and_proofs(full_bundle, tmp_path):
    bundle = copy_bundle(full_bundle, tmp_path)
    data = (bundle / CHECKPOINTS).read_bytes().split(b"\n")
    data[2] = data[2].replace(b'"size":30', b'"size":31')
    (bundle / CHECKPOINTS).write_bytes(b"\n".join(data))
    report = verify_bundle(bundle)
    assert (report.problem.file, report.problem.line) == (CHECKPOINTS, 3)
    assert "does not verify" in report.problem.message

    bundle = copy_bundle(full_bundle, tmp_path / "m")
    manifest = (bundle / MANIFEST).read_bytes().replace(b'"count":60', b'"count":59')
    (bundle / MANIFEST).write_bytes(manifest)
    assert "manifest signature" in verify_bundle(bundle).problem.message

    bundle = copy_bundle(full_bundle, tmp_path / "p")
    (bundle / PROOFS).write_bytes((bundle / PROOFS).read_bytes().replace(b"null", b"nul", 1))
    assert verify_bundle(bundle).problem.file == PROOFS


def test_resigned_bundle_is_caught_by_checkpoints_and_key_pinning(full_bundle, tmp_path):
    good = verify_bundle(full_bundle)
    assert verify_bundle(full_bundle, expected_key_id=good.key_id).ok
    pinned = verify_bundle(full_bundle, expected_key_id="0" * 16)
    assert not pinned.ok and "expected 0000000000000000" in pinned.problem.message
    # Someone swaps in their own key and re-signs the manifest: the checkpoints were signed
    # with the log's key when the entries were written, so they no longer verify.
    bundle = copy_bundle(full_bundle, tmp_path)
    mallory = Ed25519PrivateKey.generate()
    (bundle / PUBLIC_KEY).write_bytes(public_key_pem(mallory.public_key()))
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    del manifest["sig"], manifest["key_id"]
    manifest["files"][PUBLIC_KEY] = {
        "bytes": len((bundle / PUBLIC_KEY).read_bytes()),
        "sha256": sha256((bundle / PUBLIC_KEY).read_bytes()).hexdigest(),
    }
    (bundle / MANIFEST).write_bytes(canonical_bytes(sign_document(mallory, manifest)))
    report = verify_bundle(bundle)
    assert (report.problem.file, report.problem.line) == (CHECKPOINTS, 1)
    assert "signed by key" in report.problem.message


# -- one export extends another ---------------------------------------------------------------


def test_later_full_export_extends_earlier_range(log_dir, full_bundle, tmp_path):
    times = entry_times(log_dir)
    early = tmp_path / "early"
    export_bundle(log_dir, early, None, parse_ts(times[25]))
    report = prove_extends(early, full_bundle)
    assert report.ok, report.message
    assert (report.old_size, report.new_size) == (30, 60)
    assert not prove_extends(full_bundle, early).ok


def test_disjoint_exports_need_an_embedded_consistency_proof(tmp_path):
    directory = make_log(tmp_path / "log", 30)
    export_bundle(directory, tmp_path / "old")
    with AuditLog.open(directory, clock=fake_clock(START + 10**9), checkpoint_every=10) as log:
        for i in range(30, 55):
            log.append("rfq.state", "api:user", {"rfq_id": "R-9", "step": i})
    cut = parse_ts(entry_times(directory)[40])
    export_bundle(directory, tmp_path / "plain", cut)
    plain = prove_extends(tmp_path / "old", tmp_path / "plain")
    assert not plain.ok and "extends=" in plain.message
    export_bundle(directory, tmp_path / "linked", cut, extends=tmp_path / "old")
    linked = prove_extends(tmp_path / "old", tmp_path / "linked")
    assert linked.ok and "consistency proof" in linked.message
    assert (linked.old_size, linked.new_size) == (30, 55)


def test_rewritten_history_does_not_extend(tmp_path):
    honest = make_log(tmp_path / "honest", 30)
    export_bundle(honest, tmp_path / "old")
    forked = tmp_path / "forked"
    forked.mkdir()
    for name in (PRIVATE_KEY_FILE, PUBLIC_KEY_FILE):
        shutil.copy2(honest / name, forked / name)
    make_log(forked, 20, key=False)  # same key, different entries
    with AuditLog.open(forked, clock=fake_clock(START + 10**9), checkpoint_every=10) as log:
        for i in range(20):
            log.append("rfq.state", "api:mallory", {"rfq_id": "R-0", "step": i})
    export_bundle(forked, tmp_path / "new")
    report = prove_extends(tmp_path / "old", tmp_path / "new")
    assert not report.ok and "history differs" in report.message
    with pytest.raises(ExportError, match="does not match this log's history"):
        export_bundle(forked, tmp_path / "new2", extends=tmp_path / "old")


# -- command functions ------------------------------------------------------------------------


def test_cli_functions(tmp_path, capsys):
    directory = tmp_path / "cli"
    assert cmd_keygen(directory) == 0
    assert "key id" in capsys.readouterr().out
    assert cmd_keygen(directory) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    make_log(directory, 12, key=False)
    out = tmp_path / "b.tar"
    assert cmd_export(directory, out, "2024-05-01", None) == 0
    captured = capsys.readouterr()
    assert "12 entries" in captured.out and "export:" in captured.err
    assert cmd_verify(out) == 0
    assert "OK" in capsys.readouterr().out
    assert cmd_export(directory, tmp_path / "c", "yesterday", None) == 1
    assert "needs a UTC offset" in capsys.readouterr().err
    assert cmd_extends(out, out) == 0
    capsys.readouterr()

    bundle = tmp_path / "dir"
    assert cmd_export(directory, bundle) == 0
    rewrite_entries(bundle, lambda ls: joined(ls[:3] + ls[4:]))
    assert cmd_verify(bundle) == 1
    err = capsys.readouterr().err
    assert "entries.jsonl line 4 (seq 3)" in err and "expected seq 3, found seq 4" in err


def test_parse_time_accepts_offsets_and_dates_only():
    assert parse_time("2024-05-01T11:30:00+02:00") == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T09:30:00Z") == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="UTC offset"):
        parse_time("2024-05-01T09:30:00")


@st.composite
def _damage(draw):
    name = draw(st.sampled_from([MANIFEST, ENTRIES, CHECKPOINTS, PROOFS, PUBLIC_KEY]))
    position = draw(st.floats(min_value=0, max_value=1, exclude_max=True))
    mask = draw(st.integers(min_value=1, max_value=255))
    return name, position, mask


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(damage=_damage())
def test_any_damaged_file_gives_a_verdict_never_a_crash(damage, full_bundle, tmp_path):
    name, position, mask = damage
    # hypothesis may run the same example twice (replay, shrinking): a fresh directory each time
    bundle = Path(tempfile.mkdtemp(dir=tmp_path, prefix="fuzz-")) / "bundle"
    shutil.copytree(full_bundle, bundle)
    data = bytearray((bundle / name).read_bytes())
    data[int(position * len(data))] ^= mask
    (bundle / name).write_bytes(bytes(data))
    report = verify_bundle(bundle)
    assert not report.ok
    assert report.problem is not None and report.problem.message
