"""Our routes to an upstream venue, kept on disk: which upstream ClOrdID stands for which of our
orders, the ClOrdID the venue knows each order by now, and the ExecIDs already applied.

An upstream ClOrdID is recorded (and fsynced) before the request that carries it is sent, so an
ExecutionReport that arrives after a restart still finds its order; an ExecID is recorded once
its report has been applied, so a report the venue sends again (PossDupFlag, or a resend after a
reconnect) is not applied twice. One JSON object per line, appended; a torn last line (a crash
mid-write) is ignored on reading, since the request it described was never sent.

The journal is compacted at each start (:meth:`UpstreamRoutes.compact`) to the orders still
open then: a finished order's routes and ExecIDs go, so the file is bounded by the orders open at
the last start plus what was routed since. A report the venue sends again for a finished order
then names no route and is ignored (and audited), never applied.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.durable import fsync_dir

log = logging.getLogger("fixbridge.venue")

RequestKind = Literal["new", "cancel", "replace"]


@dataclass(frozen=True, slots=True)
class Route:
    """The request an upstream ClOrdID was sent with."""

    cl_ord_id: str
    order_id: str
    kind: RequestKind


class UpstreamRoutes:
    """The journal of routes, loaded whole at start (one line per request and per report)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._current: dict[str, str] = {}  # our order id -> the ClOrdID the venue knows now
        self._venue_ids: dict[str, str] = {}  # our order id -> the venue's OrderID(37)
        self._requests: dict[str, int] = {}  # our order id -> upstream requests made for it
        self._applied: dict[str, str | None] = {}  # ExecID -> our order id (None: not noted)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._load()
        new = not path.exists()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for our lifetime
        if new:
            fsync_dir(path.parent)

    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    self._replay(json.loads(line))
                except (ValueError, KeyError) as exc:
                    log.warning(
                        "%s:%d: unreadable route record skipped: %s", self.path, number, exc
                    )

    def _replay(self, rec: dict[str, str]) -> None:
        kind = rec["t"]
        if kind == "req":
            route = Route(rec["c"], rec["o"], rec["k"])  # type: ignore[arg-type]
            self._routes[route.cl_ord_id] = route
            self._requests[route.order_id] = self._requests.get(route.order_id, 0) + 1
            if route.kind == "new":
                self._current[route.order_id] = route.cl_ord_id
        elif kind == "cur":
            self._current[rec["o"]] = rec["c"]
        elif kind == "vid":
            self._venue_ids[rec["o"]] = rec["v"]
        elif kind == "exec":
            self._applied[rec["x"]] = rec.get("o")

    def _append(self, rec: dict[str, str]) -> None:
        self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    # -- requests ----------------------------------------------------------------------------

    def open_request(self, order_id: str, kind: RequestKind) -> Route:
        """A new upstream ClOrdID for a request about ``order_id``, durable before it is sent:
        our order id and the request's number for it, unique for as long as our ids are."""
        with self._lock:
            n = self._requests.get(order_id, 0) + 1
            route = Route(f"{order_id}-{n}", order_id, kind)
            self._append({"t": "req", "c": route.cl_ord_id, "o": order_id, "k": kind})
            self._requests[order_id] = n
            self._routes[route.cl_ord_id] = route
            if kind == "new":
                self._current[order_id] = route.cl_ord_id
            return route

    def route(self, cl_ord_id: str) -> Route | None:
        return self._routes.get(cl_ord_id)

    def current(self, order_id: str) -> str | None:
        """The ClOrdID the venue knows ``order_id`` by: a cancel or replace names it as
        OrigClOrdID."""
        return self._current.get(order_id)

    def venue_order_id(self, order_id: str) -> str | None:
        return self._venue_ids.get(order_id)

    def replaced(self, order_id: str, cl_ord_id: str) -> None:
        """The venue accepted the replace sent as ``cl_ord_id``: the order goes by it now."""
        with self._lock:
            if self._current.get(order_id) != cl_ord_id:
                self._append({"t": "cur", "o": order_id, "c": cl_ord_id})
                self._current[order_id] = cl_ord_id

    def venue_id(self, order_id: str, venue_order_id: str) -> None:
        with self._lock:
            if self._venue_ids.get(order_id) != venue_order_id:
                self._append({"t": "vid", "o": order_id, "v": venue_order_id})
                self._venue_ids[order_id] = venue_order_id

    # -- reports -----------------------------------------------------------------------------

    def applied(self, exec_id: str) -> bool:
        return exec_id in self._applied

    def mark_applied(self, exec_id: str, order_id: str) -> None:
        with self._lock:
            if exec_id not in self._applied:
                self._append({"t": "exec", "x": exec_id, "o": order_id})
                self._applied[exec_id] = order_id

    # -- compaction --------------------------------------------------------------------------

    def compact(self, open_orders: set[str]) -> tuple[int, int]:
        """Rewrite the journal with only what ``open_orders`` still need: their routes (every
        request, so numbering goes on and a late report for any of them finds its order), the
        ClOrdID and venue OrderID they go by, and their applied ExecIDs (ExecIDs recorded
        without an order are kept: whose they are is not known). Atomic: a temporary file,
        fsynced, renamed over the journal, the directory fsynced; a crash leaves the old journal
        or the new one. Returns the records before and after."""
        with self._lock:
            with open(self.path, encoding="utf-8") as old:
                before = sum(1 for _ in old)
            routes = {c: r for c, r in self._routes.items() if r.order_id in open_orders}
            records: list[dict[str, str]] = [
                {"t": "req", "c": r.cl_ord_id, "o": r.order_id, "k": r.kind}
                for r in routes.values()
            ]
            current = {o: c for o, c in self._current.items() if o in open_orders}
            first = {r.order_id: r.cl_ord_id for r in routes.values() if r.kind == "new"}
            records += [
                {"t": "cur", "o": o, "c": c} for o, c in current.items() if first.get(o) != c
            ]
            venue_ids = {o: i for o, i in self._venue_ids.items() if o in open_orders}
            records += [{"t": "vid", "o": o, "v": i} for o, i in venue_ids.items()]
            applied = {x: o for x, o in self._applied.items() if o is None or o in open_orders}
            records += [
                {"t": "exec", "x": x} if o is None else {"t": "exec", "x": x, "o": o}
                for x, o in applied.items()
            ]
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
                f.flush()
                os.fsync(f.fileno())
            self._file.close()
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - our lifetime
            self._routes, self._current, self._venue_ids = routes, current, venue_ids
            self._requests = {o: n for o, n in self._requests.items() if o in open_orders}
            self._applied = applied
            return before, len(records)

    def close(self) -> None:
        with self._lock:
            self._file.close()
