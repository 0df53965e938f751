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

# sink(kind, actor, message): kind is "fix.in", "fix.out" or "fix.event"; the message's text as
# QuickFIX gave it, SOH delimiters kept, non-UTF-8 bytes as surrogate escapes
Sink = Callable[[str, str, str], None]
_INNER = {"fix.in": "onIncoming", "fix.out": "onOutgoing", "fix.event": "onEvent"}


def readable(text: str) -> str:
    """``text`` as valid Unicode. SWIG hands bytes that are not UTF-8 to Python as surrogate
    escapes and refuses them on the way back (``TypeError``); the audit log refuses them too.
    Such bytes become ``\\xNN``."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


class AuditingLog(fix.Log):
    def __init__(self, inner: fix.Log | None, actor: str, sink: Sink) -> None:
        super().__init__()
        self.inner = inner
        self.actor = actor
        self.sink = sink

    def _emit(self, kind: str, text: str) -> None:
        """To the file log and the audit trail. Nothing may raise into QuickFIX: an exception
        in a SWIG director callback leaves QuickFIX's socket thread dead. The audit trail gets
        the text exactly as QuickFIX handed it over (surrogate escapes included: the trail
        keeps such a message's original bytes); the file log a readable copy."""
        if self.inner is not None:
            try:
                getattr(self.inner, _INNER[kind])(readable(text))
            except Exception:  # the failure itself is logged
                log.exception("file log of %s failed for %s", kind, self.actor)
        try:
            self.sink(kind, self.actor, text)
        except Exception:
            log.exception("audit of %s failed for %s", kind, self.actor)

    def onIncoming(self, text: str) -> None:
        self._emit("fix.in", text)

    def onOutgoing(self, text: str) -> None:
        self._emit("fix.out", text)

    def onEvent(self, text: str) -> None:
        self._emit("fix.event", text)

    def clear(self) -> None:
        if self.inner is not None:
            self.inner.clear()

    def backup(self) -> None:
        if self.inner is not None:
            self.inner.backup()


class AuditingLogFactory(fix.LogFactory):
    """Wraps a FileLogFactory (or nothing). Keeps the logs it made alive for the acceptor."""

    def __init__(self, inner: fix.LogFactory | None, sink: Sink) -> None:
        super().__init__()
        self.inner = inner
        self.sink = sink
        self._logs: list[AuditingLog] = []

    def create(self, *args) -> fix.Log:
        inner = self.inner.create(*args) if self.inner is not None else None
        # "engine": the audit trail's actor for QuickFIX's global log (existing trails use it)
        actor = "engine" if not args else f"session:{args[0].getTargetCompID().getValue()}"
        made = AuditingLog(inner, actor, self.sink)
        self._logs.append(made)
        made.__disown__()  # the acceptor holds the C++ side; self._logs keeps the Python side
        return made

    def destroy(self, made) -> None:
        return None  # owned here; released with the factory at exit
