"""The clearing outbox: one row per clearing message, written in the same transaction as its
trade, then driven to a final state by the dispatcher. Pure: events in, new row out.

States::

    PENDING --send--> SENT --ack--> ACKED
       ^               |  \\--reject--> REJECTED          (exceptions list, no auto retry)
       |               |--transport error--> PENDING (backoff) | FAILED after max attempts
       |               \\--timeout / no ack by deadline--> UNKNOWN
       |                                                      |
       +---- status query: "not received" -------------------+  "received" -> ACKED/REJECTED/SENT

A later version of a trade (a correction or bust) is added *held*: PENDING with no attempt
time, so it is never due, until :func:`sequenced` sees every earlier message of the trade acked
(then it is due at once) or one of them rejected (then it is rejected too, naming that one): the
clearinghouse never sees a replace or cancel of a report it does not hold.

A message whose delivery outcome is unknown is never resent blind: the clearinghouse is first
asked whether it holds the idempotency key. Every transition bumps ``revision`` so a repository
can refuse stale writes (two dispatchers racing on one row).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypedDict, Unpack

from otc.clearing.model import ClearingAck, ClearingFormat, OutgoingMessage


class ClearingState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    UNKNOWN = "unknown"
    ACKED = "acked"
    REJECTED = "rejected"
    FAILED = "failed"


TERMINAL = frozenset({ClearingState.ACKED, ClearingState.REJECTED, ClearingState.FAILED})
EXCEPTION_STATES = frozenset({ClearingState.REJECTED, ClearingState.FAILED})


class InvalidTransition(RuntimeError):
    """An event that makes no sense in the message's current state."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with symmetric jitter: attempt ``n`` waits
    ``min(max_delay, base_delay * factor**(n-1))`` scaled by a factor in ``1 ± jitter``."""

    base_delay: timedelta = timedelta(seconds=1)
    factor: int = 2
    max_delay: timedelta = timedelta(minutes=5)
    jitter: float = 0.2
    max_attempts: int = 10
    ack_timeout: timedelta = timedelta(seconds=60)
    status_query_delay: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.factor < 1 or self.max_attempts < 1 or self.base_delay <= timedelta(0):
            raise ValueError("factor and max_attempts must be >= 1, base_delay > 0")

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        """Wait before retry number ``attempt`` (1 = after the first failure)."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        base_us = self.base_delay // timedelta(microseconds=1)
        cap_us = self.max_delay // timedelta(microseconds=1)
        raw_us = min(cap_us, base_us * self.factor ** min(attempt - 1, 64))
        scale = 1 + self.jitter * (2 * rng.random() - 1)
        return timedelta(microseconds=round(raw_us * scale))


class StatusAnswer(StrEnum):
    """What the clearinghouse says when asked about an idempotency key."""

    NOT_RECEIVED = "not_received"
    RECEIVED = "received"  # got it, no final answer yet
    ERROR = "error"  # the query itself failed: ask again later


@dataclass(frozen=True, slots=True)
class ClearingMessage:
    """One outbox row. ``body`` is stored so every resend is byte-identical."""

    key: str
    trade_id: str
    fmt: ClearingFormat
    body: bytes
    state: ClearingState
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0
    status_queries: int = 0
    ack_deadline: datetime | None = None
    last_error: str | None = None
    reject_reason: str | None = None
    clearing_trade_ids: tuple[str, ...] = ()
    revision: int = 0
    history: tuple[tuple[datetime, ClearingState, str], ...] = field(default=(), repr=False)

    @property
    def outgoing(self) -> OutgoingMessage:
        return OutgoingMessage(self.key, self.trade_id, self.fmt, self.body)

    def is_due(self, now: datetime) -> bool:
        if self.state in (ClearingState.PENDING, ClearingState.UNKNOWN):
            return self.next_attempt_at is not None and self.next_attempt_at <= now
        if self.state is ClearingState.SENT:
            return self.ack_deadline is not None and self.ack_deadline <= now
        return False


class _Changes(TypedDict, total=False):
    """The fields a move may change besides state, time, revision and history."""

    attempts: int
    status_queries: int
    next_attempt_at: datetime | None
    ack_deadline: datetime | None
    last_error: str | None
    reject_reason: str | None
    clearing_trade_ids: tuple[str, ...]


def _move(
    msg: ClearingMessage,
    state: ClearingState,
    now: datetime,
    note: str,
    **changes: Unpack[_Changes],
) -> ClearingMessage:
    return replace(
        msg,
        state=state,
        updated_at=now,
        revision=msg.revision + 1,
        history=(*msg.history, (now, state, note)),
        **changes,
    )


def _require(msg: ClearingMessage, event: str, *states: ClearingState) -> None:
    if msg.state not in states:
        allowed = ", ".join(s.value for s in states)
        raise InvalidTransition(
            f"{msg.key}: cannot apply {event} in state {msg.state.value} (needs {allowed})"
        )


