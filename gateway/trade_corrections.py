"""Corrections and busts of captured trades: what the admin API and CLI act through.

One lock serialises every change, so a trade's versions are numbered without gaps and a
proposal is approved at most once. A version takes effect in one database transaction
(:mod:`gateway.store.trade_versions`); only then is it audited (naming its predecessor) and the
client told over FIX (``notify``). With ``[trades] second_approver`` a change is stored as a
proposal and takes effect when a different admin approves it.

An FpML-cleared trade (IRS, FX option) is not corrected: the FpML schema set offers no message
this gateway produces to amend a cleared trade, so the change is refused (409) before anything
is written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from fixspec.messages import utcnow
from gateway.jsonable import to_jsonable
from gateway.store import trade_versions as store
from gateway.store.orders import Flushable
from otc import trade_versions as tv
from otc.clearing.model import ClearingFormat, ClearingFormatError, format_for
from otc.trade_versions import (
    Amendment,
    CorrectionRefused,
    RefusalReason,
    TradeVersion,
    VersionKind,
    VersionState,
)
from otc.trades import Allocation

Audit = Callable[[str, str, dict[str, Any]], None]
Notify = Callable[[TradeVersion, TradeVersion], None]  # (previous, applied)


def version_view(v: TradeVersion) -> dict[str, Any]:
    """A version as the API shows it and the audit trail records it."""
    return {
        "trade_id": v.trade_id,
        "version": v.version,
        "kind": v.kind.value,
        "state": v.state.value,
        "report_id": v.report_id,
        "previous_report_id": v.ref_report_id,
        "reason": v.reason,
        "proposed_by": v.proposed_by,
        "proposed_at": to_jsonable(v.proposed_at),
        "approved_by": v.approved_by,
        "applied_at": to_jsonable(v.applied_at),
        "quantity": to_jsonable(v.trade.quantity),
        "price": to_jsonable(v.trade.price),
        "account": v.trade.account,
        "allocations": to_jsonable(v.trade.allocations),
    }


class TradeCorrections:
    def __init__(
        self,
        database: Engine,
        writer: Flushable,
        audit: Audit,
        notify: Notify,
        *,
        second_approver: bool,
        clear: bool,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.writer = writer
        self.audit = audit
        self.notify = notify
        self.second_approver = second_approver
        self.clear = clear
        self.clock = clock
        self._lock = threading.Lock()

    def chain(self, trade_id: str) -> list[TradeVersion]:
        self.writer.flush()
        return store.chain(self.database, trade_id)

    def correct(self, trade_id: str, change: Amendment, reason: str, actor: str) -> TradeVersion:
        return self._change(trade_id, change, reason, actor)

    def bust(self, trade_id: str, reason: str, actor: str) -> TradeVersion:
        return self._change(trade_id, None, reason, actor)

    def allocate(
        self, trade_id: str, client_id: str, split: tuple[Allocation, ...], alloc_id: str
    ) -> tuple[TradeVersion, TradeVersion]:
        """A client's AllocationInstruction: its side split over accounts and give-up firms,
        a new version in effect at once (no second approver: the client decides its accounts).
        Returns (previous, new) and tells no one: the FIX edge answers the instruction first."""
        with self._lock:
            latest, pending = self._latest(trade_id)
            if latest.trade.client.party_id != client_id:
                raise CorrectionRefused(RefusalReason.UNKNOWN_TRADE, f"no trade {trade_id!r}")
            if self.clear and self._fpml(latest):
                raise CorrectionRefused(
                    RefusalReason.NOT_CORRECTABLE_IN_CLEARING,
                    f"trade {trade_id} is cleared with FpML, which this gateway cannot amend",
                )
            version = tv.allocate(latest, pending, split, client_id, self.clock())
            previous = latest
            return previous, self._apply(version, client_id, {"alloc_id": alloc_id}, notify=False)

    def approve(self, trade_id: str, version: int, actor: str) -> TradeVersion:
        with self._lock:
            _, pending = self._latest(trade_id)
            if pending is None or pending.version != version:
                raise CorrectionRefused(
                    RefusalReason.NO_PROPOSAL,
                    f"trade {trade_id} has no proposed version {version} awaiting approval",
                )
            return self._apply(tv.approve(pending, actor, self.clock()), actor)

    def decline(self, trade_id: str, version: int, actor: str) -> TradeVersion:
        """Turn a proposal down: it never takes effect; the audit trail keeps it."""
        with self._lock:
            _, pending = self._latest(trade_id)
            if pending is None or pending.version != version:
                raise CorrectionRefused(
                    RefusalReason.NO_PROPOSAL,
                    f"trade {trade_id} has no proposed version {version} awaiting approval",
                )
            declined = tv.decline(pending, actor)
            store.withdraw(self.database, pending)
            self.audit("trade.declined", actor, version_view(declined))
            return declined

    # -- inside the lock ---------------------------------------------------------------------

    def _latest(self, trade_id: str) -> tuple[TradeVersion, TradeVersion | None]:
        chain = self.chain(trade_id)
        if not chain:
            raise CorrectionRefused(RefusalReason.UNKNOWN_TRADE, f"no trade {trade_id!r}")
        applied = [v for v in chain if v.state is VersionState.APPLIED]
        pending = chain[-1] if chain[-1].state is VersionState.PROPOSED else None
        return applied[-1], pending

    def _change(
        self, trade_id: str, change: Amendment | None, reason: str, actor: str
    ) -> TradeVersion:
        with self._lock:
            latest, pending = self._latest(trade_id)
            if self.clear and self._fpml(latest):
                raise CorrectionRefused(
                    RefusalReason.NOT_CORRECTABLE_IN_CLEARING,
                    f"trade {trade_id} is cleared with FpML, which this gateway cannot amend or "
                    "cancel; correct it with the clearinghouse directly",
                )
            now = self.clock()
            proposal = tv.propose(latest, pending, change, reason, actor, now)
            if not self.second_approver:
                return self._apply(tv.apply_directly(proposal, now), actor)
            store.propose(self.database, proposal)
            self.audit("trade.proposed", actor, version_view(proposal))
            return proposal

    @staticmethod
    def _fpml(version: TradeVersion) -> bool:
        try:
            return format_for(version.trade) is ClearingFormat.FPML_REQUEST_CLEARING
        except ClearingFormatError:
            return False

    def _apply(
        self,
        version: TradeVersion,
        actor: str,
        extra: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> TradeVersion:
        now = self.clock()
        message = store.apply(self.database, version, now, self.clear)
        previous = next(
            v
            for v in store.chain(self.database, version.trade_id)
            if v.version == version.version - 1
        )
        kind = {VersionKind.BUST: "trade.busted", VersionKind.ALLOCATION: "trade.allocated"}
        self.audit(
            kind.get(version.kind, "trade.corrected"),
            actor,
            version_view(version)
            | {"clearing_key": message.key if message else None}
            | (extra or {}),
        )
        if notify:
            self.notify(previous, version)
        return version
