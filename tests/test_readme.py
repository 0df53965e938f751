"""The README's tour works against the example configuration, as a newcomer would paste it."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.harness import ROOT, free_port


def test_readme_fix_client_example_runs_against_the_example_config(tmp_path):
    readme = (ROOT / "README.md").read_text()
    script = re.search(r"\.venv/bin/python - <<'PY'\n(.*?)\nPY\n", readme, re.S).group(1)
    fix_port, http_port = free_port(), free_port()
    config = (ROOT / "gateway" / "example.toml").read_text()
    config = config.replace("127.0.0.1:9876", f"127.0.0.1:{fix_port}")
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
    (tmp_path / "example.toml").write_text(config)
    keygen = subprocess.run(  # what `make run` does before starting
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "audit",
            "keygen",
            "--if-missing",
            "--config",
            str(tmp_path / "example.toml"),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keygen.returncode == 0, keygen.stderr
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            "--config",
            str(tmp_path / "example.toml"),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "gw.log", "w"),  # noqa: SIM115 - the child owns it
        text=True,
    )
    try:
        assert "fixbridge ready" in gw.stdout.readline()
        run = subprocess.run(
            [sys.executable, "-c", script.replace("9876", str(fix_port))],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        gw.terminate()
        gw.wait(20)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "logon: A"
    assert "ExecType 0 OrdStatus 0" in lines[1]
    assert "ExecType F OrdStatus 1 LastQty 10 CumQty 10 LeavesQty 5" in lines[2]
    assert "ExecType 4 OrdStatus 4 CumQty 10" in lines[3]
    assert lines[4] == "logout: 5"


def test_readme_rfq_tour_runs_against_the_example_config(tmp_path):
    readme = (ROOT / "README.md").read_text()
    scripts = re.findall(r"\.venv/bin/python - <<'PY'\n(.*?)\nPY\n", readme, re.S)
    script = next(s for s in scripts if '"R"' in s)
    fix_port, http_port = free_port(), free_port()
    config = (ROOT / "gateway" / "example.toml").read_text()
    config = config.replace("127.0.0.1:9876", f"127.0.0.1:{fix_port}")
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
    (tmp_path / "example.toml").write_text(config)
    assert (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "audit",
                "keygen",
                "--if-missing",
                "--config",
                str(tmp_path / "example.toml"),
                "--data-dir",
                str(tmp_path / "var"),
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
    )
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            "--config",
            str(tmp_path / "example.toml"),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "gw.log", "w"),  # noqa: SIM115 - the child owns it
        text=True,
    )
    try:
        assert "fixbridge ready" in gw.stdout.readline()
        script = script.replace("9876", str(fix_port)).replace(
            "127.0.0.1:8000", f"127.0.0.1:{http_port}"
        )
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    finally:
        gw.terminate()
        gw.wait(20)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Quote ") and "bid 4150 offer 4250 signed by DESK_A" in lines[0]
    assert lines[1] == "ExecutionReport: OrdStatus 2 LastPx 4250 LastQty 5"
    assert lines[2].startswith("TradeCaptureReport ") and lines[2].endswith("TrdType 1")
    assert lines[3].endswith("4250 x 5 clearing: cleared")
