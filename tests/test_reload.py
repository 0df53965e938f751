"""Reloading the configuration at run time: sessions added (an acceptor of their own) and
removed (logged out, then refused) while the other sessions stay logged on with their sequence
numbers; anything else refused whole. Over the API, the CLI and SIGHUP."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import httpx
import pytest

from gateway.config import Config, SessionConfig
from gateway.fix.acceptor import engine_settings
from gateway.passwords import hash_password
from gateway.reload import plan
from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import API_TOKEN, ROOT, GatewayProcess

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def reload(gw) -> httpx.Response:
    return httpx.post(f"{gw.http}/admin/reload", headers=ADMIN, timeout=30)


def sessions(gw) -> dict[str, dict]:
    r = httpx.get(f"{gw.http}/sessions", headers=ADMIN)
    return {v["comp_id"]: v for v in r.json()}


def with_extra(gw, extra: str) -> None:
    gw.extra = extra
    gw.write_config()


def refused_text(gw, comp_id: str) -> str:
    c = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
    reply = c.logon()
    assert reply.msg_type == "5", reply.fields
    assert c.closed()
    return reply.get(58)


def ping(client: FixClient, text: str) -> str:
    """A TestRequest answered by a Heartbeat: the Heartbeat's MsgSeqNum."""
    client.send("1", [(112, text)])
    beat = client.expect("0")
    assert beat.get(112) == text
    return beat.get(34)


TEMP = '\n[[sessions]]\ncomp_id = "TEMP"\n'
NEW = '\n[[sessions]]\ncomp_id = "NEWCO"\nreset_on_logon = false\n'


@pytest.fixture
def gw(tmp_path):
    gw = GatewayProcess(tmp_path, extra=TEMP).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


def test_reload_adds_and_removes_sessions_while_others_stay_logged_on(gw):
    keep = connect(gw, "KEEPSEQ")  # no reset at logon: its numbers must carry on
    for i in range(3):
        ping(keep, f"before-{i}")
    before = sessions(gw)["KEEPSEQ"]
    temp = connect(gw, "TEMP")

    with_extra(gw, NEW)  # TEMP out, NEWCO in
    r = reload(gw)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["added"], out["removed"], out["readmitted"]) == (["NEWCO"], ["TEMP"], [])
    assert out["still_logged_on"] == [] and out["sessions"] == 4

    assert temp.expect("5").get(58) == "session removed from the gateway's configuration"
    assert temp.closed()
    assert "unknown CompID TEMP" in refused_text(gw, "TEMP")

    newco = connect(gw, "NEWCO")
    assert ping(newco, "hello") == "2"
    newco.logout()

    # KEEPSEQ never noticed: same connection, numbers carry on
    after = sessions(gw)
    assert after["KEEPSEQ"]["logged_on"] and after["KEEPSEQ"]["peer"] == before["peer"]
    assert (after["KEEPSEQ"]["next_sender_seq_num"], after["KEEPSEQ"]["next_target_seq_num"]) == (
        before["next_sender_seq_num"],
        before["next_target_seq_num"],
    )
    assert ping(keep, "after") == str(before["next_sender_seq_num"])
    assert set(after) == {"CLIENT1", "CLIENT2", "KEEPSEQ", "NEWCO"}
    assert "NEWCO" in after and after["NEWCO"]["reset_on_logon"] is False
    keep.logout()

    # the added session's numbers persist like any other's (its own acceptor, same store)
    assert sessions(gw)["NEWCO"]["next_sender_seq_num"] == 4


def test_a_removed_session_comes_back_as_it_was_or_needs_a_restart(gw):
    with_extra(gw, "")
    assert reload(gw).json()["removed"] == ["TEMP"]
    with_extra(gw, TEMP.replace('"TEMP"\n', '"TEMP"\nreset_on_logon = false\n'))
    r = reload(gw)
    assert r.status_code == 409
    assert "sessions[TEMP] was removed earlier in this process" in r.json()["detail"]
    with_extra(gw, TEMP)
    r = reload(gw)
    assert r.status_code == 200 and r.json()["readmitted"] == ["TEMP"]
    connect(gw, "TEMP").logout()


def test_what_needs_a_restart_is_refused_whole_and_nothing_is_applied(gw):
    text = gw.config_path.read_text()
    with_extra(gw, TEMP + NEW)
    changed = (
        gw.config_path.read_text()
        .replace("max_failures = 50", "max_failures = 7")
        .replace(
            'comp_id = "KEEPSEQ"\nreset_on_logon = false',
            'comp_id = "KEEPSEQ"\nreset_on_logon = true',
        )
        .replace('"BTC-PERP" = "65000"', '"BTC-PERP" = "66000"')
    )
    gw.config_path.write_text(changed)
    r = reload(gw)
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert detail.startswith("the configuration changes what only a restart can; nothing was")
    for key in (
        "logon.max_failures changed",
        "sessions[KEEPSEQ].reset_on_logon changed",
        "venue.reference_prices.BTC-PERP changed",
    ):
        assert key in detail, detail
    assert "NEWCO" not in sessions(gw)  # the addition in the same file was not applied
    c = FixClient("127.0.0.1", gw.fix_port, "NEWCO", "FIXBRIDGE")
    c.send("A", [(98, 0), (108, 30), (141, "Y")])
    assert c.closed()  # QuickFIX has no such session: it drops the connection

    gw.config_path.write_text(text.replace("[gateway]", "[gateway\n"))
    r = reload(gw)
    assert r.status_code == 409 and f"{gw.config_path}: not valid TOML" in r.json()["detail"]
    gw.config_path.write_text(text + '\n[[sessions]]\ncomp_id = "FIXBRIDGE"\n')
    r = reload(gw)
    assert r.status_code == 409 and "uses the gateway's own CompID" in r.json()["detail"]


