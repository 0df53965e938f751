"""Orders routed to a real upstream FIX venue: client -> gateway -> QuickFIX initiator -> the test
venue (tests/upstream_venue.py, a QuickFIX acceptor in its own process) and back, through its
disconnects and restarts and the gateway's."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fixspec.codec import RawMessage
from load.fixclient import FixClient, fix_time
from load.procs import start_ready, terminate
from tests.harness import API_TOKEN, GatewayProcess, free_port, order_fields
from tests.upstream_venue import GATEWAY, READY, VENUE

PASSWORD_ENV = "FIXBRIDGE_TEST_VENUE_PASSWORD"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass
class VenueProcess:
    """The test venue in a subprocess; stopped, killed or frozen like a real one."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    echo_fills: bool = False
    tls_dir: Path | None = None
    proc: subprocess.Popen | None = None

    def start(self) -> VenueProcess:
        argv = [sys.executable, "-m", "tests.upstream_venue", "--port", str(self.port)]
        argv += ["--data-dir", str(self.data_dir), "--username", "gw", "--password-env"]
        argv.append(PASSWORD_ENV)
        if self.echo_fills:
            argv.append("--echo-fills")
        if self.tls_dir is not None:
            argv += ["--tls-dir", str(self.tls_dir)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = start_ready("venue", argv, READY, self.data_dir / "stderr.log")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def fill_resting(self) -> None:
        """Fill every resting order now (SIGUSR1), and wait until the venue says it has."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        log = self.data_dir / "stderr.log"
        deadline = time.monotonic() + 20
        while "filled every resting order" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            terminate(self.proc, 10)
            self.proc = None

    def book(self) -> dict:
        return json.loads((self.data_dir / "book.json").read_text())

    def received(self, msg_type: str) -> list[RawMessage]:
        """Every message of ``msg_type`` the venue's QuickFIX logged as received."""
        out = []
        for path in (self.data_dir / "log").glob("*.messages.current.log"):
            for line in path.read_text(encoding="latin-1").splitlines():
                _, _, text = line.partition(" : ")
                raw = RawMessage.parse(text)
                if raw.msg_type == msg_type and raw.get(49) == GATEWAY:
                    out.append(raw)
        return out


@dataclass
class RoutingGateway(GatewayProcess):
    """A gateway whose venue is the upstream FIX venue at ``venue_port``."""

    venue_port: int = 0

    def write_config(self) -> Path:
        path = super().write_config()
        text = path.read_text().replace("[venue]\n", '[venue]\nkind = "fix"\n', 1)
        text += (
            f'\n[venue.fix]\nhost = "127.0.0.1"\nport = {self.venue_port}\n'
            f'sender_comp_id = "{GATEWAY}"\ntarget_comp_id = "{VENUE}"\nusername = "gw"\n'
            f'password_env = "{PASSWORD_ENV}"\nheartbeat_seconds = 5\nreconnect_seconds = 1\n'
        )
        path.write_text(text)
        return path


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, "venue-secret")
    return "venue-secret"


@contextlib.contextmanager
def running(
    tmp_path: Path, echo_fills: bool = False
) -> Iterator[tuple[VenueProcess, RoutingGateway]]:
    venue = VenueProcess(tmp_path / "venue", echo_fills=echo_fills).start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        yield venue, gw
    finally:
        gw.stop()
        venue.stop()


def venue_check(gw: GatewayProcess) -> dict:
    return httpx.get(f"{gw.http}/ready", timeout=10).json()["checks"]["venue"]


def wait_ready(gw: GatewayProcess, ok: bool = True, timeout: float = 30) -> dict:
    """/ready's venue check once it says ``ok``."""
    deadline = time.monotonic() + timeout
    while True:
        check = venue_check(gw)
        if check["ok"] is ok or time.monotonic() > deadline:
            assert check["ok"] is ok, check
            return check
        time.sleep(0.2)


def client(gw: GatewayProcess) -> FixClient:
    c = FixClient("127.0.0.1", gw.fix_port, "CLIENT2", "FIXBRIDGE")
    assert c.logon().msg_type == "A"
    return c


