"""Reconcile our trades with a clearinghouse trade register.

Register: UTF-8 CSV with this exact header (one row per submitted trade or package); the file
itself is read by ``gateway.clearinghouse.register``::

    trade_id,clearing_trade_id,instrument,buyer,seller,quantity,price,currency

* ``trade_id`` - our trade id as submitted (FIXML TrdID, FpML sender's tradeId); unique.
* ``instrument`` - canonical key (:func:`otc.clearing.model.instrument_key`): the symbol for
  listed instruments, legs joined by ``|`` for packages, ``IRS:...``/``FXO:...`` for OTC.
* ``buyer`` / ``seller`` - principal party ids (IRS: fixed payer / fixed receiver).
* ``quantity`` / ``price`` - plain decimals (IRS: notional / fixed rate; FX option: put
  notional / strike).

Ours is each trade's latest version; busted (cancelled) trades are passed apart and must be
absent from the register.

Breaks: ``missing_theirs`` (we have it, the register does not), ``missing_ours`` (the register
has it, we do not), ``economics`` (instrument, side, quantity, price or currency differ),
``cancelled_live`` (we busted it, the register still holds it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from otc.clearing.codec import economics_breaks
from otc.clearing.model import Economics, fmt_decimal

REGISTER_COLUMNS = (
    "trade_id",
    "clearing_trade_id",
    "instrument",
    "buyer",
    "seller",
    "quantity",
    "price",
    "currency",
)


class RegisterError(ValueError):
    """A register file we cannot trust: names the line and the problem."""


@dataclass(frozen=True, slots=True)
class RegisterRow:
    economics: Economics
    clearing_trade_id: str


def format_register(rows: Iterable[RegisterRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTER_COLUMNS)
    for row in rows:
        e = row.economics
        writer.writerow(
            [
                e.trade_id,
                row.clearing_trade_id,
                e.instrument,
                e.buyer,
                e.seller,
                fmt_decimal(e.quantity),
                fmt_decimal(e.price),
                e.currency,
            ]
        )
    return out.getvalue()


def _decimal(text: str, column: str, line: int) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RegisterError(f"line {line}: {column} is not a decimal: {text!r}") from None
    if not value.is_finite():
        raise RegisterError(f"line {line}: {column} is not finite: {text!r}")
    return value


def parse_register(text: str) -> list[RegisterRow]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != REGISTER_COLUMNS:
        raise RegisterError(f"line 1: header must be {','.join(REGISTER_COLUMNS)}")
    rows: list[RegisterRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not record or all(not c.strip() for c in record):
            continue
        if len(record) != len(REGISTER_COLUMNS):
            raise RegisterError(
                f"line {line}: expected {len(REGISTER_COLUMNS)} columns, got {len(record)}"
            )
        values = dict(zip(REGISTER_COLUMNS, (c.strip() for c in record), strict=True))
        for column in ("trade_id", "instrument", "buyer", "seller", "currency"):
            if not values[column]:
                raise RegisterError(f"line {line}: empty {column}")
        trade_id = values["trade_id"]
        if trade_id in seen:
            raise RegisterError(f"line {line}: trade {trade_id} already on line {seen[trade_id]}")
        seen[trade_id] = line
        rows.append(
            RegisterRow(
                Economics(
                    values["trade_id"],
                    values["instrument"],
                    values["buyer"],
                    values["seller"],
                    _decimal(values["quantity"], "quantity", line),
                    _decimal(values["price"], "price", line),
                    values["currency"],
                ),
                values["clearing_trade_id"],
            )
        )
    return rows


class BreakKind(StrEnum):
    MISSING_THEIRS = "missing_theirs"
    MISSING_OURS = "missing_ours"
    ECONOMICS = "economics"
    CANCELLED_LIVE = "cancelled_live"


@dataclass(frozen=True, slots=True)
class Break:
    kind: BreakKind
    trade_id: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconReport:
    matched: tuple[str, ...]
    breaks: tuple[Break, ...] = field(default=())
    cancelled: tuple[str, ...] = ()  # busted by us and absent from the register, as they should

    @property
    def clean(self) -> bool:
        return not self.breaks

    def of_kind(self, kind: BreakKind) -> list[Break]:
        return [b for b in self.breaks if b.kind is kind]

    def render(self) -> str:
        lines = [f"matched {len(self.matched)}, breaks {len(self.breaks)}"]
        if self.cancelled:
            lines[0] += f", cancelled {len(self.cancelled)}"
        for b in self.breaks:
            detail = f": {'; '.join(b.details)}" if b.details else ""
            lines.append(f"{b.kind.value} {b.trade_id}{detail}")
        return "\n".join(lines) + "\n"


def reconcile_rows(
    ours: Iterable[Economics], theirs: Iterable[RegisterRow], cancelled: Iterable[str] = ()
) -> ReconReport:
    """``ours``: the latest version of every live trade; ``cancelled``: ids of busted trades."""
    mine = {e.trade_id: e for e in ours}
    register = {r.economics.trade_id: r.economics for r in theirs}
    busted = set(cancelled) - mine.keys()
    matched, breaks, gone = [], [], []
    for trade_id in sorted(busted):
        if trade_id in register:
            breaks.append(
                Break(BreakKind.CANCELLED_LIVE, trade_id, ("busted by us, still cleared",))
            )
        else:
            gone.append(trade_id)
    for trade_id in sorted((mine.keys() | register.keys()) - busted):
        a, b = mine.get(trade_id), register.get(trade_id)
        if b is None:
            breaks.append(Break(BreakKind.MISSING_THEIRS, trade_id))
        elif a is None:
            breaks.append(Break(BreakKind.MISSING_OURS, trade_id))
        elif diffs := economics_breaks(a, b):
            breaks.append(Break(BreakKind.ECONOMICS, trade_id, tuple(diffs)))
        else:
            matched.append(trade_id)
    return ReconReport(tuple(matched), tuple(breaks), tuple(gone))
