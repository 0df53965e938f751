"""Development PKI and mutual TLS: files, certificate contents, loopback handshakes, the CRL."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import ssl
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.tls.context import ContextCache, cert_identities, server_context
from gateway.tls.devca import (
    client_context,
    init_dev_pki,
    issue_client,
    issue_server,
    parse_reason,
    renew_crl,
    revoke,
)
from gateway.tls.files import COMPID_URN, PkiError, PkiPaths, TlsServerFiles

SERVER_NAMES = ["localhost", "127.0.0.1"]


def make_pki(root: Path, comp_ids=("CLIENT1", "CLIENT2")) -> PkiPaths:
    return init_dev_pki(root / "certs", SERVER_NAMES, list(comp_ids))


@pytest.fixture(scope="module")
def shared_pki(tmp_path_factory) -> PkiPaths:
    """One PKI for the tests that only read it."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def pki(tmp_path) -> PkiPaths:
    """A PKI of its own, for tests that issue or revoke."""
    return make_pki(tmp_path)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_crl(paths: PkiPaths) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(paths.crl.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- handshakes


@dataclass
class Handshake:
    identities: set[str] | None = None
    dict_identities: set[str] | None = None
    version: str | None = None
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    reply: bytes = b""
    session: ssl.SSLSession | None = None
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None and self.reply == b"ok"


def handshake(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    server_hostname: str = "localhost",
    session: ssl.SSLSession | None = None,
) -> Handshake:
    """One TLS connection over loopback; the server answers b"ok" once it has verified the client.

    With TLS 1.3 the client may finish its side before the server rejects its certificate, so a
    refusal shows as a server error plus a client that never reads b"ok".
    """
    result = Handshake()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError as exc:
                result.server_error = exc
                return
            conn.settimeout(10)
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    result.identities = cert_identities(tls.getpeercert(binary_form=True))
                    result.dict_identities = cert_identities(tls.getpeercert())
                    result.version = tls.version()
                    tls.sendall(b"ok")
                    tls.recv(1)  # wait for the client to close
            except (ssl.SSLError, OSError) as exc:
                result.server_error = exc
            finally:
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client_ctx.wrap_socket(
                    raw, server_hostname=server_hostname, session=session
                ) as tls,
            ):
                result.reply = tls.recv(2)
                result.session, result.reused = tls.session, tls.session_reused
        except (ssl.SSLError, OSError) as exc:
            result.client_error = exc
        thread.join(10)
        assert not thread.is_alive(), "server thread hung"
    return result


# --------------------------------------------------------------------------- files


def test_init_writes_every_file_with_keys_private_whatever_the_umask(tmp_path):
    old = os.umask(0)  # the most permissive umask: modes must come from the code, not from it
    try:
        paths = make_pki(tmp_path)
    finally:
        os.umask(old)
    keys = [
        paths.ca_key,
        paths.server_key,
        paths.client_key("CLIENT1"),
        paths.client_key("CLIENT2"),
    ]
    public = [
        paths.ca_cert,
        paths.server_cert,
        paths.crl,
        paths.index,
        paths.client_cert("CLIENT1"),
        paths.client_cert("CLIENT2"),
    ]
    assert {p: mode(p) for p in keys} == {p: 0o600 for p in keys}
    assert {p: mode(p) for p in public} == {p: 0o644 for p in public}
    assert mode(paths.certs_dir) == 0o700
    assert paths.client_cert("X") == paths.certs_dir / "clients" / "X.pem"
    assert not [p for p in paths.certs_dir.rglob("*.tmp")], "temporary files left behind"
    index = json.loads(paths.index.read_text())["certificates"]
    assert sorted((r["kind"], r["comp_id"]) for r in index.values()) == [
        ("ca", None),
        ("client", "CLIENT1"),
        ("client", "CLIENT2"),
        ("server", None),
    ]


def test_init_refuses_an_existing_ca_and_changes_nothing(pki):
    before = snapshot(pki.certs_dir)
    with pytest.raises(PkiError, match="already exists") as err:
        init_dev_pki(pki.certs_dir, SERVER_NAMES, ["CLIENT3"])
    assert str(pki.ca_cert) in str(err.value)
    assert snapshot(pki.certs_dir) == before


def test_init_refuses_leftovers_without_a_ca(pki):
    pki.ca_cert.unlink()
    pki.ca_key.unlink()
    with pytest.raises(PkiError, match="without a CA"):
        init_dev_pki(pki.certs_dir, SERVER_NAMES, ["CLIENT1"])
    assert not pki.ca_cert.exists()