def new_message(out: OutgoingMessage, now: datetime) -> ClearingMessage:
    """The row to insert together with the trade: due at once."""
    return ClearingMessage(
        key=out.key,
        trade_id=out.trade_id,
        fmt=out.fmt,
        body=out.body,
        state=ClearingState.PENDING,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        history=((now, ClearingState.PENDING, "captured"),),
    )


HELD_NOTE = "held behind the trade's earlier clearing messages"


def hold(msg: ClearingMessage) -> ClearingMessage:
    """A new row that must wait for its predecessors (never due until released)."""
    _require(msg, "hold", ClearingState.PENDING)
    return replace(
        msg,
        next_attempt_at=None,
        history=(*msg.history[:-1], (msg.created_at, ClearingState.PENDING, HELD_NOTE)),
    )


def is_held(msg: ClearingMessage) -> bool:
    return msg.state is ClearingState.PENDING and msg.next_attempt_at is None


def sequenced(
    msg: ClearingMessage, earlier: list[ClearingMessage], now: datetime
) -> ClearingMessage:
    """A held ``msg`` released once every ``earlier`` message of its trade is acked, rejected
    if one of them was rejected, else unchanged (still waiting)."""
    if not is_held(msg):
        return msg
    for prior in earlier:
        if prior.state is ClearingState.REJECTED:
            reason = f"previous version {prior.key} was rejected: {prior.reject_reason}"
            return rejected(msg, reason, now)
    if all(prior.state is ClearingState.ACKED for prior in earlier):
        return _move(
            msg,
            ClearingState.PENDING,
            now,
            "released: previous versions acked",
            next_attempt_at=now,
        )
    return msg


def sending(msg: ClearingMessage, now: datetime, policy: RetryPolicy) -> ClearingMessage:
    """Claim the row for one delivery attempt (persist this before touching the network)."""
    _require(msg, "send", ClearingState.PENDING)
    return _move(
        msg,
        ClearingState.SENT,
        now,
        f"attempt {msg.attempts + 1}",
        attempts=msg.attempts + 1,
        next_attempt_at=None,
        ack_deadline=now + policy.ack_timeout,
    )


def delivered(msg: ClearingMessage, now: datetime) -> ClearingMessage:
    """Transport accepted the message (e.g. file dropped); the ack will come later."""
    _require(msg, "delivered", ClearingState.SENT)
    return replace(msg, updated_at=now, revision=msg.revision + 1, last_error=None)


def acked(msg: ClearingMessage, ack: ClearingAck, now: datetime) -> ClearingMessage:
    """The clearinghouse accepted the trade. A late ack also rescues a FAILED row."""
    if msg.state is ClearingState.ACKED:
        return msg
    _require(
        msg,
        "ack",
        ClearingState.PENDING,
        ClearingState.SENT,
        ClearingState.UNKNOWN,
        ClearingState.FAILED,
    )
    return _move(
        msg,
        ClearingState.ACKED,
        now,
        "acked",
        next_attempt_at=None,
        ack_deadline=None,
        last_error=None,
        clearing_trade_ids=tuple(c.clearing_trade_id for c in ack.cleared),
    )


def rejected(msg: ClearingMessage, reason: str, now: datetime) -> ClearingMessage:
    """A business reject: goes to the exceptions list and is never retried automatically."""
    if msg.state is ClearingState.REJECTED:
        return msg
    _require(
        msg,
        "reject",
        ClearingState.PENDING,
        ClearingState.SENT,
        ClearingState.UNKNOWN,
        ClearingState.FAILED,
    )
    return _move(
        msg,
        ClearingState.REJECTED,
        now,
        f"rejected: {reason}",
        next_attempt_at=None,
        ack_deadline=None,
        reject_reason=reason,
    )


def answered(msg: ClearingMessage, ack: ClearingAck, now: datetime) -> ClearingMessage:
    return acked(msg, ack, now) if ack.accepted else rejected(msg, ack.reason or "rejected", now)


def transport_failed(
    msg: ClearingMessage, error: str, now: datetime, policy: RetryPolicy, rng: random.Random
) -> ClearingMessage:
    """The message certainly did not arrive (e.g. connection refused): retry after backoff."""
    _require(msg, "transport error", ClearingState.SENT)
    if msg.attempts >= policy.max_attempts:
        return _move(
            msg,
            ClearingState.FAILED,
            now,
            f"gave up: {error}",
            next_attempt_at=None,
            ack_deadline=None,
            last_error=error,
        )
    return _move(
        msg,
        ClearingState.PENDING,
        now,
        f"retry: {error}",
        next_attempt_at=now + policy.delay(msg.attempts, rng),
        ack_deadline=None,
        last_error=error,
    )


def timed_out(
    msg: ClearingMessage, error: str, now: datetime, policy: RetryPolicy
) -> ClearingMessage:
    """No answer (request timeout, dropped connection, or ack deadline passed): the
    clearinghouse may or may not hold the message, so ask before doing anything else."""
    _require(msg, "timeout", ClearingState.SENT)
    return _move(
        msg,
        ClearingState.UNKNOWN,
        now,
        f"unknown: {error}",
        next_attempt_at=now + policy.status_query_delay,
        ack_deadline=None,
        last_error=error,
    )


