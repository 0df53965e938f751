"""Readiness: may this process take traffic? ``GET /ready`` answers from :class:`Readiness`, and a
monitor thread runs the same checks every few seconds, so a part that fails (disk, database,
audit writer, clearinghouse) is logged when it fails, whether or not anybody is probing.

Each check answers a :class:`Verdict`. A check turning red is logged once as a warning naming
it and why; turning green again, once at info. Checks never raise (an exception is a red verdict
naming it) and never wait long: what needs I/O (the database's ``SELECT 1``, the clearing
backlog's count) runs through a :class:`Probe`, which answers from a result younger than a second
and gives up waiting after a couple of seconds, so probes cannot hammer a database or hang.

Liveness (``GET /health``) is separate: a process that is alive but not ready is left running
and taken out of rotation, not restarted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine

from gateway.metrics import backlog

if TYPE_CHECKING:
    from gateway.audit.feed import Auditor
    from gateway.clearing import Clearing
    from gateway.store.writer import Writer

log = logging.getLogger("fixbridge.ready")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: str


def short(exc: BaseException) -> str:
    """An exception as one short line (a database error's driver message, not its SQL)."""
    text_ = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
    return text_ if len(text_) <= 200 else text_[:197] + "..."


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    value: T | None
    error: str | None  # None: ``value`` is the answer

    def get(self) -> T:
        if self.error is not None:
            raise ProbeFailed(self.error)
        assert self.value is not None
        return self.value


class ProbeFailed(RuntimeError):
    pass


class Probe(Generic[T]):
    """Runs ``fn`` on a helper thread, one call at a time, and caches its answer for ``ttl``
    seconds. A caller waits at most ``timeout`` seconds; a call still running after that is an
    error answer (the call itself carries on, and its result serves the next callers)."""

    def __init__(
        self, fn: Callable[[], T], ttl: float = 1.0, timeout: float = 2.0, name: str = "probe"
    ) -> None:
        self.fn = fn
        self.ttl = ttl
        self.timeout = timeout
        self.name = name
        self._lock = threading.Lock()
        self._answer: Answer[T] | None = None
        self._answered_at = 0.0
        self._running: threading.Event | None = None
        self._started_at = 0.0

    def __call__(self) -> Answer[T]:
        with self._lock:
            if self._answer is not None and time.monotonic() - self._answered_at < self.ttl:
                return self._answer
            done = self._running
            if done is None:
                done = self._running = threading.Event()
                self._started_at = time.monotonic()
                threading.Thread(
                    target=self._run, args=(done,), name=f"ready-{self.name}", daemon=True
                ).start()
            started = self._started_at
        if not done.wait(max(started + self.timeout - time.monotonic(), 0.0)):
            return Answer(None, f"no answer after {time.monotonic() - started:.1f} s")
        with self._lock:
            assert self._answer is not None
            return self._answer

    def _run(self, done: threading.Event) -> None:
        try:
            answer: Answer[T] = Answer(self.fn(), None)
        except Exception as exc:
            answer = Answer(None, short(exc))
        with self._lock:
            self._answer = answer
            self._answered_at = time.monotonic()
            self._running = None
        done.set()


class Stall:
    """Whether a part with work waiting has made no progress for ``limit`` seconds."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._progress: Any = None
        self._since = time.monotonic()

    def stuck_for(self, progress: Any, waiting: bool) -> float | None:
        """Seconds without progress while work waits, if over the limit; None otherwise."""
        now = time.monotonic()
        with self._lock:
            if progress != self._progress or not waiting:
                self._progress, self._since = progress, now
                return None
            idle = now - self._since
        return idle if idle >= self.limit else None


# --- the checks -----------------------------------------------------------------------------


class DatabaseCheck:
    """The database answers ``SELECT 1`` (and a SQLite database's file is still there)."""

    def __init__(self, database: Engine, ttl: float = 1.0, timeout: float = 2.0) -> None:
        self.database = database
        url = database.url
        self.path = (
            Path(url.database)
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            else None
        )
        self.probe: Probe[bool] = Probe(self._ping, ttl, timeout, "database")

    def _ping(self) -> bool:
        if self.path is not None and not self.path.exists():
            raise FileNotFoundError(f"the SQLite database {self.path} is gone")
        with self.database.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def __call__(self) -> Verdict:
        answer = self.probe()
        if answer.error is not None:
            return Verdict(False, f"database unreachable: {answer.error}")
        return Verdict(True, "SELECT 1 answered")


class WriterCheck:
    """The database writer's thread runs, its last batch committed, and it keeps up."""

    def __init__(self, writer: Writer, stall: float = 10.0) -> None:
        self.writer = writer
        self.stall = Stall(stall)

    def __call__(self) -> Verdict:
        w = self.writer
        queued = w.queued
        if not w.alive:
            return Verdict(False, f"the database writer has stopped ({queued} records queued)")
        if w.failing is not None:
            return Verdict(
                False,
                f"database writes are failing ({w.failing}); {queued} records queued, retrying",
            )
        idle = self.stall.stuck_for(w.batches, queued > 0)
        if idle is not None:
            return Verdict(False, f"no batch taken for {idle:.0f} s with {queued} records queued")
        return Verdict(True, f"{queued} records queued")


class AuditCheck:
    """The audit trail can record: its writer runs, has not failed (it fail-stops on an I/O
    error), and makes entries durable as they come."""

    def __init__(self, auditor: Auditor, stall: float = 10.0) -> None:
        self.auditor = auditor
        self.stall = Stall(stall)

    def __call__(self) -> Verdict:
        a = self.auditor
        failure = a.log.failure
        if failure is not None:
            return Verdict(
                False, f"the audit log has failed ({short(failure)}); nothing more is recorded"
            )
        interruption = a.log.interruption
        if interruption is not None:
            return Verdict(
                False,
                f"the audit trail cannot make entries durable ({short(interruption)}); "
                f"{a.queued + a.log.size - a.log.durable_size} entries held, retrying",
            )
        if not a.log.writing:
            return Verdict(False, "the audit log's writer has stopped")
        if not a.feeding:
            return Verdict(False, "the audit feed has stopped")
        durable = a.log.durable_size
        waiting = a.queued + a.log.size - durable
        idle = self.stall.stuck_for(durable, waiting > 0)
        if idle is not None:
            return Verdict(
                False, f"{waiting} audit entries waiting, none made durable for {idle:.0f} s"
            )
        return Verdict(True, f"{durable} entries durable, {waiting} waiting")


class ClearingCheck:
    """The clearing worker runs and the messages the clearinghouse has not answered yet are no
    more than ``max_backlog`` (``[clearing] max_backlog``). Clearing ``off``: always green."""

    def __init__(
        self, clearing: Clearing, counts: Probe[Mapping[str, int]], max_backlog: int
    ) -> None:
        self.clearing = clearing
        self.counts = counts
        self.max_backlog = max_backlog

    def __call__(self) -> Verdict:
        c = self.clearing
        if c.config.mode == "off":
            return Verdict(True, "clearing is off")
        if not c.running:
            return Verdict(False, "the clearing worker has stopped")
        answer = self.counts()
        if answer.error is not None:
            return Verdict(False, f"cannot count the clearing backlog: {answer.error}")
        waiting = backlog(answer.get())
        if waiting > self.max_backlog:
            why = f"; last delivery error: {c.last_error}" if c.last_error else ""
            return Verdict(
                False,
                f"{waiting} clearing messages unanswered, over the limit of "
                f"{self.max_backlog}{why}",
            )
        return Verdict(True, f"{waiting} clearing messages unanswered (limit {self.max_backlog})")


class VenueCheck:
    """The upstream venue's FIX session is logged on (``[venue] kind = "fix"`` only): while it
    is not, new orders are refused, so the gateway takes no order flow."""

    def __init__(self, state: Callable[[], tuple[bool, str]]) -> None:
        self.state = state

    def __call__(self) -> Verdict:
        logged_on, detail = self.state()
        return Verdict(logged_on, f"upstream session {detail}")


# --- the verdict ----------------------------------------------------------------------------


class Readiness:
    """Runs named checks, logs each one's changes, and (once started) re-runs them every
    ``interval`` seconds on the ``readiness`` thread."""

    def __init__(self, checks: Mapping[str, Callable[[], Verdict]], interval: float = 2.0):
        self.checks = dict(checks)
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, Verdict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)

    def evaluate(self) -> dict[str, Verdict]:
        """Run every check now; log the ones that changed."""
        verdicts = {}
        for name, check in self.checks.items():
            try:
                verdicts[name] = check()
            except Exception as exc:  # a broken check is a red one, never a crash
                verdicts[name] = Verdict(False, f"the check failed: {short(exc)}")
        with self._lock:
            for name, verdict in verdicts.items():
                before = self._last.get(name)
                if not verdict.ok and (before is None or before.ok):
                    log.warning("not ready: %s: %s", name, verdict.detail)
                elif verdict.ok and before is not None and not before.ok:
                    log.info("ready again: %s: %s", name, verdict.detail)
            self._last = verdicts
        return verdicts

    def failing(self, name: str) -> str | None:
        """The detail of check ``name``'s last verdict if it was red, else None (not run yet
        counts as green): a cheap read for the admission gate."""
        verdict = self._last.get(name)
        return None if verdict is None or verdict.ok else verdict.detail

    def last(self) -> dict[str, bool]:
        """Each check's verdict as of its last run (for the metrics)."""
        with self._lock:
            return {name: v.ok for name, v in self._last.items()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            self.evaluate()
            if self._stop.wait(self.interval):
                return
