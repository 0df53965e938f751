"""Corrections and busts of captured trades: a trade's version chain. Pure: values in, values out.

A captured trade is version 1. Each correction (new price, quantity or account) or bust
(cancellation) is the next version, referring to the report it replaces, so the client's
TradeCaptureReport (TradeReportRefID 572), the clearing message (RptRefID) and the audit trail can
all name their predecessor. With a second approver a change is first *proposed* by one admin and
takes effect only when a different admin approves it; one proposal per trade at a time.

Theory of operation::

    latest APPLIED version --propose--> PROPOSED --approve (other admin)--> APPLIED (new latest)
                           |                    \\--decline (any admin)--> DECLINED (dropped)
                           \\--apply (no second approver)----------------> APPLIED (new latest)

A bust is final: nothing may follow it. Multi-leg packages may be busted or re-booked to another
account, not re-priced (which leg would carry the change is not ours to guess).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from otc.trades import Allocation, TradeCapture


class VersionKind(StrEnum):
    NEW = "new"
    CORRECTION = "correction"
    BUST = "bust"
    ALLOCATION = "allocation"


class VersionState(StrEnum):
    PROPOSED = "proposed"
    APPLIED = "applied"
    DECLINED = "declined"  # a proposal an admin turned down; it leaves the chain


class RefusalReason(StrEnum):
    """Why a change was refused; the HTTP edge maps each to a status."""

    UNKNOWN_TRADE = "unknown trade"
    TRADE_BUSTED = "trade busted"
    NOTHING_CHANGED = "nothing changed"
    BAD_AMOUNT = "bad amount"
    MULTILEG_ECONOMICS = "multi-leg economics"
    NOT_CORRECTABLE_IN_CLEARING = "not correctable in clearing"
    PROPOSAL_PENDING = "proposal pending"
    NO_PROPOSAL = "no proposal"
    SAME_APPROVER = "same approver"
    ALLOCATION_MISMATCH = "allocation mismatch"


class CorrectionRefused(Exception):
    def __init__(self, reason: RefusalReason, text: str) -> None:
        super().__init__(f"{reason.value}: {text}")
        self.reason = reason
        self.text = text


@dataclass(frozen=True, slots=True)
class Amendment:
    """What a correction changes; None keeps the current value."""

    quantity: Decimal | None = None
    price: Decimal | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class TradeVersion:
    """One link of a trade's chain. ``trade`` is the trade as this version states it (a bust
    keeps the economics it cancels); ``ref_report_id`` is the predecessor's ``report_id``."""

    trade_id: str
    version: int
    kind: VersionKind
    state: VersionState
    report_id: str
    ref_report_id: str | None
    trade: TradeCapture
    reason: str
    proposed_by: str
    proposed_at: datetime
    approved_by: str | None = None
    applied_at: datetime | None = None

    @property
    def busted(self) -> bool:
        return self.kind is VersionKind.BUST and self.state is VersionState.APPLIED


def report_id(trade_id: str, version: int) -> str:
    """TradeReportID(571) of a version: the trade id for the capture (as its first
    TradeCaptureReport said), ``<trade id>-v<n>`` after."""
    if version < 1:
        raise ValueError(f"trade version must be >= 1, got {version}")
    return trade_id if version == 1 else f"{trade_id}-v{version}"


def captured(trade: TradeCapture, at: datetime) -> TradeVersion:
    """Version 1: the trade as captured."""
    return TradeVersion(
        trade.trade_id,
        1,
        VersionKind.NEW,
        VersionState.APPLIED,
        report_id(trade.trade_id, 1),
        None,
        trade,
        "captured",
        "negotiation",
        at,
        None,
        at,
    )


def amend(trade: TradeCapture, change: Amendment) -> TradeCapture:
    """``trade`` with ``change`` applied; refuses non-positive amounts, an empty change and
    re-pricing a multi-leg package. A new quantity drops the trade's allocations."""
    for name, value in (("quantity", change.quantity), ("price", change.price)):
        if value is not None and (not value.is_finite() or value <= 0):
            raise CorrectionRefused(RefusalReason.BAD_AMOUNT, f"{name} must be > 0, got {value}")
    if change.account is not None and not change.account.strip():
        raise CorrectionRefused(RefusalReason.BAD_AMOUNT, "account must not be empty")
    quantity = change.quantity if change.quantity is not None else trade.quantity
    price = change.price if change.price is not None else trade.price
    account = change.account if change.account is not None else trade.account
    if (quantity, price, account) == (trade.quantity, trade.price, trade.account):
        raise CorrectionRefused(
            RefusalReason.NOTHING_CHANGED, "the correction changes no price, quantity or account"
        )
    if trade.is_multileg and (quantity, price) != (trade.quantity, trade.price):
        raise CorrectionRefused(
            RefusalReason.MULTILEG_ECONOMICS,
            "a multi-leg package may be busted or re-booked to another account, not re-priced",
        )
    legs = trade.legs
    if not trade.is_multileg:
        legs = (dataclasses.replace(legs[0], quantity=quantity, price=price),)
    # a split of the old quantity no longer adds up: the client allocates the new one afresh
    allocations = trade.allocations if quantity == trade.quantity else ()
    return dataclasses.replace(
        trade, quantity=quantity, price=price, account=account, legs=legs, allocations=allocations
    )