def test_a_password_change_applies_at_the_next_logon(gw):
    gw.config_path.write_text(
        gw.config_path.read_text().replace(
            'password_hash = "', f'password_hash = "{hash_password("new-secret")}"\n#', 1
        )
    )
    r = reload(gw)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["sessions[CLIENT1].password_hash"]
    connect(gw, "CLIENT1", password="new-secret").logout()
    c = FixClient("127.0.0.1", gw.fix_port, "CLIENT1", "FIXBRIDGE")
    reply = c.logon(username="client1", password="s3cret-pass")
    assert reply.msg_type == "5" and "invalid username or password" in reply.get(58)


def test_sighup_reloads_and_the_cli_reports(gw):
    with_extra(gw, TEMP + NEW)
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "NEWCO" not in sessions(gw):
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.1)
    connect(gw, "NEWCO").logout()
    assert "configuration reloaded by signal:SIGHUP" in gw.stderr()

    # a refused SIGHUP reload goes to the log, and the gateway carries on
    gw.config_path.write_text(gw.config_path.read_text().replace('depth = "10"', 'depth = "11"'))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "SIGHUP: reload refused" not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.1)
    assert "venue.depth changed" in gw.stderr()

    env = {**os.environ, "FIXBRIDGE_TOKEN": API_TOKEN}
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "reload", "--url", gw.http],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 1 and "409" in run.stderr and "venue.depth changed" in run.stderr
    with_extra(gw, TEMP)
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "reload", "--config", str(gw.config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["removed"] == ["NEWCO"]
    assert connect(gw, "CLIENT2")  # the gateway still serves


def test_reloads_are_audited(gw):
    with_extra(gw, NEW)
    assert reload(gw).status_code == 200
    gw.config_path.write_text(gw.config_path.read_text().replace('depth = "10"', 'depth = "12"'))
    assert reload(gw).status_code == 409
    r = httpx.post(f"{gw.http}/audit/export", json={}, headers=ADMIN, timeout=60)
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        name = next(n for n in tar.getnames() if n.endswith("entries.jsonl"))
        entries = [json.loads(line) for line in tar.extractfile(name).read().splitlines()]
    done = next(e for e in entries if e["kind"] == "config.reload")
    assert done["actor"] == "api:test-admin"
    assert done["payload"]["added"] == ["NEWCO"] and done["payload"]["removed"] == ["TEMP"]
    refused = next(e for e in entries if e["kind"] == "config.reload_refused")
    assert refused["payload"]["refused"] == ["venue.depth changed"]


# --- the plan, without a gateway ------------------------------------------------------------


def _config(*sessions: SessionConfig, **sections) -> Config:
    return Config(sessions=list(sessions), **sections)


def test_plan_sorts_changes_into_what_applies_and_what_needs_a_restart():
    a, b = SessionConfig(comp_id="A"), SessionConfig(comp_id="B")
    engine = {"A": engine_settings(a), "B": engine_settings(b)}
    running = _config(a, b)
    p = plan(running, _config(a, SessionConfig(comp_id="C")), engine, None, engine_settings)
    assert ([s.comp_id for s in p.added], p.removed, p.refused) == (["C"], ["B"], [])
    p = plan(
        running,
        _config(a, SessionConfig(comp_id="B", heartbeat_max=30)),
        engine,
        None,
        engine_settings,
    )
    assert p.changed == ["sessions[B].heartbeat_max"] and not p.refused
    p = plan(
        running,
        _config(a, SessionConfig(comp_id="B", throttle={"reject_above": 9})),
        engine,
        None,
        engine_settings,
    )
    assert p.refused == ["sessions[B].throttle.reject_above changed"]
    zoned = SessionConfig(comp_id="Z", schedule={"time_zone": "Asia/Tokyo"})
    p = plan(running, _config(a, b, zoned), engine, None, engine_settings)
    assert "schedule time zone Asia/Tokyo differs from the process's" in p.refused[0]
    p = plan(running, _config(a, b, zoned), engine, "Asia/Tokyo", engine_settings)
    assert not p.refused and [s.comp_id for s in p.added] == ["Z"]
    p = plan(
        running,
        _config(a, b, gateway={"http_listen": "127.0.0.1:1"}),
        engine,
        None,
        engine_settings,
    )
    assert p.refused == ["gateway.http_listen changed"]
