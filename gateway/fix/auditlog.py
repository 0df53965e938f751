"""A QuickFIX Log that also hands every message in and out to the audit trail.

QuickFIX logs each message it reads (valid or not, admin or application) and each one it sends;
that is exactly "every FIX message in and out", including the ones the session layer rejects
before any Application callback sees them. The FileLog keeps writing as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import quickfix as fix

log = logging.getLogger("fixbridge.fix")

# sink(kind, actor, raw_message): kind is "fix.in", "fix.out" or "fix.event"
Sink = Callable[[str, str, str], None]


class AuditingLog(fix.Log):
    def __init__(self, inner: fix.Log | None, actor: str, sink: Sink) -> None:
        super().__init__()
        self.inner = inner
        self.actor = actor
        self.sink = sink

    def _emit(self, kind: str, text: str) -> None:
        try:
            self.sink(kind, self.actor, text)
        except Exception:  # never raise into the engine; the failure itself is logged
            log.exception("audit of %s failed for %s", kind, self.actor)

    def onIncoming(self, text: str) -> None:
        if self.inner is not None:
            self.inner.onIncoming(text)
        self._emit("fix.in", text)

    def onOutgoing(self, text: str) -> None:
        if self.inner is not None:
            self.inner.onOutgoing(text)
        self._emit("fix.out", text)

    def onEvent(self, text: str) -> None:
        if self.inner is not None:
            self.inner.onEvent(text)
        self._emit("fix.event", text)

    def clear(self) -> None:
        if self.inner is not None:
            self.inner.clear()

    def backup(self) -> None:
        if self.inner is not None:
            self.inner.backup()


class AuditingLogFactory(fix.LogFactory):
    """Wraps a FileLogFactory (or nothing). Keeps the logs it made alive for the engine."""

    def __init__(self, inner: fix.LogFactory | None, sink: Sink) -> None:
        super().__init__()
        self.inner = inner
        self.sink = sink
        self._logs: list[AuditingLog] = []

    def create(self, *args) -> fix.Log:
        inner = self.inner.create(*args) if self.inner is not None else None
        actor = "engine" if not args else f"session:{args[0].getTargetCompID().getValue()}"
        made = AuditingLog(inner, actor, self.sink)
        self._logs.append(made)
        made.__disown__()  # the engine holds the C++ side; self._logs keeps the Python side
        return made

    def destroy(self, made) -> None:
        return None  # owned here; released with the factory at exit
