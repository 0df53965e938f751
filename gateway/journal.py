"""The negotiation journal: the engine's inputs, in order, so a restart rebuilds open business.

The negotiation engine is deterministic: the same calls with the same ``now`` give the same state,
events and ids. :class:`gateway.negotiation.NegotiationService` records every engine call that
changed something and writes the record *before* acting on the call's events; a start-up replays
the journal through a fresh engine with nothing sent, then ticks at the real time.

**Files.** ``<data_dir>/journal/seg-NNNNNNNN.jsonl``, one JSON object a line::

    {"seq": 7, "boot": "20261124093000-", "kind": "handle",
     "at": "2026-11-24T09:31:02.123456+00:00", "rfqs": ["20261124093000-RFQ-00000003"],
     "payload": {"command": {"type": "SubmitQuote", "fields": {...}}, "ids": [["Q", "..."]]}}

* ``boot``: ``{"id_prefix", "negotiation", "routing"}``: each start writes one; the rows after it
  ran under that configuration and id prefix (a compaction copies it along with them).
* ``handle``: an applied command (:mod:`otc.negotiation.command_json`) and the ids the engine gave
  out while applying it: a replay hands back exactly these, so it needs no row it skips. A mass
  quote (``SubmitQuotes``) also records ``entry_ids``, how many ids each entry asked for: the row
  lives while any RFQ it quoted is open, and a replay leaves out the entries on RFQs that have
  left (their rows are not replayed) together with their ids.
* ``tick``: timers that fired at ``at`` (the timers a refused command fired are journalled as the
  tick they were: a refusal changes nothing else).
* ``guard``: one desk's market maker protection state (``{"desk_id", "guard"}``) after a call
  changed it: a replay puts it back as it was (it counts no fills of its own), and only each
  desk's latest guard row is kept.
* ``archived``: the RFQ in ``rfqs`` left the engine (finished and archived): rows that touched
  only RFQs that have left are not replayed.

``rfqs`` are the RFQs the call's events touched. Calls that changed nothing are not written, nor
timers that fired without an event (a later call, or the start-up tick, fires them again with the
same effect).

**Durability.** :meth:`NegotiationJournal.flush` (called before a call's events reach any sink)
hands the rows to the kernel with ``write()``: from then on they survive the process being killed,
as QuickFIX's own store of what clients were told does. A background thread ``fsync``\\ s every few
milliseconds (group commit): acting on a call does not wait for its fsync, but once a write or an
fsync fails the journal is failed and the service takes nothing more.

**Compaction.** At every start, and whenever the segment reaches ``segment_bytes`` (and four
times what open business needs, so copying never dominates), a new segment is written with only
the rows open RFQs need, each after the boot row it ran under; the older segments are deleted
once it is fsynced. A crash in between leaves both, which read the same (a row's copy is read
once). So a start-up replays only the rows of the business open when the gateway stopped; what
finished since the last compaction it reads, but skips (by its ``archived`` row).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.durable import fsync_dir
from otc.negotiation import events as ev
from otc.negotiation.ids import IdKind

log = logging.getLogger("fixbridge.journal")
BOOT, HANDLE, TICK, ARCHIVED, GUARD = "boot", "handle", "tick", "archived", "guard"
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode  # built once
SEGMENT_PREFIX, SEGMENT_SUFFIX = "seg-", ".jsonl"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    boot: str
    kind: str
    at: datetime
    rfqs: tuple[str, ...]
    payload: dict[str, Any]
    line: bytes  # as written, for copying at compaction


class JournalFailed(RuntimeError):
    """The journal could not be written: nothing more may be acted on (restart to recover)."""


class JournalCorrupt(RuntimeError):
    """A journal file holds a line that is not a journal row (other than a torn last line)."""


class ReplayDiverged(RuntimeError):
    """A journal row did not replay as it ran (the engine or its configuration changed)."""


class JournalIds:
    """The engine's id factory (``otc.negotiation.ids.IdFactory``). Live, it renders
    ``{prefix}{kind}-{n:08d}`` and remembers what it gave out for the current call; during a
    replay it hands back the ids the journal recorded for the row, in order."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.given: list[list[str]] = []
        self._replay: list[list[str]] | None = None
        self._next = 0

    def __call__(self, kind: IdKind, n: int) -> str:
        if self._replay is None:
            value = f"{self.prefix}{kind.value}-{n:08d}"
            self.given.append([kind.value, value])
            return value
        if self._next >= len(self._replay):
            raise ReplayDiverged(f"the replay asked for one more {kind.value} id than recorded")
        recorded_kind, value = self._replay[self._next]
        if recorded_kind != kind.value:
            raise ReplayDiverged(f"the replay asked for a {kind.value} id; {value} was recorded")
        self._next += 1
        return value

    def replaying(self, recorded: list[list[str]]) -> None:
        self._replay, self._next = recorded, 0

    def replayed(self) -> None:
        """End of a row's replay: every recorded id must have been asked for."""
        recorded, used = self._replay or [], self._next
        self._replay, self._next = None, 0
        if used != len(recorded):
            raise ReplayDiverged(f"the replay used {used} of the {len(recorded)} recorded ids")


