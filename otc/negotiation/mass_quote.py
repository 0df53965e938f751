"""Reading a mass quote's answer: the engine answers each entry of a
:class:`~otc.negotiation.commands.SubmitQuotes` with exactly one QuoteAcknowledged or
DeskActionRejected, in order; the edges report those per entry."""

from __future__ import annotations

from collections.abc import Iterable

from otc.negotiation.commands import SubmitQuotes
from otc.negotiation.events import DeskActionRejected, Event, QuoteAcknowledged

QuoteOutcome = QuoteAcknowledged | DeskActionRejected


def quote_outcomes(command: SubmitQuotes, events: Iterable[Event]) -> list[QuoteOutcome]:
    """Each entry's outcome, in the entries' order. Timers that fired first never answer a desk
    this way, so the answers are exactly the desk's acknowledgements and refusals."""
    desk = command.desk_id
    out: list[QuoteOutcome] = [
        e
        for e in events
        if isinstance(e, QuoteAcknowledged | DeskActionRejected) and e.desk_id == desk
    ]
    if len(out) != len(command.quotes):
        raise ValueError(f"{len(out)} answers to a mass quote of {len(command.quotes)}")
    return out
