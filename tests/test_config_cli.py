"""Configuration loading and the CLI's answers to bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit.keys import generate_signing_key
from gateway.config import EXAMPLE_CONFIG, ConfigError, load_config
from gateway.passwords import verify_password
from tests.harness import ROOT, GatewayProcess, config_text, free_port


def fixbridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_example_config_is_valid_and_documents_the_dev_credentials():
    config = load_config(EXAMPLE_CONFIG)
    assert config.gateway.comp_id == "FIXBRIDGE"
    assert config.gateway.fix_listen == "127.0.0.1:9876"
    assert config.gateway.http_listen == "127.0.0.1:8000"
    assert config.database_url == "sqlite:///var/fixbridge.db"
    client = config.session("CLIENT1")
    assert client.username == "client1" and verify_password("demo", client.password_hash)
    assert "DEVELOPMENT ONLY" in EXAMPLE_CONFIG.read_text()


BAD = [
    ("[[sessions]]\ncomp_id = 'A'\nheartbeat_min = 'x'\n", "sessions[0].heartbeat_min"),
    ("[gateway]\nfix_listen = 'nowhere'\n[[sessions]]\ncomp_id = 'A'\n", "gateway.fix_listen"),
    (
        "[gateway]\ndatabase_url = 'mysql://x'\n[[sessions]]\ncomp_id = 'A'\n",
        "gateway.database_url",
    ),
    (
        "[[sessions]]\ncomp_id = 'A'\nauth = 'password'\nusername = 'a'\npassword_hash = 'demo'\n",
        "plain passwords are not accepted",
    ),
    ("[[sessions]]\ncomp_id = 'A'\n[[sessions]]\ncomp_id = 'A'\n", "configured twice"),
    (
        "[venue.reference_prices]\n'NOPE' = '1'\n[[sessions]]\ncomp_id = 'A'\n",
        "venue.reference_prices",
    ),
    ("[[sessions]]\ncomp_id = 'A'\ncolour = 'blue'\n", "sessions[0].colour"),
    ("[gateway\n", "not valid TOML"),
    ("", "sessions: Field required"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_names_file_key_and_problem(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_run_with_bad_config_exits_non_zero_with_the_reason(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[[sessions]]\ncomp_id = 'A'\nheartbeat_min = 0\n")
    run = fixbridge("run", "--config", str(path))
    assert run.returncode == 2
    assert f"{path}: sessions[0].heartbeat_min" in run.stderr


def test_missing_config_file(tmp_path):
    run = fixbridge("check-config", "--config", str(tmp_path / "absent.toml"))
    assert run.returncode == 2 and "file not found" in run.stderr


def test_data_dir_override(tmp_path):
    run = fixbridge("check-config", "--data-dir", str(tmp_path / "d"))
    assert run.returncode == 0 and str(Path(tmp_path / "d" / "fixbridge.db")) in run.stdout


def test_hash_password_prints_a_verifiable_hash():
    run = fixbridge("hash-password", "--password", "correct horse")
    assert run.returncode == 0
    encoded = run.stdout.strip()
    assert verify_password("correct horse", encoded) and "correct horse" not in encoded


def test_docker_example_config_is_valid():
    config = load_config(ROOT / "docker" / "fixbridge.toml.example")
    assert config.gateway.fix_listen == "0.0.0.0:9876"
    assert config.database_url.startswith("postgresql://")


def _one_line_refusal(run: subprocess.CompletedProcess, code: int = 2) -> str:
    """A start-up refusal: the exit code, one line on stderr, no traceback, nothing started."""
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "fixbridge ready" not in run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_run_without_an_audit_key_names_the_command_that_makes_it(tmp_path):
    gw = GatewayProcess(tmp_path)
    config = gw.write_config()
    line = _one_line_refusal(fixbridge("run", "--config", str(config)))
    assert "audit signing key not found" in line and "fixbridge audit keygen" in line
    assert str(gw.data_dir / "audit" / "signing_key.pem") in line


def test_run_with_an_unusable_data_directory_names_it(tmp_path):
    (tmp_path / "blocked").write_text("a file where the data directory should be")
    config = tmp_path / "fixbridge.toml"
    config.write_text(config_text(free_port(), free_port(), tmp_path / "blocked" / "data"))
    line = _one_line_refusal(fixbridge("run", "--config", str(config)))
    assert f"data directory {tmp_path / 'blocked' / 'data'} is not usable" in line


def test_run_with_tls_and_no_certificates_names_the_command_that_makes_them(tmp_path):
    gw = GatewayProcess(tmp_path, tls_port=free_port())
    config = gw.write_config()
    generate_signing_key(gw.data_dir / "audit")
    line = _one_line_refusal(fixbridge("run", "--config", str(config)))
    assert "FIX over TLS cannot start" in line and "fixbridge certs init" in line


def test_run_with_an_unreachable_database_says_so_in_one_line(tmp_path):
    gw = GatewayProcess(tmp_path, database_url="postgresql://fixbridge@127.0.0.1:1/none")
    config = gw.write_config()
    generate_signing_key(gw.data_dir / "audit")
    run = fixbridge("run", "--config", str(config))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert " ERROR fixbridge: cannot start: " in last and "port 1 failed" in last, run.stderr
    assert run.stderr.count(" ERROR ") == 1, run.stderr
