"""OTC RFQ negotiation core: multi-dealer RFQs, signed quotes, counters, last look and
exactly-once trade capture, as pure state machines (commands and time in, events out).

Wire it with :class:`NegotiationEngine`: build commands from FIX / HTTP input, call
``engine.handle(command, now)``, route the returned events by their ``audience``, call
``engine.tick(now)`` at ``engine.next_deadline()``, and ``engine.archive(rfq_id)`` once a finished
RFQ's history is persisted.
"""

from fixspec.rfq_codes import QuoteRequestRejectReason, QuoteRespType, QuoteStatus, QuoteType
from otc.negotiation.book import EngineSnapshot
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
    LegPrice,
    LegRequest,
    MassQuoteEntry,
    PullCause,
    PullDeskQuotes,
    QuoteTerms,
    RejectLastLook,
    ReplaceQuote,
    ResetDeskProtection,
    SubmitQuote,
    SubmitQuotes,
    SubmitRfq,
)
from otc.negotiation.engine import (
    NegotiationConfig,
    NegotiationEngine,
    QuoteView,
    RfqView,
)
from otc.negotiation.errors import (
    IllegalTransition,
    NegotiationError,
    RejectReason,
    ord_rej_reason,
    quote_request_reject_reason,
    quote_status,
)
from otc.negotiation.events import REJECTIONS, Audience, Event, LastLookOutcome
from otc.negotiation.ids import IdKind, sequential_ids
from otc.negotiation.model import (
    Acceptance,
    AcceptVia,
    Counter,
    Firmness,
    LegQuote,
    Quote,
    Rfq,
    RfqLeg,
    SealedQuote,
)
from otc.negotiation.protection import DeskGuard, ProtectionLimits
from otc.negotiation.routing import RoutingConfigError, RoutingTable
from otc.negotiation.signing import (
    DeskKeyring,
    canonical_quote_bytes,
    generate_desk_key,
    quote_hash,
    seal_quote,
    sign_quote,
    verify_quote,
)
from otc.negotiation.states import CounterState, QuoteState, RfqState
from otc.negotiation.stats import DeskLastLookStats, last_look_stats
from otc.negotiation.timers import TimerFired, TimerKey, TimerKind, TimerService

__all__ = [
    "ProtectionLimits",
    "DeskGuard",
    "ResetDeskProtection",
    "PullDeskQuotes",
    "PullCause",
    "REJECTIONS",
    "AcceptQuote",
    "AcceptVia",
    "Acceptance",
    "AnswerCounter",
    "Audience",
    "CancelAllQuotes",
    "CancelQuote",
    "CancelRfq",
    "ClientPass",
    "Command",
    "ConfirmLastLook",
    "ConfirmTrade",
    "Counter",
    "CounterQuote",
    "CounterState",
    "DeskKeyring",
    "DeskLastLookStats",
    "DeskPass",
    "EngineSnapshot",
    "Event",
    "Firmness",
    "IdKind",
    "IllegalTransition",
    "LastLookOutcome",
    "LegPrice",
    "LegQuote",
    "LegRequest",
    "MassQuoteEntry",
    "NegotiationConfig",
    "NegotiationEngine",
    "NegotiationError",
    "Quote",
    "QuoteRequestRejectReason",
    "QuoteRespType",
    "QuoteState",
    "QuoteStatus",
    "QuoteTerms",
    "QuoteType",
    "QuoteView",
    "RejectLastLook",
    "RejectReason",
    "ReplaceQuote",
    "Rfq",
    "RfqLeg",
    "RfqState",
    "RfqView",
    "RoutingConfigError",
    "RoutingTable",
    "SealedQuote",
    "SubmitQuote",
    "SubmitQuotes",
    "SubmitRfq",
    "TimerFired",
    "TimerKey",
    "TimerKind",
    "TimerService",
    "canonical_quote_bytes",
    "generate_desk_key",
    "last_look_stats",
    "ord_rej_reason",
    "quote_hash",
    "quote_request_reject_reason",
    "quote_status",
    "seal_quote",
    "sequential_ids",
    "sign_quote",
    "verify_quote",
]
