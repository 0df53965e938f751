"""What goes into the signed audit log, from every edge of the process.

Every FIX message in and out (admin and application, valid or not), every API action with its
actor, every auth failure, and every state change of orders, RFQs, quotes, trades, clearing
messages and sessions.

The callers are hot paths (the FIX engine's thread calls :meth:`Auditor.fix` for every message,
the order path calls :meth:`Auditor.orders` for every batch of core events), so a sink only
puts its arguments on one FIFO queue; the ``audit-feed`` thread builds the payloads and appends
them to the log, in exactly the order the sinks were called, several at a time. The log then
orders, hashes and group-commits them as before. Nothing is dropped: the queue is drained on
:meth:`Auditor.close`, and ``auditor.log.flush()`` / ``checkpoint()`` (what the audit API calls
before it reads) first wait for the queue to be handed over. While the log applies back-pressure
(its own pending limit) the queue holds at most ``max_queued`` items before callers wait.

**Commands.** An order message in (:data:`COMMANDS`) opens a command on the thread that
received it; the order state changes and the messages sent on that thread until
:meth:`Auditor.end_command` (the application calls it when it has handled the message) or the
next message in become parts of ONE ``fix.command`` entry (:mod:`otc.audit.command`), placed
where the message in was. The feed waits up to ``command_grace`` seconds for a command still
being handled; then it seals it, and whatever the command causes later is recorded as entries
of its own, as everything else is: grouping saves work, it never holds a record back for long
or loses one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from threading import get_ident
from typing import Any

from fixspec.codec import DECODERS
from gateway.audit.log import AuditLog
from gateway.jsonable import event_json, to_jsonable
from otc.audit.command import COMMAND, command_payload
from otc.audit.wire import fix_record, msg_type_of
from otc.negotiation import events as ev
from otc.orders import OrderUpdated

log = logging.getLogger("fixbridge.audit")


def readable(text: str) -> str:
    """``text`` as valid Unicode: bytes that were not UTF-8 (surrogate escapes) as ``\\xNN``."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


# the order path's messages: each one in is a command (RFQ acceptances, 35=D with 40=D, are not)
COMMANDS = frozenset(DECODERS)
RFQ_ACCEPTANCE = "\x0140=D\x01"


class _Command:
    """A command being handled: the message in and what it caused, not yet described."""

    __slots__ = ("actor", "parts", "opened", "done", "sealed")

    def __init__(self, actor: str, text: str) -> None:
        self.actor = actor
        self.parts: list[tuple[str, str, Any]] = [("fix.in", actor, text)]
        self.opened = time.monotonic()
        self.done = False  # handled: nothing more joins it
        self.sealed = False  # the feed has taken it: later effects are entries of their own


