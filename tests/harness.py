"""Start real gateway processes for tests: a config in a temp dir, free ports, a ready line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit.keys import generate_signing_key
from gateway.fix.front import free_loopback_port as free_port
from gateway.passwords import hash_password, hash_token
from load.fixclient import fix_time
from load.procs import terminate

ROOT = Path(__file__).resolve().parents[1]
API_TOKEN = "test-admin-token"
VIEWER_TOKEN = "test-desk-token"  # role desk, DESK_A
DESK_B_TOKEN = "test-desk-b-token"
DESK_C_TOKEN = "test-desk-c-token"
COMPLIANCE_TOKEN = "test-compliance-token"
CLIENT_VIEWER_TOKEN = "test-client-viewer-token"
PASSWORD = "s3cret-pass"
PASSWORD_HASH = hash_password(PASSWORD)


def order_fields(
    cl: str,
    qty: str = "5",
    px: str | None = "66000",
    side: str = "1",
    symbol: str = "BTC-PERP",
    ord_type: str = "2",
    tif: str | None = None,
) -> list[tuple[int, str]]:
    """A NewOrderSingle's body: a limit buy of BTC-PERP at 66000 unless told otherwise
    (``px=None`` leaves the price out, as a market order has none)."""
    fields = [(11, cl), (55, symbol), (54, side), (60, fix_time()), (38, qty), (40, ord_type)]
    if px is not None:
        fields.append((44, px))
    if tif is not None:
        fields.append((59, tif))
    return fields


def shared_dir() -> Path:
    """../shared beside the project, or $FIXBRIDGE_SHARED."""
    return Path(os.environ.get("FIXBRIDGE_SHARED", ROOT.parent / "shared"))


def config_text(
    fix_port: int,
    http_port: int,
    data_dir: Path,
    database_url: str = "",
    extra: str = "",
    depth: str = "10",
    max_failures: int = 50,
    tls_port: int | None = None,
    fix_plain: bool = True,
    api_tls: bool = False,
    last_look_max_hold_ms: int = 1500,
) -> str:
    certs = data_dir / "certs"
    api_tls_lines = (
        f'tls_cert = "{certs / "server.pem"}"\ntls_key = "{certs / "server.key"}"\n'
        if api_tls
        else ""
    )
    tls = f'[tls]\nenabled = true\nfix_listen = "127.0.0.1:{tls_port}"\n' if tls_port else ""
    return f"""
[gateway]
comp_id = "FIXBRIDGE"
fix_listen = "127.0.0.1:{fix_port}"
http_listen = "127.0.0.1:{http_port}"
data_dir = "{data_dir}"
database_url = "{database_url}"
fix_plain = {"true" if fix_plain else "false"}

{tls}
[api]
{api_tls_lines}
[[api.tokens]]
name = "test-admin"
role = "admin"
hash = "{hash_token(API_TOKEN)}"
[[api.tokens]]
name = "test-desk"
role = "desk"
desk_id = "DESK_A"
hash = "{hash_token(VIEWER_TOKEN)}"

[[api.tokens]]
name = "test-desk-b"
role = "desk"
desk_id = "DESK_B"
hash = "{hash_token(DESK_B_TOKEN)}"
[[api.tokens]]
name = "test-desk-c"
role = "desk"
desk_id = "DESK_C"
hash = "{hash_token(DESK_C_TOKEN)}"
[[api.tokens]]
name = "test-compliance"
role = "compliance"
hash = "{hash_token(COMPLIANCE_TOKEN)}"
[[api.tokens]]
name = "test-client-viewer"
role = "client-viewer"
hash = "{hash_token(CLIENT_VIEWER_TOKEN)}"

[otc]
desks = ["DESK_A", "DESK_B", "DESK_C"]
last_look_max_hold_ms = {last_look_max_hold_ms}
[otc.routing.CLIENT1]
"*" = ["DESK_A", "DESK_B", "DESK_C"]
[otc.routing.CLIENT2]
"*" = ["DESK_A", "DESK_B", "DESK_C"]
[otc.routing."*"]
"*" = ["DESK_A", "DESK_B"]

[logon]
max_failures = {max_failures}
window_seconds = 60
lockout_seconds = 60

[venue]
depth = "{depth}"
[venue.reference_prices]
"BTC-PERP" = "65000"
"ETH-PERP" = "3200"
"BTC-27DEC26-100000-C" = "4200"

[risk]
max_order_qty = "1000"

[[sessions]]
comp_id = "CLIENT1"
auth = "password"
username = "client1"
password_hash = "{PASSWORD_HASH}"

[[sessions]]
comp_id = "CLIENT2"

[[sessions]]
comp_id = "KEEPSEQ"
reset_on_logon = false
{extra}
"""


@dataclass
class GatewayProcess:
    """``fixbridge run`` in a subprocess, as an operator would start it."""

    workdir: Path
    database_url: str = ""
    extra: str = ""
    depth: str = "10"
    max_failures: int = 50
    tls_port: int | None = None
    fix_plain: bool = True
    api_tls: bool = False
    last_look_max_hold_ms: int = 1500
    # what runs `fixbridge run`: the CLI, or a test module that passes parts in (the same code)
    module: str = "gateway.cli"
    fix_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def config_path(self) -> Path:
        return self.workdir / "fixbridge.toml"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            config_text(
                self.fix_port,
                self.http_port,
                self.data_dir,
                self.database_url,
                self.extra,
                self.depth,
                self.max_failures,
                self.tls_port,
                self.fix_plain,
                self.api_tls,
                self.last_look_max_hold_ms,
            )
        )
        return self.config_path

    def start(self, timeout: float = 30) -> GatewayProcess:
        self.write_config()
        if not (self.data_dir / "audit" / "signing_key.pem").exists():
            generate_signing_key(self.data_dir / "audit")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "run", "--config", str(self.config_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "stderr.log", "ab"),  # noqa: SIM115 - the child owns it
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "fixbridge ready" not in line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(
                f"gateway did not start: {line!r}\n{(self.workdir / 'stderr.log').read_text()}"
            )
        return self

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = terminate(self.proc, 20)
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stderr(self) -> str:
        return (self.workdir / "stderr.log").read_text()
