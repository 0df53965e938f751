"""The upstream venue adapter's parts without a venue: reading reports, the routes journal, the
configuration and the start-up checks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace as dc_replace
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from fixspec import messages as m
from fixspec.codec import RawMessage
from fixspec.instruments import parse_symbol
from gateway import preflight
from gateway.audit.keys import generate_signing_key
from gateway.config import ConfigError, UpstreamSection, load_config
from gateway.venues.credentials import quickfix_has_ssl
from gateway.venues.fix_upstream import FixUpstreamVenue, mask_password, tls_settings
from gateway.venues.reports import ReportError, read_report
from gateway.venues.routes import UpstreamRoutes
from otc import venue as v
from otc.orders import Order, OrderManager, OrderUpdated, Send
from tests.harness import ROOT

SOH = "\x01"


def raw(msg_type: str, *fields: tuple[int, str]) -> RawMessage:
    return RawMessage(msg_type, ((35, msg_type), *fields))


@pytest.fixture
def routes(tmp_path: Path) -> UpstreamRoutes:
    return UpstreamRoutes(tmp_path / "routes.jsonl")


def test_reports_become_the_venue_events_of_our_order(routes):
    new = routes.open_request("O7", "new")
    assert new.cl_ord_id == "O7-1"
    fields = [(37, "V1"), (11, "O7-1"), (17, "X1"), (150, "F"), (39, "1"), (32, "1.5")]
    fill = read_report(raw("8", *fields, (31, "65000.25"), (14, "1.5")), routes)
    assert fill is not None
    assert fill.events == (v.Fill("O7", Decimal("1.5"), Decimal("65000.25")),)
    assert (fill.exec_id, fill.cum_qty, fill.venue_order_id) == ("X1", Decimal("1.5"), "V1")
    accepted = read_report(raw("8", (11, "O7-1"), (17, "X0"), (150, "0")), routes)
    assert accepted is not None and accepted.events == (v.Accepted("O7"),)
    repl = routes.open_request("O7", "replace")
    replaced = read_report(
        raw("8", (11, repl.cl_ord_id), (41, "O7-1"), (17, "X2"), (150, "5"), (38, "3")), routes
    )
    assert replaced is not None and replaced.events == (v.Replaced("O7", Decimal(3), None),)
    cxl = routes.open_request("O7", "cancel")
    refused = read_report(raw("9", (11, cxl.cl_ord_id), (41, "O7-2"), (58, "too late")), routes)
    assert refused is not None and refused.exec_id is None
    assert refused.events == (v.Rejected("O7", "venue refused the request: too late"),)
    expired = read_report(raw("8", (41, "O7-2"), (11, "theirs"), (17, "X3"), (150, "C")), routes)
    assert expired is not None and expired.events == (v.Cancelled("O7", "expired at the venue"),)


def test_reports_that_are_not_ours_or_not_readable(routes):
    assert read_report(raw("8", (11, "nobody"), (17, "X1"), (150, "F")), routes) is None
    routes.open_request("O1", "new")
    with pytest.raises(ReportError, match="tag 17"):
        read_report(raw("8", (11, "O1-1"), (150, "0")), routes)
    with pytest.raises(ReportError, match="tag 32"):
        read_report(raw("8", (11, "O1-1"), (17, "X"), (150, "F"), (31, "1")), routes)
    with pytest.raises(ReportError, match="not a number"):
        read_report(raw("8", (11, "O1-1"), (17, "X"), (150, "F"), (32, "x"), (31, "1")), routes)
    assert read_report(raw("8", (11, "O1-1"), (17, "X"), (150, "A")), routes).events == ()


def test_routes_survive_a_restart_and_a_torn_last_line(tmp_path):
    path = tmp_path / "routes.jsonl"
    routes = UpstreamRoutes(path)
    routes.open_request("O1", "new")
    routes.open_request("O1", "replace")
    routes.replaced("O1", "O1-2")
    routes.venue_id("O1", "V9")
    routes.mark_applied("X1", "O1")
    routes.close()
    with open(path, "a") as f:
        f.write('{"t":"req","c":"O2-1","o"')  # a crash mid-write
    again = UpstreamRoutes(path)
    assert again.current("O1") == "O1-2"
    assert again.venue_order_id("O1") == "V9"
    assert again.applied("X1") and not again.applied("X2")
    assert again.route("O2-1") is None
    assert again.open_request("O1", "cancel").cl_ord_id == "O1-3"  # numbering goes on


def test_the_logon_password_is_masked_for_logs():
    logon = SOH.join(["8=FIX.4.4", "35=A", "553=gw", "554=secret", "10=000", ""])
    assert mask_password(logon) == logon.replace("554=secret", "554=***")
    assert mask_password("554=x" + SOH) == "554=***" + SOH


VENUE_FIX = """
[venue]
kind = "fix"
[venue.fix]
host = "venue.example"
port = 9000
sender_comp_id = "US"
target_comp_id = "THEM"
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[venue]\nkind = "fix"\n', "venue: Value error, kind = 'fix' needs a [venue.fix] section"),
        (VENUE_FIX.replace("port = 9000", "port = 0"), "venue.fix.port"),
        (VENUE_FIX + 'password_env = "X"\n', "a password needs a username"),
        (
            VENUE_FIX + 'username = "u"\npassword_env = "X"\npassword_file = "p"\n',
            "password_env and password_file are alternatives",
        ),
        (VENUE_FIX + "secret = 'x'\n", "venue.fix.secret"),
        (VENUE_FIX.replace('kind = "fix"', 'kind = "simulated"'), "only used with kind = 'fix'"),
    ],
)
def test_bad_venue_configuration_names_the_key(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text + "[[sessions]]\ncomp_id = 'A'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def config_at(tmp_path: Path, extra: str) -> tuple:
    path = tmp_path / "fixbridge.toml"
    path.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        + VENUE_FIX
        + extra
        + "[[sessions]]\ncomp_id = 'A'\n"
    )
    return load_config(path), path


