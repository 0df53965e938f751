"""A running gateway whose audit disk fills up while a client trades (real processes).

New business is refused with the reason while the trail cannot make entries durable; the session
stays up and /ready names the audit trail. When space returns the trail resumes by itself with
no gap, trading resumes, every message the client received is in the trail, and the exported
bundle verifies and reports the interruption. The disk is the audit log's only
(:mod:`tests.full_disk_gateway`); everything else writes normally.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time

import httpx

from load.fixclient import FixClient, RawMessage
from tests.conftest import connect
from tests.full_disk_gateway import FULL
from tests.harness import ROOT, GatewayProcess, order_fields


def fixbridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def answer(client: FixClient) -> RawMessage:
    """The next message that is not a heartbeat: an ER or a BusinessMessageReject."""
    while (msg := client.recv()).msg_type == "0":
        pass
    assert msg.msg_type in ("8", "j"), msg.fields
    return msg


def order(client: FixClient, cl: str) -> list[RawMessage]:
    """Send a marketable order; its answers: ER New then the fill, or one BusinessMessageReject."""
    client.send("D", order_fields(cl, qty="1"))
    answers: list[RawMessage] = []
    while True:
        msg = answer(client)
        answers.append(msg)
        if msg.msg_type == "j" or msg.get(39) in ("2", "8"):
            return answers


def test_a_full_audit_disk_refuses_new_business_until_space_returns(tmp_path):
    gw = GatewayProcess(tmp_path, module="tests.full_disk_gateway").start()
    full = gw.data_dir / FULL
    received: list[RawMessage] = []
    try:
        client = connect(gw)
        received += order(client, "fd-before")
        assert [m.get(39) for m in received] == ["0", "2"]

        full.touch()  # the audit disk is full from here on
        refused = None
        for i in range(200):
            answers = order(client, f"fd-full-{i}")
            received += answers
            if answers[-1].msg_type == "j":
                refused = answers[-1]
                break
            time.sleep(0.05)  # the next group commit meets the full disk
        assert refused is not None, "orders were still taken with the audit disk full"
        assert refused.get(380) == "4" and refused.get(45)
        assert "audit trail unavailable" in refused.get(58)
        ready = httpx.get(f"{gw.http}/ready")
        assert ready.status_code == 503 and "audit" in ready.text
        again = order(client, "fd-still-full")  # refused again, not silent
        received += again
        assert [m.msg_type for m in again] == ["j"]
        client.send("1", [(112, "still-up")])  # the session stays up
        assert client.expect("0", skip=()).get(112) == "still-up"

        full.unlink()  # space returns: the trail resumes by itself, and trading with it
        resumed = None
        for i in range(200):
            answers = order(client, f"fd-after-{i}")
            received += answers
            if answers[-1].msg_type == "8":
                resumed = answers
                break
            time.sleep(0.05)
        assert resumed is not None and [m.get(39) for m in resumed] == ["0", "2"]
        assert httpx.get(f"{gw.http}/ready").status_code == 200
        client.logout()
    finally:
        full.unlink(missing_ok=True)
        assert gw.stop() == 0, gw.stderr()

    bundle = tmp_path / "trail.tar"
    run = fixbridge("audit", "export", str(bundle), "--config", str(gw.config_path))
    assert run.returncode == 0, run.stderr
    verify = fixbridge("audit", "verify", str(bundle))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "interrupted" in verify.stdout, verify.stdout
    with tarfile.open(bundle) as tar:
        name = next(n for n in tar.getnames() if n.endswith("entries.jsonl"))
        entries = tar.extractfile(name).read().decode()
    assert '"kind":"audit.interrupted"' in entries.replace(" ", "")
    soh = "\\u0001"
    for msg in received:  # every message the client was sent is in the trail
        key = (
            f"{soh}17={msg.get(17)}{soh}" if msg.msg_type == "8" else f"{soh}34={msg.get(34)}{soh}"
        )
        assert key in entries, (msg.msg_type, key)
