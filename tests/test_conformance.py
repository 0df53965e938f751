"""QuickFIX's own FIX 4.4 acceptance definitions (session level) against our gateway."""

from __future__ import annotations

import subprocess
import sys

from gateway.audit.keys import generate_signing_key
from tests.harness import ROOT, shared_dir


def test_session_level_acceptance_suite(tmp_path):
    conformance = shared_dir() / "conformance"
    assert (conformance / "at_run.py").is_file(), (
        f"conformance suite not found at {conformance}; set FIXBRIDGE_SHARED to the shared/ folder"
    )
    names = (conformance / "session-level.txt").read_text().split()
    assert len(names) == 45
    profile = ROOT / "tests" / "conformance" / "at.toml"
    generate_signing_key(tmp_path / "data" / "audit")  # as `fixbridge audit keygen` would
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            "--config",
            str(profile),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "stderr.log", "wb"),  # noqa: SIM115 - the child owns it
        text=True,
    )
    try:
        assert "fixbridge ready" in proc.stdout.readline()
        run = subprocess.run(
            [
                sys.executable,
                "at_run.py",
                "127.0.0.1",
                "9880",
                *[f"quickfix-at-fix44/{n}" for n in names],
            ],
            cwd=conformance,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        proc.terminate()
        proc.wait(20)
    assert run.stdout.strip().splitlines()[-1] == "45 passed, 0 failed", run.stdout
    assert proc.returncode == 0
