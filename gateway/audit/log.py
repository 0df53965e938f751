"""AuditLog: the append-only, hash-chained, Merkle-checkpointed log and its group-commit writer.

Durability contract: :meth:`AuditLog.append` returns an :class:`AuditReceipt` only after the
entry's bytes were written and ``fdatasync``ed; :meth:`AuditLog.append_nowait` returns a
:class:`PendingAppend` whose ``wait()`` gives the same guarantee. A receipt is never handed
out for an entry that a crash (``kill -9``, power loss with an honest disk) can take away.

Producers (any number of threads) build the canonical line, chain it to the previous entry
and queue it under one lock; a single writer thread takes everything queued, writes it with
one ``write()`` and one ``fdatasync()`` (group commit), adds the leaf hashes to the in-memory
Merkle tree, wakes the waiters, and signs a checkpoint when 1,000 entries or 1 second have
passed since the last one (both configurable). Checkpoints are therefore only ever signed over
durable entries. Timestamps never go backwards: an entry's ``ts`` is the later of the clock and
the previous entry's ``ts``, so a time range of the log is a contiguous range of sequence
numbers.

Memory: the Merkle tree keeps every perfect-subtree hash in packed form, about 64 bytes per
entry (64 MB per million entries), so proofs for any past checkpoint are O(log n) lookups and
opening a log re-hashes its file once.

An I/O error in the writer (disk full, EIO, a file size limit) *interrupts* the log instead of
stopping it: the batch that could not be made durable is held in memory with everything appended
after it (appends go on; receipts wait), :attr:`AuditLog.interruption` names the error (the
gateway's admission gate refuses new business while it does), and the writer retries every
``retry_interval`` seconds. A retry first cuts the entries file back to the end of the last
durable entry (a failed write may have left part of a line), then writes the held batch and
fsyncs it. Once that succeeds the held entries follow in order, sequence numbers continue with
no gap, and the writer appends an ``audit.interrupted`` entry (``from_seq``: the first entry that
was held, ``since``/``until``, ``seconds``, ``error``), so the trail itself says it was
interrupted and an export carries it (``fixbridge audit verify`` lists it). Checkpoint writes are
retried the same way. Only a close during an interruption, or an error that is not an I/O error,
fail-stops the log: waiters and later appends then get :class:`AuditLogFailed`. Reopening runs
recovery (see :mod:`gateway.audit.store`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.keys import load_signing_key
from gateway.audit.store import CHECKPOINTS_FILE, ENTRIES_FILE, LOCK_FILE, RecoveredLog, recover
from gateway.audit.tree_files import entries_stamp
from otc.audit.canonical import CanonicalError, canonical_pair, parse_ts, ts_from_micros
from otc.audit.checkpoint import Checkpoint, sign_checkpoint
from otc.audit.entry import encode_entry, entry_head
from otc.audit.merkle import MerkleTree
from otc.audit.signing import key_id

__all__ = [
    "AuditLog",
    "AuditLogClosed",
    "AuditLogError",
    "AuditLogFailed",
    "AuditLogLocked",
    "AuditReceipt",
    "PendingAppend",
]

_log = logging.getLogger("otc.audit")  # the name it had in otc/, which log filters may use
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AuditLogError(Exception):
    """Base class of the log's own errors."""


class AuditLogClosed(AuditLogError):
    pass


class AuditLogFailed(AuditLogError):
    """The writer hit an I/O error; nothing after the last receipt is durable."""


class AuditLogLocked(AuditLogError):
    """Another process has this audit directory open for appending."""


@dataclass(frozen=True, slots=True)
class AuditReceipt:
    """Proof of acceptance: the entry with this ``seq`` and ``entry_hash`` is durable."""

    seq: int
    ts: str
    entry_hash: str  # hex RFC 6962 leaf hash of the entry line