def venue_problems(config, path) -> list[str]:
    return [p for p in preflight.problems(config, path) if "venue.fix" in p]


def test_start_up_names_a_missing_password(tmp_path, monkeypatch):
    monkeypatch.delenv("FIXBRIDGE_NO_SUCH_VAR", raising=False)
    config, path = config_at(tmp_path, 'username = "u"\npassword_env = "FIXBRIDGE_NO_SUCH_VAR"\n')
    assert venue_problems(config, path) == [
        f"{path}: venue.fix.password_env: environment variable FIXBRIDGE_NO_SUCH_VAR is not set"
    ]
    monkeypatch.setenv("FIXBRIDGE_NO_SUCH_VAR", "pw")
    assert venue_problems(config, path) == []
    config, path = config_at(tmp_path, f'username = "u"\npassword_file = "{tmp_path / "nope"}"\n')
    (problem,) = venue_problems(config, path)
    assert "venue.fix.password_file: cannot read" in problem and "nope" in problem


def test_tls_to_the_venue_is_refused_at_start_up_without_openssl_in_quickfix(tmp_path):
    path = tmp_path / "tls.toml"
    path.write_text(VENUE_FIX + "tls = true\n[[sessions]]\ncomp_id = 'A'\n")
    with pytest.raises(ConfigError, match="venue.fix: Value error, tls = true needs tls_ca_file"):
        load_config(path)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config, path = config_at(tmp_path, f'tls = true\ntls_ca_file = "{tmp_path / "ca.pem"}"\n')
    assert not quickfix_has_ssl()  # the quickfix wheel this project builds has no OpenSSL
    (problem,) = venue_problems(config, path)
    assert problem.startswith(f"{path}: venue.fix.tls: the installed QuickFIX was built without")
    assert "stunnel" in problem
    keys = tls_settings(config.venue.fix)  # what a QuickFIX with OpenSSL would be told
    assert keys["VerifyLevel"] == "1" and "-TLSv1_1" in keys["SSLProtocol"]
    assert keys["CertificationAuthoritiesFile"] == str(tmp_path / "ca.pem")