def test_init_exist_ok_adds_only_missing_clients(pki):
    before = snapshot(pki.certs_dir)
    init_dev_pki(pki.certs_dir, SERVER_NAMES, ["CLIENT1", "CLIENT3"], exist_ok=True)
    after = snapshot(pki.certs_dir)
    for name in ("ca.pem", "ca.key", "server.pem", "server.key", "clients/CLIENT1.pem"):
        assert after[name] == before[name], name
    assert "clients/CLIENT3.pem" in after and "clients/CLIENT3.key" in after
    load_cert(pki.client_cert("CLIENT3")).verify_directly_issued_by(load_cert(pki.ca_cert))
    assert load_crl(pki).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2


@pytest.mark.parametrize(
    ("server_names", "comp_ids", "days", "message"),
    [
        (["localhost"], ["BAD ID"], 825, "invalid CompID 'BAD ID'"),
        (["localhost"], ["../evil"], 825, "invalid CompID"),
        (["localhost"], [""], 825, "invalid CompID"),
        (["localhost"], ["X" * 65], 825, "invalid CompID"),
        (["not a host"], ["C"], 825, "'not a host' is neither an IP address nor a DNS name"),
        ([], ["C"], 825, "at least one server name"),
        ("localhost", ["C"], 825, "must be a list"),
        (["localhost"], ["C"], 0, "at least 1"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path, server_names, comp_ids, days, message
):
    with pytest.raises(PkiError, match=message.replace(".", r"\.").replace("(", r"\(")):
        init_dev_pki(tmp_path / "certs", server_names, comp_ids, days)
    assert not (tmp_path / "certs").exists()


# --------------------------------------------------------------------------- contents


def test_server_certificate_names_every_server_name(shared_pki):
    ca, cert = load_cert(shared_pki.ca_cert), load_cert(shared_pki.server_cert)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_client_certificate_carries_the_compid(shared_pki):
    cert = load_cert(shared_pki.client_cert("CLIENT1"))
    cert.verify_directly_issued_by(load_cert(shared_pki.ca_cert))
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["CLIENT1"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [COMPID_URN + "CLIENT1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert_identities(cert) == {"CLIENT1", "urn:fix:compid:CLIENT1"}
    assert cert_identities(load_cert(shared_pki.server_cert)) == {"localhost", "127.0.0.1"}


def test_ca_and_initial_crl(shared_pki):
    ca = load_cert(shared_pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    crl = load_crl(shared_pki)
    assert crl.is_signature_valid(ca.public_key())
    assert len(crl) == 0
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)


def test_cert_identities_rejects_garbage_and_accepts_no_certificate():
    assert cert_identities(None) == set()
    with pytest.raises(PkiError, match="not valid DER"):
        cert_identities(b"not a certificate")


# --------------------------------------------------------------------------- handshakes


def test_mutual_tls_handshake_identifies_the_compid(shared_pki):
    server_ctx = server_context(shared_pki)
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # our certificates pass the strict checks
    result = handshake(server_ctx, client_context(shared_pki, "CLIENT1"))
    assert result.ok, (result.server_error, result.client_error)
    assert result.version in ("TLSv1.2", "TLSv1.3")
    assert "CLIENT1" in result.identities
    assert "CLIENT2" not in result.identities
    assert result.dict_identities == result.identities


def test_server_ip_address_name_verifies(shared_pki):
    result = handshake(
        server_context(shared_pki), client_context(shared_pki, "CLIENT2"), "127.0.0.1"
    )
    assert result.ok, (result.server_error, result.client_error)
    assert "CLIENT2" in result.identities


def test_client_refuses_a_server_name_not_in_the_certificate(shared_pki):
    result = handshake(
        server_context(shared_pki), client_context(shared_pki, "CLIENT1"), "gateway.example"
    )
    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    assert "gateway.example" in str(result.client_error)


def test_client_certificate_from_another_ca_is_refused(shared_pki, tmp_path):
    other = init_dev_pki(tmp_path / "other", SERVER_NAMES, ["CLIENT1"])
    impostor = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    impostor.load_verify_locations(cafile=shared_pki.ca_cert)  # trusts our server...
    impostor.load_cert_chain(other.client_cert("CLIENT1"), other.client_key("CLIENT1"))
    result = handshake(server_context(shared_pki), impostor)  # ...but shows a foreign cert
    assert not result.ok
    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert "unable to get local issuer certificate" in str(result.server_error)
    assert result.identities is None


def test_client_without_certificate_is_refused(shared_pki):
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=shared_pki.ca_cert)
    result = handshake(server_context(shared_pki), bare)
    assert not result.ok
    assert "certificate" in str(result.server_error)


def test_server_certificate_cannot_serve_as_client_certificate(shared_pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=shared_pki.ca_cert)
    ctx.load_cert_chain(shared_pki.server_cert, shared_pki.server_key)
    result = handshake(server_context(shared_pki), ctx)
    assert not result.ok
    assert "unsuitable certificate purpose" in str(result.server_error)


def test_optional_client_certificate_lets_a_bare_client_in_without_identities(shared_pki):
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=shared_pki.ca_cert)
    result = handshake(server_context(shared_pki, require_client_cert=False), bare)
    assert result.ok, (result.server_error, result.client_error)
    assert result.identities == set()


# --------------------------------------------------------------------------- revocation


def test_revoke_takes_effect_through_the_context_cache(pki):
    cache = ContextCache(pki)
    before = cache.get()
    assert cache.get() is before, "unchanged files must not rebuild the context"
    assert handshake(before, client_context(pki, "CLIENT1")).ok

    serials = revoke(pki.certs_dir, "CLIENT1", "keyCompromise")

    assert serials == [load_cert(pki.client_cert("CLIENT1")).serial_number]
    # A context is a snapshot: the old one still accepts the certificate, hence the cache.
    assert handshake(before, client_context(pki, "CLIENT1")).ok
    after = cache.get()
    assert after is not before and cache.builds == 2
    refused = handshake(after, client_context(pki, "CLIENT1"))
    assert not refused.ok
    assert "certificate revoked" in str(refused.server_error)
    assert handshake(after, client_context(pki, "CLIENT2")).ok

    crl = load_crl(pki)
    entry = crl.get_revoked_certificate_by_serial_number(serials[0])
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert crl.is_signature_valid(load_cert(pki.ca_cert).public_key())


def test_reissue_keeps_the_old_certificate_valid_until_revoked_then_revokes_both(pki, tmp_path):
    old_cert = tmp_path / "old.pem"
    old_key = tmp_path / "old.key"
    shutil.copy(pki.client_cert("CLIENT1"), old_cert)
    shutil.copy(pki.client_key("CLIENT1"), old_key)
    old_serial = load_cert(old_cert).serial_number

    path = issue_client(pki.certs_dir, "CLIENT1")

    new_serial = load_cert(path).serial_number
    assert path == pki.client_cert("CLIENT1") and new_serial != old_serial
    archived = pki.archived_client_cert("CLIENT1", old_serial)
    assert archived.read_bytes() == old_cert.read_bytes()
    assert mode(pki.client_key("CLIENT1")) == 0o600
    assert pki.client_key("CLIENT1").read_bytes() != old_key.read_bytes()

    old_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old_ctx.load_verify_locations(cafile=pki.ca_cert)
    old_ctx.load_cert_chain(old_cert, old_key)
    cache = ContextCache(pki)
    assert handshake(cache.get(), old_ctx).ok  # rollover: both certificates work
    assert handshake(cache.get(), client_context(pki, "CLIENT1")).ok

    assert revoke(pki.certs_dir, "CLIENT1") == sorted([old_serial, new_serial])

    assert "certificate revoked" in str(handshake(cache.get(), old_ctx).server_error)
    new_try = handshake(cache.get(), client_context(pki, "CLIENT1"))
    assert "certificate revoked" in str(new_try.server_error)
    entries = {e.serial_number: e for e in load_crl(pki)}
    assert set(entries) == {old_serial, new_serial}
    # "unspecified" is left out of the entry, as RFC 5280 asks
    assert all(len(e.extensions) == 0 for e in entries.values())


def test_a_certificate_issued_after_revocation_works_until_revoked_in_turn(pki):
    [first] = revoke(pki.certs_dir, "CLIENT2")
    second = load_cert(issue_client(pki.certs_dir, "CLIENT2")).serial_number
    cache = ContextCache(pki)
    assert handshake(cache.get(), client_context(pki, "CLIENT2")).ok

    assert revoke(pki.certs_dir, "CLIENT2", "superseded") == sorted([first, second])

    assert not handshake(cache.get(), client_context(pki, "CLIENT2")).ok
    reasons = {e.serial_number: [x.value.reason for x in e.extensions] for e in load_crl(pki)}
    # the first revocation keeps its own (unspecified, so absent) reason
    assert reasons == {first: [], second: [x509.ReasonFlags.superseded]}


def test_revoke_refuses_unknown_compid_and_bad_reason(pki):
    before = snapshot(pki.certs_dir)
    with pytest.raises(PkiError, match="no certificate was ever issued for CompID 'NOBODY'"):
        revoke(pki.certs_dir, "NOBODY")
    with pytest.raises(PkiError, match="unknown revocation reason 'because'"):
        revoke(pki.certs_dir, "CLIENT1", "because")
    assert snapshot(pki.certs_dir) == before


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("keyCompromise", x509.ReasonFlags.key_compromise),
        ("key_compromise", x509.ReasonFlags.key_compromise),
        ("cessation-of-operation", x509.ReasonFlags.cessation_of_operation),
        (x509.ReasonFlags.superseded, x509.ReasonFlags.superseded),
    ],
)
def test_parse_reason(text, flag):
    assert parse_reason(text) is flag


