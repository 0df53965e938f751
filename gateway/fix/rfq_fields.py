"""The FIX layout of the RFQ flow, one definition for the gateway and for the clients.

:mod:`~gateway.fix.rfq_inbound` reads what a client sends, :mod:`~gateway.fix.rfq_outbound`
writes what it receives, and :mod:`~gateway.fix.rfq_client` does the reverse of both for tests
and load generators; the tags, groups and field readers they share live here. Like
:mod:`fixspec.codec`, everything works on :class:`~fixspec.codec.RawMessage` and ``OutField``
lists; QuickFIX never appears.

Conventions, so both directions agree:

* One instrument travels as Symbol(55). A strategy travels as Symbol ``[N/A]`` with NoLegs(555),
  each leg's LegSide(624) being the client's side when it *buys* the package; or as the
  client's own name for it in Symbol with SecurityType(167)=MLEG, a label the gateway echoes
  as Symbol on the strategy's Quotes, ExecutionReports and TradeCaptureReport. In a strategy of
  options, a future or perpetual leg is the delta hedge (priced on its own, outside the package).
* Instrument and leg detail fields (maturity, strike, CFI code, security type) are optional, but
  when present they must agree with the symbol: a contradiction is a DecodeError naming the tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fixspec.codec import DecodeError, OutField, RawMessage, parse_time
from fixspec.messages import Side
from otc.negotiation.commands import LegRequest
from otc.negotiation.model import LegQuote, RfqLeg

Outgoing = tuple[str, list[OutField]]
"""(MsgType, body fields in dictionary order), as ``fixspec.codec.encode`` returns."""

MULTILEG_SYMBOL = "[N/A]"  # FIX's Symbol for a strategy whose legs are in NoLegs(555)
QUOTE_HASH, QUOTE_SIGNATURE, QUOTE_SIGNER_KEY_ID = 5002, 5001, 5003  # fixspec.dictionary
CANCEL_ALL_QUOTES = "4"  # QuoteCancelType(298)

# Every tag a NoLegs(555) entry may hold in R, AG, S, AJ, AI, 8, AE (InstrumentLeg, LegQty,
# leg prices, leg stipulations, nested parties, leg benchmark curve), from QuickFIX's FIX44.xml.
LEG_MEMBER_TAGS = frozenset(
    {248, 249, 250, 251, 252, 253, 254, 257, 524, 525, 538, 539, 545, 556, 564, 565, 566, 587,
     588, 596, 597, 598, 599, 600, 601, 602, 603, 604, 605, 606, 607, 608, 609, 610, 611, 612,
     613, 614, 615, 616, 617, 618, 619, 620, 621, 622, 623, 624, 637, 654, 670, 671, 672, 673,
     674, 675, 676, 677, 678, 679, 680, 681, 683, 684, 686, 687, 688, 689, 690, 739, 740, 756,
     757, 758, 759, 760, 764, 804, 805, 806, 807, 942, 955, 956}
)  # fmt: skip


class _AllBut:
    """Membership of a group that runs to the next message-level field. QuickFIX has checked the
    message against the dictionary before it reaches us, so nothing else can follow the group;
    listing NoRelatedSym's 229 possible members instead would add nothing but length."""

    def __init__(self, message_level: Iterable[int]) -> None:
        self._message_level = frozenset(message_level)

    def __contains__(self, tag: object) -> bool:
        return tag not in self._message_level


# Message-level fields of R and AG (everything else in them sits inside NoRelatedSym) + trailer.
RELATED_SYM_MEMBERS = _AllBut({11, 58, 131, 146, 354, 355, 528, 644, 658, 10, 89, 93, 5004})
# Parties (453) inside NoRelatedSym: PartyID, PartyIDSource, PartyRole, and its sub-ids
PARTY_MEMBER_TAGS = frozenset({448, 447, 452, 802, 523, 803})
LIQUIDITY_PROVIDER = "35"  # PartyRole(452): a desk the client chooses to ask
CLIENT_DISCLOSED = 5004  # custom: Y shows desks the client, N only an alias


# --- instrument detail fields ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetailTags:
    """Where an instrument's optional detail fields travel: the message-level tags for the one
    instrument of a request, the leg tags for each leg of a strategy."""

    security_type: int
    maturity_date: int
    month_year: int
    strike: int
    cfi: int
    put_or_call: int | None  # FIX 4.4 legs have no LegPutOrCall; their CFI code says it


INSTRUMENT_DETAILS = DetailTags(167, 541, 200, 202, 461, 201)
LEG_DETAILS = DetailTags(609, 611, 610, 612, 608, None)


# --- field readers both directions use -------------------------------------------------------


def required_text(fields: RawMessage, tag: int, name: str) -> str:
    """The non-empty text of ``tag``, or a :class:`DecodeError` naming it as ``name(tag)``."""
    value = fields.get(tag)
    if not value:
        raise DecodeError(f"{name}({tag}) is required", tag=tag)
    return value


def decode_side(
    fields: RawMessage, tag: int = 54, name: str = "Side", *, required: bool = True
) -> Side | None:
    """Side(54), or the leg's LegSide(624) with ``tag``/``name``: 1 (buy) or 2 (sell)."""
    text = fields.get(tag)
    if text is None:
        if required:
            raise DecodeError(f"{name}({tag}) is required", tag=tag)
        return None
    try:
        return Side(text)
    except ValueError:
        raise DecodeError(
            f"{name}({tag}) must be 1 (buy) or 2 (sell), got {text!r}", tag=tag
        ) from None


def decode_timestamp(fields: RawMessage, tag: int, name: str) -> datetime | None:
    """The optional UTCTimestamp in ``tag`` (None when absent), refused naming ``name(tag)``."""
    text = fields.get(tag)
    if text is None:
        return None
    try:
        return parse_time(text)
    except DecodeError:
        raise DecodeError(f"{name}({tag}) is not a UTCTimestamp: {text!r}", tag=tag) from None


def is_package(legs: Sequence[LegRequest | RfqLeg | LegQuote]) -> bool:
    """Whether legs travel in NoLegs(555): anything but one leg bought at ratio 1."""
    return len(legs) != 1 or legs[0].ratio != 1 or legs[0].side is not Side.BUY
