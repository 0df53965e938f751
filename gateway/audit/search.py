"""Searching the running audit log for compliance: an index of ids -> entry seqs, kept in memory.

The index tails ``entries.jsonl``: each call to :meth:`TrailIndex.refresh` reads the complete
lines appended since the last one and files each entry's seq under the ids it names
(:func:`otc.audit.refs.entry_refs`: client, desk, ClOrdID, order, RFQ, quote, QuoteReqID,
trade, clearing key) and its kind. Nothing is added to the trading path: the FIX thread and the
audit writer never see the index; a compliance query pays for reading what was appended since
the previous one.

Cost and limits:

* Memory: per entry a byte offset and a timestamp (16 bytes), 4 bytes per id it names, and a
  dict slot per distinct id (most ids - ClOrdIDs, order and exec ids - are new with each
  order): ~250 bytes per entry measured on an order flow where every entry brings new ids,
  so a day of a million such entries is ~250 MB.
* The first query after the gateway starts reads the whole file once (about 55,000 entries/s
  on the 2-core development machine under load); later ones read only what is new.
* Timestamps never go backwards in the log, so a time range is a range of seqs, found by
  binary search. A search intersects the posting lists of its filters (walking the shortest,
  binary search in the others) within that range: cost ~ O(shortest list x log n), then one
  read per entry returned. Pages hold at most :data:`MAX_LIMIT` entries; the cursor is the
  last seq returned.
* A timeline follows linked ids (RFQ -> its quotes, trade -> its clearing messages, a FIX
  message -> its ClOrdID ...) for at most :data:`TIMELINE_ROUNDS` rounds and
  :data:`TIMELINE_MAX` entries.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

from otc.audit.canonical import parse_ts
from otc.audit.command import COMMAND, parts_of
from otc.audit.refs import CLIENT_SCOPED, FILTERS, LINKS, entry_refs

__all__ = ["MAX_LIMIT", "Found", "Query", "TrailEntry", "TrailIndex"]

MAX_LIMIT = 1000
TIMELINE_ROUNDS = 3
TIMELINE_MAX = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(ts: str) -> int:
    return (parse_ts(ts) - _EPOCH) // timedelta(microseconds=1)


def micros_of(when: datetime) -> int:
    try:
        return (when.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return -(2**62) if when.year < 2 else 2**62


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One entry read back from the log, with its exact line."""

    seq: int
    ts: str
    kind: str
    actor: str
    payload: dict[str, Any]
    line: bytes

    @property
    def entry_hash(self) -> str:
        return sha256(b"\x00" + self.line).hexdigest()

    @property
    def refs(self) -> set[tuple[str, str]]:
        return entry_refs(self.kind, self.actor, self.payload)


@dataclass(frozen=True, slots=True)
class Query:
    """Every filter must hold (AND). ``ids`` maps a name of :data:`otc.audit.refs.FILTERS` to
    a value; ``kind`` is an entry kind or a prefix ending in ``.`` (``fix.``); times are UTC,
    ``frm`` inclusive, ``to`` exclusive."""

    ids: Mapping[str, str]
    kind: str | None = None
    frm: datetime | None = None
    to: datetime | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.ids)
        if self.kind:
            out["kind"] = self.kind
        if self.frm is not None:
            out["from"] = self.frm
        if self.to is not None:
            out["to"] = self.to
        return out


@dataclass(frozen=True, slots=True)
class Found:
    entries: list[TrailEntry]
    next_after: int | None  # pass as ``after`` for the next page; None: no more
    indexed: int  # entries in the index when the search ran


