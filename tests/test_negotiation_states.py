"""The RFQ, quote and counter transition tables, and the pure timer service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from otc.negotiation import (
    IllegalTransition,
    QuoteState,
    RejectReason,
    RfqState,
    TimerFired,
    TimerKey,
    TimerKind,
    TimerService,
)
from otc.negotiation.states import (
    TERMINAL_RFQ_STATES,
    CounterState,
    counter_transition,
    quote_edges,
    quote_transition,
    rfq_edges,
    rfq_transition,
)
from tests.test_negotiation_support import T0, at

S = RfqState
Q = QuoteState

HAPPY_PATH = [
    S.NEW,
    S.OPEN,
    S.QUOTED,
    S.NEGOTIATING,
    S.QUOTED,
    S.PENDING_EXECUTION,
    S.FILLED,
    S.CONFIRMED,
]


def test_rfq_happy_path_is_legal():
    state = HAPPY_PATH[0]
    for target in HAPPY_PATH[1:]:
        state = rfq_transition(state, target)
    assert state is S.CONFIRMED


@pytest.mark.parametrize(
    "current,target",
    [
        (S.NEGOTIATING, S.PENDING_EXECUTION),
        (S.PENDING_EXECUTION, S.QUOTED),  # last-look reject, other quotes live
        (S.PENDING_EXECUTION, S.OPEN),  # last-look reject, nothing live
        (S.PENDING_EXECUTION, S.EXPIRED),  # RFQ expired during the hold
        (S.QUOTED, S.OPEN),  # every quote withdrawn
        (S.OPEN, S.EXPIRED),
        (S.OPEN, S.REJECTED),
        (S.QUOTED, S.CANCELLED),
    ],
)
def test_documented_side_edges_are_legal(current, target):
    assert rfq_transition(current, target) is target


@pytest.mark.parametrize(
    "current,target",
    [
        (S.NEW, S.QUOTED),
        (S.OPEN, S.FILLED),
        (S.OPEN, S.NEGOTIATING),
        (S.QUOTED, S.FILLED),
        (S.PENDING_EXECUTION, S.CANCELLED),
        (S.FILLED, S.QUOTED),
        (S.FILLED, S.CANCELLED),
        (S.CONFIRMED, S.FILLED),
        (S.EXPIRED, S.OPEN),
        (S.CANCELLED, S.OPEN),
        (S.REJECTED, S.OPEN),
        (S.QUOTED, S.QUOTED),
    ],
)
def test_illegal_rfq_transitions_raise_with_a_reason(current, target):
    with pytest.raises(IllegalTransition) as info:
        rfq_transition(current, target)
    assert info.value.reason is RejectReason.ILLEGAL_TRANSITION
    assert current.value in info.value.text and target.value in info.value.text


def test_every_rfq_pair_is_either_in_the_table_or_refused():
    table = rfq_edges()
    for current in S:
        for target in S:
            if target in table[current]:
                assert rfq_transition(current, target) is target
            else:
                with pytest.raises(IllegalTransition):
                    rfq_transition(current, target)


def test_terminal_rfq_states_have_no_way_out():
    assert {S.CONFIRMED, S.EXPIRED, S.CANCELLED, S.REJECTED} == TERMINAL_RFQ_STATES


def test_quote_machine():
    assert quote_transition(Q.PENDING, Q.ACTIVE) is Q.ACTIVE
    for end in (Q.REPLACED, Q.CANCELLED, Q.EXPIRED, Q.HIT):
        assert quote_transition(Q.ACTIVE, end) is end
        assert quote_edges()[end] == frozenset()
        with pytest.raises(IllegalTransition):
            quote_transition(end, Q.ACTIVE)
    with pytest.raises(IllegalTransition, match="Pending to Hit"):
        quote_transition(Q.PENDING, Q.HIT)


def test_counter_machine():
    for end in (CounterState.ANSWERED, CounterState.DECLINED, CounterState.LAPSED):
        assert counter_transition(CounterState.OPEN, end) is end
        with pytest.raises(IllegalTransition):
            counter_transition(end, CounterState.OPEN)


# --- timers ---------------------------------------------------------------------------------


def key(kind: TimerKind, ref: str) -> TimerKey:
    return TimerKey(kind, ref)


def test_timers_fire_in_deadline_order_with_ties_in_scheduling_order():
    timers = TimerService()
    timers.schedule(key(TimerKind.QUOTE_EXPIRY, "q2"), at(5))
    timers.schedule(key(TimerKind.RFQ_EXPIRY, "r1"), at(3))
    timers.schedule(key(TimerKind.QUOTE_EXPIRY, "q1"), at(5))
    assert timers.due(at(2)) == []
    assert timers.next_due_at() == at(3)
    assert timers.due(at(10)) == [
        TimerFired(key(TimerKind.RFQ_EXPIRY, "r1"), at(3)),
        TimerFired(key(TimerKind.QUOTE_EXPIRY, "q2"), at(5)),
        TimerFired(key(TimerKind.QUOTE_EXPIRY, "q1"), at(5)),
    ]
    assert timers.due(at(10)) == [] and len(timers) == 0


def test_timer_reschedule_and_cancel_by_key():
    timers = TimerService()
    k = key(TimerKind.LAST_LOOK, "q1")
    timers.schedule(k, at(1))
    timers.schedule(k, at(4))  # moved, not duplicated
    assert timers.deadline(k) == at(4)
    assert timers.due(at(3)) == []
    assert timers.due(at(4)) == [TimerFired(k, at(4))]
    timers.schedule(k, at(6))
    assert timers.cancel(k) is True and timers.cancel(k) is False
    assert timers.due(at(100)) == [] and timers.next_due_at() is None


def test_timer_deadline_is_inclusive():
    timers = TimerService()
    k = key(TimerKind.RFQ_EXPIRY, "r")
    timers.schedule(k, at(1))
    assert timers.due(at(1) - timedelta(microseconds=1)) == []
    assert timers.due(at(1)) == [TimerFired(k, at(1))]


def test_timer_needs_aware_deadline():
    with pytest.raises(ValueError, match="timezone-aware"):
        TimerService().schedule(key(TimerKind.RFQ_EXPIRY, "r"), T0.replace(tzinfo=None))


def test_cancelled_timers_do_not_pile_up():
    timers = TimerService()
    for i in range(1000):
        k = key(TimerKind.QUOTE_EXPIRY, f"q{i}")
        timers.schedule(k, at(60 + i))
        timers.cancel(k)
    assert len(timers) == 0
    assert len(timers._heap) <= 64 + 1
    assert timers.pending() == {}