def reports(c: FixClient, n: int, timeout: float = 20) -> list[RawMessage]:
    return [c.expect("8", timeout=timeout) for _ in range(n)]


def exec_types(ers: list[RawMessage]) -> list[str | None]:
    return [er.get(150) for er in ers]


def no_more_reports(c: FixClient, within: float = 3.0) -> None:
    with pytest.raises(TimeoutError):
        er = c.expect("8", timeout=within)
        pytest.fail(f"unexpected report {er.fields}")


def cancel_fields(orig: str, cl: str) -> list[tuple[int, str]]:
    return [(41, orig), (11, cl), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]


def order(gw: GatewayProcess, order_id: str) -> dict:
    return httpx.get(f"{gw.http}/orders/{order_id}", headers=AUTH, timeout=10).json()


# -- the tests ---------------------------------------------------------------------------------


def test_order_is_filled_by_the_upstream_venue(tmp_path, password):
    with running(tmp_path) as (venue, gw):
        assert "logged on" in venue_check(gw)["detail"]
        c = client(gw)
        c.send("D", order_fields("buy-1", qty="2", px="66000"))
        pending, new, fill = reports(c, 3)
        assert exec_types([pending, new, fill]) == ["A", "0", "F"]
        assert [fill.get(t) for t in (11, 39, 32, 31)] == ["buy-1", "2", "2", "65000"]
        order_id = fill.get(37)
        sent = venue.received("D")
        assert [d.get(11) for d in sent] == [f"{order_id}-1"]  # ours, not the client's
        assert (sent[0].get(38), sent[0].get(44), sent[0].get(55)) == ("2", "66000", "BTC-PERP")
        logon = venue.received("A")[0]
        assert (logon.get(553), logon.get(554)) == ("gw", password)
        view = order(gw, order_id)
        assert (view["status"], view["cum_qty"]) == ("2", "2")  # OrdStatus Filled
        no_more_reports(c, 1.0)


def test_resting_order_is_replaced_then_cancelled_at_the_venue(tmp_path, password):
    with running(tmp_path) as (venue, gw):
        c = client(gw)
        c.send("D", order_fields("rest-1", qty="2", px="60000"))
        assert exec_types(reports(c, 2)) == ["A", "0"]
        c.send(
            "G",
            [(41, "rest-1"), (11, "rest-2"), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]
            + [(38, "3"), (40, "2"), (44, "61000")],
        )
        pending, replaced = reports(c, 2)
        assert exec_types([pending, replaced]) == ["E", "5"]
        assert (replaced.get(11), replaced.get(41), replaced.get(38), replaced.get(44)) == (
            "rest-2",
            "rest-1",
            "3",
            "61000",
        )
        c.send("F", cancel_fields("rest-2", "rest-3"))
        pending, cancelled = reports(c, 2)
        assert exec_types([pending, cancelled]) == ["6", "4"]
        assert (cancelled.get(11), cancelled.get(39)) == ("rest-3", "4")
        order_id = cancelled.get(37)
        g, f = venue.received("G")[0], venue.received("F")[0]
        assert (g.get(41), g.get(11)) == (f"{order_id}-1", f"{order_id}-2")
        assert (f.get(41), f.get(11)) == (f"{order_id}-2", f"{order_id}-3")  # the replaced id
        assert venue.book()["orders"] == {}


def test_venue_killed_with_an_order_in_flight_fills_it_exactly_once(tmp_path, password):
    with running(tmp_path) as (venue, gw):
        c = client(gw)
        venue.freeze()  # the gateway's session is up; what it sends now is never read
        c.send("D", order_fields("flight-1", qty="4", px="66000"))
        assert exec_types(reports(c, 1)) == ["A"]
        venue.kill()  # the NewOrderSingle dies unread in the venue's socket buffer
        assert "not logged on" in wait_ready(gw, ok=False)["detail"]
        venue.start()
        wait_ready(gw)
        new, fill = reports(c, 2)
        assert exec_types([new, fill]) == ["0", "F"]
        assert (fill.get(11), fill.get(32), fill.get(14)) == ("flight-1", "4", "4")
        no_more_reports(c)
        resent = [d for d in venue.received("D") if d.get(11) == f"{fill.get(37)}-1"]
        assert [d.get(43) for d in resent] == ["Y"]  # QuickFIX's resend from its store
        assert order(gw, fill.get(37))["cum_qty"] == "4"