class TrailIndex:
    """The index over one log file. Thread-safe; :meth:`refresh` before reading."""

    def __init__(self, entries_path: Path) -> None:
        self.path = entries_path
        self._lock = threading.Lock()
        self._offsets = array("q")
        self._micros = array("q")
        self._post: dict[tuple[str, str], array | int] = {}
        self._read_to = 0

    @property
    def size(self) -> int:
        return len(self._offsets)

    def refresh(self) -> int:
        """Index the complete lines appended since the last call; returns the entry count."""
        with self._lock:
            try:
                f = self.path.open("rb")
            except FileNotFoundError:
                return len(self._offsets)
            with f:
                f.seek(self._read_to)
                offset = self._read_to
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # a write in progress
                    self._add(offset, raw)
                    offset += len(raw)
                self._read_to = offset
            return len(self._offsets)

    def _add(self, offset: int, raw: bytes) -> None:
        seq = len(self._offsets)
        obj = json.loads(raw)
        self._offsets.append(offset)
        self._micros.append(_micros(obj["ts"]))
        kind = obj["kind"]
        post = self._post
        keys = entry_refs(kind, obj["actor"], obj["payload"])
        keys.add(("kind", kind))
        if kind == COMMAND:  # found by the kinds of its parts too (a fix.out inside it)
            keys.update(("kind", k) for k, _, _ in parts_of(kind, obj["actor"], obj["payload"]))
        for key in keys:
            found = post.get(key)
            if found is None:
                post[key] = seq  # most ids name one entry: a bare int until a second comes
            elif type(found) is int:
                post[key] = array("I", (found, seq))
            else:
                found.append(seq)

    def _get(self, key: tuple[str, str]) -> array | tuple[int] | None:
        found = self._post.get(key)
        return (found,) if type(found) is int else found

    # -- reading ------------------------------------------------------------------------------

    def read(self, seq: int) -> TrailEntry | None:
        if not 0 <= seq < len(self._offsets):
            return None
        return next(self.read_many([seq]))

    def read_many(self, seqs: Iterable[int]) -> Iterator[TrailEntry]:
        offsets = self._offsets
        with self.path.open("rb") as f:
            fd = f.fileno()
            for seq in seqs:
                start = offsets[seq]
                end = offsets[seq + 1] if seq + 1 < len(offsets) else self._read_to
                line = os.pread(fd, end - start, start).rstrip(b"\n")
                obj = json.loads(line)
                yield TrailEntry(seq, obj["ts"], obj["kind"], obj["actor"], obj["payload"], line)

    # -- searching ----------------------------------------------------------------------------

    def _range(self, query: Query) -> tuple[int, int]:
        lo, hi = 0, len(self._offsets)
        if query.frm is not None:
            lo = bisect_left(self._micros, micros_of(query.frm), 0, hi)
        if query.to is not None:
            hi = bisect_left(self._micros, micros_of(query.to), lo, hi)
        return lo, hi

    def _lists(self, query: Query) -> list[array | tuple[int]] | None:
        """The posting lists the query needs, shortest first; None: one of them is empty."""
        lists = []
        for name, value in query.ids.items():
            if name not in FILTERS:
                raise ValueError(f"unknown filter {name!r}")
            found = self._get((name, value))
            if found is None:
                return None
            lists.append(found)
        kind = query.kind
        if kind and not kind.endswith("."):
            found = self._get(("kind", kind))
            if found is None:
                return None
            lists.append(found)
        return sorted(lists, key=len)

    def _matches(self, query: Query, lo: int, hi: int) -> Iterator[int]:
        lists = self._lists(query)
        if lists is None:
            return
        prefix = query.kind if query.kind and query.kind.endswith(".") else None
        kinds = (
            [self._get(key) for key in self._post if key[0] == "kind" and key[1].startswith(prefix)]
            if prefix
            else []
        )
        if prefix and not kinds:
            return
        if lists:
            candidates: Iterable[int] = (
                lists[0][i] for i in range(bisect_left(lists[0], lo), len(lists[0]))
            )
            rest = lists[1:]
        elif kinds:  # a kind prefix alone: the kinds' lists merged, lazily, in seq order
            candidates = heapq.merge(
                *((v[i] for i in range(bisect_left(v, lo), len(v))) for v in kinds)
            )
            rest, kinds = [], []
        else:
            yield from range(lo, hi)
            return
        for seq in candidates:
            if seq >= hi:
                return
            if all(_contains(other, seq) for other in rest) and (
                not kinds or any(_contains(k, seq) for k in kinds)
            ):
                yield seq

    def search(self, query: Query, after: int | None = None, limit: int = 100) -> Found:
        limit = max(1, min(limit, MAX_LIMIT))
        with self._lock:
            lo, hi = self._range(query)
            if after is not None:
                lo = max(lo, after + 1)
            seqs = []
            for seq in self._matches(query, lo, hi):
                seqs.append(seq)
                if len(seqs) > limit:
                    break
            size = len(self._offsets)
        more = len(seqs) > limit
        seqs = seqs[:limit]
        return Found(list(self.read_many(seqs)), seqs[-1] if more and seqs else None, size)

    def count(self, query: Query) -> int:
        with self._lock:
            lo, hi = self._range(query)
            return sum(1 for _ in self._matches(query, lo, hi))

    def iter_seqs(self, query: Query) -> list[int]:
        """Every seq the query matches (for exports; the caller bounds the query)."""
        with self._lock:
            lo, hi = self._range(query)
            return list(self._matches(query, lo, hi))

    def timeline(self, name: str, value: str) -> list[int]:
        """Seqs of everything linked to ``(name, value)``: the entries naming it, then those
        naming an id any of them names (:data:`otc.audit.refs.LINKS`), for a few rounds."""
        if name not in LINKS:
            raise ValueError(f"cannot follow {name!r}")
        with self._lock:
            seen: set[int] = set()
            visited: set[tuple[str, str]] = set()
            frontier: set[tuple[str, str, str | None]] = {(name, value, None)}
            for _ in range(TIMELINE_ROUNDS):
                fresh: set[int] = set()
                for key_name, key_value, client in frontier:
                    visited.add(
                        (key_name, key_value if client is None else f"{client}\x00{key_value}")
                    )
                    found = self._get((key_name, key_value))
                    if found is None:
                        continue
                    scope = self._get(("client", client)) if client else None
                    for seq in found:
                        if seq not in seen and (scope is None or _contains(scope, seq)):
                            fresh.add(seq)
                if not fresh:
                    break
                seen |= fresh
                if len(seen) >= TIMELINE_MAX:
                    break
                frontier = set()
                for entry in self.read_many(sorted(fresh)):
                    refs = entry.refs
                    clients = [v for n, v in refs if n == "client"]
                    for n, v in refs:
                        if n not in LINKS:
                            continue
                        client = clients[0] if n in CLIENT_SCOPED and clients else None
                        mark = (n, v if client is None else f"{client}\x00{v}")
                        if mark not in visited:
                            frontier.add((n, v, client))
            return sorted(seen)[:TIMELINE_MAX]


def _contains(sorted_seqs: array | tuple[int], seq: int) -> bool:
    i = bisect_left(sorted_seqs, seq)
    return i < len(sorted_seqs) and sorted_seqs[i] == seq
