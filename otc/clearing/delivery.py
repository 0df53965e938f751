"""What a sender promises the dispatcher: the port between the outbox and a clearinghouse.

The dispatcher (:mod:`otc.clearing.dispatcher`) drives outbox rows through any
:class:`ClearingSender`; the senders themselves (file drop, HTTP(S)) are adapters in
``gateway/clearinghouse``. A sender reports what happened as a value:

============================  =================================================================
call                          what the sender returns
============================  =================================================================
``send(msg)``                 :class:`SendOutcome`: ``ANSWERED`` with the clearinghouse's ack,
                              ``DELIVERED`` (the answer comes later), ``TRANSPORT_ERROR`` when
                              the message certainly did not arrive (retried with backoff),
                              ``UNKNOWN`` when it may have arrived (asked about before any
                              resend), ``INVALID`` when the receiver refused the message itself
``query_status(key)``         :class:`StatusResult`: whether the message with idempotency key
                              ``key`` was received, with its ack if there is one
============================  =================================================================

Both carry the answer exactly as it arrived (:class:`WireAnswer`) when there was one, so the
audit trail can keep the clearinghouse's bytes, not only what the dispatcher made of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from otc.clearing.model import ClearingAck, OutgoingMessage
from otc.clearing.outbox import StatusAnswer


class SendResult(StrEnum):
    ANSWERED = "answered"  # synchronous ack or reject in ``ack``
    DELIVERED = "delivered"  # handed over; the answer comes later
    TRANSPORT_ERROR = "transport_error"  # certainly not received: retry with backoff
    UNKNOWN = "unknown"  # may have been received: ask before resending
    INVALID = "invalid"  # the receiver refused the message itself: do not retry


@dataclass(frozen=True, slots=True)
class WireAnswer:
    """The clearinghouse's answer exactly as received, for the audit trail: the body's bytes,
    and the transport's status code (HTTP) where there is one."""

    body: bytes
    status: int | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class SendOutcome:
    result: SendResult
    ack: ClearingAck | None = None
    detail: str = ""
    wire: WireAnswer | None = None  # the answer as received, if one came


@dataclass(frozen=True, slots=True)
class StatusResult:
    answer: StatusAnswer
    ack: ClearingAck | None = None
    detail: str = ""
    wire: WireAnswer | None = None  # the answer as received, if one came


class ClearingSender(Protocol):
    def send(self, msg: OutgoingMessage) -> SendOutcome: ...

    def query_status(self, key: str) -> StatusResult: ...