def propose(
    latest: TradeVersion,
    pending: TradeVersion | None,
    change: Amendment | None,
    reason: str,
    actor: str,
    at: datetime,
) -> TradeVersion:
    """The next version of the trade whose latest applied version is ``latest``: a correction
    (``change``) or, with ``change`` None, a bust. Not yet applied."""
    if latest.busted:
        raise CorrectionRefused(
            RefusalReason.TRADE_BUSTED,
            f"trade {latest.trade_id} was busted (version "
            f"{latest.version}); nothing may follow a bust",
        )
    if pending is not None:
        raise CorrectionRefused(
            RefusalReason.PROPOSAL_PENDING,
            f"version {pending.version} proposed by {pending.proposed_by} awaits approval",
        )
    if not reason.strip():
        raise CorrectionRefused(RefusalReason.BAD_AMOUNT, "a reason is required")
    trade = latest.trade if change is None else amend(latest.trade, change)
    version = latest.version + 1
    return TradeVersion(
        latest.trade_id,
        version,
        VersionKind.BUST if change is None else VersionKind.CORRECTION,
        VersionState.PROPOSED,
        report_id(latest.trade_id, version),
        latest.report_id,
        trade,
        reason.strip(),
        actor,
        at,
    )


def allocate(
    latest: TradeVersion,
    pending: TradeVersion | None,
    allocations: tuple[Allocation, ...],
    actor: str,
    at: datetime,
) -> TradeVersion:
    """The client's split of its side over accounts (and give-up firms), in effect at once:
    quantities must be positive and sum to the trade's quantity."""
    trade = latest.trade
    if latest.busted:
        raise CorrectionRefused(RefusalReason.TRADE_BUSTED, f"trade {trade.trade_id} was busted")
    if pending is not None:
        raise CorrectionRefused(
            RefusalReason.PROPOSAL_PENDING,
            f"version {pending.version} awaits approval; allocate once it is decided",
        )
    mismatch = RefusalReason.ALLOCATION_MISMATCH
    if not allocations:
        raise CorrectionRefused(mismatch, "no allocations")
    for a in allocations:
        if not a.account.strip():
            raise CorrectionRefused(mismatch, "an allocation lacks its account")
        if not a.quantity.is_finite() or a.quantity <= 0:
            raise CorrectionRefused(
                mismatch, f"account {a.account}: quantity must be > 0, got {a.quantity}"
            )
    total = sum((a.quantity for a in allocations), Decimal(0))
    if total != trade.quantity:
        raise CorrectionRefused(
            mismatch,
            f"allocated quantities sum to {total}, the trade's quantity is {trade.quantity}",
        )
    version = latest.version + 1
    return TradeVersion(
        latest.trade_id,
        version,
        VersionKind.ALLOCATION,
        VersionState.APPLIED,
        report_id(latest.trade_id, version),
        latest.report_id,
        dataclasses.replace(trade, allocations=allocations),
        "allocation",
        actor,
        at,
        None,
        at,
    )


def approve(proposal: TradeVersion | None, actor: str, at: datetime) -> TradeVersion:
    """The proposal applied; only someone other than its proposer may approve it."""
    if proposal is None or proposal.state is not VersionState.PROPOSED:
        raise CorrectionRefused(RefusalReason.NO_PROPOSAL, "no proposed version awaits approval")
    if actor == proposal.proposed_by:
        raise CorrectionRefused(
            RefusalReason.SAME_APPROVER,
            f"{actor} proposed version {proposal.version}; a different admin must approve it",
        )
    return dataclasses.replace(
        proposal, state=VersionState.APPLIED, approved_by=actor, applied_at=at
    )


def decline(proposal: TradeVersion | None, actor: str) -> TradeVersion:
    """The proposal turned down (by any admin, its proposer included): it never takes effect
    and its version number is free again."""
    if proposal is None or proposal.state is not VersionState.PROPOSED:
        raise CorrectionRefused(RefusalReason.NO_PROPOSAL, "no proposed version awaits approval")
    return dataclasses.replace(proposal, state=VersionState.DECLINED, approved_by=actor)


def apply_directly(proposal: TradeVersion, at: datetime) -> TradeVersion:
    """Without a second approver the proposer's change takes effect at once."""
    return dataclasses.replace(proposal, state=VersionState.APPLIED, applied_at=at)
