"""End-to-end clearing demo: sample trades -> outbox -> simulated CCP over HTTP -> recon.

Run: ``python -m gateway.clearinghouse.demo [--schemas DIR]``. Uses an ephemeral loopback port
and an in-memory outbox; prints each message's final state, the exceptions list and the recon
report.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from fixspec.messages import utcnow
from gateway.clearinghouse.register import cmd_reconcile
from gateway.clearinghouse.schemas import SchemaRegistry, SchemaSetError
from gateway.clearinghouse.simulator import ClearinghouseSimulator, SimulatorRules
from gateway.clearinghouse.transport import HttpSender
from otc.clearing.dispatcher import ClearingDispatcher, enqueue
from otc.clearing.outbox import InMemoryOutbox, list_exceptions
from otc.clearing.samples import all_samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="clearing bridge demo")
    parser.add_argument("--schemas", type=Path, help="schema root; enables XSD checks in the CCP")
    args = parser.parse_args(argv)
    trades = list(all_samples().values())
    rules = SimulatorRules(
        max_quantity=Decimal("100000000"), rejected_instruments=frozenset({"BTC-PERP"})
    )
    try:
        schemas = SchemaRegistry(args.schemas) if args.schemas else None
        if schemas is not None:
            schemas.preload()
    except SchemaSetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    repo = InMemoryOutbox()
    now = utcnow()
    for trade in trades:
        enqueue(repo, trade, now)
    with ClearinghouseSimulator(rules=rules, schemas=schemas) as sim, HttpSender(sim.url) as sender:
        dispatcher = ClearingDispatcher(repo, sender, rng=random.Random(7))
        for msg in dispatcher.run_once():
            ids = ",".join(msg.clearing_trade_ids)
            print(f"{msg.trade_id:12} {msg.fmt.value:28} {msg.state.value:9} {ids}")
        for exc in list_exceptions(repo):
            print(f"exception: {exc.trade_id} {exc.state.value}: {exc.reason}")
        with tempfile.TemporaryDirectory() as tmp:
            register = Path(tmp) / "register.csv"
            sim.write_register(register)
            return cmd_reconcile(trades, register, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
