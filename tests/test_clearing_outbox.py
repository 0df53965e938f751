"""The clearing outbox state machine, backoff schedule and in-memory repository (pure)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from otc.clearing import outbox
from otc.clearing.codec import render
from otc.clearing.model import AckOutcome, ClearedTrade, ClearingAck
from otc.clearing.outbox import (
    ClearingState,
    DuplicateMessage,
    InMemoryOutbox,
    InvalidTransition,
    RetryPolicy,
    StaleMessage,
    StatusAnswer,
    list_exceptions,
)
from otc.clearing.samples import future_trade, option_trade

T0 = datetime(2026, 3, 2, 15, 0, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    base_delay=timedelta(seconds=1),
    factor=2,
    max_delay=timedelta(seconds=60),
    jitter=0.2,
    max_attempts=3,
    ack_timeout=timedelta(seconds=30),
    status_query_delay=timedelta(seconds=2),
)
ACK = ClearingAck(AckOutcome.ACCEPTED, "k", cleared=(ClearedTrade("CCP-1"), ClearedTrade("CCP-2")))


def _msg() -> outbox.ClearingMessage:
    return outbox.new_message(render(option_trade()), T0)


def _sent(msg=None, at=T0) -> outbox.ClearingMessage:
    return outbox.sending(msg or _msg(), at, POLICY)


# --- backoff ----------------------------------------------------------------------------------


def test_backoff_schedule_is_deterministic_for_a_seed() -> None:
    policy = replace(POLICY, max_attempts=12)
    rng_a, rng_b = random.Random(42), random.Random(42)
    run_a = [policy.delay(n, rng_a) for n in range(1, 11)]
    run_b = [policy.delay(n, rng_b) for n in range(1, 11)]
    assert run_a == run_b
    other = [policy.delay(n, random.Random(43)) for n in range(1, 11)]
    assert other != run_a
    # the schedule a seeded RNG yields, drawn the way the policy draws
    rng = random.Random(42)
    expected = []
    for n in range(1, 11):
        raw = min(60_000_000, 1_000_000 * 2 ** (n - 1))
        expected.append(timedelta(microseconds=round(raw * (1 + 0.2 * (2 * rng.random() - 1)))))
    assert run_a == expected


def test_backoff_grows_exponentially_within_jitter_bounds_and_caps() -> None:
    rng = random.Random(7)
    for n in range(1, 20):
        raw = min(60.0, 2.0 ** (n - 1))
        delay = POLICY.delay(n, rng).total_seconds()
        assert raw * 0.8 <= delay <= raw * 1.2, (n, delay)
    flat = replace(POLICY, jitter=0.0)
    assert [flat.delay(n, rng).total_seconds() for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="attempt"):
        POLICY.delay(0, random.Random(1))


# --- transitions ------------------------------------------------------------------------------


def test_happy_path_pending_sent_acked() -> None:
    msg = _msg()
    assert (msg.state, msg.next_attempt_at, msg.attempts) == (ClearingState.PENDING, T0, 0)
    assert msg.is_due(T0)
    sent = _sent(msg)
    assert (sent.state, sent.attempts, sent.ack_deadline) == (
        ClearingState.SENT,
        1,
        T0 + timedelta(seconds=30),
    )
    assert not sent.is_due(T0 + timedelta(seconds=29))
    done = outbox.acked(sent, ACK, T0 + timedelta(seconds=1))
    assert done.state is ClearingState.ACKED
    assert done.clearing_trade_ids == ("CCP-1", "CCP-2")
    assert done.revision == 2
    assert [state for _, state, _ in done.history] == [
        ClearingState.PENDING,
        ClearingState.SENT,
        ClearingState.ACKED,
    ]
    assert outbox.acked(done, ACK, T0) is done  # repeated ack: no-op
    assert not done.is_due(T0 + timedelta(days=1))


def test_reject_goes_to_exceptions_and_is_final() -> None:
    sent = _sent()
    rej = outbox.rejected(sent, "RejRsn=2: not eligible", T0)
    assert rej.state is ClearingState.REJECTED and rej.next_attempt_at is None
    assert not rej.is_due(T0 + timedelta(days=1))
    with pytest.raises(InvalidTransition, match="cannot apply send in state rejected"):
        outbox.sending(rej, T0, POLICY)
    with pytest.raises(InvalidTransition, match="cannot apply ack in state rejected"):
        outbox.acked(rej, ACK, T0)
    repo = InMemoryOutbox()
    repo.add(rej)
    [exc] = list_exceptions(repo)
    assert (exc.trade_id, exc.state, exc.reason, exc.attempts) == (
        "T-OPT-0001",
        ClearingState.REJECTED,
        "RejRsn=2: not eligible",
        1,
    )


def test_transport_error_backs_off_then_gives_up() -> None:
    rng = random.Random(5)
    expected = random.Random(5)
    msg = _msg()
    now = T0
    for attempt in range(1, 3):
        sent = outbox.sending(msg, now, POLICY)
        msg = outbox.transport_failed(sent, "connection refused", now, POLICY, rng)
        delay = POLICY.delay(attempt, expected)
        assert (msg.state, msg.attempts, msg.next_attempt_at) == (
            ClearingState.PENDING,
            attempt,
            now + delay,
        )
        assert not msg.is_due(now + delay - timedelta(microseconds=1))
        now = now + delay
        assert msg.is_due(now)
    failed = outbox.transport_failed(outbox.sending(msg, now, POLICY), "refused", now, POLICY, rng)
    assert (failed.state, failed.attempts, failed.last_error) == (
        ClearingState.FAILED,
        3,
        "refused",
    )
    repo = InMemoryOutbox()
    repo.add(failed)
    assert [e.state for e in list_exceptions(repo)] == [ClearingState.FAILED]
    requeued = outbox.requeue(failed, now)
    assert (requeued.state, requeued.attempts, requeued.next_attempt_at) == (
        ClearingState.PENDING,
        0,
        now,
    )
    assert outbox.acked(failed, ACK, now).state is ClearingState.ACKED  # late ack rescues


def test_timeout_makes_the_outcome_unknown_until_a_status_query() -> None:
    sent = _sent()
    unknown = outbox.timed_out(sent, "read timeout", T0, POLICY)
    assert (unknown.state, unknown.next_attempt_at) == (
        ClearingState.UNKNOWN,
        T0 + timedelta(seconds=2),
    )
    with pytest.raises(InvalidTransition, match="cannot apply send in state unknown"):
        outbox.sending(unknown, T0, POLICY)
    rng = random.Random(1)
    at = T0 + timedelta(seconds=2)
    # the clearinghouse has it and answered: take the answer, never resend
    assert outbox.status_answered(unknown, StatusAnswer.RECEIVED, at, POLICY, rng, ACK).state is (
        ClearingState.ACKED
    )
    nack = ClearingAck(AckOutcome.REJECTED, "k", reason="limit")
    refused = outbox.status_answered(unknown, StatusAnswer.RECEIVED, at, POLICY, rng, nack)
    assert (refused.state, refused.reject_reason) == (ClearingState.REJECTED, "limit")
    # it has it, no answer yet: wait for the ack again
    waiting = outbox.status_answered(unknown, StatusAnswer.RECEIVED, at, POLICY, rng)
    assert (waiting.state, waiting.ack_deadline) == (ClearingState.SENT, at + timedelta(seconds=30))
    # never arrived: resend now, same attempt count so far
    resend = outbox.status_answered(unknown, StatusAnswer.NOT_RECEIVED, at, POLICY, rng)
    assert (resend.state, resend.next_attempt_at, resend.attempts) == (
        ClearingState.PENDING,
        at,
        1,
    )
    # the query failed: ask again later, with backoff
    again = outbox.status_answered(unknown, StatusAnswer.ERROR, at, POLICY, random.Random(9))
    assert (again.state, again.status_queries) == (ClearingState.UNKNOWN, 1)
    assert again.next_attempt_at == at + POLICY.delay(1, random.Random(9))


def test_ack_deadline_passing_makes_a_sent_message_due() -> None:
    sent = _sent()
    assert not sent.is_due(T0 + timedelta(seconds=29, microseconds=999999))
    assert sent.is_due(T0 + timedelta(seconds=30))


def test_not_received_after_last_attempt_fails() -> None:
    msg = _msg()
    for _ in range(2):
        msg = outbox.transport_failed(
            outbox.sending(msg, T0, POLICY), "refused", T0, POLICY, random.Random(1)
        )
    sent = outbox.sending(msg, T0, POLICY)
    assert sent.attempts == 3
    unknown = outbox.timed_out(sent, "timeout", T0, POLICY)
    final = outbox.status_answered(unknown, StatusAnswer.NOT_RECEIVED, T0, POLICY, random.Random(1))
    assert final.state is ClearingState.FAILED


# --- repository -------------------------------------------------------------------------------


def test_in_memory_outbox_compare_and_set() -> None:
    repo = InMemoryOutbox()
    msg = _msg()
    repo.add(msg)
    with pytest.raises(DuplicateMessage):
        repo.add(msg)
    claim_a = outbox.sending(msg, T0, POLICY)
    claim_b = outbox.sending(msg, T0 + timedelta(seconds=1), POLICY)
    repo.update(claim_a)
    with pytest.raises(StaleMessage):
        repo.update(claim_b)  # a second dispatcher lost the race for the same row
    assert repo.get(msg.key) == claim_a
    repo.update(claim_a)  # writing what is stored is a no-op


def test_due_lists_only_rows_that_need_work_oldest_first() -> None:
    repo = InMemoryOutbox()
    early = outbox.new_message(render(future_trade()), T0)
    late = outbox.new_message(render(option_trade()), T0 + timedelta(seconds=5))
    repo.add(late)
    repo.add(early)
    assert [m.key for m in repo.due(T0, 10)] == [early.key]
    assert [m.key for m in repo.due(T0 + timedelta(seconds=5), 10)] == [early.key, late.key]
    assert len(repo.due(T0 + timedelta(seconds=5), 1)) == 1
    repo.update(outbox.acked(early, ACK, T0))
    assert [m.key for m in repo.due(T0 + timedelta(seconds=5), 10)] == [late.key]
