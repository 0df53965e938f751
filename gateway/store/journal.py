"""The negotiation journal: the engine's inputs, in order, so a restart rebuilds open business.

The negotiation engine is deterministic: the same calls with the same ``now`` give the same state,
events and ids. The service (:class:`gateway.negotiation.NegotiationService`) records every call
that changed the engine and commits the record *before* acting on the call's events; a start-up
replays the journal through a fresh engine with nothing sent, then ticks at the real time.

Rows (``negotiation_journal``), one per engine call that changed something:

* ``boot``: ``{"id_prefix", "negotiation": {...}, "routing": {...}}`` -- each start writes one;
  the commands after it ran under that configuration and that id prefix.
* ``handle``: ``{"command": <otc.negotiation.command_json>, "ids": [[kind, id], ...]}`` -- an
  applied command and the ids the engine gave out while applying it (a replay hands back exactly
  these, so it needs no entry it does not replay).
* ``tick``: ``{}`` -- timers fired at ``at`` (also the timers a refused command fired: a refusal
  changes nothing else, so it is journalled as the tick it was).

``at`` is the call's ``now`` (ISO 8601, microseconds). Calls that changed nothing are not written,
nor are timers that fired without an event (a later call or the start-up tick fires them again,
with the same effect).

**Compaction.** Each row is indexed by the RFQs its events touched. When an RFQ leaves the engine
(archived once finished), the rows that touched only RFQs that have left are deleted in the next
commit: the journal holds what open business needs, and a start-up replays no more than that.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Text, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from otc.negotiation import events as ev
from otc.negotiation.ids import IdKind

log = logging.getLogger("fixbridge.journal")


class JournalRow(SQLModel, table=True):
    __tablename__ = "negotiation_journal"
    seq: int = Field(primary_key=True)
    boot: str  # the id prefix of the boot that wrote the row
    kind: str  # boot | handle | tick
    at: str = Field(sa_column=Column(Text, nullable=False))  # the call's now, exactly
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON


TABLE = JournalRow.__table__
BOOT, HANDLE, TICK = "boot", "handle", "tick"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    boot: str
    kind: str
    at: datetime
    payload: dict[str, Any]


class JournalFailed(RuntimeError):
    """The journal could not be written: nothing more may be acted on (restart to recover)."""


class ReplayDiverged(RuntimeError):
    """A journal entry did not replay as it ran (the engine or its configuration changed)."""


class JournalIds:
    """The engine's id factory (``otc.negotiation.ids.IdFactory``). Live, it renders
    ``{prefix}{kind}-{n:08d}`` and remembers what it gave out for the current call; during a
    replay it hands back the ids the journal recorded for the entry, in order."""

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
        """End of an entry's replay: every recorded id must have been asked for."""
        recorded, used = self._replay or [], self._next
        self._replay, self._next = None, 0
        if used != len(recorded):
            raise ReplayDiverged(f"the replay used {used} of the {len(recorded)} recorded ids")


def touched(events: Iterable[ev.Event]) -> set[str]:
    """The RFQs a batch of events belongs to."""
    return {rfq_id for e in events if (rfq_id := ev.rfq_id_of(e)) is not None}


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


