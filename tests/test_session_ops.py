"""Operator actions on FIX sessions, over the API and the CLI, each seen from a real FIX
client's side: logout with Text, disconnect, reset and set sequence numbers, disable/enable
(persisted across a restart). Admin only, and audited."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import httpx
import pytest

from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import (
    API_TOKEN,
    CLIENT_VIEWER_TOKEN,
    COMPLIANCE_TOKEN,
    ROOT,
    VIEWER_TOKEN,
    GatewayProcess,
)

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
OPS = [
    ("post", "logout", {"reason": "x"}),
    ("post", "disconnect", None),
    ("post", "reset", None),
    ("put", "seqnums", {"next_sender": 5}),
    ("post", "disable", {"reason": "x"}),
    ("post", "enable", None),
]


def api(gw, method: str, path: str, body=None, token: str | None = API_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, gw.http + path, json=body, headers=headers, timeout=30)


def view(gw, comp_id: str) -> dict:
    r = api(gw, "get", f"/sessions/{comp_id}")
    assert r.status_code == 200, r.text
    return r.json()


def audit_entries(gw) -> list[dict]:
    r = api(gw, "post", "/audit/export", {})
    assert r.status_code == 200, r.text
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        name = next(n for n in tar.getnames() if n.endswith("entries.jsonl"))
        lines = tar.extractfile(name).read().decode().splitlines()
    return [json.loads(line) for line in lines]


def fixbridge(gw, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FIXBRIDGE_TOKEN": API_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--config", str(gw.config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def logon_refused(gw, comp_id: str = "CLIENT2", **logon) -> str:
    """Log on and expect a refusal: the Logout's Text, after which the connection closes."""
    c = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
    reply = c.logon(**logon)
    assert reply.msg_type == "5", reply.fields
    assert c.closed()
    return reply.get(58)


# --- list ---------------------------------------------------------------------------------


def test_list_shows_sequence_numbers_state_and_schedule(gateway):
    c = connect(gateway, "CLIENT2")
    try:
        views = {v["comp_id"]: v for v in api(gateway, "get", "/sessions").json()}
        assert set(views) == {"CLIENT1", "CLIENT2", "KEEPSEQ"}
        on = views["CLIENT2"]
        assert on["logged_on"] and on["peer"].startswith("127.0.0.1:")
        assert (on["next_sender_seq_num"], on["next_target_seq_num"]) == (2, 2)
        assert on["enabled"] and on["disabled_reason"] is None
        assert on["schedule"] is None and on["in_session"]
        assert views["KEEPSEQ"]["reset_on_logon"] is False
        # a client viewer may read them too
        assert api(gateway, "get", "/sessions", token=CLIENT_VIEWER_TOKEN).status_code == 200
    finally:
        c.logout()


# --- logout and disconnect ------------------------------------------------------------------


def test_logout_sends_a_logout_with_the_reason_and_the_client_may_log_on_again(gateway):
    c = connect(gateway, "CLIENT2")
    r = api(gateway, "post", "/sessions/CLIENT2/logout", {"reason": "end of day maintenance"})
    assert r.status_code == 200, r.text
    assert r.json()["logged_on"] is False
    logout = c.expect("5")
    assert logout.get(58) == "end of day maintenance"
    assert c.closed()
    again = connect(gateway, "CLIENT2")  # QuickFIX's logout() disabled it; we re-enabled it
    again.logout()
    assert api(gateway, "post", "/sessions/CLIENT2/logout", {}).status_code == 409


def test_logout_reason_is_checked(gateway):
    for body in ({"reason": "a\x01b"}, {"reason": ""}, {"reason": "x" * 201}):
        r = api(gateway, "post", "/sessions/CLIENT2/logout", body)
        assert r.status_code == 422, (body, r.text)


def test_disconnect_drops_the_connection_without_a_logout(gateway):
    c = connect(gateway, "CLIENT2")
    r = api(gateway, "post", "/sessions/CLIENT2/disconnect")
    assert r.status_code == 200, r.text
    assert r.json()["logged_on"] is False
    assert c.closed()
    assert b"\x0135=5\x01" not in c.buf  # dropped, not logged out
    assert api(gateway, "post", "/sessions/CLIENT2/disconnect").status_code == 409
    connect(gateway, "CLIENT2").logout()


# --- sequence numbers -----------------------------------------------------------------------


