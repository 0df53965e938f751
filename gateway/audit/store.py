"""The audit directory on disk: file names, reading sealed data, crash recovery on open.

Layout of an audit data directory::

    entries.jsonl        one canonical entry per line, line i (0-based) is seq i
    checkpoints.jsonl    one signed checkpoint per line, sizes strictly increasing
    signing_key.pem      Ed25519 private key (0600)      } see gateway.audit.keys
    signing_key.pub.pem  public key                       }
    LOCK                 flock()ed by the one process that appends
    recovered/           torn tails cut off during recovery, kept for forensics
    tree/                the Merkle tree's levels, derived data (gateway.audit.tree_files)

Recovery trusts the last signed checkpoint for everything it covers (the rebuilt Merkle root
must equal the signed root, which authenticates every earlier line at once) and fully checks
every entry after it. A damaged *tail* (a line without its newline, or trailing lines that do
not decode) is what a crash during an unacknowledged write leaves: it is moved to
``recovered/`` and cut off. Damage followed by valid entries, or damage inside data a signed
checkpoint covers, is not a crash artefact and the log refuses to open.

With the tree kept in files, recovery does not re-hash history: it resumes from the leaves the
files hold (up to the signed checkpoint), hashes only the entries after them, and still compares
the root at the checkpoint with the signed one. Files that are missing, short or give another
root are rebuilt from the entries, as without them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.tree_files import TREE_DIR, FileLevels, entries_stamp, only_appended
from gateway.durable import fsync_dir
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import GENESIS_PREV_HASH, EntryError, decode_entry, entry_ts
from otc.audit.merkle import MerkleTree

__all__ = [
    "CHECKPOINTS_FILE",
    "ENTRIES_FILE",
    "LOCK_FILE",
    "RECOVERED_DIR",
    "LogCorruptError",
    "RecoveredLog",
    "iter_lines",
    "read_checkpoints",
    "recover",
]

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
LOCK_FILE = "LOCK"
RECOVERED_DIR = "recovered"

_log = logging.getLogger(__name__)


class LogCorruptError(Exception):
    """Durable audit data is damaged in a way a crash cannot explain; needs a human."""

    def __init__(self, path: Path, line: int | None, seq: int | None, problem: str):
        where = f"{path}" + (f" line {line}" if line is not None else "")
        where += f" (seq {seq})" if seq is not None else ""
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.seq, self.problem = path, line, seq, problem


@dataclass
class RecoveredLog:
    tree: MerkleTree
    entries_bytes: int
    last_hash: str  # hex entry hash of the last entry, or GENESIS_PREV_HASH
    last_ts: str | None
    checkpoint: Checkpoint | None
    checkpoints_bytes: int
    notes: list[str] = field(default_factory=list)
    reused: int = 0  # leaves taken from the tree files without hashing their entries
    hashed: int = 0  # entries hashed while opening
    levels: FileLevels | None = None  # the tree's files, when it keeps them there


def iter_lines(f: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """Complete lines (newline stripped) of a file, at most ``limit`` of them; a final line
    without its newline is a write in progress or a torn write and is never returned."""
    for count, raw in enumerate(f):
        if (limit is not None and count >= limit) or not raw.endswith(b"\n"):
            return
        yield raw[:-1]


def read_checkpoints(path: Path, public_key: Ed25519PublicKey | None = None) -> list[Checkpoint]:
    """All complete checkpoint lines of a (possibly live) log, parsed; with ``public_key`` every
    signature is verified. Raises :class:`LogCorruptError` naming the first bad line."""
    checkpoints: list[Checkpoint] = []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return checkpoints
    with f:
        for number, line in enumerate(iter_lines(f), start=1):
            try:
                checkpoint = Checkpoint.from_line(line)
                if public_key is not None:
                    checkpoint.verify(public_key)
            except CheckpointError as exc:
                raise LogCorruptError(path, number, None, str(exc)) from None
            if checkpoints and checkpoint.size <= checkpoints[-1].size:
                raise LogCorruptError(
                    path, number, None, f"checkpoint size {checkpoint.size} does not increase"
                )
            checkpoints.append(checkpoint)
    return checkpoints


def _cut_tail(path: Path, offset: int, notes: list[str]) -> None:
    """Move bytes from ``offset`` to the end of ``path`` into recovered/, then truncate."""
    size = path.stat().st_size
    if size <= offset:
        return
    with path.open("rb") as f:
        f.seek(offset)
        tail = f.read()
    keep_dir = path.parent / RECOVERED_DIR
    keep_dir.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    keep = keep_dir / f"{path.name}.{offset}.{stamp}.torn"
    fd = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, tail)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(keep_dir)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    notes.append(f"{path}: cut {len(tail)} torn bytes at offset {offset}, kept in {keep}")


def _scan_lines(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, line without newline, complete?) for every line from byte ``offset`` on,
    including a torn last one."""
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            complete = raw.endswith(b"\n")
            yield offset, (raw[:-1] if complete else raw), complete
            offset += len(raw)


