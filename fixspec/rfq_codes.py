"""FIX 4.4 code sets of the quoting messages: QuoteRequest (R), Quote (S), QuoteResponse (AJ),
QuoteRequestReject (AG) and QuoteStatusReport (AI).

They sit beside :mod:`fixspec.messages` (whose enumerations serve the order messages) because
both sides use them: the RFQ adapter in ``gateway/fix`` reads and writes them, and the
negotiation core speaks them as it speaks ``OrdRejReason``: an RFQ is indicative or tradeable
(QuoteType), and the events it emits carry the status and reject codes the client will see.
"""

from __future__ import annotations

from enum import StrEnum


class QuoteType(StrEnum):
    """QuoteType(537): an indicative quote cannot be accepted; a tradeable one can."""

    INDICATIVE = "0"
    TRADEABLE = "1"


class QuoteRespType(StrEnum):
    """QuoteRespType(694): what a QuoteResponse says about a quote."""

    HIT_LIFT = "1"
    COUNTER = "2"
    EXPIRED = "3"
    COVER = "4"
    DONE_AWAY = "5"
    PASS = "6"


class QuoteRequestRejectReason(StrEnum):
    """QuoteRequestRejectReason(658) on a QuoteRequestReject (AG)."""

    UNKNOWN_SYMBOL = "1"
    EXCHANGE_CLOSED = "2"
    EXCEEDS_LIMIT = "3"
    TOO_LATE_TO_ENTER = "4"
    INVALID_PRICE = "5"
    NOT_AUTHORIZED = "6"
    NO_MATCH_FOR_INQUIRY = "7"
    NO_MARKET_FOR_INSTRUMENT = "8"
    NO_INVENTORY = "9"
    PASS = "10"
    OTHER = "99"


class QuoteStatus(StrEnum):
    """QuoteStatus(297) as FIX 4.4 defines it (QuoteStatusReport AI, QuoteAcknowledgement)."""

    ACCEPTED = "0"
    CANCELED_FOR_SYMBOL = "1"
    CANCELED_FOR_SECURITY_TYPE = "2"
    CANCELED_FOR_UNDERLYING = "3"
    CANCELED_ALL = "4"
    REJECTED = "5"
    REMOVED_FROM_MARKET = "6"
    EXPIRED = "7"
    QUERY = "8"
    QUOTE_NOT_FOUND = "9"
    PENDING = "10"
    PASS = "11"