class FedLog:
    """The :class:`AuditLog` as readers see it: ``flush`` and ``checkpoint`` first wait until
    everything the :class:`Auditor` queued before the call is in the log; the rest passes on."""

    def __init__(self, inner: AuditLog, drain: Callable[[], None]) -> None:
        self.inner = inner
        self._drain = drain

    def flush(self, timeout: float | None = None) -> int:
        self._drain()
        return self.inner.flush(timeout)

    def checkpoint(self, timeout: float | None = None):
        self._drain()
        return self.inner.checkpoint(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Auditor:
    def __init__(
        self,
        directory: Path,
        max_queued: int = 100_000,
        linger: float = 0.002,
        write: Callable[[int, bytes], None] | None = None,
        commands: frozenset[str] = COMMANDS,
        command_grace: float = 0.05,
    ) -> None:
        """``write``: how the log writes its files (None: plainly; tests inject I/O errors).
        ``commands``: the MsgTypes recorded as commands (empty: every message on its own)."""
        self.log = FedLog(AuditLog.open(directory, write=write), self.drain)
        self.max_queued = max_queued
        self.linger = linger
        self._q: deque = deque()
        self._idle = True  # the feed thread is waiting: the next put must wake it
        self._wake = threading.Event()
        self._urgent = threading.Event()  # a drain or close is waiting: stop lingering
        self._stopping = False
        self.commands = commands
        self.command_grace = command_grace
        # the command each thread has open, by thread id: QuickFIX calls into Python from its
        # own threads with a fresh thread state per callback, so a threading.local forgets
        self._open: dict[int, _Command] = {}
        self._seal = threading.Lock()  # a command's parts vs the feed sealing it
        self._feed = threading.Thread(target=self._run, name="audit-feed", daemon=True)
        self._feed.start()

    def close(self) -> None:
        """Append everything queued, then make it durable and seal the log."""
        self._stopping = True
        self._urgent.set()
        self._wake.set()
        self._feed.join()
        self._append_queued(force=True)  # anything a late caller slipped in after the feed stopped
        self.log.inner.close()

    def refusal(self) -> str | None:
        """Why new business must wait for the audit trail (the admission gate), or None."""
        inner = self.log.inner
        if inner.failure is not None:
            return f"audit trail unavailable: {inner.failure}"
        if inner.interruption is not None:
            return f"audit trail unavailable: {inner.interruption}"
        if not inner.writing and not self._stopping:
            return "audit trail unavailable: the audit writer has stopped"
        return None

    @property
    def queued(self) -> int:
        """Items handed over by the edges and not yet appended to the log."""
        return len(self._q)

    @property
    def feeding(self) -> bool:
        """The feed thread runs (False once closed)."""
        return self._feed.is_alive()

    def drain(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything queued before this call has been appended to the log."""
        if not self._feed.is_alive():
            return not self._q
        done = threading.Event()
        self._put(done.set, ())
        self._urgent.set()
        return done.wait(timeout)

    # -- the queue -------------------------------------------------------------------------

    def _put(self, fn: Callable[..., None], args: tuple) -> None:
        q = self._q
        q.append((fn, args))
        if self._idle:
            self._idle = False
            self._wake.set()
        elif len(q) >= self.max_queued and threading.current_thread() is not self._feed:
            self._urgent.set()
            self.drain(None)  # back-pressure: the log itself is not keeping up

    def _run(self) -> None:
        wake, urgent = self._wake, self._urgent
        while True:
            wake.wait()
            wake.clear()
            if self.linger and not urgent.is_set():
                urgent.wait(self.linger)  # let a few messages gather; a drain wakes us
            urgent.clear()
            while True:
                if not self._append_queued():
                    # a command is still being handled: look again a linger later (never woken
                    # per command: that would wake this thread for every order)
                    time.sleep(self.linger or 0.001)
                    continue
                self._idle = True
                if not self._q:
                    break
                self._idle = False
            if self._stopping:
                return

    def _append_queued(self, force: bool = False) -> bool:
        """Append what is queued, in order; ``False`` if it stopped at a command still being
        handled (and within its grace), which must not be sealed yet."""
        q = self._q
        command = self._command
        while q:
            fn, args = q[0]
            if fn == command and not force and not self._handled(args[0]):
                return False
            q.popleft()
            try:
                fn(*args)
            except Exception:  # the audit trail failing is loud, but never takes trading down
                log.exception("audit append failed: %s%r", getattr(fn, "__name__", fn), args[:2])
        return True

    def _handled(self, command: _Command) -> bool:
        return (
            command.done
            or self._stopping
            or time.monotonic() - command.opened >= self.command_grace
        )

    def append(self, kind: str, actor: str, payload: dict) -> None:
        self._put(self.log.inner.append_nowait, (kind, actor, payload))

    # -- sinks, one per edge ---------------------------------------------------------------

    def fix(self, kind: str, actor: str, text: str) -> None:
        """A FIX message in or out (``fix.in``/``fix.out``), kept exactly as on the wire (see
        :mod:`otc.audit.wire`), or one of QuickFIX's own log events (``fix.event``). An order
        message in opens a command (see the module docstring)."""
        if self.commands:
            thread = get_ident()
            open_ = self._open.get(thread)
            if kind == "fix.in":
                if open_ is not None:
                    self._end(thread, open_)
                if msg_type_of(text) in self.commands and RFQ_ACCEPTANCE not in text:
                    command = _Command(actor, text)
                    self._open[thread] = command
                    self._put(self._command, (command,))
                    return
            elif open_ is not None and self._join(thread, open_, (kind, actor, text)):
                return
        self._put(self._fix, (kind, actor, text))

    def end_command(self) -> None:
        """The command this thread opened has been handled: what follows is not part of it."""
        thread = get_ident()
        command = self._open.get(thread)
        if command is not None:
            self._end(thread, command)

    def _end(self, thread: int, command: _Command) -> None:
        self._open.pop(thread, None)
        command.done = True

    def _join(self, thread: int, command: _Command, part: tuple[str, str, Any]) -> bool:
        with self._seal:
            if command.sealed:
                self._open.pop(thread, None)
                return False
            command.parts.append(part)
            return True

    def _command(self, command: _Command) -> None:
        with self._seal:
            command.sealed = True
            parts = list(command.parts)
        described: list[tuple[str, str, Any]] = []
        for kind, actor, item in parts:
            if kind == "order.state":
                described += [("order.state", f"client:{o.owner}", _order_state(o)) for o in item]
            elif kind == "fix.event":
                described.append((kind, actor, {"text": readable(item)}))
            else:
                described.append((kind, actor, fix_record(item)))
        append = self.log.inner.append_nowait
        try:
            append(COMMAND, command.actor, command_payload(described))
        except ValueError:  # a part the log refuses takes only itself, as it would alone
            log.exception("command refused whole; recording its parts one by one")
            for kind, actor, payload in described:
                try:
                    append(kind, actor, payload)
                except ValueError:
                    log.exception("audit append failed: %s %s", kind, actor)

    def _fix(self, kind: str, actor: str, text: str) -> None:
        payload = {"text": readable(text)} if kind == "fix.event" else fix_record(text)
        self.log.inner.append_nowait(kind, actor, payload)

    def api_action(self, actor: str, method: str, path: str, status: int, peer: str) -> None:
        self.append(
            "api.action", actor, {"method": method, "path": path, "status": status, "peer": peer}
        )

    def auth_failure(self, **details) -> None:
        self.append("api.auth_failure", details.get("token_name") or "anonymous", details)

    def orders(self, events) -> None:
        updated = [e.order for e in events if isinstance(e, OrderUpdated)]
        if updated:  # orders are immutable snapshots: safe to describe later
            thread = get_ident()
            open_ = self._open.get(thread)
            if open_ is not None and self._join(thread, open_, ("order.state", "", updated)):
                return
            self._put(self._orders, (updated,))

    def _orders(self, orders) -> None:
        append = self.log.inner.append_nowait
        for o in orders:
            append("order.state", f"client:{o.owner}", _order_state(o))

    def negotiation(self, events) -> None:
        if events:  # events are frozen: safe to describe later, off the caller's thread
            self._put(self._negotiation, (tuple(events),))

    def _negotiation(self, events) -> None:
        append = self.log.inner.append_nowait
        for event in events:
            actor = (
                f"desk:{event.desk_id}"
                if hasattr(event, "desk_id")
                else f"client:{getattr(event, 'client_id', '?')}"
            )
            payload = event_json(event)
            payload["rfq_id"] = ev.rfq_id_of(event)
            append(f"otc.{type(event).__name__}", actor, payload)

    def session(self, comp_id: str, event: str, peer: str | None, text: str | None) -> None:
        self.append(f"session.{event}", f"session:{comp_id}", {"peer": peer, "text": text})

    def admin(self, kind: str, actor: str, payload: dict) -> None:
        self.append(kind, actor, to_jsonable(payload))


def _order_state(o) -> dict[str, Any]:
    """An ``order.state`` payload: the order's snapshot after a change."""
    return {
        "order_id": o.order_id,
        "cl_ord_id": o.cl_ord_id,
        "status": o.status.value,
        "symbol": o.instrument.symbol,
        "side": o.side.value,
        "quantity": to_jsonable(o.quantity),
        "price": to_jsonable(o.price),
        "cum_qty": to_jsonable(o.cum_qty),
        "avg_px": to_jsonable(o.avg_px),
    }
