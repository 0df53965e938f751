"""Compliance export: copy a time range of the log into a self-verifying bundle.

Only *sealed* entries are exported (those covered by a signed checkpoint; the running log
seals at least every second), so an export can run beside a live writer: it reads complete
lines up to the last checkpoint and never takes the writer's lock. The exporter refuses to
export a log that does not verify: every checkpoint up to the covering one is compared with
the Merkle root rebuilt from the file, and every exported entry is fully checked and chained.
The bundle layout and what its proof material means is described in :mod:`otc.audit.bundle`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.keys import load_signing_key
from gateway.audit.store import CHECKPOINTS_FILE, ENTRIES_FILE, iter_lines, read_checkpoints
from gateway.audit.verify import verify_bundle
from gateway.durable import fsync_dir
from otc.audit.bundle import (
    CHECKPOINTS,
    ENTRIES,
    MANIFEST,
    MANIFEST_TYPE,
    PROOFS,
    PUBLIC_KEY,
)
from otc.audit.canonical import CanonicalError, canonical_bytes, format_ts
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import GENESIS_PREV_HASH, Entry, EntryError, decode_entry, entry_ts
from otc.audit.merkle import MerkleTree
from otc.audit.signing import key_id, public_key_pem, sign_document

__all__ = ["ExportError", "ExportSummary", "ProgressFn", "export_bundle"]

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while ``entries.jsonl`` is read."""

_PROGRESS_STEP = 4 << 20