def _recover_checkpoints(path: Path, public_key: Ed25519PublicKey, notes: list[str]):
    checkpoints: list[Checkpoint] = []
    good_end = 0
    bad: tuple[int, int, str] | None = None  # (offset, line number, problem)
    for number, (offset, line, complete) in enumerate(_scan_lines(path), start=1):
        problem = None if complete else "line has no newline (torn write)"
        if problem is None:
            try:
                checkpoint = Checkpoint.from_line(line)
                if checkpoints and checkpoint.size <= checkpoints[-1].size:
                    problem = f"checkpoint size {checkpoint.size} does not increase"
            except CheckpointError as exc:
                problem = str(exc)
        if problem is not None:
            bad = bad or (offset, number, problem)
            continue
        if bad is not None:
            raise LogCorruptError(
                path, bad[1], None, f"{bad[2]}, yet valid checkpoints follow: not a torn tail"
            )
        checkpoints.append(checkpoint)
        good_end = offset + len(line) + 1
    if checkpoints:
        try:
            checkpoints[-1].verify(public_key)
        except CheckpointError as exc:
            raise LogCorruptError(path, len(checkpoints), None, str(exc)) from None
    if bad is not None:
        _cut_tail(path, good_end, notes)
    return (checkpoints[-1] if checkpoints else None), good_end


class _TreeFilesWrong(Exception):
    """The tree files disagree with the entries or the signed root: rebuild them."""


def _line_start(path: Path, lines: int) -> tuple[int, int]:
    """(n, offset of line n) for ``n = min(lines, complete lines in the file)``, counting
    newlines without parsing: far cheaper than hashing what they delimit."""
    found, end, base = 0, 0, 0  # complete lines seen, the byte after the last one's newline
    with path.open("rb", buffering=0) as f:
        while found < lines:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            n = chunk.count(b"\n")
            if found + n < lines:
                if n:
                    found, end = found + n, base + chunk.rfind(b"\n") + 1
                base += len(chunk)
                continue
            pos = 0
            while found < lines:
                pos = chunk.index(b"\n", pos) + 1
                found += 1
            end = base + pos
    return found, end


def _read_line_before(path: Path, offset: int) -> bytes:
    """The complete line ending just before byte ``offset``."""
    with path.open("rb") as f:
        start = max(0, offset - 65536)
        while True:
            f.seek(start)
            data = f.read(offset - start)
            nl = data.rfind(b"\n", 0, len(data) - 1)
            if nl >= 0 or start == 0:
                return data[nl + 1 : -1]
            start = max(0, start - 65536 * 4)


def recover(
    directory: Path, public_key: Ed25519PublicKey, *, tree_files: bool = True
) -> RecoveredLog:
    """Check and repair the files of ``directory`` after any kind of stop; rebuild the tree,
    or with ``tree_files`` take it from ``tree/`` and hash only what the files lack."""
    notes: list[str] = []
    entries_path = directory / ENTRIES_FILE
    checkpoints_path = directory / CHECKPOINTS_FILE
    for path in (entries_path, checkpoints_path):
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            fsync_dir(directory)
    checkpoint, checkpoints_bytes = _recover_checkpoints(checkpoints_path, public_key, notes)
    if not tree_files:
        return _recover_entries(directory, checkpoint, checkpoints_bytes, notes, None, False)
    levels = FileLevels(directory / TREE_DIR)
    try:
        notes.extend(levels.notes)
        try:
            return _recover_entries(directory, checkpoint, checkpoints_bytes, notes, levels, True)
        except _TreeFilesWrong as exc:
            _log.warning("audit tree files in %s rebuilt: %s", levels.directory, exc)
            levels.truncate(0)
            return _recover_entries(directory, checkpoint, checkpoints_bytes, notes, levels, False)
    except BaseException:
        levels.close()
        raise


