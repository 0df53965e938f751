"""The gateway's audit trail: what goes in, and a compliance export that verifies offline and
catches tampering."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import httpx

from load.fixclient import FixClient
from otc.audit.command import parts_of
from tests.harness import API_TOKEN, COMPLIANCE_TOKEN, ROOT, GatewayProcess, order_fields


def fixbridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_everything_is_audited_and_the_export_verifies_and_catches_tampering(tmp_path):
    gw = GatewayProcess(tmp_path / "gw").start()
    try:
        c = FixClient("127.0.0.1", gw.fix_port, "CLIENT2", "FIXBRIDGE")
        assert c.logon().msg_type == "A"
        c.send("D", order_fields("aud-1", qty="1"))
        c.expect("8")
        c.expect("8")
        c.send("D", order_fields("aud-2", qty="lots", px="1"))
        assert c.expect("3").get(373) == "6"  # the session layer rejects it ...
        c.logout()
        httpx.get(f"{gw.http}/orders", headers={"Authorization": f"Bearer {API_TOKEN}"})
        httpx.get(f"{gw.http}/orders", headers={"Authorization": "Bearer wrong"})
        # compliance export over the API
        r = httpx.post(
            f"{gw.http}/audit/export",
            json={},
            headers={"Authorization": f"Bearer {COMPLIANCE_TOKEN}"},
            timeout=60,
        )
        assert r.status_code == 200
        api_bundle = tmp_path / "api-bundle.tar"
        api_bundle.write_bytes(r.content)
        # and with the CLI, while the gateway runs
        cli_bundle = tmp_path / "cli-bundle.tar"
        run = fixbridge("audit", "export", str(cli_bundle), "--config", str(gw.config_path))
        assert run.returncode == 0, run.stderr
    finally:
        assert gw.stop() == 0

    for bundle in (api_bundle, cli_bundle):
        ok = fixbridge("audit", "verify", str(bundle))
        assert ok.returncode == 0, ok.stderr + ok.stdout

    with tarfile.open(cli_bundle) as tar:
        names = tar.getnames()
        entries_name = next(n for n in names if n.endswith("entries.jsonl"))
        entries = tar.extractfile(entries_name).read().decode().splitlines()
        members = {n: tar.extractfile(n).read() for n in names if tar.getmember(n).isfile()}
    kinds = [json.loads(line)["kind"] for line in entries]
    raw = "\n".join(entries)
    # an order is one command entry: the message in, the order's changes and the ERs sent
    inner = [
        k
        for e in map(json.loads, entries)
        for k, _, _ in parts_of(e["kind"], e["actor"], e["payload"])
    ]
    assert "fix.command" in kinds
    assert "fix.in" in inner and "fix.out" in inner and "order.state" in inner
    assert "api.action" in kinds and "api.auth_failure" in kinds
    assert "38=lots" in raw  # ... but the garbled message itself is in the trail too

    # flip one byte in the middle of the entries: verification fails and names the entry
    tampered = tmp_path / "tampered.tar"
    middle = len(entries) // 2
    lines = entries[:]
    lines[middle] = (
        lines[middle].replace("FIXBRIDGE", "FIXBRIDGF", 1)
        if "FIXBRIDGE" in lines[middle]
        else lines[middle].replace('"', "'", 1)
    )
    with tarfile.open(tampered, "w") as out:
        for name, data in members.items():
            if name == entries_name:
                data = ("\n".join(lines) + "\n").encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    bad = fixbridge("audit", "verify", str(tampered))
    assert bad.returncode != 0
    assert "FAILED" in bad.stderr + bad.stdout
    assert f"seq {middle}" in bad.stderr + bad.stdout  # the first bad entry, by number