def test_seqnums_are_used_by_the_next_logon_and_reset_starts_over(gateway):
    k = connect(gateway, "KEEPSEQ")
    k.send("1", [(112, "warm")])
    k.expect("0")
    refused = api(gateway, "put", "/sessions/KEEPSEQ/seqnums", {"next_sender": 50})
    assert refused.status_code == 409 and "log it out first" in refused.json()["detail"]
    assert api(gateway, "post", "/sessions/KEEPSEQ/reset").status_code == 409
    k.logout()

    r = api(gateway, "put", "/sessions/KEEPSEQ/seqnums", {"next_sender": 50, "next_target": 70})
    assert r.status_code == 200, r.text
    assert (r.json()["next_sender_seq_num"], r.json()["next_target_seq_num"]) == (50, 70)
    # the client logs on with 70, without a reset: the gateway answers with 50
    k = FixClient("127.0.0.1", gateway.fix_port, "KEEPSEQ", "FIXBRIDGE")
    k.next_seq = 70
    reply = k.logon(reset=False)
    assert (reply.msg_type, reply.get(34)) == ("A", "50")
    k.send("1", [(112, "after")])
    assert k.expect("0").get(34) == "51"
    k.logout()

    r = api(gateway, "post", "/sessions/KEEPSEQ/reset")
    assert r.status_code == 200, r.text
    assert (r.json()["next_sender_seq_num"], r.json()["next_target_seq_num"]) == (1, 1)
    k = FixClient("127.0.0.1", gateway.fix_port, "KEEPSEQ", "FIXBRIDGE")
    reply = k.logon(reset=False)  # MsgSeqNum 1 and no ResetSeqNumFlag: accepted
    assert (reply.msg_type, reply.get(34)) == ("A", "1")
    k.logout()


def test_only_the_sender_number_may_be_set(gateway):
    r = api(gateway, "put", "/sessions/KEEPSEQ/seqnums", {"next_sender": 9})
    assert r.status_code == 200, r.text
    assert r.json()["next_sender_seq_num"] == 9
    api(gateway, "post", "/sessions/KEEPSEQ/reset")


@pytest.mark.parametrize(
    "body",
    [{}, {"next_sender": 0}, {"next_target": -1}, {"next_sender": "x"}, {"next_sender": 2**31}],
)
def test_seqnums_are_validated(gateway, body):
    r = api(gateway, "put", "/sessions/KEEPSEQ/seqnums", body)
    assert r.status_code == 422, r.text


def test_seqnums_of_a_session_that_resets_at_logon_are_refused(gateway):
    r = api(gateway, "put", "/sessions/CLIENT2/seqnums", {"next_sender": 5})
    assert r.status_code == 409 and "reset_on_logon" in r.json()["detail"]


# --- disable / enable -----------------------------------------------------------------------


def test_disable_logs_out_refuses_with_text_and_enable_restores(gateway):
    c = connect(gateway, "CLIENT2")
    r = api(gateway, "post", "/sessions/CLIENT2/disable", {"reason": "credit review"})
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["disabled_reason"]) == (False, "credit review")
    assert "disabled by the operator: credit review" in c.expect("5").get(58)
    assert c.closed()
    for _ in range(3):
        assert "logons for CLIENT2 are disabled by the operator" in logon_refused(gateway)
    r = api(gateway, "post", "/sessions/CLIENT2/enable")
    assert r.status_code == 200 and r.json()["enabled"] is True
    connect(gateway, "CLIENT2").logout()
    # the refusals were no failed logons: the address is not locked out
    assert "locked out" not in gateway.stderr()


def test_a_wrong_password_is_still_a_failed_logon_when_disabled(gateway):
    """Credentials are checked first: a disabled CompID does not tell a stranger so."""
    api(gateway, "post", "/sessions/CLIENT1/disable", {"reason": "audit"})
    try:
        text = logon_refused(gateway, "CLIENT1", username="client1", password="wrong")
        assert "invalid username or password" in text
    finally:
        api(gateway, "post", "/sessions/CLIENT1/enable")