def touched(events: Iterable[ev.Event]) -> set[str]:
    """The RFQs a batch of events changed (a mass quote's refused entries changed nothing: a
    refusal keeps no row alive)."""
    return {
        rfq_id
        for e in events
        if (rfq_id := ev.rfq_id_of(e)) is not None and not isinstance(e, ev.DeskActionRejected)
    }


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))


def _segment_no(path: Path) -> int:
    return int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)])


def read_rows(directory: Path) -> list[JournalEntry]:
    """Every row of the journal in ``directory``, in order (copies left by an interrupted
    compaction read once). A segment's torn last line -- a write a power cut stopped short; a
    segment is only ever appended to by the boot that created it -- is left out; any other
    line that is not a row raises :class:`JournalCorrupt`."""
    rows: list[JournalEntry] = []
    last_seq = 0
    for path in _segments(directory):
        data = path.read_bytes()
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                obj = json.loads(line)
                entry = JournalEntry(
                    obj["seq"],
                    obj["boot"],
                    obj["kind"],
                    datetime.fromisoformat(obj["at"]),
                    tuple(obj["rfqs"]),
                    obj["payload"],
                    line + b"\n",
                )
            except (ValueError, KeyError, TypeError) as exc:
                if i == len(lines) - 1:
                    log.warning("negotiation journal: %s ends with a torn line; ignored", path)
                    break
                raise JournalCorrupt(f"{path}: line {i + 1} is not a journal row: {exc}") from None
            if entry.seq <= last_seq:
                continue  # a copy (compaction) of a row already read
            last_seq = entry.seq
            rows.append(entry)
    return rows


