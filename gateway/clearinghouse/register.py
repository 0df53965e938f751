"""The clearinghouse's trade register as a file, and ``fixbridge clearing reconcile``.

The format and the comparison are :mod:`otc.clearing.recon`'s; this module reads the file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from otc.clearing.model import ClearingFormatError, trade_economics
from otc.clearing.recon import (
    ReconReport,
    RegisterError,
    RegisterRow,
    parse_register,
    reconcile_rows,
)
from otc.trades import TradeCapture


def read_register(path: Path | str) -> list[RegisterRow]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegisterError(f"cannot read register {path}: {exc}") from exc
    return parse_register(text)


def reconcile(
    our_trades: Iterable[TradeCapture],
    register_path: Path | str,
    cancelled: Iterable[str] = (),
) -> ReconReport:
    """Compare our trades (latest versions; ``cancelled``: busted trade ids) with the register
    file; raises :class:`RegisterError` if unreadable."""
    return reconcile_rows(
        (trade_economics(t) for t in our_trades), read_register(register_path), cancelled
    )


def cmd_reconcile(
    our_trades: Iterable[TradeCapture],
    register_path: Path | str,
    out: TextIO | None = None,
    cancelled: Iterable[str] = (),
) -> int:
    """CLI body: prints the report; exit 0 clean, 1 breaks, 2 unreadable input."""
    out = out or sys.stdout
    try:
        report = reconcile(our_trades, register_path, cancelled)
    except (RegisterError, ClearingFormatError) as exc:
        out.write(f"error: {exc}\n")
        return 2
    out.write(report.render())
    return 0 if report.clean else 1
