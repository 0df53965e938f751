"""The ``fixbridge`` command line."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import preflight
from gateway.config import EXAMPLE_CONFIG, ConfigError, load_config
from gateway.passwords import hash_password, hash_token

if TYPE_CHECKING:
    from gateway.app import Parts


def _setup_logging(data_dir: Path | None, verbose: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(data_dir / "fixbridge.log"))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # UTC, like every other time here (and the process's local zone may be a schedule's)
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


def _load(args: argparse.Namespace):
    path = Path(args.config) if args.config else EXAMPLE_CONFIG
    config = load_config(path)
    if getattr(args, "data_dir", None):
        config = config.with_data_dir(Path(args.data_dir))
    return config


def cmd_run(args: argparse.Namespace, parts: Parts | None = None) -> int:
    """Start the gateway and serve until SIGINT or SIGTERM. ``parts`` replaces some of the
    gateway's own parts: the benchmarks' ablations (``load.ablated_gateway``) only."""
    from gateway.app import Gateway  # imports QuickFIX; keep other commands light

    config = _load(args)
    found = preflight.problems(config, Path(args.config) if args.config else EXAMPLE_CONFIG)
    for problem in found:
        print(f"fixbridge: {problem}", file=sys.stderr)
    if found:
        return 2
    _setup_logging(config.gateway.data_dir, args.verbose)
    from gateway import memory

    memory.configure()  # before any thread: small stacks, few malloc arenas
    gateway = Gateway(
        config,
        parts,
        Path(args.config) if args.config else EXAMPLE_CONFIG,
        Path(args.data_dir) if args.data_dir else None,
    )
    stop = threading.Event()  # SIGINT or SIGTERM
    wake = threading.Event()
    asked: set[str] = set()

    def on_signal(signum: int, _frame) -> None:
        if signum == signal.SIGHUP:
            asked.add("reload")
        else:
            asked.add("stop")
            stop.set()
        wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    from gateway import ha

    try:  # the data directory's lock; with [ha], first wait as a standby for leadership
        held = ha.take(config, stop)
    except ha.DataDirBusy as exc:
        print(f"fixbridge: {exc}", file=sys.stderr)
        return 2
    if held is None:  # stopped while standby: nothing was opened, nothing to drain
        logging.shutdown()
        return 0
    asked.discard("reload")  # a SIGHUP to a standby: it has nothing to reload
    try:
        gateway.start()
    except Exception as exc:  # one line for the operator; the traceback with --verbose
        log = logging.getLogger("fixbridge")
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # DB errors: the driver's
        log.error("cannot start: %s", reason or type(exc).__name__)
        log.debug("start-up failed", exc_info=True)
        logging.shutdown()
        os._exit(1)  # parts already started (QuickFIX threads) must not keep the process up
    import gc

    # What start-up built (config, dictionary, restored orders) leaves the collector's view,
    # and young-generation passes run less often: every order allocates many short-lived
    # objects, and frequent passes over the growing order book cost ~19 µs per order.
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    ha.announce_takeover(held)
    print(
        f"fixbridge ready: FIX {config.gateway.fix_listen}, HTTP "
        f"{config.gateway.http_listen if config.gateway.http_enabled else 'off'}",
        flush=True,
    )
    while "stop" not in asked:
        wake.wait()
        wake.clear()
        if "reload" in asked and "stop" not in asked:
            asked.discard("reload")
            _reload_on_signal(gateway)
    drained = gateway.stop()  # within gateway.drain_seconds, or the drain exits 1 itself
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0 if drained else 1)  # skip QuickFIX's teardown: see Acceptor.logout_all


def _reload_on_signal(gateway) -> None:
    """SIGHUP: reload the configuration; the outcome (or refusal) goes to the log."""
    from gateway.reload import ReloadRefused

    log = logging.getLogger("fixbridge")
    try:
        gateway.reload("signal:SIGHUP")
    except ReloadRefused as exc:
        log.error("SIGHUP: reload refused: %s", exc)
    except Exception:
        log.exception("SIGHUP: reload failed")


def cmd_hash_password(args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else getpass.getpass("password: ")
    if not password:
        print("fixbridge: empty password refused", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def cmd_hash_token(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    print(f"token: {token}\nhash:  {hash_token(token)}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"ok: {len(config.sessions)} sessions, database {config.database_url}")
    return 0


def _api(args: argparse.Namespace, method: str, path: str, body: dict | None = None) -> int:
    """Call the running gateway's admin API as ``fixbridge kill`` does: FIXBRIDGE_TOKEN, the
    URL from --url or the configuration's http_listen. Prints the answer; 0 on success."""
    import httpx

    token = os.environ.get("FIXBRIDGE_TOKEN")
    if not token:
        print("fixbridge: set FIXBRIDGE_TOKEN to an admin API token", file=sys.stderr)
        return 2
    url = args.url or f"http://{_load(args).gateway.http_listen}"
    try:
        r = httpx.request(
            method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except httpx.HTTPError as exc:
        print(f"fixbridge: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if not 200 <= r.status_code < 300:
        try:
            problem = r.json()
            why = f"{problem.get('title', r.status_code)}: {problem.get('detail')}"
        except ValueError:
            why = r.text
        print(f"fixbridge: {method} {path}: {r.status_code} {why}", file=sys.stderr)
        return 1
    print(r.text)
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    """Operator actions on FIX sessions through the running gateway's admin API."""
    from urllib.parse import quote

    if args.sessions_command == "list":
        return _api(args, "GET", "/sessions")
    path = f"/sessions/{quote(args.comp_id, safe='')}"
    if args.sessions_command == "logout":
        return _api(args, "POST", f"{path}/logout", {"reason": args.reason})
    if args.sessions_command == "seqnums":
        if args.next_sender is None and args.next_target is None:
            print("fixbridge: give --next-sender, --next-target or both", file=sys.stderr)
            return 2
        return _api(
            args,
            "PUT",
            f"{path}/seqnums",
            {"next_sender": args.next_sender, "next_target": args.next_target},
        )
    if args.sessions_command == "disable":
        return _api(args, "POST", f"{path}/disable", {"reason": args.reason})
    return _api(args, "POST", f"{path}/{args.sessions_command}")


def cmd_trades(args: argparse.Namespace) -> int:
    """Corrections and busts of captured trades through the running gateway's admin API."""
    from urllib.parse import quote

    path = f"/trades/{quote(args.trade_id, safe='')}"
    if args.trades_command == "versions":
        return _api(args, "GET", f"{path}/versions")
    if args.trades_command in ("approve", "decline"):
        return _api(args, "POST", f"{path}/versions/{args.version}/{args.trades_command}")
    if args.trades_command == "bust":
        return _api(args, "POST", f"{path}/bust", {"reason": args.reason})
    change = {"quantity": args.quantity, "price": args.price, "account": args.account}
    if not any(change.values()):
        print("fixbridge: give --price, --quantity, --account or several", file=sys.stderr)
        return 2
    body = {k: v for k, v in change.items() if v is not None} | {"reason": args.reason}
    return _api(args, "POST", f"{path}/corrections", body)


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the running gateway to re-read its configuration file (POST /admin/reload)."""
    return _api(args, "POST", "/admin/reload")


def cmd_kill(args: argparse.Namespace) -> int:
    """Engage or lift a kill switch through the running gateway's admin API."""
    import httpx

    token = os.environ.get("FIXBRIDGE_TOKEN")
    if not token:
        print("fixbridge: set FIXBRIDGE_TOKEN to an admin API token", file=sys.stderr)
        return 2
    url = args.url or f"http://{_load(args).gateway.http_listen}"
    path = "/risk/resume" if args.resume else "/risk/kill"
    try:
        r = httpx.post(
            url + path,
            json={"client": args.client, "reason": args.reason},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        print(f"fixbridge: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if r.status_code != 200:
        print(f"fixbridge: {url}{path}: {r.status_code} {r.text}", file=sys.stderr)
        return 1
    print(r.text)
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    """Development PKI for FIX over TLS; files go to <data_dir>/certs (keys mode 0600)."""
    from gateway.tls import devca
    from gateway.tls.files import PkiError, serial_hex

    config = _load(args)
    certs_dir = config.certs_dir
    try:
        if args.certs_command == "init":
            names = sorted(
                {"localhost", "127.0.0.1", config.tls.fix_listen.rpartition(":")[0]}
                - {"0.0.0.0", ""}
            )
            paths = devca.init_dev_pki(
                certs_dir, names, [s.comp_id for s in config.sessions], exist_ok=args.exist_ok
            )
            print(f"development CA, server and client certificates in {paths.certs_dir}")
        elif args.certs_command == "issue":
            if config.session(args.comp_id) is None:
                print(
                    f"fixbridge: no session {args.comp_id!r} in the configuration", file=sys.stderr
                )
                return 2
            print(devca.issue_client(certs_dir, args.comp_id))
        elif args.certs_command == "revoke":
            serials = devca.revoke(certs_dir, args.comp_id, args.reason)
            print(f"revoked {args.comp_id}: serials {', '.join(map(serial_hex, serials))}")
        elif args.certs_command == "crl":
            print(devca.renew_crl(certs_dir))
    except PkiError as exc:
        print(f"fixbridge: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The signed audit log: keys, compliance export, offline verification."""
    from gateway.audit import cli as audit_cli
    from gateway.audit.keys import PRIVATE_KEY_FILE

    if args.audit_command in ("verify", "extends"):  # need nothing but the bundles
        if args.audit_command == "verify":
            return audit_cli.cmd_verify(args.bundle)
        return audit_cli.cmd_extends(args.old, args.new)
    audit_dir = _load(args).gateway.data_dir / "audit"
    if args.audit_command == "keygen":
        if args.if_missing and (audit_dir / PRIVATE_KEY_FILE).exists():
            return 0
        return audit_cli.cmd_keygen(audit_dir)
    return audit_cli.cmd_export(audit_dir, args.out, args.frm, args.to)


def cmd_clearing(args: argparse.Namespace) -> int:
    """Clearing messages: validate one against the official schemas; reconcile a register."""
    if args.clearing_command == "validate":
        from gateway.clearinghouse.schemas import SchemaSetError, validate_file

        schemas = args.schemas or (_load(args).clearing.schema_dir)
        if schemas is None:
            print(
                "fixbridge: no schema directory: pass --schemas DIR or set "
                "clearing.schema_dir in the config",
                file=sys.stderr,
            )
            return 2
        try:
            errors = validate_file(args.file, schemas)
        except SchemaSetError as exc:
            print(f"fixbridge: cannot validate {args.file}: {exc}", file=sys.stderr)
            return 2
        for line in errors:
            print(f"{args.file}: {line}", file=sys.stderr)
        if not errors:
            print(f"{args.file}: valid")
        return 1 if errors else 0
    from gateway.clearinghouse.register import cmd_reconcile
    from gateway.store.connect import connect
    from gateway.store.trades import trade_from_record, trade_records

    config = _load(args)
    database = connect(config.database_url)
    records = trade_records(database)
    database.dispose()
    busted = [r["trade_id"] for r in records if r.get("status") == "busted"]
    live = [trade_from_record(r) for r in records if r.get("status") != "busted"]
    return cmd_reconcile(live, args.register, cancelled=busted)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fixbridge", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the gateway (FIX acceptor, core, HTTP API)")
    run.add_argument("--config", help=f"TOML configuration (default: {EXAMPLE_CONFIG.name})")
    run.add_argument("--data-dir", help="override gateway.data_dir")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("--config")
    check.add_argument("--data-dir")
    check.set_defaults(func=cmd_check_config)

    hp = sub.add_parser("hash-password", help="print a scrypt hash for a session password")
    hp.add_argument("--password", help="read from the terminal when omitted")
    hp.set_defaults(func=cmd_hash_password)

    kill = sub.add_parser(
        "kill", help="kill switch: cancel a client's (or every) open order and refuse new ones"
    )
    kill.add_argument("--client", help="client CompID; omit for the global switch")
    kill.add_argument("--reason", required=True)
    kill.add_argument("--resume", action="store_true", help="lift the switch instead")
    kill.add_argument("--url", help="gateway API base URL (default: http_listen from config)")
    kill.add_argument("--config")
    kill.set_defaults(func=cmd_kill)

    ses = sub.add_parser(
        "sessions", help="FIX sessions of the running gateway (admin API; FIXBRIDGE_TOKEN)"
    )
    ses_sub = ses.add_subparsers(dest="sessions_command", required=True)
    s_list = ses_sub.add_parser("list", help="every session: state, sequence numbers, schedule")
    s_logout = ses_sub.add_parser("logout", help="send a Logout with a reason (Text 58)")
    s_logout.add_argument("--reason", default="logged out by the operator")
    s_disc = ses_sub.add_parser("disconnect", help="drop the connection without a Logout")
    s_reset = ses_sub.add_parser("reset", help="sequence numbers back to 1 (logged out only)")
    s_seq = ses_sub.add_parser("seqnums", help="set the next sequence numbers (logged out only)")
    s_seq.add_argument("--next-sender", type=int, help="next MsgSeqNum the gateway sends")
    s_seq.add_argument("--next-target", type=int, help="next MsgSeqNum the gateway expects")
    s_dis = ses_sub.add_parser("disable", help="refuse the CompID's logons (persists)")
    s_dis.add_argument("--reason", required=True)
    s_en = ses_sub.add_parser("enable", help="admit the CompID's logons again")
    for p_ in (s_logout, s_disc, s_reset, s_seq, s_dis, s_en):
        p_.add_argument("comp_id")
    for p_ in (s_list, s_logout, s_disc, s_reset, s_seq, s_dis, s_en):
        p_.add_argument("--url", help="gateway API base URL (default: http_listen from config)")
        p_.add_argument("--config")
    ses.set_defaults(func=cmd_sessions)

    trd = sub.add_parser(
        "trades", help="correct or bust captured trades (admin API; FIXBRIDGE_TOKEN)"
    )
    trd_sub = trd.add_subparsers(dest="trades_command", required=True)
    t_cor = trd_sub.add_parser("correct", help="amend price, quantity or account, with a reason")
    t_cor.add_argument("--price", help="new price (decimal)")
    t_cor.add_argument("--quantity", help="new quantity (decimal, > 0)")
    t_cor.add_argument("--account", help="new account of the client's side")
    t_bust = trd_sub.add_parser("bust", help="cancel the trade, with a reason")
    for p_ in (t_cor, t_bust):
        p_.add_argument("--reason", required=True)
    t_app = trd_sub.add_parser("approve", help="approve a proposed version (second approver)")
    t_dec = trd_sub.add_parser("decline", help="turn a proposed version down")
    t_ver = trd_sub.add_parser("versions", help="the trade's version chain")
    for p_ in (t_cor, t_bust, t_app, t_dec, t_ver):
        p_.add_argument("trade_id")
        p_.add_argument("--url", help="gateway API base URL (default: http_listen from config)")
        p_.add_argument("--config")
    for p_ in (t_app, t_dec):
        p_.add_argument("version", type=int)
    trd.set_defaults(func=cmd_trades)

    rel = sub.add_parser(
        "reload",
        help="re-read the configuration: add or remove sessions "
        "(admin API; FIXBRIDGE_TOKEN). SIGHUP does the same",
    )
    rel.add_argument("--url", help="gateway API base URL (default: http_listen from config)")
    rel.add_argument("--config")
    rel.set_defaults(func=cmd_reload)

    certs = sub.add_parser("certs", help="development PKI for FIX over TLS (client certificates)")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    c_init = certs_sub.add_parser("init", help="CA, server cert, a client cert per session")
    c_init.add_argument("--exist-ok", action="store_true", help="only add what is missing")
    c_issue = certs_sub.add_parser("issue", help="a new client certificate for COMPID")
    c_issue.add_argument("comp_id")
    c_revoke = certs_sub.add_parser("revoke", help="revoke every certificate of COMPID")
    c_revoke.add_argument("comp_id")
    c_revoke.add_argument("--reason", default="unspecified")
    certs_sub.add_parser("crl", help="re-sign the revocation list (it is valid for 7 days)")
    for p_ in (c_init, c_issue, c_revoke, certs_sub.choices["crl"]):
        p_.add_argument("--config")
        p_.add_argument("--data-dir")
    certs.set_defaults(func=cmd_certs)

    audit = sub.add_parser("audit", help="signed audit log: keygen, export, verify")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    a_key = audit_sub.add_parser("keygen", help="create the Ed25519 signing key in the data dir")
    a_key.add_argument("--if-missing", action="store_true", help="do nothing if a key exists")
    a_exp = audit_sub.add_parser("export", help="write a verifiable bundle (no range = all)")
    a_exp.add_argument("out")
    a_exp.add_argument("--from", dest="frm", help="UTC time, e.g. 2026-11-24T09:00:00Z")
    a_exp.add_argument("--to", dest="to")
    for p_ in (a_key, a_exp):
        p_.add_argument("--config")
        p_.add_argument("--data-dir")
    a_ver = audit_sub.add_parser("verify", help="check a bundle offline; names the first bad entry")
    a_ver.add_argument("bundle")
    a_ext = audit_sub.add_parser("extends", help="prove a later bundle extends an earlier one")
    a_ext.add_argument("old")
    a_ext.add_argument("new")
    audit.set_defaults(func=cmd_audit)

    clr = sub.add_parser("clearing", help="clearing messages: validate, reconcile")
    clr_sub = clr.add_subparsers(dest="clearing_command", required=True)
    c_val = clr_sub.add_parser("validate", help="check a FIXML/FpML file against the XSDs")
    c_val.add_argument("file")
    c_val.add_argument("--schemas", help="schema root (default: clearing.schema_dir)")
    c_rec = clr_sub.add_parser("reconcile", help="compare our trades with a trade register CSV")
    c_rec.add_argument("register")
    for p_ in (c_val, c_rec):
        p_.add_argument("--config")
        p_.add_argument("--data-dir")
    clr.set_defaults(func=cmd_clearing)

    ht = sub.add_parser("hash-token", help="make a random API token and print it with its hash")
    ht.set_defaults(func=cmd_hash_token)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"fixbridge: configuration error\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
