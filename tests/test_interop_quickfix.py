"""Interop: a QuickFIX SocketInitiator (the engine many clients run) trades with the gateway."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT, GatewayProcess


def test_quickfix_initiator_gets_new_and_fill(tmp_path):
    gw = GatewayProcess(tmp_path).start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.qf_initiator", str(gw.fix_port), "2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert gw.stop() == 0
    assert run.returncode == 0, run.stderr
    new, fill = run.stdout.splitlines()
    assert "39=0" in new and "150=0" in new and "11=qf-1" in new
    assert "39=2" in fill and "150=F" in fill and "31=65000" in fill and "32=2" in fill
