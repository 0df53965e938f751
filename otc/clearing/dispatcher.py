"""Drives outbox rows through a sender: where the state machine meets the ports that do I/O.

Each step persists the claim (PENDING -> SENT) before sending, so a crash mid-send leaves a
SENT row whose ack deadline expires into UNKNOWN, which is resolved by a status query, never by
a blind resend. Several dispatchers may run: the repository's compare-and-set on ``revision``
lets exactly one of them claim a row.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from fixspec.messages import utcnow
from otc.clearing import outbox
from otc.clearing.codec import render
from otc.clearing.delivery import ClearingSender, SendResult
from otc.clearing.model import ClearingAck
from otc.clearing.outbox import (
    ClearingMessage,
    ClearingState,
    OutboxRepository,
    RetryPolicy,
    StaleMessage,
)
from otc.trades import TradeCapture


def enqueue(
    repo: OutboxRepository,
    trade: TradeCapture,
    now: datetime,
    version: int = 1,
    *,
    cancel: bool = False,
    held: bool = False,
) -> ClearingMessage:
    """Render and add the outbox row for ``trade``; call inside the trade's transaction. A
    ``held`` row (a later version) waits until the trade's earlier messages are acked."""
    msg = outbox.new_message(render(trade, version, cancel=cancel), now)
    if held:
        msg = outbox.hold(msg)
    repo.add(msg)
    return msg


class ClearingDispatcher:
    def __init__(
        self,
        repo: OutboxRepository,
        sender: ClearingSender,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.sender = sender
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.clock = clock

    def _save(self, msg: ClearingMessage) -> bool:
        try:
            self.repo.update(msg)
        except StaleMessage:
            return False
        return True

    def run_once(self, limit: int = 100) -> list[ClearingMessage]:
        """Process every due row once; returns the rows as they ended up."""
        results = []
        for msg in self.repo.due(self.clock(), limit):
            results.append(self.step(msg))
        return results

    def step(self, msg: ClearingMessage) -> ClearingMessage:
        now = self.clock()
        if msg.state is ClearingState.SENT:  # ack deadline passed
            msg = outbox.timed_out(msg, "no ack before deadline", now, self.policy)
            if not self._save(msg):
                return msg
        if msg.state is ClearingState.UNKNOWN:
            if msg.next_attempt_at is not None and msg.next_attempt_at > now:
                return msg
            msg = self._resolve_unknown(msg, now)
            if msg.state is not ClearingState.PENDING:
                return msg
        if msg.state is ClearingState.PENDING:
            return self._send(msg, now)
        return msg

    def _resolve_unknown(self, msg: ClearingMessage, now: datetime) -> ClearingMessage:
        status = self.sender.query_status(msg.key)
        resolved = outbox.status_answered(
            msg, status.answer, now, self.policy, self.rng, status.ack
        )
        self._save(resolved)
        return resolved

    def _send(self, msg: ClearingMessage, now: datetime) -> ClearingMessage:
        claimed = outbox.sending(msg, now, self.policy)
        if not self._save(claimed):
            return msg  # another dispatcher got it
        outcome = self.sender.send(claimed.outgoing)
        done = self.clock()
        if outcome.result is SendResult.ANSWERED and outcome.ack is not None:
            final = outbox.answered(claimed, outcome.ack, done)
        elif outcome.result is SendResult.DELIVERED:
            final = outbox.delivered(claimed, done)
        elif outcome.result is SendResult.INVALID:
            final = outbox.rejected(claimed, outcome.detail, done)
        elif outcome.result is SendResult.TRANSPORT_ERROR:
            final = outbox.transport_failed(claimed, outcome.detail, done, self.policy, self.rng)
        else:
            final = outbox.timed_out(claimed, outcome.detail, done, self.policy)
        self._save(final)
        return final

    def apply_ack(self, ack: ClearingAck) -> ClearingMessage | None:
        """An asynchronous answer (file-drop inbox): matched on ``ack.reference`` (our key)."""
        msg = self.repo.get(ack.reference) if ack.reference else None
        if msg is None:
            return None
        final = outbox.answered(msg, ack, self.clock())
        self._save(final)
        return final