class NegotiationJournal:
    """Appends, commits and compacts the journal over one database connection of its own.

    Nothing is written until :meth:`flush` (the service calls it before acting on a call's
    events): then every buffered row and deletion goes in one transaction. On SQLite (WAL,
    ``synchronous=NORMAL``, like the rest of the database) a commit reaches the file without an
    fsync, so it survives the process being killed; on PostgreSQL the journal's session commits
    with ``synchronous_commit = off``, which waits for the server but not for its disk: the
    server's WAL writer group-commits. A failed flush is retried once, then the journal is
    failed for good (:class:`JournalFailed`)."""

    def __init__(self, database: Engine) -> None:
        self.database = database
        self.ids = JournalIds()
        self._lock = threading.Lock()  # flush vs close; the service serialises everything else
        self._conn: Any = database.raw_connection()
        dialect = database.dialect.name
        if dialect == "postgresql":
            with self._cursor() as cur:
                cur.execute("SET synchronous_commit TO off")
            self._conn.commit()
        mark = "?" if database.dialect.dbapi.paramstyle == "qmark" else "%s"
        self._insert_sql = (
            f"INSERT INTO negotiation_journal (seq, boot, kind, at, payload) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
        )
        self._delete_sql = f"DELETE FROM negotiation_journal WHERE seq = {mark}"
        with database.connect() as conn:
            self._seq = conn.execute(select(func.max(TABLE.c.seq))).scalar() or 0
        self.boot = ""
        self.failed = False
        self._inserts: list[tuple[int, str, str, str, str]] = []
        self._deletes: list[int] = []
        self._live: dict[int, int] = {}  # seq -> how many RFQs it touched are still in memory
        self._by_rfq: dict[str, list[int]] = {}
        self._boots: dict[str, int] = {}  # boot prefix -> seq of its boot row
        self._boot_of: dict[int, str] = {}  # seq -> the boot that wrote it (rows still needed)
        self._dead: list[int] = []  # replayed rows that touched no RFQ still in memory
        self.written = 0  # rows written since start (tests and logs)
        self.deleted = 0

    # -- reading -----------------------------------------------------------------------------

    def load(self) -> list[JournalEntry]:
        """Every row, in order."""
        t = TABLE
        with self.database.connect() as conn:
            rows = conn.execute(
                select(t.c.seq, t.c.boot, t.c.kind, t.c.at, t.c.payload).order_by(t.c.seq)
            ).all()
        return [
            JournalEntry(seq, boot, kind, datetime.fromisoformat(at), json.loads(payload))
            for seq, boot, kind, at, payload in rows
        ]

    # -- writing -----------------------------------------------------------------------------

    def begin_boot(self, now: datetime, settings: dict[str, Any]) -> str:
        """Start this process's stretch of the journal: a fresh id prefix, later than every
        earlier boot's (so ids stay unique whatever the journal forgot), written with the
        configuration the commands after it run under; earlier boot rows no remaining row ran
        under go (this one is now the latest). Returns the prefix."""
        stamp = now
        last = max(self._boots, default="")
        while (prefix := f"{stamp:%Y%m%d%H%M%S}-") <= last:
            stamp += timedelta(seconds=1)
        self.boot = prefix
        self.ids.prefix = prefix
        self._append(BOOT, now, {"id_prefix": prefix, **settings}, ())
        self._boots[prefix] = self._seq
        needed = set(self._boot_of.values()) | {prefix}
        for earlier, seq in list(self._boots.items()):  # in the same commit as the new one
            if earlier not in needed:
                del self._boots[earlier]
                self._deletes.append(seq)
        return prefix

    def index(self, entry: JournalEntry, events: Iterable[ev.Event]) -> None:
        """Index a replayed entry by the RFQs it touched in the replay."""
        self._seq = max(self._seq, entry.seq)
        if entry.kind == BOOT:
            self._boots[entry.payload["id_prefix"]] = entry.seq
            return
        self._track(entry.seq, entry.boot, touched(events))

    def handled(self, now: datetime, command: dict[str, Any], events: list[ev.Event]) -> None:
        """An applied command (``command`` already encoded) and the ids it was given."""
        rfqs = touched(events)
        if rfqs:
            self._append(HANDLE, now, {"command": command, "ids": list(self.ids.given)}, rfqs)

    def ticked(self, now: datetime, events: list[ev.Event]) -> None:
        rfqs = touched(events)
        if rfqs:
            self._append(TICK, now, {}, rfqs)

    def forget(self, rfq_id: str) -> None:
        """``rfq_id`` left the engine: rows that only it kept alive go in the next commit."""
        for seq in self._by_rfq.pop(rfq_id, ()):
            left = self._live[seq] - 1
            if left:
                self._live[seq] = left
            else:
                del self._live[seq]
                self._boot_of.pop(seq, None)
                self._deletes.append(seq)

    def drop_unreferenced(self) -> None:
        """After a replay: delete the rows no open RFQ needs (they touched only RFQs that have
        left). :meth:`begin_boot` then drops the boot rows no remaining row ran under."""
        self._deletes.extend(self._dead)
        self._dead.clear()

    @property
    def rows(self) -> int:
        """Rows the journal holds once buffered writes are committed (not counting boot rows)."""
        return len(self._live)

    def flush(self) -> None:
        """Commit every buffered row and deletion in one transaction."""
        with self._lock:
            if not (self._inserts or self._deletes):
                return
            if self.failed:
                raise JournalFailed("the negotiation journal has failed")
            for attempt in (1, 2):
                try:
                    with self._cursor() as cur:
                        if self._inserts:
                            cur.executemany(self._insert_sql, self._inserts)
                        if self._deletes:
                            cur.executemany(self._delete_sql, [(s,) for s in self._deletes])
                    self._conn.commit()
                    break
                except Exception as exc:
                    log.exception("negotiation journal write failed (attempt %d)", attempt)
                    try:
                        self._conn.rollback()
                    except Exception:
                        log.exception("negotiation journal rollback failed")
                    if attempt == 2:
                        self.failed = True
                        raise JournalFailed("the negotiation journal cannot be written") from exc
            self.written += len(self._inserts)
            self.deleted += len(self._deletes)
            self._inserts.clear()
            self._deletes.clear()

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except Exception:
                log.exception("closing the negotiation journal's connection failed")

    # -- plumbing ----------------------------------------------------------------------------

    def _append(
        self, kind: str, now: datetime, payload: dict[str, Any], rfqs: Iterable[str]
    ) -> None:
        self._seq += 1
        self._inserts.append((self._seq, self.boot, kind, now.isoformat(), _dumps(payload)))
        if kind != BOOT:
            self._track(self._seq, self.boot, set(rfqs))

    def _track(self, seq: int, boot: str, rfqs: set[str]) -> None:
        if not rfqs:
            self._dead.append(seq)
            return
        self._live[seq] = len(rfqs)
        self._boot_of[seq] = boot
        for rfq_id in rfqs:
            self._by_rfq.setdefault(rfq_id, []).append(seq)

    def _cursor(self) -> Any:
        return closing(self._conn.cursor())
