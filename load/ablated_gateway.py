"""The gateway with parts left out: ``bench_orders --ablation`` and ``run_locust --ablation``
measure where the time goes.

Each switch removes one part of the order or desk path from a normal ``fixbridge run``, by
building the gateway with other parts (``gateway.app.Parts``); the product has no such switches
and never will (the audit trail, persistence and quote signatures are not optional). It lives in
``load/`` for the benchmarks alone.

    python -m load.ablated_gateway [--no-front ACCEPTOR_PORT] [--no-audit] [--no-db] \\
        [--no-sign] [--per-message-audit] -- run --config PATH

* ``--no-front PORT``: QuickFIX listens on PORT and the client connects there directly, skipping
  the front's relay (the front still listens, unused; logons need no announcement);
* ``--no-audit``: no FIX message, order state, negotiation event, API action or session event
  reaches the audit trail, and QuickFIX logs through its own FileLog with no Python in between;
* ``--no-db``: orders and executions are not persisted (session events still are; the desk path
  writes nothing to the database until a trade or a finished RFQ);
* ``--no-sign``: desk quotes are hashed but not signed (no desk keys);
* ``--per-message-audit``: the audit trail as before command entries: every FIX message in and
  out and every order change an entry of its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixspec import messages as m
from gateway.app import Parts
from gateway.audit.feed import Auditor
from gateway.cli import cmd_run
from gateway.cli import parser as fixbridge_parser
from gateway.config import ConfigError
from gateway.store.writer import Writer
from otc.orders import ClOrdIdUsed, Order


def command(switches: Sequence[str], run: Sequence[str]) -> list[str]:
    """The argv of ``fixbridge`` with ``run`` (e.g. ``run --config PATH``): the gateway itself,
    or, with ``switches``, this module leaving those parts out."""
    if not switches:
        return [sys.executable, "-m", "gateway.cli", *run]
    return [sys.executable, "-m", "load.ablated_gateway", *switches, "--", *run]


class UnauditedAuditor(Auditor):
    """Appends nothing: every sink the gateway wires to the audit trail does nothing."""

    def fix(self, *args: Any, **kwargs: Any) -> None:
        return None

    def orders(self, *args: Any, **kwargs: Any) -> None:
        return None

    def session(self, *args: Any, **kwargs: Any) -> None:
        return None

    def negotiation(self, *args: Any, **kwargs: Any) -> None:
        return None

    def api_action(self, *args: Any, **kwargs: Any) -> None:
        return None

    def append(self, *args: Any, **kwargs: Any) -> None:
        return None


class OrdersNotStored(Writer):
    """Persists session events (and trades) only: order snapshots, executions, used ClOrdIDs
    and finished orders' exposure are dropped."""

    def order(self, order: Order) -> None:
        return None

    def execution(self, owner: str, er: m.ExecutionReport) -> None:
        return None

    def clordid(self, used: ClOrdIdUsed) -> None:
        return None

    def finished_exposure(self, owner: str, notional: Decimal, at: datetime) -> None:
        return None


def no_desk_keys(*_args: Any) -> None:
    return None


def per_message_auditor(directory: Path) -> Auditor:
    """The audit trail with no command entries: one entry per message and per order change."""
    return Auditor(directory, commands=frozenset())


def parts(
    acceptor_port: int | None,
    no_audit: bool,
    no_db: bool,
    no_sign: bool = False,
    per_message_audit: bool = False,
) -> Parts:
    """The gateway's parts with those named left out."""
    defaults = Parts()
    auditor = per_message_auditor if per_message_audit else defaults.auditor
    return Parts(
        auditor=UnauditedAuditor if no_audit else auditor,
        audit_fix_messages=not no_audit,
        writer=OrdersNotStored if no_db else defaults.writer,
        desk_keys=no_desk_keys if no_sign else defaults.desk_keys,
        acceptor_port=acceptor_port,
    )


def run(argv: list[str], gateway_parts: Parts) -> int:
    """``fixbridge run`` with other parts: same arguments, checks and ready line, which is what
    the benchmarks wait for."""
    args = fixbridge_parser().parse_args(argv)
    if args.command != "run":
        print("load.ablated_gateway: only `run` takes parts out", file=sys.stderr)
        return 2
    try:
        return cmd_run(args, gateway_parts)
    except ConfigError as exc:
        print(f"fixbridge: configuration error\n{exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    ours, rest = argv[:split], argv[split + 1 :]
    p = argparse.ArgumentParser(prog="python -m load.ablated_gateway", description=__doc__)
    p.add_argument("--no-front", type=int, metavar="ACCEPTOR_PORT")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--no-db", action="store_true")
    p.add_argument("--no-sign", action="store_true")
    p.add_argument("--per-message-audit", action="store_true")
    args = p.parse_args(ours)
    return run(
        rest,
        parts(args.no_front, args.no_audit, args.no_db, args.no_sign, args.per_message_audit),
    )


if __name__ == "__main__":
    sys.exit(main())
