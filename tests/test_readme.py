"""The README's tour works against the example configuration, as a newcomer would paste it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, free_port


def start_example_gateway(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int]:
    """What `make run` does, on free ports: the example config, `audit keygen --if-missing`,
    then `fixbridge run`; the gateway once it is ready, and its FIX and HTTP ports."""
    fix_port, http_port = free_port(), free_port()
    config = (ROOT / "gateway" / "example.toml").read_text()
    config = config.replace("127.0.0.1:9876", f"127.0.0.1:{fix_port}")
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
    (tmp_path / "example.toml").write_text(config)
    where = ["--config", str(tmp_path / "example.toml"), "--data-dir", str(tmp_path / "var")]
    keygen = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "keygen", "--if-missing", *where],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keygen.returncode == 0, keygen.stderr
    gw = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", *where],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "gw.log", "w"),  # noqa: SIM115 - the child owns it
        text=True,
    )
    assert gw.stdout is not None
    if "fixbridge ready" not in gw.stdout.readline():
        gw.terminate()
        gw.wait(20)
        raise AssertionError((tmp_path / "gw.log").read_text())
    return gw, fix_port, http_port


def run_tour(tmp_path: Path, marker: str, timeout: float = 60) -> list[str]:
    """The README's tour script containing ``marker``, run as pasted against the example
    gateway on free ports; its output lines (the script must exit 0)."""
    readme = (ROOT / "README.md").read_text()
    scripts = re.findall(r"\.venv/bin/python - <<'PY'\n(.*?)\nPY\n", readme, re.S)
    script = next(s for s in scripts if marker in s)
    gw, fix_port, http_port = start_example_gateway(tmp_path)
    try:
        script = script.replace("9876", str(fix_port)).replace(
            "127.0.0.1:8000", f"127.0.0.1:{http_port}"
        )
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
        )
    finally:
        gw.terminate()
        gw.wait(20)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_readme_fix_client_example_runs_against_the_example_config(tmp_path):
    readme = (ROOT / "README.md").read_text()
    script = re.search(r"\.venv/bin/python - <<'PY'\n(.*?)\nPY\n", readme, re.S).group(1)
    gw, fix_port, http_port = start_example_gateway(tmp_path)
    try:
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
    gw, fix_port, http_port = start_example_gateway(tmp_path)
    try:
        script = script.replace("9876", str(fix_port)).replace(
            "127.0.0.1:8000", f"127.0.0.1:{http_port}"
        )
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        # then the README's look at /metrics and /ready, as pasted
        look = re.search(r"```sh\n(curl [^`]*/metrics[^`]*)```", readme).group(1)
        counted = subprocess.run(
            look.replace("localhost:8000", f"127.0.0.1:{http_port}"),
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        gw.terminate()
        gw.wait(20)
    assert run.returncode == 0, run.stderr
    for stage in ("received", "quoted", "traded"):  # the newcomer sees the counters move
        assert f'fixbridge_rfqs_total{{stage="{stage}"}} 1.0' in counted.stdout, counted.stdout
    assert 'fixbridge_fix_messages_total{direction="in",msg_type="R"} 1.0' in counted.stdout
    assert '"status": "ready"' in counted.stdout
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Quote ") and "bid 4150 offer 4250 signed by DESK_A" in lines[0]
    assert lines[1] == "ExecutionReport: OrdStatus 2 LastPx 4250 LastQty 5"
    assert lines[2].startswith("TradeCaptureReport ") and lines[2].endswith("TrdType 1")
    assert lines[3].endswith("4250 x 5 clearing: cleared")


def test_readme_swap_tour_clears_as_fpml_against_the_example_config(tmp_path):
    lines = run_tour(tmp_path, "tour-irs-1")
    assert re.fullmatch(r"Desk sees IRS-USD-SOFR-\d{8}", lines[0]), lines
    assert lines[1] == "Swap filled: fixed rate 0.0375 on 10000000 USD"
    assert re.fullmatch(r"Payer of fixed CLIENT1 from \S+ to \S+", lines[2]), lines
    assert lines[3] == "Clearing: fpml-5.10/requestClearing cleared"


def test_readme_allocation_and_correction_tour_against_the_example_config(tmp_path):
    lines = run_tour(tmp_path, "tour-alloc-1", timeout=90)
    assert lines[0] == "AllocationInstructionAck: AllocStatus 0"
    assert lines[1] == "TradeCaptureReport replace 2"
    assert lines[2] == "Allocations [('ACC-A', '6', 'GIVEUP-FIRM'), ('ACC-B', '4', None)]"
    assert lines[3] == "ExecutionReport: ExecType G LastPx 4230 ExecRefID True"
    assert lines[4] == "TradeCaptureReport replace 2"
    assert lines[5] == "Trade 4230 x 10 version 3 cleared"
