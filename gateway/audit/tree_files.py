"""The audit log's Merkle tree levels kept in files, so the tree costs no heap per entry.

Layout (inside the audit directory)::

    tree/level-00.bin   the leaf hashes, 32 bytes each, in seq order
    tree/level-01.bin   hashes of aligned pairs, and so on up
    tree/STAMP          size, mtime and inode of entries.jsonl when the levels were last written

The files are derived data: the entries file is the authority and recovery checks the files
against the last signed checkpoint, rebuilding them when they are missing, short or wrong. So
they are written with each group commit but never fsynced. The stamp lets recovery trust them
only for an entries file nothing but appends has changed since (an edit changes its mtime). In
memory stay only the hashes not yet written and the last hash of every level (the frontier:
what the next append combines with).
"""

from __future__ import annotations

import os
from pathlib import Path

from otc.audit.merkle import HASH_SIZE

__all__ = ["TREE_DIR", "FileLevels", "entries_stamp", "only_appended"]

TREE_DIR = "tree"
STAMP_FILE = "STAMP"
_STAMP_WIDTH = 64


def entries_stamp(st: os.stat_result) -> bytes:
    """What identifies one state of the entries file: its size, mtime and inode."""
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}".encode().ljust(_STAMP_WIDTH)


def only_appended(stamp: bytes, st: os.stat_result) -> bool:
    """Whether the entries file is the one stamped, unchanged or grown: what a writer killed
    between an entries write and its stamp leaves. Rewritten in place at the same or a smaller
    size, or replaced, it is not."""
    try:
        size, mtime_ns, ino = (int(part) for part in stamp.split())
    except ValueError:
        return False
    if ino != st.st_ino:
        return False
    return (size, mtime_ns) == (st.st_size, st.st_mtime_ns) or st.st_size > size


def _level_name(level: int) -> str:
    return f"level-{level:02d}.bin"


class FileLevels:
    """A :class:`otc.audit.merkle.LevelStore` with one append-only file per level."""

    def __init__(self, directory: Path):
        directory.mkdir(mode=0o700, exist_ok=True)
        self.directory = directory
        self._fds: list[int] = []
        self._written: list[int] = []  # hashes in each file
        self._buffers: list[bytearray] = []
        self._last: list[bytes] = []
        self.notes: list[str] = []
        self._stamp_fd = os.open(directory / STAMP_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self.stamp = os.pread(self._stamp_fd, _STAMP_WIDTH, 0)
        level = 0
        while (directory / _level_name(level)).exists():
            self._open_level(level)
            level += 1

    def _open_level(self, level: int, new: bool = False) -> None:
        path = self.directory / _level_name(level)
        # a new level starts empty, whatever a file left above a missing one held
        fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if new else 0), 0o600)
        size = os.fstat(fd).st_size
        whole = size - size % HASH_SIZE
        if whole != size:  # a write cut short: drop the partial hash
            os.ftruncate(fd, whole)
            self.notes.append(f"{path}: dropped {size - whole} bytes of a partial hash")
        count = whole // HASH_SIZE
        self._fds.append(fd)
        self._written.append(count)
        self._buffers.append(bytearray())
        self._last.append(os.pread(fd, HASH_SIZE, whole - HASH_SIZE) if count else b"")

    # -- LevelStore --------------------------------------------------------------------------

    def append(self, level: int, node: bytes) -> None:
        if level == len(self._fds):
            self._open_level(level, new=True)
        self._buffers[level] += node
        self._last[level] = node

    def get(self, level: int, index: int) -> bytes:
        written = self._written[level]
        if index >= written:
            i = (index - written) * HASH_SIZE
            return bytes(self._buffers[level][i : i + HASH_SIZE])
        if index == written - 1 and not self._buffers[level]:
            return self._last[level]
        node = os.pread(self._fds[level], HASH_SIZE, index * HASH_SIZE)
        if len(node) != HASH_SIZE:
            raise OSError(f"{self.directory / _level_name(level)}: hash {index} is missing")
        return node

    def count(self, level: int) -> int:
        if level >= len(self._fds):
            return 0
        return self._written[level] + len(self._buffers[level]) // HASH_SIZE

    # -- the edge's part ---------------------------------------------------------------------

    def consistent_size(self) -> int:
        """The largest tree size every level fully holds (level k needs ``size >> k`` hashes)."""
        size = self.count(0)
        level = 1
        while size >> level:
            size = min(size, ((self.count(level) + 1) << level) - 1)
            level += 1
        return size

    def truncate(self, size: int) -> None:
        """Keep exactly the hashes of a tree of ``size`` leaves (``size <= consistent_size()``)."""
        self.flush()
        for level, fd in enumerate(self._fds):
            keep = size >> level
            if keep < self._written[level]:
                os.ftruncate(fd, keep * HASH_SIZE)
                self._written[level] = keep
            self._last[level] = os.pread(fd, HASH_SIZE, (keep - 1) * HASH_SIZE) if keep else b""

    def flush(self) -> None:
        """Write the buffered hashes (no fsync: the files are rebuilt if a crash loses them).
        On an error the hashes stay buffered and the next flush tries again."""
        for level, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            fd, written = self._fds[level], self._written[level]
            try:
                view = memoryview(buffer)
                offset = written * HASH_SIZE
                while view:
                    n = os.pwrite(fd, view, offset)
                    view, offset = view[n:], offset + n
            except OSError:
                os.ftruncate(fd, written * HASH_SIZE)
                raise
            self._written[level] = written + len(buffer) // HASH_SIZE
            self._buffers[level] = bytearray()

    def write_stamp(self, stamp: bytes) -> None:
        """Record the entries file state the (flushed) levels describe."""
        os.pwrite(self._stamp_fd, stamp, 0)
        self.stamp = stamp

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for fd in self._fds:
                os.close(fd)
            os.close(self._stamp_fd)
            self._fds = []