class ExportError(Exception):
    """The export cannot be made; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    first_seq: int
    count: int
    checkpoints: int
    tree_size: int  # size of the covering (final) checkpoint
    root: str
    key_id: str


def export_bundle(
    log_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    frm: datetime | None = None,
    to: datetime | None = None,
    progress: ProgressFn | None = None,
    *,
    extends: str | os.PathLike[str] | None = None,
) -> ExportSummary:
    """Export entries with ``frm <= ts < to`` (either bound may be None) to ``out_path``.

    ``out_path`` ending in ``.tar`` gives a single tar file, anything else a directory; it must
    not exist yet and appears atomically (built under a temporary name, then renamed).
    ``extends`` names an earlier bundle of the same log: its final checkpoint is checked against
    this log and a consistency proof to this bundle's final checkpoint is included, so
    :func:`gateway.audit.verify.prove_extends` works even when the ranges do not overlap.
    """
    directory = Path(log_dir)
    out = Path(out_path)
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new bundle name")
    try:
        frm_s = format_ts(frm) if frm is not None else None
        to_s = format_ts(to) if to is not None else None
    except CanonicalError as exc:
        raise ExportError(f"bad time range: {exc}") from None
    if frm_s is not None and to_s is not None and frm_s >= to_s:
        raise ExportError(f"empty time range: from {frm_s} is not before to {to_s}")
    key = load_signing_key(directory)
    public_key = key.public_key()
    checkpoints = read_checkpoints(directory / CHECKPOINTS_FILE)
    if not checkpoints:
        raise ExportError(
            f"{directory / CHECKPOINTS_FILE} has no signed checkpoint yet: nothing is sealed"
        )
    old = _old_checkpoint(extends, key_id(public_key)) if extends is not None else None

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(mode=0o700, parents=True)
    try:
        scan = _Scan(directory / ENTRIES_FILE, checkpoints, frm_s, to_s, progress)
        with (tmp / ENTRIES).open("wb") as out_entries:
            scan.run(out_entries)
            out_entries.flush()
            os.fsync(out_entries.fileno())
        summary = _write_rest(tmp, out, scan, checkpoints, key, frm_s, to_s, old)
        _publish(tmp, out)
        return summary
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _old_checkpoint(extends: str | os.PathLike[str], expected_key: str) -> Checkpoint:
    report = verify_bundle(extends, expected_key_id=expected_key)
    if not report.ok or report.final_checkpoint is None:
        raise ExportError(f"cannot extend {extends}: it does not verify: {report.problem}")
    return report.final_checkpoint


class _Scan:
    """One pass over entries.jsonl: builds the tree, checks it, copies the range."""

    def __init__(
        self,
        path: Path,
        checkpoints: list[Checkpoint],
        frm_s: str | None,
        to_s: str | None,
        progress: ProgressFn | None,
    ):
        self.path, self.frm_s, self.to_s, self.progress = path, frm_s, to_s, progress
        self.by_size = {c.size: c for c in checkpoints}
        self.sizes = [c.size for c in checkpoints]
        self.sealed = self.sizes[-1]
        self.tree = MerkleTree()
        self.first: int | None = None  # first exported seq (a)
        self.end: int | None = None  # one past the last exported seq (b)
        self.cover = self.sealed  # covering checkpoint size
        self.anchor: Entry | None = None
        self.successor: Entry | None = None
        self.last: Entry | None = None
        self.count = 0
        self.digest = sha256()
        self.out_bytes = 0

    def _decode(self, line: bytes, seq: int, prev: Entry | None) -> Entry:
        try:
            entry = decode_entry(line)
            if entry.seq != seq:
                raise EntryError(f"seq {entry.seq} where {seq} was expected")
            prev_hash = prev.entry_hash.hex() if prev else GENESIS_PREV_HASH
            if (prev is not None or seq == 0) and entry.prev_hash != prev_hash:
                raise EntryError("prev_hash does not match the previous entry's hash")
            if prev is not None and entry.ts < prev.ts:
                raise EntryError(f"ts {entry.ts} is earlier than the previous {prev.ts}")
        except EntryError as exc:
            raise ExportError(f"{self.path} line {seq + 1} (seq {seq}): {exc}") from None
        return entry

    def _close_range(self, end: int) -> None:
        self.end = end
        floor = min(end + 1, self.sealed)
        self.cover = next(size for size in self.sizes if size >= floor)

    def run(self, out: BinaryIO) -> None:
        total = self.path.stat().st_size
        done = reported = 0
        previous_line = b""
        tree = self.tree
        with self.path.open("rb") as f:
            for i, line in enumerate(iter_lines(f, self.sealed)):
                tree.append(sha256(b"\x00" + line).digest())
                done += len(line) + 1
                checkpoint = self.by_size.get(i + 1)
                if checkpoint is not None and tree.root() != checkpoint.root:
                    raise ExportError(
                        f"{self.path}: entries 0..{i} do not match the root signed in "
                        f"checkpoint {i + 1}: the log was altered"
                    )
                if self.progress is not None and done - reported >= _PROGRESS_STEP:
                    self.progress(done, total)
                    reported = done
                if self.end is not None:
                    if tree.size >= self.cover:
                        break
                    continue
                ts = entry_ts(line)
                if self.first is None:
                    if self.frm_s is not None and ts < self.frm_s:
                        previous_line = line
                        continue
                    self.first = i
                    if i > 0:
                        self.anchor = self._decode(previous_line, i - 1, None)
                    self.last = self.anchor
                if self.to_s is not None and ts >= self.to_s:
                    self.successor = self._decode(line, i, self.last)
                    self._close_range(i)
                    if tree.size >= self.cover:
                        break
                    continue
                entry = self._decode(line, i, self.last)
                out.write(line + b"\n")
                self.digest.update(line + b"\n")
                self.out_bytes += len(line) + 1
                self.count += 1
                self.last = entry
        if tree.size < (self.cover if self.end is not None else self.sealed):
            raise ExportError(
                f"{self.path} holds {tree.size} complete entries but checkpoint "
                f"{self.sealed} is signed: durable entries are missing"
            )
        if self.first is None:  # every sealed entry is before ``frm``
            self.first = self.sealed
            if self.sealed > 0:
                self.anchor = self._decode(previous_line, self.sealed - 1, None)
        if self.end is None:
            self._close_range(self.sealed)
        if self.progress is not None:
            self.progress(total, total)


def _file_record(data: bytes) -> dict[str, object]:
    return {"bytes": len(data), "sha256": sha256(data).hexdigest()}


def _write_rest(
    tmp: Path,
    out: Path,
    scan: _Scan,
    checkpoints: list[Checkpoint],
    key: Ed25519PrivateKey,
    frm_s: str | None,
    to_s: str | None,
    old: Checkpoint | None,
) -> ExportSummary:
    assert scan.first is not None and scan.end is not None
    first, end, cover, tree = scan.first, scan.end, scan.cover, scan.tree
    prefix_size = first - 1 if first > 0 else 0
    public_key = key.public_key()
    included = [c for c in checkpoints if prefix_size < c.size <= cover]
    for checkpoint in included:
        try:
            checkpoint.verify(public_key)
        except CheckpointError as exc:
            raise ExportError(f"{CHECKPOINTS_FILE}: {exc}") from None
    final = included[-1]
    suffix_begin = end + 1 if scan.successor is not None else end
    extends_doc = None
    if old is not None:
        if old.size > cover:
            raise ExportError(
                f"the earlier bundle ends at tree size {old.size}, after this export's {cover}"
            )
        if tree.root(old.size) != old.root:
            raise ExportError(
                f"the earlier bundle's checkpoint {old.size} does not match this log's history"
            )
        extends_doc = {
            "old_root": old.root.hex(),
            "old_size": old.size,
            "proof": [h.hex() for h in tree.consistency_proof(old.size, cover)],
        }
    proofs = {
        "anchor": scan.anchor.line.decode() if scan.anchor else None,
        "extends": extends_doc,
        "prefix": {
            "hashes": [h.hex() for h in tree.compact_range(0, prefix_size).hashes],
            "size": prefix_size,
        },
        "successor": scan.successor.line.decode() if scan.successor else None,
        "suffix": {
            "begin": suffix_begin,
            "end": cover,
            "hashes": [h.hex() for h in tree.compact_range(suffix_begin, cover).hashes],
        },
    }
    files = {
        CHECKPOINTS: b"".join(c.to_line() + b"\n" for c in included),
        PROOFS: canonical_bytes(proofs, "proofs") + b"\n",
        PUBLIC_KEY: public_key_pem(public_key),
    }
    for name, data in files.items():
        _write_file(tmp / name, data)
    records = {name: _file_record(data) for name, data in files.items()}
    records[ENTRIES] = {"bytes": scan.out_bytes, "sha256": scan.digest.hexdigest()}
    manifest = sign_document(
        key,
        {
            "checkpoints": len(included),
            "created": format_ts(datetime.now(UTC)),
            "files": records,
            "last_entry_hash": scan.last.entry_hash.hex() if scan.count and scan.last else None,
            "range": {"count": scan.count, "first_seq": first, "from": frm_s, "to": to_s},
            "tree": {"prefix_size": prefix_size, "root": final.root.hex(), "size": cover},
            "type": MANIFEST_TYPE,
        },
    )
    _write_file(tmp / MANIFEST, canonical_bytes(manifest, "manifest") + b"\n")
    return ExportSummary(
        path=out,
        first_seq=first,
        count=scan.count,
        checkpoints=len(included),
        tree_size=cover,
        root=final.root.hex(),
        key_id=manifest["key_id"],
    )


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished bundle into place in one rename (directory or tar)."""
    if out.suffix == ".tar":
        partial = out.parent / f".{out.name}.partial-{os.getpid()}.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in (MANIFEST, ENTRIES, CHECKPOINTS, PROOFS, PUBLIC_KEY):
                tar.add(tmp / name, arcname=name)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, out)
    else:
        os.rename(tmp, out)
    fsync_dir(out.parent)