def test_a_fill_sent_again_with_possdup_does_not_fill_twice(tmp_path, password):
    with running(tmp_path, echo_fills=True) as (venue, gw):
        c = client(gw)
        c.send("D", order_fields("dup-1", qty="3", px="66000"))
        ers = reports(c, 3)
        assert exec_types(ers) == ["A", "0", "F"]
        no_more_reports(c)
        view = order(gw, ers[-1].get(37))
        assert (view["status"], view["cum_qty"]) == ("2", "3")  # OrdStatus Filled
        assert "already applied" in gw.stderr()  # the echo did arrive, and was recognised


def test_orders_are_refused_while_the_venue_is_unreachable(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue")  # not started: nothing listens on its port
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        r = httpx.get(f"{gw.http}/ready", timeout=10)
        assert r.status_code == 503 and not r.json()["checks"]["venue"]["ok"]
        c = client(gw)
        c.send("D", order_fields("early-1", qty="1", px="66000"))
        (er,) = reports(c, 1)
        assert (er.get(150), er.get(39), er.get(11)) == ("8", "8", "early-1")
        assert "venue unreachable" in er.get(58) and "FIXBRIDGE-UP->VENUE" in er.get(58)
        venue.start()
        wait_ready(gw)
        c.send("D", order_fields("later-1", qty="1", px="66000"))
        assert exec_types(reports(c, 3)) == ["A", "0", "F"]
        assert [d.get(11) for d in venue.received("D")] == ["O2-1"]  # the refused one never went
        c.send("D", order_fields("rest-1", qty="1", px="60000"))
        assert exec_types(reports(c, 2)) == ["A", "0"]
        venue.kill()  # the order rests at the venue while it is down
        wait_ready(gw, ok=False)
        c.send("F", cancel_fields("rest-1", "rest-2"))
        refused = c.expect("9", timeout=20)
        assert (refused.get(11), refused.get(41), refused.get(434)) == ("rest-2", "rest-1", "1")
        assert "venue unreachable" in refused.get(58)
        venue.start()
        wait_ready(gw)
        c.send("F", cancel_fields("rest-1", "rest-3"))
        assert exec_types(reports(c, 2)) == ["6", "4"]
    finally:
        gw.stop()
        venue.stop()


def test_gateway_restart_keeps_the_route_to_a_resting_order(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue").start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("D", order_fields("keep-1", qty="2", px="60000"))
        new = reports(c, 2)[1]
        assert new.get(150) == "0"
        order_id = new.get(37)
        c.close()
        assert gw.stop() == 0
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("F", cancel_fields("keep-1", "keep-2"))
        pending, cancelled = reports(c, 2)
        assert exec_types([pending, cancelled]) == ["6", "4"]
        assert (cancelled.get(37), cancelled.get(11)) == (order_id, "keep-2")
        (f,) = venue.received("F")
        assert (f.get(41), f.get(11)) == (f"{order_id}-1", f"{order_id}-2")
    finally:
        gw.stop()
        venue.stop()


def test_the_venue_password_is_kept_only_in_the_owner_only_store(tmp_path, password):
    with running(tmp_path) as (_, gw):
        assert "logged on" in venue_check(gw)["detail"]
    venue_dir = gw.data_dir / "venue"
    files = [p for p in gw.data_dir.rglob("*") if p.is_file()]
    logs = [p for p in files if {"log", "audit"} & set(p.parts)]
    assert any("FIXBRIDGE-UP" in p.name for p in logs), logs  # the session's messages are logged
    holding = [p for p in files if password.encode() in p.read_bytes()]
    # QuickFIX's store keeps the Logon as sent; nothing else (logs, audit, routes) has it
    assert all(p.parent == venue_dir / "store" for p in holding), holding
    assert venue_dir.stat().st_mode & 0o077 == 0
    assert b"554=***" in (gw.data_dir / "audit" / "entries.jsonl").read_bytes()


def test_a_fill_sent_while_the_gateway_was_killed_arrives_on_its_restart(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue").start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("D", order_fields("away-1", qty="2", px="60000"))
        order_id = reports(c, 2)[1].get(37)
        c.close()
        gw.kill()  # SIGKILL: no logout, nothing flushed on the way out
        venue.fill_resting()  # the venue's fill waits in its store for the gateway
        gw.start()
        wait_ready(gw)
        deadline = time.monotonic() + 20
        while (view := order(gw, order_id))["status"] != "2" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (view["status"], view["cum_qty"], view["avg_px"]) == ("2", "2", "65000")
        c = client(gw)
        c.send("H", [(11, "away-1"), (55, "BTC-PERP"), (54, "1")])
        (status,) = reports(c, 1)
        assert [status.get(t) for t in (150, 39, 14, 37)] == ["I", "2", "2", order_id]
        received = upstream_log(gw, "8")
        fills = [er for er in received if er.get(150) == "F"]
        assert [er.get(43) for er in fills] == ["Y"]  # resent by the venue on our logon
    finally:
        gw.stop()
        venue.stop()


def upstream_log(gw: GatewayProcess, msg_type: str) -> list[RawMessage]:
    """The messages of ``msg_type`` the gateway's upstream session received, from its file log."""
    out = []
    for path in (gw.data_dir / "venue" / "log").glob("*-VENUE.messages.current.log"):
        for line in path.read_text(encoding="latin-1").splitlines():
            raw = RawMessage.parse(line.partition(" : ")[2])
            if raw.msg_type == msg_type and raw.get(49) == VENUE:
                out.append(raw)
    return out


def wait_for(gw: GatewayProcess, order_id: str, status: str, timeout: float = 30) -> dict:
    """The order's view once its OrdStatus is ``status`` (or the last one seen)."""
    deadline = time.monotonic() + timeout
    while (view := order(gw, order_id))["status"] != status and time.monotonic() < deadline:
        time.sleep(0.2)
    return view


def restart_both_sessions_from_one(venue: VenueProcess, gw: RoutingGateway, book: bool) -> None:
    """The venue lost its store (and its ``book`` of orders, unless kept): both sides' operators
    start the session again from sequence number 1, so nothing missed can be resent."""
    gw.stop()
    venue.stop()
    shutil.rmtree(venue.data_dir / "store")
    if not book:
        (venue.data_dir / "book.json").unlink()
    shutil.rmtree(gw.data_dir / "venue" / "store")
    venue.start()
    gw.start()
    wait_ready(gw)


def test_an_order_the_venue_forgot_is_cancelled_by_the_status_check(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue").start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("D", order_fields("lost-1", qty="2", px="60000"))
        order_id = reports(c, 2)[1].get(37)
        c.close()
        restart_both_sessions_from_one(venue, gw, book=False)
        view = wait_for(gw, order_id, "4")
        assert (view["status"], view["cum_qty"]) == ("4", "0")
        assert "venue does not know the order" in view["text"]
        assert "unknown order" in view["text"]
        asked = venue.received("H")
        assert [(h.get(11), h.get(55), h.get(54)) for h in asked] == [
            (f"{order_id}-1", "BTC-PERP", "1")
        ]
        c = client(gw)
        c.send("H", [(11, "lost-1"), (55, "BTC-PERP"), (54, "1")])
        (status,) = reports(c, 1)
        assert [status.get(t) for t in (150, 39, 37)] == ["I", "4", order_id]
        kinds = [e["kind"] for e in audit_entries(gw)]
        assert kinds.count("venue.order_unknown") == 1
    finally:
        gw.stop()
        venue.stop()


def test_a_fill_lost_with_both_stores_is_applied_once_by_the_status_check(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue").start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("D", order_fields("unseen-1", qty="2", px="60000"))
        order_id = reports(c, 2)[1].get(37)
        c.close()
        gw.kill()  # our session is down...
        venue.fill_resting()  # ...so the fill's report waits in the venue's store, then is lost
        restart_both_sessions_from_one(venue, gw, book=True)
        view = wait_for(gw, order_id, "2")
        assert (view["status"], view["cum_qty"], view["avg_px"]) == ("2", "2", "65000")
        assert [h.get(11) for h in venue.received("H")] == [f"{order_id}-1"]
        gw.stop()  # the next logon asks about nothing: the order is filled
        gw.start()
        wait_ready(gw)
        c = client(gw)
        c.send("H", [(11, "unseen-1"), (55, "BTC-PERP"), (54, "1")])
        (status,) = reports(c, 1)
        assert [status.get(t) for t in (150, 39, 14)] == ["I", "2", "2"]
        assert len(venue.received("H")) == 1
        applied = [e for e in audit_entries(gw) if e["kind"] == "venue.status_applied"]
        assert [a["payload"]["missing_qty"] for a in applied] == ["2"]
    finally:
        gw.stop()
        venue.stop()


def audit_entries(gw: GatewayProcess) -> list[dict]:
    path = gw.data_dir / "audit" / "entries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_restart_compacts_the_routes_to_the_open_orders(tmp_path, password):
    venue = VenueProcess(tmp_path / "venue").start()
    gw = RoutingGateway(tmp_path / "gw", venue_port=venue.port)
    try:
        gw.start()
        wait_ready(gw)
        c = client(gw)
        for n in range(12):  # each filled at once: finished
            c.send("D", order_fields(f"done-{n}", qty="1", px="66000"))
            assert exec_types(reports(c, 3)) == ["A", "0", "F"]
        c.send("D", order_fields("open-1", qty="1", px="60000"))
        open_id = reports(c, 2)[1].get(37)
        c.close()
        journal = gw.data_dir / "venue" / "routes.jsonl"
        before = journal.read_text().splitlines()
        assert len(before) > 12 * 3
        assert gw.stop() == 0
        gw.start()
        wait_ready(gw)
        after = [json.loads(line) for line in journal.read_text().splitlines()]
        assert {r["o"] for r in after} == {open_id}
        assert {r["t"] for r in after} == {"req", "vid", "exec"}  # its route, OrderID, New
        c = client(gw)
        c.send("F", cancel_fields("open-1", "open-2"))  # the open order's route still works
        assert exec_types(reports(c, 2)) == ["6", "4"]
    finally:
        gw.stop()
        venue.stop()


def test_a_kill_switch_engaged_while_the_venue_is_down_cancels_there_on_its_return(
    tmp_path, password
):
    with running(tmp_path) as (venue, gw):
        c = client(gw)
        c.send("D", order_fields("halt-1", qty="1", px="60000"))
        order_id = reports(c, 2)[1].get(37)
        venue.kill()
        wait_ready(gw, ok=False)
        r = httpx.post(
            f"{gw.http}/risk/kill",
            json={"client": "CLIENT2", "reason": "desk closed"},
            headers=AUTH,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["cancelled_orders"] == 0  # the venue could not be asked
        assert order(gw, order_id)["status"] == "0"  # still resting there
        refused = [e for e in audit_entries(gw) if e["kind"] == "venue.request_refused"]
        assert [e["payload"]["order_id"] for e in refused] == [order_id]
        venue.start()
        wait_ready(gw)
        (cancelled,) = reports(c, 1)
        assert [cancelled.get(t) for t in (150, 39, 37)] == ["4", "4", order_id]
        (sent,) = venue.received("F")
        assert sent.get(41) == f"{order_id}-1"
        assert venue.book()["orders"] == {}
        no_more_reports(c)
