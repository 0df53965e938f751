"""Admission: may the gateway take new business right now?

One gate for every edge. The FIX application refuses NewOrderSingle, OrderCancelReplaceRequest,
NewOrderMultileg, QuoteRequest and QuoteResponse with a BusinessMessageReject 380=4 whose Text is
the reason; the web API answers the desk's and the operator's new-business routes with a 503
problem naming it (:mod:`gateway.http.draining`). Cancels, status requests and reads go on, and
sessions stay up. The gate is closed while any source names a reason:

- the drain (SIGTERM): ``gateway shutting down``;
- the audit trail cannot make entries durable (``audit trail unavailable: ...``);
- the database writer cannot commit (``database unavailable: ...``), or the readiness monitor's
  last ``SELECT 1`` failed (trade capture writes synchronously, so an acceptance must not start
  while the database is away).

Each source is a cheap callable read on the FIX engine's thread: no I/O, no waiting. The gate
opens by itself once every source is clear again; each change is logged once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("fixbridge.admission")

Source = Callable[[], str | None]  # a reason to refuse new business, or None

DRAINING = "gateway shutting down"


class Admission:
    def __init__(self, sources: Sequence[Source] = (), draining: threading.Event | None = None):
        self.draining = draining if draining is not None else threading.Event()
        self.sources = list(sources)
        self._lock = threading.Lock()
        self._last: str | None = None

    def add(self, source: Source) -> None:
        self.sources.append(source)

    def refusal(self) -> str | None:
        """Why new business is refused now, or None: it is admitted."""
        reason = DRAINING if self.draining.is_set() else None
        if reason is None:
            for source in self.sources:
                try:
                    reason = source()
                except Exception as exc:  # a broken source closes the gate, never crashes
                    reason = f"admission check failed: {exc}"
                if reason is not None:
                    break
        if reason != self._last:
            with self._lock:
                if reason != self._last:
                    if reason is not None and reason != DRAINING:
                        log.warning("refusing new business: %s", reason)
                    elif reason is None:
                        log.warning("admitting new business again (was: %s)", self._last)
                    self._last = reason
        return reason