def test_parse_reason_refuses_hold():
    with pytest.raises(PkiError, match="unknown revocation reason"):
        parse_reason(x509.ReasonFlags.certificate_hold)


# --------------------------------------------------------------------------- CRL upkeep


def test_expired_crl_is_refused_with_a_clear_message(pki):
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca = load_cert(pki.ca_cert)
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(past)
        .next_update(past + dt.timedelta(days=7))
        .sign(ca_key, hashes.SHA256())
    )
    pki.crl.write_bytes(stale.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(PkiError, match="expired") as err:
        server_context(pki)
    assert str(pki.crl) in str(err.value)

    renew_crl(pki.certs_dir)
    assert handshake(server_context(pki), client_context(pki, "CLIENT1")).ok


def test_cache_fails_closed_once_the_crl_expires(pki):
    now = [dt.datetime.now(dt.UTC)]
    cache = ContextCache(pki, clock=lambda: now[0])
    cache.get()
    now[0] += dt.timedelta(days=8)
    with pytest.raises(PkiError, match="expired"):
        cache.get()


def test_crl_signed_by_another_ca_is_refused(pki, tmp_path):
    other = init_dev_pki(tmp_path / "other", SERVER_NAMES, [])
    shutil.copy(other.crl, pki.crl)
    with pytest.raises(PkiError, match="not signed by a CA in"):
        server_context(pki)


def test_missing_files_are_named(pki):
    pki.server_key.unlink()
    with pytest.raises(PkiError, match="server.key: missing"):
        server_context(pki)
    with pytest.raises(PkiError, match="NOBODY.pem: missing"):
        client_context(pki, "NOBODY")


def test_bring_your_own_files_without_crl(shared_pki):
    files = TlsServerFiles(
        shared_pki.server_cert, shared_pki.server_key, shared_pki.ca_cert, crl=None
    )
    ctx = server_context(files)
    assert not ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    assert handshake(ctx, client_context(shared_pki, "CLIENT1")).ok


def test_corrupt_index_is_reported_not_trusted(pki):
    pki.index.write_text('{"crl_number": 1, "certificates": []')
    with pytest.raises(PkiError, match="index.json: not a valid certificate index"):
        issue_client(pki.certs_dir, "CLIENT1")


def test_issue_server_replaces_names_and_keeps_old_on_record(pki):
    old = load_cert(pki.server_cert)
    issue_server(pki.certs_dir, ["gw.example", "::1"])
    new = load_cert(pki.server_cert)
    assert cert_identities(new) == {"gw.example", "::1"}
    assert (pki.certs_dir / f"server.{old.serial_number:X}.pem").read_bytes() == (
        old.public_bytes(serialization.Encoding.PEM)
    )
    assert handshake(server_context(pki), client_context(pki, "CLIENT1"), "gw.example").ok


def test_tls12_clients_get_the_same_checks(pki):
    ctx = server_context(pki)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = client_context(pki, "CLIENT1")
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    result = handshake(ctx, tls12)
    assert result.ok and result.version == "TLSv1.2"
    assert "CLIENT1" in result.identities

    revoke(pki.certs_dir, "CLIENT1")
    refused = handshake(server_context(pki), tls12)
    assert "certificate revoked" in str(refused.server_error)
    assert isinstance(refused.client_error, ssl.SSLError)  # in 1.2 the client sees it at once


def test_concurrent_issuers_lose_no_index_entries(pki):
    comp_ids = [f"C{i}" for i in range(6)]
    errors: list[BaseException] = []

    def issue(comp_id: str) -> None:
        try:
            issue_client(pki.certs_dir, comp_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(c,)) for c in comp_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    index = json.loads(pki.index.read_text())["certificates"]
    on_record = {r["comp_id"] for r in index.values() if r["kind"] == "client"}
    assert on_record == {"CLIENT1", "CLIENT2", *comp_ids}
    for comp_id in comp_ids:
        serial = load_cert(pki.client_cert(comp_id)).serial_number
        assert index[f"{serial:X}"]["comp_id"] == comp_id


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=lambda v: v.name
)
def test_sessions_are_never_resumed_so_every_connection_shows_its_certificate(shared_pki, version):
    server_ctx = server_context(shared_pki)
    client_ctx = client_context(shared_pki, "CLIENT1")
    client_ctx.maximum_version = version
    first = handshake(server_ctx, client_ctx)
    second = handshake(server_ctx, client_ctx, session=first.session)
    assert first.ok and second.ok
    assert second.reused is False
    assert "CLIENT1" in second.identities