def _recover_entries(
    directory: Path,
    checkpoint: Checkpoint | None,
    checkpoints_bytes: int,
    notes: list[str],
    levels: FileLevels | None,
    resume: bool,
) -> RecoveredLog:
    entries_path = directory / ENTRIES_FILE
    sealed = checkpoint.size if checkpoint else 0
    prev = GENESIS_PREV_HASH
    last_ts: str | None = None
    good_end = 0
    last_sealed_line = b""
    reused = 0
    if levels is not None and resume:
        if levels.consistent_size() and not only_appended(levels.stamp, entries_path.stat()):
            raise _TreeFilesWrong(f"{entries_path} changed since the tree files were written")
        held = levels.consistent_size()
        reused, good_end = _line_start(entries_path, min(held, sealed))
        levels.truncate(reused)
        if held < sealed:
            _log.warning(
                "audit tree files in %s hold %d of the %d signed leaves: hashing the rest",
                levels.directory,
                held,
                sealed,
            )
        if reused:
            last_sealed_line = _read_line_before(entries_path, good_end)
            digest = sha256(b"\x00" + last_sealed_line).digest()
            if digest != levels.get(0, reused - 1):
                raise _TreeFilesWrong(f"leaf {reused - 1} is not the hash of entry {reused - 1}")
            prev, last_ts = digest.hex(), entry_ts(last_sealed_line)
    elif levels is not None:
        levels.truncate(0)
    tree = MerkleTree(levels)
    start = good_end
    hashed = 0
    flush_every = 1 << 16
    bad: tuple[int, int, str] | None = None  # (offset, seq, problem)
    for offset, line, complete in _scan_lines(entries_path, start):
        seq = tree.size
        if levels is not None and seq % flush_every == 0:
            levels.flush()
        if not complete:
            bad = bad or (offset, seq, "line has no newline (torn write)")
            continue
        if seq < sealed and bad is None:
            # Covered by the signed checkpoint: the root comparison below authenticates it.
            digest = sha256(b"\x00" + line).digest()
            hashed += 1
            tree.append(digest)
            good_end = offset + len(line) + 1
            last_sealed_line = line
            if seq == sealed - 1:
                prev, last_ts = digest.hex(), entry_ts(line)
            continue
        try:
            entry = decode_entry(line)
            if bad is None:
                if entry.seq != seq:
                    raise EntryError(f"seq {entry.seq} where {seq} was expected")
                if entry.prev_hash != prev:
                    raise EntryError("prev_hash does not match the previous entry's hash")
                if last_ts is not None and entry.ts < last_ts:
                    raise EntryError(f"ts {entry.ts} is earlier than the previous {last_ts}")
        except EntryError as exc:
            bad = bad or (offset, seq, str(exc))
            continue
        if bad is not None:
            raise LogCorruptError(
                entries_path,
                bad[1] + 1,
                bad[1],
                f"{bad[2]}; valid entries follow, so this is not a torn tail. Save a copy, then "
                f"truncate the file at byte {bad[0]} only if those entries were never acknowledged",
            )
        hashed += 1
        tree.append(entry.entry_hash)
        prev, last_ts = entry.entry_hash.hex(), entry.ts
        good_end = offset + len(line) + 1
    if tree.size < sealed:
        raise LogCorruptError(
            entries_path,
            tree.size + 1,
            tree.size,
            f"the log holds {tree.size} intact entries but checkpoint {sealed} is signed: "
            "durable entries are missing or damaged",
        )
    if checkpoint is not None:
        if tree.root(sealed) != checkpoint.root:
            if reused:
                raise _TreeFilesWrong(f"the root at size {sealed} is not the signed one")
            raise LogCorruptError(
                entries_path,
                None,
                None,
                f"entries 0..{sealed - 1} do not match the root signed in checkpoint {sealed}",
            )
        if tree.size == sealed and sealed:
            # Nothing after the checkpoint was decoded: take chain state from the last line.
            try:
                last = decode_entry(last_sealed_line)
            except EntryError as exc:
                raise LogCorruptError(entries_path, sealed, sealed - 1, str(exc)) from None
            prev, last_ts = last.entry_hash.hex(), last.ts
    if bad is not None:
        _cut_tail(entries_path, good_end, notes)
    if levels is not None:
        levels.flush()
        levels.write_stamp(entries_stamp(entries_path.stat()))
        _log.info(
            "audit log %s opened: %d tree leaves reused from files, %d entries hashed",
            directory,
            reused,
            hashed,
        )
    return RecoveredLog(
        tree=tree,
        entries_bytes=good_end,
        last_hash=prev,
        last_ts=last_ts,
        checkpoint=checkpoint,
        checkpoints_bytes=checkpoints_bytes,
        notes=notes,
        reused=reused,
        hashed=hashed,
        levels=levels,
    )
