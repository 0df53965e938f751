"""FIX over TLS with client certificates bound to CompIDs, through a real TLS handshake."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys

import pytest

from gateway.tls.devca import client_context
from gateway.tls.files import PkiPaths
from load.fixclient import FixClient
from tests.harness import ROOT, GatewayProcess, free_port, order_fields


def fixbridge(*args):
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls")
    tls_port = free_port()
    gw = GatewayProcess(work, extra="", tls_port=tls_port)
    gw.write_config()
    run = fixbridge("certs", "init", "--config", str(gw.config_path))
    assert run.returncode == 0, run.stderr
    gw.start()
    yield gw
    assert gw.stop() == 0


def tls_client(gw, cert_of: str, sender: str) -> FixClient:
    paths = PkiPaths(gw.data_dir / "certs")
    ctx = client_context(paths, cert_of)
    raw = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    return FixClient("127.0.0.1", gw.tls_port, sender, "FIXBRIDGE", sock=sock)


def test_client_certificate_logs_on_and_trades(tls_gw):
    c = tls_client(tls_gw, "CLIENT2", "CLIENT2")
    assert c.logon().msg_type == "A"
    c.send("D", order_fields("tls-1", qty="1"))
    assert c.expect("8").get(39) == "0"
    assert c.expect("8").get(39) == "2"
    c.logout()


def test_certificate_for_one_compid_cannot_log_on_as_another(tls_gw):
    c = tls_client(tls_gw, "CLIENT2", "KEEPSEQ")
    c.send("A", [(98, 0), (108, 30), (141, "Y")])
    assert c.closed()  # no Logon answer: the engine never saw it
    assert "is not bound to CompID KEEPSEQ" in tls_gw.stderr()
    log = tls_gw.data_dir / "log" / "FIX.4.4-FIXBRIDGE-KEEPSEQ.messages.current.log"
    assert not log.exists() or "35=A" not in log.read_text()


def test_no_client_certificate_is_refused(tls_gw):
    ctx = ssl.create_default_context(cafile=str(PkiPaths(tls_gw.data_dir / "certs").ca_cert))
    raw = socket.create_connection(("127.0.0.1", tls_gw.tls_port), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(b"8=FIX.4.4\x01")
        if not sock.recv(100):
            raise ConnectionError("closed")


def test_revoked_certificate_is_refused_without_restart(tls_gw):
    run = fixbridge("certs", "issue", "KEEPSEQ", "--config", str(tls_gw.config_path))
    assert run.returncode == 0, run.stderr
    c = tls_client(tls_gw, "KEEPSEQ", "KEEPSEQ")
    assert c.logon(reset=True).msg_type == "A"
    c.logout()
    run = fixbridge("certs", "revoke", "KEEPSEQ", "--config", str(tls_gw.config_path))
    assert run.returncode == 0, run.stderr
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        c = tls_client(tls_gw, "KEEPSEQ", "KEEPSEQ")
        c.logon()


def test_plain_listener_can_be_turned_off(tmp_path):
    gw = GatewayProcess(tmp_path, tls_port=free_port(), fix_plain=False)
    gw.write_config()
    assert fixbridge("certs", "init", "--config", str(gw.config_path)).returncode == 0
    gw.start()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", gw.fix_port), timeout=5)
        c = tls_client(gw, "CLIENT2", "CLIENT2")
        assert c.logon().msg_type == "A"
        c.logout()
    finally:
        assert gw.stop() == 0


def test_https_api(tmp_path):
    import httpx

    from tests.harness import API_TOKEN

    gw = GatewayProcess(tmp_path, api_tls=True)
    gw.write_config()
    assert fixbridge("certs", "init", "--config", str(gw.config_path)).returncode == 0
    gw.start()
    try:
        ca = ssl.create_default_context(cafile=str(PkiPaths(gw.data_dir / "certs").ca_cert))
        url = f"https://127.0.0.1:{gw.http_port}"
        assert httpx.get(f"{url}/health", verify=ca).json() == {"status": "ok"}
        r = httpx.get(f"{url}/orders", verify=ca, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert r.status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{gw.http_port}/health", timeout=5)
    finally:
        assert gw.stop() == 0


def test_port_checks_do_not_lock_out_but_refused_certificates_do(tmp_path):
    """A load balancer's TCP check (connect, close), a silent connection and a TLS handshake
    that never sends a Logon are not failed logons; a handshake without a client certificate
    is, and enough of them lock the address out."""
    gw = GatewayProcess(tmp_path, tls_port=free_port(), max_failures=3)
    gw.write_config()
    assert fixbridge("certs", "init", "--config", str(gw.config_path)).returncode == 0
    gw.start()
    try:
        for port in (gw.tls_port, gw.fix_port):
            for _ in range(5):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for _ in range(5):  # a TLS check with a valid certificate, and no Logon
            paths = PkiPaths(gw.data_dir / "certs")
            raw = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10)
            client_context(paths, "CLIENT2").wrap_socket(raw, server_hostname="127.0.0.1").close()
        c = tls_client(gw, "CLIENT2", "CLIENT2")
        assert c.logon().msg_type == "A"
        c.logout()
        ctx = ssl.create_default_context(cafile=str(PkiPaths(gw.data_dir / "certs").ca_cert))
        for _ in range(3):  # no client certificate: a real failure, counted
            raw = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10)
            with contextlib.suppress(ssl.SSLError, OSError):
                sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(b"8=FIX.4.4\x01")
                sock.recv(100)
            raw.close()
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            c = tls_client(gw, "CLIENT2", "CLIENT2")  # locked out: closed at accept
            c.logon()
        assert "not a failed logon" in gw.stderr()
    finally:
        assert gw.stop() == 0
