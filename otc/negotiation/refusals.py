"""The single event that answers a refused command, per kind of sender.

Client QuoteRequests get QuoteRequestRejected (658), acceptances AcceptanceRejected (103/297),
other client messages ClientActionRejected, desk commands DeskActionRejected (the HTTP edge picks
the status), post-trade ConfirmTrade a TradeConfirmRejected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from otc.negotiation.commands import (
    AcceptQuote,
    AnswerCounter,
    CancelAllQuotes,
    CancelQuote,
    CancelRfq,
    ClientPass,
    Command,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskPass,
    PullDeskQuotes,
    RejectLastLook,
    ReplaceQuote,
    ResetDeskProtection,
    SubmitQuote,
    SubmitQuotes,
    SubmitRfq,
)
from otc.negotiation.errors import (
    NegotiationError,
    ord_rej_reason,
    quote_request_reject_reason,
    quote_status,
)
from otc.negotiation.events import (
    AcceptanceRejected,
    ClientActionRejected,
    DeskActionRejected,
    Event,
    QuoteRequestRejected,
    TradeConfirmRejected,
)
from otc.negotiation.model import Quote

ACTION_NAMES: dict[type, str] = {
    CancelRfq: "cancel_rfq",
    ClientPass: "pass",
    CounterQuote: "counter",
    SubmitQuote: "submit_quote",
    SubmitQuotes: "submit_quotes",
    ReplaceQuote: "replace_quote",
    CancelQuote: "cancel_quote",
    CancelAllQuotes: "cancel_all_quotes",
    DeskPass: "desk_pass",
    AnswerCounter: "answer_counter",
    ConfirmLastLook: "confirm_last_look",
    RejectLastLook: "reject_last_look",
    PullDeskQuotes: "pull_quotes",
    ResetDeskProtection: "reset_protection",
}


def refusal_event(
    command: Command,
    err: NegotiationError,
    now: datetime,
    quote_of: Callable[[object], Quote | None],
) -> Event:
    """The one event answering a refused ``command``; ``quote_of`` looks up a known quote so
    the refusal can name its RFQ (only to the quote's own client or desk)."""
    reason, text = err.reason, err.text
    if isinstance(command, SubmitRfq):
        return QuoteRequestRejected(
            client_id=command.client_id,
            quote_req_id=command.quote_req_id,
            rfq_id=None,
            reason=reason,
            fix_reason=quote_request_reject_reason(reason),
            text=text,
            at=now,
        )
    if isinstance(command, AcceptQuote):
        known = quote_of(command.quote_id)
        visible = known is not None and known.client_id == command.client_id
        return AcceptanceRejected(
            client_id=command.client_id,
            rfq_id=known.rfq_id if visible and known else None,
            quote_id=command.quote_id,
            client_ref=command.client_ref,
            via=command.via,
            reason=reason,
            ord_rej_reason=ord_rej_reason(reason),
            quote_status=quote_status(reason),
            text=text,
            at=now,
        )
    if isinstance(command, CancelRfq | ClientPass | CounterQuote):
        return ClientActionRejected(
            client_id=command.client_id,
            action=ACTION_NAMES[type(command)],
            rfq_id=command.rfq_id,
            quote_id=getattr(command, "quote_id", None),
            client_ref=getattr(command, "quote_resp_id", None),
            reason=reason,
            quote_status=quote_status(reason),
            text=text,
            at=now,
        )
    if isinstance(command, ConfirmTrade):
        return TradeConfirmRejected(command.trade_id, reason, text, now)
    rfq_id = getattr(command, "rfq_id", None)
    own = quote_of(getattr(command, "quote_id", None))
    if rfq_id is None and own is not None and own.desk_id == command.desk_id:
        rfq_id = own.rfq_id
    return DeskActionRejected(
        desk_id=command.desk_id,
        action=ACTION_NAMES[type(command)],
        rfq_id=rfq_id,
        quote_id=getattr(command, "quote_id", None),
        reason=reason,
        text=text,
        at=now,
    )
