"""RFQ, quote and counter state machines as transition tables.

Each machine is a pure function ``(current, target) -> target`` that raises
:class:`~otc.negotiation.errors.IllegalTransition` for an edge the table does not have, so a caller
that checks before writing never records an impossible history.

RFQ lifecycle (the straight ladder from New to Confirmed, plus the two edges a live negotiation
needs)::

    New -> Open -> Quoted <-> Negotiating -> PendingExecution -> Filled -> Confirmed
    Quoted/Negotiating -> Open            every live quote withdrawn or expired; desks may requote
    PendingExecution -> Quoted/Open       last-look reject or timeout: the client's order is
                                          rejected (ER 39=8), the RFQ lives on (FIX practice)
    any live state -> Expired | Cancelled | Rejected   (terminal)
"""

from __future__ import annotations

from enum import StrEnum

from otc.negotiation.errors import IllegalTransition


class RfqState(StrEnum):
    NEW = "New"
    OPEN = "Open"
    QUOTED = "Quoted"
    NEGOTIATING = "Negotiating"
    PENDING_EXECUTION = "PendingExecution"
    FILLED = "Filled"
    CONFIRMED = "Confirmed"
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"


class QuoteState(StrEnum):
    """A quote is Pending from submission until it is validated, sealed and shown to the client;
    the core does that within one command, but the state is emitted so persistence sees it."""

    PENDING = "Pending"
    ACTIVE = "Active"
    REPLACED = "Replaced"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    HIT = "Hit"


class CounterState(StrEnum):
    OPEN = "Open"
    ANSWERED = "Answered"  # the desk requoted
    DECLINED = "Declined"  # the desk said no
    LAPSED = "Lapsed"  # the countered quote or the RFQ went away first


S = RfqState
_RFQ_EDGES: dict[RfqState, frozenset[RfqState]] = {
    S.NEW: frozenset({S.OPEN, S.CANCELLED, S.REJECTED}),
    S.OPEN: frozenset({S.QUOTED, S.EXPIRED, S.CANCELLED, S.REJECTED}),
    S.QUOTED: frozenset(
        {S.NEGOTIATING, S.PENDING_EXECUTION, S.OPEN, S.EXPIRED, S.CANCELLED, S.REJECTED}
    ),
    S.NEGOTIATING: frozenset(
        {S.QUOTED, S.PENDING_EXECUTION, S.OPEN, S.EXPIRED, S.CANCELLED, S.REJECTED}
    ),
    S.PENDING_EXECUTION: frozenset({S.FILLED, S.QUOTED, S.OPEN, S.EXPIRED}),
    S.FILLED: frozenset({S.CONFIRMED}),
    S.CONFIRMED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}

Q = QuoteState
_QUOTE_EDGES: dict[QuoteState, frozenset[QuoteState]] = {
    Q.PENDING: frozenset({Q.ACTIVE}),
    Q.ACTIVE: frozenset({Q.REPLACED, Q.CANCELLED, Q.EXPIRED, Q.HIT}),
    Q.REPLACED: frozenset(),
    Q.CANCELLED: frozenset(),
    Q.EXPIRED: frozenset(),
    Q.HIT: frozenset(),
}

C = CounterState
_COUNTER_EDGES: dict[CounterState, frozenset[CounterState]] = {
    C.OPEN: frozenset({C.ANSWERED, C.DECLINED, C.LAPSED}),
    C.ANSWERED: frozenset(),
    C.DECLINED: frozenset(),
    C.LAPSED: frozenset(),
}

LIVE_RFQ_STATES = frozenset({S.OPEN, S.QUOTED, S.NEGOTIATING})
"""States in which desks may quote and the client may counter, pass or cancel."""

TERMINAL_RFQ_STATES = frozenset(s for s, edges in _RFQ_EDGES.items() if not edges)


def rfq_transition(current: RfqState, target: RfqState) -> RfqState:
    if target not in _RFQ_EDGES[current]:
        raise IllegalTransition("RFQ", current.value, target.value)
    return target


def quote_transition(current: QuoteState, target: QuoteState) -> QuoteState:
    if target not in _QUOTE_EDGES[current]:
        raise IllegalTransition("quote", current.value, target.value)
    return target


def counter_transition(current: CounterState, target: CounterState) -> CounterState:
    if target not in _COUNTER_EDGES[current]:
        raise IllegalTransition("counter", current.value, target.value)
    return target


def rfq_edges() -> dict[RfqState, frozenset[RfqState]]:
    """The RFQ transition table (a copy), for documentation and exhaustive tests."""
    return dict(_RFQ_EDGES)


def quote_edges() -> dict[QuoteState, frozenset[QuoteState]]:
    """The quote transition table (a copy)."""
    return dict(_QUOTE_EDGES)