def test_disabled_survives_a_restart(tmp_path):
    gw = GatewayProcess(tmp_path).start()
    try:
        assert (
            api(
                gw, "post", "/sessions/CLIENT2/disable", {"reason": "until further notice"}
            ).status_code
            == 200
        )
    finally:
        assert gw.stop() == 0
    gw.start()
    try:
        assert view(gw, "CLIENT2")["disabled_reason"] == "until further notice"
        assert "until further notice" in logon_refused(gw)
        assert api(gw, "post", "/sessions/CLIENT2/enable").status_code == 200
    finally:
        assert gw.stop() == 0
    gw.start()
    try:
        assert view(gw, "CLIENT2")["enabled"] is True
        connect(gw, "CLIENT2").logout()
    finally:
        assert gw.stop() == 0


# --- who may, and the record --------------------------------------------------------------


@pytest.mark.parametrize(("method", "op", "body"), OPS)
def test_only_admins_act_on_sessions(gateway, method, op, body):
    path = f"/sessions/CLIENT2/{op}"
    assert api(gateway, method, path, body, token=None).status_code == 401
    for token in (VIEWER_TOKEN, COMPLIANCE_TOKEN, CLIENT_VIEWER_TOKEN):
        r = api(gateway, method, path, body, token=token)
        assert r.status_code == 403, (op, token, r.text)
    r = api(gateway, method, "/sessions/NOBODY/" + op, body)
    assert r.status_code == 404 and "NOBODY" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_actions_are_audited_with_actor_and_details(gateway):
    c = connect(gateway, "CLIENT2")
    api(gateway, "post", "/sessions/CLIENT2/logout", {"reason": "audited logout"})
    c.expect("5")
    c.close()
    api(gateway, "post", "/sessions/CLIENT2/disable", {"reason": "audited disable"})
    api(gateway, "post", "/sessions/CLIENT2/enable")
    api(gateway, "put", "/sessions/KEEPSEQ/seqnums", {"next_target": 12})
    api(gateway, "post", "/sessions/KEEPSEQ/reset")
    found = {e["kind"]: e for e in audit_entries(gateway) if e["kind"].startswith("session.admin")}
    assert found["session.admin.logout"]["actor"] == "api:test-admin"
    assert found["session.admin.logout"]["payload"] == {
        "comp_id": "CLIENT2",
        "reason": "audited logout",
    }
    assert found["session.admin.disable"]["payload"]["reason"] == "audited disable"
    assert found["session.admin.enable"]["payload"]["comp_id"] == "CLIENT2"
    assert found["session.admin.seqnums"]["payload"]["next_target"] == 12
    assert found["session.admin.reset"]["payload"]["next_target_before"] == 12


# --- the CLI --------------------------------------------------------------------------------


def test_cli_lists_and_acts_and_names_the_problem(gateway):
    listed = fixbridge(gateway, "sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert {v["comp_id"] for v in json.loads(listed.stdout)} == {"CLIENT1", "CLIENT2", "KEEPSEQ"}

    c = connect(gateway, "CLIENT2")
    out = fixbridge(gateway, "sessions", "logout", "CLIENT2", "--reason", "from the CLI")
    assert out.returncode == 0, out.stderr
    assert c.expect("5").get(58) == "from the CLI"
    c.close()

    out = fixbridge(gateway, "sessions", "disable", "CLIENT2", "--reason", "cli says no")
    assert out.returncode == 0 and json.loads(out.stdout)["enabled"] is False
    assert "cli says no" in logon_refused(gateway)
    assert fixbridge(gateway, "sessions", "enable", "CLIENT2").returncode == 0

    out = fixbridge(gateway, "sessions", "seqnums", "KEEPSEQ", "--next-sender", "7")
    assert out.returncode == 0 and json.loads(out.stdout)["next_sender_seq_num"] == 7
    assert fixbridge(gateway, "sessions", "reset", "KEEPSEQ").returncode == 0

    bad = fixbridge(gateway, "sessions", "disconnect", "NOBODY")
    assert bad.returncode == 1
    assert "404" in bad.stderr and "no session 'NOBODY'" in bad.stderr
    bad = fixbridge(gateway, "sessions", "disconnect", "CLIENT2")
    assert bad.returncode == 1 and "409" in bad.stderr and "no open connection" in bad.stderr
    none = fixbridge(gateway, "sessions", "seqnums", "KEEPSEQ")
    assert none.returncode == 2 and "--next-sender" in none.stderr


def test_cli_without_a_token_says_so(gateway):
    env = {k: v for k, v in os.environ.items() if k != "FIXBRIDGE_TOKEN"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "sessions",
            "list",
            "--config",
            str(gateway.config_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 2 and "FIXBRIDGE_TOKEN" in run.stderr