class PendingAppend:
    """An appended entry whose durability can be awaited with :meth:`wait`."""

    __slots__ = ("_committed", "_log", "entry_hash", "seq", "ts")

    def __init__(
        self, log: AuditLog, seq: int, ts: str, entry_hash: bytes, committed: threading.Event
    ):
        self._log, self.seq, self.ts, self.entry_hash = log, seq, ts, entry_hash
        self._committed = committed

    @property
    def durable(self) -> bool:
        return self._log._durable > self.seq

    def wait(self, timeout: float | None = None) -> AuditReceipt:
        """Block until the entry is durable; raises ``TimeoutError`` or :class:`AuditLogFailed`."""
        log = self._log
        if log._durable <= self.seq:
            # One event per group commit: only this batch's waiters wake when it is durable.
            if not self._committed.wait(timeout):
                raise TimeoutError(f"audit entry {self.seq} not durable after {timeout} s")
            if log._durable <= self.seq:
                log._check_open()
                raise AuditLogClosed(f"audit log {log.directory} closed before entry was durable")
        return AuditReceipt(self.seq, self.ts, self.entry_hash.hex())


def _default_clock() -> int:
    return time.time_ns() // 1000


class AuditLog:
    """Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        directory: Path,
        key: Ed25519PrivateKey,
        recovered: RecoveredLog,
        lock_fd: int,
        *,
        checkpoint_interval: float,
        checkpoint_every: int,
        max_pending: int,
        clock: Callable[[], int],
        retry_interval: float = 0.5,
        write: Callable[[int, bytes], None] | None = None,
    ):
        if checkpoint_interval <= 0 or checkpoint_every <= 0 or max_pending <= 0:
            raise ValueError("checkpoint_interval, checkpoint_every and max_pending must be > 0")
        self.directory = directory
        self._key = key
        self.public_key: Ed25519PublicKey = key.public_key()
        self.key_id = key_id(self.public_key)
        self._lock_fd = lock_fd
        self._interval = checkpoint_interval
        self._every = checkpoint_every
        self._max_pending = max_pending
        self._clock = clock

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # writer waits for work
        self._durable_cv = threading.Condition(self._lock)  # waiters for durability/checkpoints
        self._space = threading.Condition(self._lock)  # producers waiting for queue space
        self._tree_lock = threading.Lock()
        self._tree: MerkleTree = recovered.tree
        self._levels = recovered.levels  # the tree's files, flushed with each group commit
        self.opened = {"reused": recovered.reused, "hashed": recovered.hashed}

        size = recovered.tree.size
        self._next_seq = size
        self._durable = size
        self._prev_hex = recovered.last_hash
        self._last_us = _micros(recovered.last_ts) if recovered.last_ts else 0
        self._last_ts = recovered.last_ts or ""
        self._pending: list[bytes] = []
        self._pending_hashes: list[bytes] = []
        self._pending_event = threading.Event()
        self._checkpoint: Checkpoint | None = recovered.checkpoint
        self._checkpoint_target = 0
        self._last_checkpoint_at = time.monotonic()
        self._closing = False
        self._closed = False
        self._failed: BaseException | None = None
        self._interruption: OSError | None = None  # the I/O error being retried, if any
        self._retry_interval = retry_interval
        # how bytes reach the files: ``_write_all``, or a test's fault injection around it
        self._write = write or _write_all
        self._entries_end = recovered.entries_bytes  # end of the last durable entry
        self._checkpoints_end = recovered.checkpoints_bytes
        self._retry_wait = threading.Event()  # set by close(): stop waiting between retries
        self.stats = {"batches": 0, "entries": 0, "checkpoints": 0, "max_batch": 0}

        flags = os.O_WRONLY | os.O_APPEND
        self._entries_fd = os.open(directory / ENTRIES_FILE, flags)
        self._checkpoints_fd = os.open(directory / CHECKPOINTS_FILE, flags)
        if size > (self._checkpoint.size if self._checkpoint else 0):
            os.fsync(self._entries_fd)  # a crashed writer may have left them in the page cache
            self._seal()
        self._writer = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._writer.start()

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        checkpoint_interval: float = 1.0,
        checkpoint_every: int = 1000,
        max_pending: int = 100_000,
        clock: Callable[[], int] = _default_clock,
        retry_interval: float = 0.5,
        write: Callable[[int, bytes], None] | None = None,
        tree_files: bool = True,
    ) -> AuditLog:
        """Open (creating if needed) the audit log in ``data_dir``, recovering after a crash.

        The signing key must exist (``fixbridge audit keygen``). ``clock`` returns microseconds
        since the Unix epoch. Raises :class:`AuditLogLocked` if another process has it open.
        ``retry_interval``: seconds between attempts while writes fail. ``write(fd, data)``:
        writes all of ``data`` to the file (tests inject I/O errors here). ``tree_files``: keep
        the Merkle tree in ``tree/`` (off the heap, and reopening hashes only new entries)
        rather than in memory.
        """
        directory = Path(data_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = load_signing_key(directory)
        lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(lock_fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(lock_fd)
            raise AuditLogLocked(
                f"audit log {directory} is already open in another process (pid {holder})"
            ) from None
        try:
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
            recovered = recover(directory, key.public_key(), tree_files=tree_files)
            for note in recovered.notes:
                _log.warning("audit recovery: %s", note)
            return cls(
                directory,
                key,
                recovered,
                lock_fd,
                checkpoint_interval=checkpoint_interval,
                checkpoint_every=checkpoint_every,
                max_pending=max_pending,
                clock=clock,
                retry_interval=retry_interval,
                write=write,
            )
        except BaseException:
            os.close(lock_fd)
            raise

    # -- producers ---------------------------------------------------------------------------

    def append(self, kind: str, actor: str, payload: Mapping[str, Any]) -> AuditReceipt:
        """Append one entry and return once it is durable (group-committed with others)."""
        return self.append_nowait(kind, actor, payload).wait()

    def append_nowait(
        self, kind: str, actor: str, payload: Mapping[str, Any], *, _writer: bool = False
    ) -> PendingAppend:
        """Append one entry; its order and hash are fixed now, durability comes with ``wait()``.

        Raises ``EntryError``/``CanonicalError`` (both ``ValueError``) for a bad kind, actor or
        payload, before anything is recorded. Blocks while ``max_pending`` entries are queued.
        """
        head = entry_head(kind, actor)
        if not isinstance(payload, Mapping):
            raise CanonicalError(f"payload must be a mapping, not {type(payload).__name__}")
        payload_json, payload_bytes = canonical_pair(payload)
        payload_hash = sha256(payload_bytes).hexdigest()
        now = self._clock()
        with self._lock:
            self._check_open()
            while len(self._pending) >= self._max_pending and not _writer:
                self._space.wait()
                self._check_open()
            if now > self._last_us:
                self._last_us = now
                self._last_ts = ts_from_micros(now)
            seq = self._next_seq
            ts = self._last_ts
            line = encode_entry(seq, ts, self._prev_hex, head, payload_json, payload_hash)
            digest = sha256(b"\x00" + line).digest()
            self._prev_hex = digest.hex()
            self._pending.append(line)
            self._pending_hashes.append(digest)
            self._next_seq = seq + 1
            if len(self._pending) == 1:
                self._wake.notify()
            committed = self._pending_event
        return PendingAppend(self, seq, ts, digest, committed)

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every entry appended before this call is durable; return the log size."""
        with self._lock:
            target = self._next_seq
        self._wait_durable(target, timeout)
        return target

    def checkpoint(self, timeout: float | None = None) -> Checkpoint:
        """Seal everything appended so far under a signed checkpoint now and return it."""
        with self._lock:
            target = self._next_seq
            if target == 0:
                raise AuditLogError("the log is empty: there is nothing to checkpoint")
            if self._checkpoint is None or self._checkpoint.size < target:
                self._checkpoint_target = max(self._checkpoint_target, target)
                self._wake.notify()
            self._wait_locked(
                lambda: self._checkpoint is not None and self._checkpoint.size >= target, timeout
            )
            assert self._checkpoint is not None
            return self._checkpoint

    # -- readers -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Entries appended (durable or queued)."""
        return self._next_seq

    @property
    def durable_size(self) -> int:
        return self._durable

    @property
    def latest_checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    @property
    def failure(self) -> BaseException | None:
        """The error that fail-stopped the writer, or None."""
        return self._failed

    @property
    def interruption(self) -> OSError | None:
        """The I/O error the writer is retrying after (entries are held, not durable), or
        None while entries are made durable as they come."""
        return self._interruption

    @property
    def writing(self) -> bool:
        """The writer thread runs (False once closed or failed)."""
        return self._writer.is_alive()

    @property
    def entries_path(self) -> Path:
        return self.directory / ENTRIES_FILE

    def root(self, size: int) -> bytes:
        with self._tree_lock:
            return self._tree.root(size)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        with self._tree_lock:
            return self._tree.inclusion_proof(seq, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self._tree_lock:
            return self._tree.consistency_proof(old_size, new_size)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Make everything durable, sign a final checkpoint and release the directory."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            self._wake.notify()
            self._space.notify_all()
        self._retry_wait.set()
        self._writer.join()
        with self._lock:
            self._closed = True
        os.close(self._entries_fd)
        os.close(self._checkpoints_fd)
        if self._levels is not None:
            with self._tree_lock:
                try:
                    self._levels.close()
                except OSError as exc:  # rebuilt from the entries on the next open
                    _log.warning("audit tree files not written on close: %s", exc)
        os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._failed is not None:
            raise AuditLogFailed(f"audit log {self.directory} failed: {self._failed}")
        if self._closing:
            raise AuditLogClosed(f"audit log {self.directory} is closed")

    def _wait_durable(self, target: int, timeout: float | None) -> None:
        if self._durable >= target:
            return
        with self._lock:
            self._wait_locked(lambda: self._durable >= target, timeout)

    def _wait_locked(self, done: Callable[[], bool], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if self._failed is not None:
                raise AuditLogFailed(f"audit log {self.directory} failed: {self._failed}")
            if self._closed or (self._closing and not self._writer.is_alive()):
                raise AuditLogClosed(f"audit log {self.directory} closed before this completed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("timed out waiting for the audit log")
            self._durable_cv.wait(remaining)

    def _checkpoint_due(self) -> bool:
        sealed = self._checkpoint.size if self._checkpoint else 0
        unsealed = self._durable - sealed
        if unsealed <= 0:
            return False
        return (
            unsealed >= self._every
            or self._durable >= self._checkpoint_target > sealed
            or time.monotonic() - self._last_checkpoint_at >= self._interval
        )

    def _idle_timeout(self) -> float | None:
        sealed = self._checkpoint.size if self._checkpoint else 0
        if self._durable <= sealed:
            return None
        return max(0.0, self._last_checkpoint_at + self._interval - time.monotonic())

    def _run(self) -> None:
        committed = self._pending_event
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing and not self._checkpoint_due():
                        self._wake.wait(self._idle_timeout())
                    batch, hashes = self._pending, self._pending_hashes
                    committed = self._pending_event
                    if batch:
                        self._pending, self._pending_hashes = [], []
                        self._pending_event = threading.Event()
                        self._space.notify_all()
                    closing = self._closing
                if batch:
                    self._commit(batch, hashes)
                    committed.set()
                with self._lock:
                    due = self._checkpoint_due() or (closing and not batch and self._unsealed())
                if due:
                    self._seal()
                if closing and not batch:
                    return
        except BaseException as exc:  # fail-stop: nobody may believe later entries are durable
            _log.critical("audit writer failed; the log is stopped: %r", exc)
            with self._lock:
                self._failed = exc
                self._durable_cv.notify_all()
                self._space.notify_all()
                committed.set()
                self._pending_event.set()

    def _unsealed(self) -> bool:
        return self._durable > (self._checkpoint.size if self._checkpoint else 0)

    def _commit(self, batch: list[bytes], hashes: list[bytes]) -> None:
        data = b"\n".join(batch) + b"\n"

        def write(retrying: bool) -> None:
            fd = self._entries_fd
            if retrying:  # a failed write may have left part of a line: cut back to the end
                os.ftruncate(fd, self._entries_end)
            self._write(fd, data)
            os.fdatasync(fd)

        self._durably(write, self._durable)
        self._entries_end += len(data)
        with self._tree_lock:
            append = self._tree.append
            for digest in hashes:
                append(digest)
            if self._levels is not None:
                try:
                    self._levels.flush()
                    self._levels.write_stamp(entries_stamp(os.fstat(self._entries_fd)))
                except OSError as exc:  # derived data: kept buffered, written next time
                    _log.warning("audit tree files not written (will retry): %s", exc)
        with self._lock:
            self._durable += len(batch)
            self.stats["batches"] += 1
            self.stats["entries"] += len(batch)
            self.stats["max_batch"] = max(self.stats["max_batch"], len(batch))
            self._durable_cv.notify_all()

    def _seal(self) -> None:
        """Sign and persist a checkpoint over every durable entry (writer thread or open())."""
        with self._tree_lock:
            size, root = self._tree.size, self._tree.root()
        with self._lock:
            ts = ts_from_micros(max(self._clock(), self._last_us))
        checkpoint = sign_checkpoint(self._key, size, root, ts)
        data = checkpoint.to_line() + b"\n"

        def write(retrying: bool) -> None:
            fd = self._checkpoints_fd
            if retrying:
                os.ftruncate(fd, self._checkpoints_end)
            self._write(fd, data)
            os.fdatasync(fd)

        self._durably(write, size)
        self._checkpoints_end += len(data)
        with self._lock:
            self._checkpoint = checkpoint
            self._last_checkpoint_at = time.monotonic()
            self.stats["checkpoints"] += 1
            self._durable_cv.notify_all()

    def _durably(self, write: Callable[[bool], None], from_seq: int) -> None:
        """Run ``write`` (a write and its fsync); on an I/O error, hold on and retry it every
        ``retry_interval`` seconds until it succeeds, then record the interruption in the log.
        While the log closes, it gives up after a few more attempts (fail-stop)."""
        try:
            write(False)
            return
        except OSError as exc:
            first = exc
        since = ts_from_micros(self._clock())
        began = time.monotonic()
        _log.critical(
            "audit trail cannot make entries durable from seq %d (%s): holding them in memory "
            "and retrying every %g s",
            from_seq,
            first,
            self._retry_interval,
        )
        with self._lock:
            self._interruption = first
            self._durable_cv.notify_all()
        attempts = 0
        while True:
            if self._closing and attempts >= 3:
                raise first  # the cause; the later attempts failed too
            self._retry_wait.wait(self._retry_interval)
            attempts += 1
            try:
                write(True)
                break
            except OSError as exc:
                if attempts % 20 == 0:
                    _log.error("audit write still failing after %d attempts: %s", attempts, exc)
        seconds = time.monotonic() - began
        with self._lock:
            self._interruption = None
        _log.warning(
            "audit trail durable again after %.1f s (%d attempts); entries from seq %d written",
            seconds,
            attempts,
            from_seq,
        )
        try:
            self._record_interruption(from_seq, since, seconds, first)
        except AuditLogError as exc:  # closing: the log says so in its own way
            _log.warning("audit interruption not recorded: %s", exc)

    def _record_interruption(
        self, from_seq: int, since: str, seconds: float, first: OSError
    ) -> None:
        self.append_nowait(
            "audit.interrupted",
            "gateway",
            {
                "from_seq": from_seq,
                "since": since,
                "until": ts_from_micros(self._clock()),
                "seconds": f"{seconds:.3f}",
                "error": str(first),
            },
            _writer=True,
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _micros(ts: str) -> int:
    return (parse_ts(ts) - _EPOCH) // timedelta(microseconds=1)