def status_answered(
    msg: ClearingMessage,
    answer: StatusAnswer,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
    ack: ClearingAck | None = None,
) -> ClearingMessage:
    """Resolve UNKNOWN with the clearinghouse's answer about our key."""
    _require(msg, "status answer", ClearingState.UNKNOWN)
    if ack is not None:
        return answered(msg, ack, now)
    if answer is StatusAnswer.RECEIVED:
        return _move(
            msg,
            ClearingState.SENT,
            now,
            "received, awaiting ack",
            ack_deadline=now + policy.ack_timeout,
            next_attempt_at=None,
        )
    if answer is StatusAnswer.NOT_RECEIVED:
        if msg.attempts >= policy.max_attempts:
            return _move(
                msg,
                ClearingState.FAILED,
                now,
                "not received, out of attempts",
                next_attempt_at=None,
            )
        return _move(msg, ClearingState.PENDING, now, "not received: resend", next_attempt_at=now)
    queries = msg.status_queries + 1
    return _move(
        msg,
        ClearingState.UNKNOWN,
        now,
        "status query failed",
        status_queries=queries,
        next_attempt_at=now + policy.delay(queries, rng),
    )


def requeue(msg: ClearingMessage, now: datetime) -> ClearingMessage:
    """Operator action: try a FAILED message again (rejects need a new trade version)."""
    _require(msg, "requeue", ClearingState.FAILED)
    return _move(
        msg,
        ClearingState.PENDING,
        now,
        "requeued by operator",
        attempts=0,
        status_queries=0,
        next_attempt_at=now,
    )


# --- storage ---------------------------------------------------------------------------------


class DuplicateMessage(RuntimeError):
    """A message with this idempotency key is already in the outbox."""


class StaleMessage(RuntimeError):
    """Someone else updated the row since it was read (optimistic concurrency)."""


class OutboxRepository(Protocol):
    """What the outbox needs from storage. The lead's SQLModel implementation must ``add``
    inside the transaction that inserts the trade, and make ``update`` a compare-and-set on
    ``revision`` (``UPDATE ... WHERE key = :key AND revision = :revision - 1``)."""

    def add(self, msg: ClearingMessage) -> None: ...

    def get(self, key: str) -> ClearingMessage | None: ...

    def update(self, msg: ClearingMessage) -> None: ...

    def due(self, now: datetime, limit: int) -> list[ClearingMessage]: ...

    def in_states(self, states: Collection[ClearingState]) -> list[ClearingMessage]: ...


class InMemoryOutbox:
    """Reference implementation of :class:`OutboxRepository` (tests, demo); thread-safe."""

    def __init__(self) -> None:
        self._rows: dict[str, ClearingMessage] = {}
        self._lock = threading.Lock()

    def add(self, msg: ClearingMessage) -> None:
        with self._lock:
            if msg.key in self._rows:
                raise DuplicateMessage(f"clearing message {msg.key} already queued")
            self._rows[msg.key] = msg

    def get(self, key: str) -> ClearingMessage | None:
        with self._lock:
            return self._rows.get(key)

    def update(self, msg: ClearingMessage) -> None:
        with self._lock:
            stored = self._rows.get(msg.key)
            if stored is None:
                raise KeyError(f"clearing message {msg.key} not in outbox")
            if msg == stored:
                return  # no-op transition (e.g. a repeated ack)
            if stored.revision != msg.revision - 1:
                raise StaleMessage(
                    f"{msg.key}: stored revision {stored.revision}, update is {msg.revision}"
                )
            self._rows[msg.key] = msg

    def due(self, now: datetime, limit: int) -> list[ClearingMessage]:
        with self._lock:
            due = [m for m in self._rows.values() if m.is_due(now)]
        due.sort(key=lambda m: (m.next_attempt_at or m.ack_deadline or now, m.key))
        return due[:limit]

    def in_states(self, states: Collection[ClearingState]) -> list[ClearingMessage]:
        with self._lock:
            rows = [m for m in self._rows.values() if m.state in states]
        return sorted(rows, key=lambda m: (m.created_at, m.key))


@dataclass(frozen=True, slots=True)
class ClearingException:
    """One row of the exceptions list the API exposes."""

    key: str
    trade_id: str
    fmt: ClearingFormat
    state: ClearingState
    reason: str
    attempts: int
    updated_at: datetime


def list_exceptions(repo: OutboxRepository) -> list[ClearingException]:
    """Rejected and given-up messages, oldest first: they need a human."""
    return [
        ClearingException(
            m.key,
            m.trade_id,
            m.fmt,
            m.state,
            m.reject_reason or m.last_error or m.state.value,
            m.attempts,
            m.updated_at,
        )
        for m in repo.in_states(EXCEPTION_STATES)
    ]
