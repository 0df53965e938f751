"""AllocationInstruction (J) from a client, the AllocationInstructionAck (P) answering it, and
pre-allocation on the NewOrderSingle (D, OrdType D) accepting a quote.

Pre-allocation: the D's PreAllocGrp, NoAllocs(78) with the same AllocAccount / AllocQty /
NestedParties give-up layout, quantities summing to its OrderQty(38) (required then). FIX 4.4's
QuoteResponse (AJ) has no allocation group, so an AJ cannot pre-allocate (allocate with J).

A client splits its side of a trade over accounts after the trade: J with AllocID(70), the
trade's execution in NoExecs(124) (ExecID 17 = the trade id, as the fill's ExecutionReport said)
and NoAllocs(78): AllocAccount(79), AllocQty(80) and, to give an allocation up to another firm,
NestedParties (539) with NestedPartyRole(538)=14 (give-up firm) and its NestedPartyID(524). P
answers with AllocStatus(87) 0 (accepted) or 1 (block level reject) with AllocRejCode(88) and
the reason in Text(58).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fixspec.codec import DecodeError, OutField, RawMessage, add_field, decode_decimal, groups
from gateway.fix.rfq_fields import Outgoing
from otc.trades import Allocation

GIVE_UP_FIRM = "14"  # NestedPartyRole(538)
_EXEC_TAGS = frozenset({32, 17, 527, 31, 669, 29})
_ALLOC_TAGS = frozenset({79, 661, 573, 366, 80, 467, 81, 539, 524, 525, 538, 804, 545, 805})
_ALLOC_TAGS |= frozenset({208, 209, 161, 360, 361})

ACCEPTED = "0"  # AllocStatus(87)
BLOCK_REJECTED = "1"
REJ_INCORRECT_QUANTITY = "1"  # AllocRejCode(88)
REJ_OTHER = "7"


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    alloc_id: str
    trade_id: str
    allocations: tuple[Allocation, ...]


def decode_allocation_instruction(raw: RawMessage) -> AllocationRequest:
    """The J's allocation id, the trade it splits and the split; DecodeError names the tag."""
    alloc_id = raw.get(70)
    if not alloc_id:
        raise DecodeError("AllocID(70) is required", tag=70)
    if raw.get(71) not in ("0", None):
        raise DecodeError("only AllocTransType(71)=0 (new) is supported", tag=71)
    execs = groups(raw, 124, _EXEC_TAGS)
    trade_ids = {e.get(17) for e in execs} - {None}
    if len(trade_ids) != 1:
        raise DecodeError("NoExecs(124) must name exactly one trade by its ExecID(17)", tag=124)
    allocations = _split(raw)
    if not allocations:
        raise DecodeError("NoAllocs(78) is required", tag=78)
    return AllocationRequest(alloc_id, trade_ids.pop(), tuple(allocations))


def _split(raw: RawMessage) -> tuple[Allocation, ...]:
    allocations = []
    for entry in groups(raw, 78, _ALLOC_TAGS):
        account = entry.get(79)
        if not account:
            raise DecodeError("every NoAllocs(78) entry needs AllocAccount(79)", tag=79)
        roles = [v for t, v in entry.fields if t == 538]
        ids = [v for t, v in entry.fields if t == 524]
        give_up = dict(zip(roles, ids, strict=False)).get(GIVE_UP_FIRM)
        allocations.append(Allocation(account, decode_decimal(entry, 80, positive=True), give_up))
    return tuple(allocations)


def decode_pre_allocations(raw: RawMessage) -> tuple[Allocation, ...]:
    """A D's PreAllocGrp (empty without one); its quantities must sum to OrderQty(38)."""
    if raw.get(78) is None:
        return ()
    split = _split(raw)
    if raw.get(38) is None:
        raise DecodeError("pre-allocation needs OrderQty(38) to check the split", tag=38)
    quantity = decode_decimal(raw, 38, positive=True)
    total = sum((a.quantity for a in split), Decimal(0))
    if total != quantity:
        raise DecodeError(f"AllocQty(80) sum to {total}, OrderQty(38) is {quantity}", tag=80)
    return split


def allocation_ack(
    alloc_id: str, at: datetime, *, rejected: str | None = None, code: str = REJ_OTHER
) -> Outgoing:
    """P: accepted, or (with ``rejected``, the reason) rejected at block level."""
    out: list[OutField] = [(70, alloc_id)]
    add_field(out, 60, at)
    out.append((87, BLOCK_REJECTED if rejected else ACCEPTED))
    if rejected:
        out.append((88, code))
        add_field(out, 58, rejected[:200])
    return "P", out