def test_fixbridge_run_refuses_tls_to_the_venue_naming_the_key(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config, path = config_at(tmp_path, f'tls = true\ntls_ca_file = "{tmp_path / "ca.pem"}"\n')
    generate_signing_key(config.gateway.data_dir / "audit")
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert f"fixbridge: {path}: venue.fix.tls: the installed QuickFIX" in run.stderr


def test_the_readme_venue_example_is_a_valid_configuration(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Routing to a real venue") :]
    example = section[section.index("```toml\n") + 8 : section.index("```\n", 10)]
    path = tmp_path / "venue.toml"
    path.write_text(example + "[[sessions]]\ncomp_id = 'A'\n")
    config = load_config(path)
    assert config.venue.kind == "fix" and config.venue.fix is not None
    assert (config.venue.fix.host, config.venue.fix.port) == ("fix.venue.example", 9000)
    assert config.venue.fix.password_env == "VENUE_FIX_PASSWORD"
    assert config.venue_dir == config.gateway.data_dir / "venue"


# -- the adapter's side of the order core, without a venue ------------------------------------


def resting(order_id: str, status: m.OrdStatus = m.OrdStatus.NEW) -> Order:
    now = m.utcnow()
    return Order(
        order_id=order_id,
        owner="CLIENT1",
        cl_ord_id=f"c-{order_id}",
        instrument=parse_symbol("BTC-PERP"),
        side=m.Side.BUY,
        ord_type=m.OrdType.LIMIT,
        quantity=Decimal(5),
        price=Decimal(66000),
        time_in_force=m.TimeInForce.DAY,
        status=status,
        cum_qty=Decimal(0),
        avg_px=Decimal(0),
        created_at=now,
        updated_at=now,
    )


# the last state reported of each order: a finished order leaves the core's memory, and its
# record is what the edges were handed (the database, in the gateway)
REPORTED: dict[str, Order] = {}


class RecordingVenue(FixUpstreamVenue):
    """The adapter, noting the order states each report hands to the edges."""

    def apply_report(self, report, orders):  # type: ignore[no-untyped-def]
        events = super().apply_report(report, orders)
        for event in events:
            if isinstance(event, OrderUpdated):
                REPORTED[event.order.order_id] = event.order
        return events


def latest(orders: OrderManager, order_id: str) -> Order:
    """The order as the core holds it, or as last reported once it has left memory."""
    return orders.orders.get(order_id) or REPORTED[order_id]


@pytest.fixture
def adapter(tmp_path) -> tuple[FixUpstreamVenue, OrderManager, list]:
    REPORTED.clear()
    upstream = UpstreamSection(host="127.0.0.1", port=1, sender_comp_id="US", target_comp_id="V")
    audited: list = []
    venue = RecordingVenue(upstream, tmp_path / "venue", {}, None, lambda *a: audited.append(a))
    orders = OrderManager(venue)
    venue.attach(lambda action: action(orders))  # the application's run_core, lock aside
    return venue, orders, audited


def fill(exec_id: str, last: str, cum: str, poss_dup: bool = False) -> RawMessage:
    fields = [(11, "O1-1"), (17, exec_id), (150, "F"), (32, last), (31, "65000"), (14, cum)]
    return raw("8", *fields, *([(43, "Y")] if poss_dup else []))


def test_a_fill_is_applied_once_by_exec_id_and_by_cum_qty(adapter, tmp_path):
    venue, orders, audited = adapter
    orders.restore([resting("O1")], [])
    venue.routes.open_request("O1", "new")

    def apply(report: RawMessage) -> list:
        parsed = read_report(report, venue.routes)
        assert parsed is not None
        return venue.apply_report(parsed, orders)

    assert [type(e).__name__ for e in apply(fill("X1", "2", "2"))] == ["OrderUpdated", "Send"]
    assert apply(fill("X1", "2", "2", poss_dup=True)) == []  # the same report again
    assert apply(fill("X9", "2", "2")) == []  # a new ExecID, but nothing more is filled
    assert latest(orders, "O1").cum_qty == 2
    assert [a[0] for a in audited] == ["venue.fill_repeated"]
    apply(fill("X2", "3", "5"))
    assert (latest(orders, "O1").cum_qty, latest(orders, "O1").status) == (5, m.OrdStatus.FILLED)
    reopened = UpstreamRoutes(tmp_path / "venue" / "routes.jsonl")
    assert [reopened.applied(x) for x in ("X1", "X9", "X2", "X3")] == [True, True, True, False]


def test_a_session_reject_of_a_new_order_rejects_it_to_the_client(adapter):
    venue, orders, _ = adapter
    orders.restore([resting("O2", m.OrdStatus.PENDING_NEW)], [])
    route = venue.routes.open_request("O2", "new")
    sent = fix.Message()
    sent.getHeader().setField(35, "D")
    sent.getHeader().setField(34, "7")
    sent.setField(11, route.cl_ord_id)
    session = fix.SessionID("FIX.4.4", "US", "V")
    venue.toApp(sent, session)
    reject = fix.Message()
    reject.getHeader().setField(35, "3")
    reject.setField(45, "7")
    reject.setField(58, "Value is incorrect (out of range) for this tag, field=59")
    venue.fromAdmin(reject, session)
    order = latest(orders, "O2")
    assert order.status is m.OrdStatus.REJECTED
    assert order.text == (
        "venue rejected the message: Value is incorrect (out of range) for this tag, field=59"
    )


def test_a_business_reject_names_the_request_by_its_ref_id(routes):
    routes.open_request("O3", "new")
    cxl = routes.open_request("O3", "cancel")
    report = read_report(raw("j", (45, "9"), (372, "F"), (379, cxl.cl_ord_id), (58, "no")), routes)
    assert report is not None
    assert report.events == (v.Rejected("O3", "venue rejected the message: no"),)


def test_compaction_keeps_only_the_open_orders_routes(tmp_path):
    path = tmp_path / "routes.jsonl"
    routes = UpstreamRoutes(path)
    for n in range(1, 51):  # finished orders: a route and a fill each
        routes.open_request(f"O{n}", "new")
        routes.venue_id(f"O{n}", f"V{n}")
        routes.mark_applied(f"X{n}", f"O{n}")
    routes.open_request("O51", "new")
    routes.open_request("O51", "replace")
    routes.replaced("O51", "O51-2")
    routes.venue_id("O51", "V51")
    routes.mark_applied("X51", "O51")
    routes.close()
    with open(path, "a") as f:
        f.write('{"t":"exec","x":"OLD"}\n')  # recorded before ExecIDs named their order
    routes = UpstreamRoutes(path)  # as at start
    assert routes.compact({"O51"}) == (156, 6)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r.get("o") for r in records} == {"O51", None}
    assert routes.route("O1-1") is None and not routes.applied("X1")
    routes.mark_applied("X52", "O51")  # the journal goes on after the rename
    routes.close()
    again = UpstreamRoutes(path)
    assert again.current("O51") == "O51-2" and again.venue_order_id("O51") == "V51"
    assert [again.applied(x) for x in ("X51", "X52", "OLD", "X1")] == [True, True, True, False]
    assert again.route("O1-1") is None and again.route("O51-1") is not None
    assert again.open_request("O51", "cancel").cl_ord_id == "O51-3"  # numbering goes on
    assert not (tmp_path / "routes.jsonl.tmp").exists()


def test_a_report_for_an_order_finished_before_the_compaction_is_not_applied(adapter):
    venue, orders, audited = adapter
    filled = resting("O1", m.OrdStatus.FILLED)
    orders.restore(
        [dc_replace(filled, cum_qty=Decimal(5), avg_px=Decimal(65000)), resting("O2")], []
    )
    venue.routes.open_request("O1", "new")
    venue.routes.mark_applied("X1", "O1")
    venue.routes.open_request("O2", "new")
    venue.compact_routes()  # as at start: O2 was resumed, O1 is finished
    for exec_id in ("X1", "X9"):  # its fill resent, and under a new ExecID
        text = SOH.join(
            ["8=FIX.4.4", "35=8", "43=Y", "11=O1-1", f"17={exec_id}", "150=F", "39=2"]
            + ["32=5", "31=65000", "14=5", "6=65000", "10=000", ""]
        )
        venue._answer(text)
    assert "O1" not in orders.orders and "O1" not in REPORTED  # finished: never touched again
    assert [a[0] for a in audited] == ["venue.report_unknown", "venue.report_unknown"]
    venue._answer(
        SOH.join(
            ["8=FIX.4.4", "35=8", "11=O2-1", "17=X3", "150=F", "39=1"]
            + ["32=1", "31=65000", "14=1", "6=65000", "10=000", ""]
        )
    )
    assert latest(orders, "O2").cum_qty == 1  # the open order's route is still there


def status(*fields: tuple[int, str]) -> RawMessage:
    return raw("8", (11, "O1-1"), (17, "S1"), (150, "I"), *fields)


def test_a_status_answer_applies_only_what_we_missed(adapter):
    venue, orders, audited = adapter
    orders.restore([resting("O1")], [])
    venue.routes.open_request("O1", "new")

    def apply(report: RawMessage) -> list:
        parsed = read_report(report, venue.routes)
        assert parsed is not None and parsed.status is not None
        return venue.apply_report(parsed, orders)

    assert apply(status((39, "0"), (14, "0"), (6, "0"))) == []  # what we know already
    apply(status((39, "1"), (14, "2"), (6, "65000")))
    assert (latest(orders, "O1").cum_qty, latest(orders, "O1").avg_px) == (2, 65000)
    assert apply(status((39, "1"), (14, "2"), (6, "65000"))) == []  # the same answer again
    apply(status((39, "2"), (14, "5"), (6, "65600")))  # 3 more at 66000
    order = latest(orders, "O1")
    assert (order.cum_qty, order.avg_px, order.status) == (5, 65600, m.OrdStatus.FILLED)
    late = read_report(fill("X7", "3", "5"), venue.routes)  # the fill's own report, late
    assert late is not None and venue.apply_report(late, orders) == []
    assert latest(orders, "O1").cum_qty == 5
    assert [a[0] for a in audited].count("venue.status_applied") == 2


def test_an_order_the_venue_does_not_know_is_rejected_or_cancelled(adapter):
    venue, orders, audited = adapter
    orders.restore([resting("O1", m.OrdStatus.PENDING_NEW), resting("O2")], [])
    venue.routes.open_request("O1", "new")
    venue.routes.open_request("O2", "new")
    unknown = raw("8", (11, "O1-1"), (17, "S"), (150, "I"), (39, "8"), (103, "5"))
    report = read_report(unknown, venue.routes)
    assert report is not None
    venue.apply_report(report, orders)
    o1 = latest(orders, "O1")
    assert o1.status is m.OrdStatus.REJECTED
    assert o1.text == "venue does not know the order (status check after logon): unknown order"
    bmr = raw("j", (45, "4"), (372, "H"), (379, "O2-1"), (380, "0"), (58, "no such order"))
    report = read_report(bmr, venue.routes)
    assert report is not None and report.status is not None and report.status.unknown
    venue.apply_report(report, orders)
    o2 = latest(orders, "O2")
    assert (o2.status, o2.text) == (
        m.OrdStatus.CANCELED,
        "venue does not know the order (status check after logon): no such order",
    )
    assert [a[0] for a in audited] == ["venue.order_unknown", "venue.order_unknown"]


def test_a_cancel_the_venue_never_received_is_refused_by_the_status_check(adapter):
    venue, orders, _ = adapter
    waiting = dc_replace(resting("O1", m.OrdStatus.PENDING_CANCEL), pending_cl_ord_id="c-O1-cxl")
    orders.restore([waiting], [])
    venue.routes.open_request("O1", "new")
    venue.routes.open_request("O1", "cancel")
    report = read_report(status((39, "6"), (14, "0"), (6, "0")), venue.routes)
    assert report is not None and venue.apply_report(report, orders) == []  # still on its way
    report = read_report(status((39, "0"), (14, "0"), (6, "0")), venue.routes)
    assert report is not None
    events = venue.apply_report(report, orders)
    (reject,) = [e.message for e in events if isinstance(e, Send)]
    assert isinstance(reject, m.CancelReject) and reject.cl_ord_id == "c-O1-cxl"
    assert reject.text == "venue has no cancel pending for the order (status check after logon)"
    assert latest(orders, "O1").status is m.OrdStatus.NEW