class NegotiationJournal:
    """Appends, group-fsyncs and compacts the journal in ``directory`` (one process at a time:
    the directory is locked).

    Call order: :meth:`load` and the replay (:meth:`index` each replayed row), then
    :meth:`begin_boot`, then rows (:meth:`handled`, :meth:`ticked`, :meth:`forget`) with a
    :meth:`flush` before acting on each call's events, and :meth:`close` at the end."""

    def __init__(
        self, directory: Path, segment_bytes: int = 16 << 20, fsync_interval: float = 0.005
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"{directory} is in use by another gateway process") from None
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.ids = JournalIds()
        self.boot = ""
        self.failed = False
        self._seq = 0
        self._buffer: list[bytes] = []
        self._fd: int | None = None
        self._segment = 0  # the current segment's number
        self._segment_size = 0
        # the rows still needed: seq -> how many RFQs it touched are still in memory, its line
        self._live: dict[int, int] = {}
        self._lines: dict[int, bytes] = {}
        self._live_bytes = 0
        self._by_rfq: dict[str, list[int]] = {}
        self._boot_lines: dict[str, tuple[int, bytes]] = {}  # prefix -> its boot row
        self._boot_of: dict[int, str] = {}  # live seq -> the boot it ran under
        self._guard_lines: dict[str, tuple[int, bytes]] = {}  # desk -> its latest guard row
        # the fsync thread: _cond signals it (held briefly, also by the hot path); _fd_lock is
        # held while it fsyncs and while a compaction swaps the descriptor it would fsync
        self._cond = threading.Condition()
        self._fd_lock = threading.Lock()
        self._dirty = False
        self._stopping = False
        self._to_unlink: list[Path] = []
        self._fsyncer = threading.Thread(target=self._run_fsync, name="otc-journal", daemon=True)
        self.written = 0  # rows written since start (tests and logs)
        self.compactions = 0

    # -- start-up ----------------------------------------------------------------------------

    def load(self) -> list[JournalEntry]:
        """The rows a replay needs, in order: boot rows, and every row that touched an RFQ
        that has not left (rows of finished RFQs are skipped)."""
        rows = read_rows(self.directory)
        self._seq = max((r.seq for r in rows), default=0)
        self._segment = max((_segment_no(p) for p in _segments(self.directory)), default=0)
        archived = {r.rfqs[0] for r in rows if r.kind == ARCHIVED}
        latest_guard = {r.payload["desk_id"]: r.seq for r in rows if r.kind == GUARD}
        return [
            r
            for r in rows
            if r.kind == BOOT
            or (r.kind == GUARD and latest_guard[r.payload["desk_id"]] == r.seq)
            or (r.kind not in (ARCHIVED, GUARD) and not set(r.rfqs) <= archived)
        ]

    def index(self, entry: JournalEntry, events: Iterable[ev.Event]) -> None:
        """A replayed row and the RFQs it touched in the replay: kept while they are open."""
        if entry.kind == BOOT:
            self._boot_lines[entry.payload["id_prefix"]] = (entry.seq, entry.line)
        elif entry.kind == GUARD:
            self._guard_lines[entry.payload["desk_id"]] = (entry.seq, entry.line)
        else:
            self._track(entry.seq, entry.boot, entry.line, touched(events))

    def begin_boot(self, now: datetime, settings: dict[str, Any]) -> str:
        """Start this process's stretch of the journal: a fresh segment holding the rows open
        business needs (with the boot rows they ran under), then this boot's row with a fresh
        id prefix, later than every earlier boot's (ids stay unique whatever the journal
        forgot), and the configuration the rows after it run under; the older segments are
        deleted once that is fsynced. Returns the prefix."""
        last = max(self._boot_lines, default="")
        stamp = now
        while (prefix := f"{stamp:%Y%m%d%H%M%S}-") <= last:
            stamp += timedelta(seconds=1)
        self.boot = prefix
        self.ids.prefix = prefix
        self._buffer.clear()  # archived rows of the replay: the rows they freed are not copied
        self._seq += 1
        self._boot_lines[prefix] = (
            self._seq,
            self._line(self._seq, BOOT, now, (), {"id_prefix": prefix, **settings}),
        )
        self._compact(at_start=True)
        self._fsyncer.start()
        return prefix

    # -- rows --------------------------------------------------------------------------------

    def handled(
        self,
        now: datetime,
        command: dict[str, Any],
        events: list[ev.Event],
        entry_ids: list[int] | None = None,
    ) -> None:
        """An applied command (already encoded) and the ids it was given; for a mass quote,
        ``entry_ids``: how many of them each entry asked for, in order."""
        rfqs = touched(events)
        if rfqs:
            payload = {"command": command, "ids": list(self.ids.given)}
            if entry_ids is not None:
                payload["entry_ids"] = entry_ids
            self._append(HANDLE, now, rfqs, payload)

    def ticked(self, now: datetime, events: list[ev.Event]) -> None:
        rfqs = touched(events)
        if rfqs:
            self._append(TICK, now, rfqs, {})

    def guard(self, now: datetime, desk_id: str, guard: dict[str, Any]) -> None:
        """A desk's market maker protection state after a call changed it; it replaces the
        desk's earlier guard row."""
        self._seq += 1
        line = self._line(self._seq, GUARD, now, (), {"desk_id": desk_id, "guard": guard})
        self._buffer.append(line)
        self._guard_lines[desk_id] = (self._seq, line)

    def forget(self, rfq_id: str) -> None:
        """``rfq_id`` left the engine: the rows only it kept are no longer needed, which an
        ``archived`` row says (written with the next flush); the next compaction drops them."""
        for seq in self._by_rfq.pop(rfq_id, ()):
            left = self._live[seq] - 1
            if left:
                self._live[seq] = left
                continue
            del self._live[seq]
            self._boot_of.pop(seq, None)
            self._live_bytes -= len(self._lines.pop(seq))
        if self._fd is not None:  # at start-up the rows it freed are simply not copied
            self._seq += 1
            self._buffer.append(self._line(self._seq, ARCHIVED, None, (rfq_id,), {}))

    @property
    def rows(self) -> int:
        """Rows open business still needs (boot rows not counted)."""
        return len(self._live)

    def flush(self) -> None:
        """Hand every buffered row to the kernel (one ``write()``): from here on they survive
        the process being killed. The fsync follows within ``fsync_interval``."""
        if not self._buffer:
            return
        if self.failed:
            raise JournalFailed("the negotiation journal has failed")
        data = b"".join(self._buffer)
        self._write(data)
        self.written += len(self._buffer)
        self._buffer.clear()
        with self._cond:
            self._dirty = True
            self._cond.notify()
        # a long journal is compacted (live rows copied, the rest dropped); not so often that
        # copying what is open would be most of the work
        if self._segment_size >= max(self.segment_bytes, 4 * self._live_bytes):
            self._compact()

    def close(self) -> None:
        """Write and fsync what is buffered, stop the fsync thread, unlock the directory."""
        try:
            if self._fd is not None and not self.failed:
                self.flush()
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            if self._fsyncer.ident is not None:
                self._fsyncer.join(5)
            with self._fd_lock:
                if self._fd is not None:
                    try:
                        if not self.failed:
                            os.fsync(self._fd)
                    finally:
                        with contextlib.suppress(OSError):
                            os.close(self._fd)
                        self._fd = None
            os.close(self._lock_fd)

    # -- plumbing ----------------------------------------------------------------------------

    def _line(
        self,
        seq: int,
        kind: str,
        now: datetime | None,
        rfqs: Iterable[str],
        payload: dict[str, Any],
    ) -> bytes:
        obj = {
            "seq": seq,
            "boot": self.boot,
            "kind": kind,
            "at": now.isoformat() if now is not None else "1970-01-01T00:00:00+00:00",
            "rfqs": sorted(rfqs),
            "payload": payload,
        }
        return _ENCODE(obj).encode() + b"\n"

    def _append(self, kind: str, now: datetime, rfqs: set[str], payload: dict[str, Any]) -> None:
        self._seq += 1
        line = self._line(self._seq, kind, now, rfqs, payload)
        self._buffer.append(line)
        self._track(self._seq, self.boot, line, rfqs)

    def _track(self, seq: int, boot: str, line: bytes, rfqs: set[str]) -> None:
        if not rfqs:
            return
        self._live[seq] = len(rfqs)
        self._lines[seq] = line
        self._live_bytes += len(line)
        self._boot_of[seq] = boot
        for rfq_id in rfqs:
            self._by_rfq.setdefault(rfq_id, []).append(seq)

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._require_fd(), view) :]
        except OSError as exc:
            self.failed = True
            log.critical("negotiation journal: write failed: %s", exc)
            raise JournalFailed(f"the negotiation journal cannot be written: {exc}") from exc
        self._segment_size += len(data)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise JournalFailed("the negotiation journal is not open")
        return self._fd

    def _compact(self, at_start: bool = False) -> None:
        """A new segment with the rows still needed (each after the boot row it ran under)
        and this boot's row; the older segments go once it is fsynced (by the fsync thread;
        at start, here). A crash in between leaves both, which read the same (copies are
        read once)."""
        keep = dict(self._boot_lines[b] for b in {*self._boot_of.values(), self.boot})
        self._boot_lines = {b: self._boot_lines[b] for b in {*self._boot_of.values(), self.boot}}
        keep.update(self._lines)
        keep.update(self._guard_lines.values())
        old = _segments(self.directory)
        self._segment += 1
        path = self.directory / f"{SEGMENT_PREFIX}{self._segment:08d}{SEGMENT_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            with self._fd_lock:  # the fsync thread must not fsync a closed descriptor
                previous, self._fd = self._fd, fd
                if previous is not None:  # whole lines only, if it outlives a power cut
                    os.fsync(previous)
                    os.close(previous)
            self._segment_size = 0
            self._write(b"".join(line for _, line in sorted(keep.items())))
            fsync_dir(self.directory)
            if at_start:
                os.fsync(fd)
                for stale in old:
                    stale.unlink()
                fsync_dir(self.directory)
                old = []
        except OSError as exc:
            self.failed = True
            raise JournalFailed(f"the negotiation journal cannot compact: {exc}") from exc
        self.compactions += 1
        with self._cond:
            self._to_unlink.extend(old)
            self._dirty = True
            self._cond.notify()

    def _run_fsync(self) -> None:
        while True:
            with self._cond:
                while not (self._dirty or self._stopping):
                    self._cond.wait()
                if self._stopping and not self._dirty:
                    return
                self._dirty = False
                unlink, self._to_unlink = self._to_unlink, []
            try:
                with self._fd_lock:
                    if self._fd is not None:
                        os.fsync(self._fd)
                for path in unlink:  # what they held is copied and durable now
                    path.unlink(missing_ok=True)
                if unlink:
                    fsync_dir(self.directory)
            except OSError as exc:
                self.failed = True
                log.critical("negotiation journal: fsync failed (%s); no more commands", exc)
                return
            if not self._stopping:
                time.sleep(self.fsync_interval)  # let the next group gather
