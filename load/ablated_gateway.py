"""The gateway with parts switched off: ``bench_orders --ablation`` and ``run_locust --ablation``
measure where the time goes.

Each switch removes one part of the order or desk path from a normal ``fixbridge run``, by
patching this process before the gateway starts; the product has no such switches and never will
(the audit trail, persistence and quote signatures are not optional). It lives in ``load/`` for
the benchmarks alone.

    python -m load.ablated_gateway [--no-front ENGINE_PORT] [--no-audit] [--no-db] [--no-sign] \\
        -- run --config PATH

* ``--no-front PORT``: QuickFIX listens on PORT and the client connects there directly, skipping
  the front's relay (the front still listens, unused; logons need no announcement);
* ``--no-audit``: no FIX message, order state, negotiation event, API action or session event
  reaches the audit trail, and QuickFIX logs through its own FileLog with no Python in between;
* ``--no-db``: orders and executions are not persisted (session events still are; the desk path
  writes nothing to the database until a trade or a finished RFQ);
* ``--no-sign``: desk quotes are hashed but not signed (no desk keys).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import app as gateway_app
from gateway import audit, cli
from gateway.fix import acceptor
from gateway.fix.application import GatewayApplication
from gateway.store import writer as db


def command(switches: Sequence[str], run: Sequence[str]) -> list[str]:
    """The argv of ``fixbridge`` with ``run`` (e.g. ``run --config PATH``): the gateway itself,
    or, with ``switches``, this module leaving those parts out."""
    if not switches:
        return [sys.executable, "-m", "gateway.cli", *run]
    return [sys.executable, "-m", "load.ablated_gateway", *switches, "--", *run]


def _nothing(*_args, **_kwargs) -> None:
    return None


def ablate(acceptor_port: int | None, no_audit: bool, no_db: bool, no_sign: bool = False) -> None:
    if acceptor_port is not None:
        gateway_app.free_loopback_port = lambda: acceptor_port
        init = GatewayApplication.__init__

        def direct(self, *args, **kwargs) -> None:
            init(self, *args, **kwargs)
            self.require_front = False

        GatewayApplication.__init__ = direct
    if no_audit:
        for name in ("fix", "orders", "session", "negotiation", "api_action", "append"):
            setattr(audit.Auditor, name, _nothing)

        def unaudited(application, settings, file_log, audit_sink=None):
            return acceptor.Acceptor(application, settings, file_log, None)

        gateway_app.Acceptor = unaudited
    if no_db:
        db.Writer.order = _nothing
        db.Writer.execution = _nothing
    if no_sign:
        gateway_app.load_desk_keys = _nothing


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    ours, rest = argv[:split], argv[split + 1 :]
    p = argparse.ArgumentParser(prog="python -m load.ablated_gateway", description=__doc__)
    p.add_argument("--no-front", type=int, metavar="ENGINE_PORT")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--no-db", action="store_true")
    p.add_argument("--no-sign", action="store_true")
    args = p.parse_args(ours)
    ablate(args.no_front, args.no_audit, args.no_db, args.no_sign)
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main())
