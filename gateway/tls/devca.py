"""A development CA for FIX over TLS with client certificates (``fixbridge certs``).

It mints a development PKI with ``cryptography`` (EC P-256 and SHA-256, which every OpenSSL
accepts): a CA, the gateway's server certificate, one client certificate per CompID and a CRL,
laid out in ``certs_dir`` as :mod:`gateway.tls.files` describes; and :func:`client_context` for
test and load clients. The running gateway never imports this module: it reads those files
through :mod:`gateway.tls.context`, which works the same with the operator's own CA (see
``certs/README.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.durable import fsync_dir
from gateway.tls.context import load_file, require_files
from gateway.tls.files import COMPID_URN, PkiError, PkiPaths, check_comp_id, serial_hex

DEFAULT_DAYS = 825  # the longest server certificate lifetime Apple/browsers still accept
CA_DAYS = 3650
CRL_DAYS = 7
CLOCK_SKEW = dt.timedelta(minutes=5)  # backdate notBefore so a peer's slow clock is no outage
KEY_MODE, PUBLIC_MODE, DIR_MODE = 0o600, 0o644, 0o700

_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"(?:\*\.)?{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
# Revocation here is permanent and complete: no holds, no delta CRLs.
_REASONS = tuple(
    r
    for r in x509.ReasonFlags
    if r not in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl)
)


# --------------------------------------------------------------------------- issuing


def init_dev_pki(
    certs_dir: Path,
    server_names: list[str],
    comp_ids: list[str],
    days: int = DEFAULT_DAYS,
    *,
    exist_ok: bool = False,
) -> PkiPaths:
    """Create a development CA, a server certificate, a client certificate per CompID, a CRL.

    Refuses if a CA is already there, unless ``exist_ok``: then only missing certificates (server
    or client) are added and the CRL is re-signed. All input is checked before anything is written.
    """
    paths = PkiPaths(Path(certs_dir))
    sans = _server_sans(server_names)
    ids = [check_comp_id(c) for c in dict.fromkeys(comp_ids)]
    _check_days(days)
    with _locked(paths):
        now = _now()
        if paths.ca_cert.exists() or paths.ca_key.exists():
            if not exist_ok:
                raise PkiError(
                    f"{paths.ca_cert}: a CA already exists in {paths.certs_dir}; use "
                    "`fixbridge certs issue COMPID` for more clients, or remove the directory to "
                    "start again (every certificate it issued stops working)"
                )
            ca, index = _load_ca(paths), _load_index(paths)
        else:
            leftovers = [p for p in (paths.index, paths.crl, paths.server_cert) if p.exists()]
            leftovers += sorted(paths.clients_dir.glob("*.pem"))
            if leftovers:
                raise PkiError(f"{leftovers[0]}: found without a CA; remove {paths.certs_dir}")
            ca, index = _new_ca(now), _Index()
            index.record(ca.cert, "ca", None, now)
            index.save(paths)  # the index exists before any certificate it should list
            _write(paths.ca_key, _key_pem(ca.key), KEY_MODE, replace=False)
            _write(paths.ca_cert, _cert_pem(ca.cert), PUBLIC_MODE, replace=False)
        if not paths.server_cert.exists():
            _issue_server(paths, ca, index, sans, days, now)
        for comp_id in ids:
            if not paths.client_cert(comp_id).exists():
                _issue_client(paths, ca, index, comp_id, days, now)
        _sign_crl(paths, ca, index, now, CRL_DAYS)
    return paths


def issue_client(certs_dir: Path, comp_id: str, days: int = DEFAULT_DAYS) -> Path:
    """Issue a new client certificate for ``comp_id``; returns its path.

    A current certificate is kept as ``clients/<COMPID>.<SERIAL>.pem`` and stays valid until
    revoked (so a counterparty can roll over); its private key is deleted, as the new key
    replaces it.
    """
    paths = PkiPaths(Path(certs_dir))
    check_comp_id(comp_id)
    _check_days(days)
    with _locked(paths):
        ca, index = _load_ca(paths), _load_index(paths)
        return _issue_client(paths, ca, index, comp_id, days, _now())


def issue_server(certs_dir: Path, server_names: list[str], days: int = DEFAULT_DAYS) -> Path:
    """Replace the server certificate (new names, or rotation); the old one is kept on record."""
    paths = PkiPaths(Path(certs_dir))
    sans = _server_sans(server_names)
    _check_days(days)
    with _locked(paths):
        ca, index = _load_ca(paths), _load_index(paths)
        return _issue_server(paths, ca, index, sans, days, _now())


def revoke(
    certs_dir: Path,
    comp_id: str,
    reason: x509.ReasonFlags | str = x509.ReasonFlags.unspecified,
    *,
    crl_days: int = CRL_DAYS,
) -> list[int]:
    """Revoke every certificate ever issued for ``comp_id`` and re-sign the CRL.

    Returns the serials now on the CRL for ``comp_id`` (earlier revocations keep their original
    date and reason). Contexts built after this refuse those certificates; see
    :class:`ContextCache`. Sessions already connected are not dropped by this function.
    """
    paths = PkiPaths(Path(certs_dir))
    check_comp_id(comp_id)
    flag = parse_reason(reason)
    _check_days(crl_days)
    with _locked(paths):
        ca, index = _load_ca(paths), _load_index(paths)
        serials = index.serials_of(comp_id)
        if not serials:
            raise PkiError(
                f"no certificate was ever issued for CompID {comp_id!r} in {paths.index}"
            )
        now = _now()
        for serial in serials:
            index.revoke(serial, flag, now)
        index.save(paths)
        _sign_crl(paths, ca, index, now, crl_days)
    return serials


def renew_crl(certs_dir: Path, crl_days: int = CRL_DAYS) -> Path:
    """Re-sign the CRL with the same entries and a later nextUpdate.

    An expired CRL makes OpenSSL refuse every client, so this must run more often than
    ``crl_days`` (any revoke also renews it).
    """
    paths = PkiPaths(Path(certs_dir))
    _check_days(crl_days)
    with _locked(paths):
        ca, index = _load_ca(paths), _load_index(paths)
        _sign_crl(paths, ca, index, _now(), crl_days)
    return paths.crl


def parse_reason(reason: x509.ReasonFlags | str) -> x509.ReasonFlags:
    """A CRL reason from a flag, its RFC 5280 name (``keyCompromise``) or ``key_compromise``."""
    if isinstance(reason, x509.ReasonFlags) and reason in _REASONS:
        return reason
    text = str(reason).strip()
    for flag in _REASONS:
        if text in (flag.value, flag.name) or text.replace("-", "_").lower() == flag.name:
            return flag
    raise PkiError(
        f"unknown revocation reason {reason!r}; use one of: "
        + ", ".join(flag.name for flag in _REASONS)
    )


@dataclass(frozen=True, slots=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


class _Index:
    """index.json: every certificate the CA signed, so all of a CompID's serials can be revoked."""

    def __init__(self, crl_number: int = 0, certificates: dict[str, dict[str, Any]] | None = None):
        self.crl_number = crl_number
        self.certificates = certificates or {}

    def record(
        self, cert: x509.Certificate, kind: str, comp_id: str | None, now: dt.datetime
    ) -> None:
        self.certificates[serial_hex(cert.serial_number)] = {
            "kind": kind,
            "comp_id": comp_id,
            "subject": cert.subject.rfc4514_string(),
            "issued": now.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "revoked": None,
        }

    def serials_of(self, comp_id: str) -> list[int]:
        return sorted(
            int(serial, 16)
            for serial, rec in self.certificates.items()
            if rec["kind"] == "client" and rec["comp_id"] == comp_id
        )

    def revoke(self, serial: int, reason: x509.ReasonFlags, now: dt.datetime) -> None:
        rec = self.certificates[serial_hex(serial)]
        if rec["revoked"] is None:
            rec["revoked"] = {"at": now.isoformat(), "reason": reason.value}

    def revoked(self) -> Iterator[tuple[int, dt.datetime, x509.ReasonFlags]]:
        for serial, rec in sorted(self.certificates.items()):
            if rec["revoked"] is not None:
                yield (
                    int(serial, 16),
                    dt.datetime.fromisoformat(rec["revoked"]["at"]),
                    x509.ReasonFlags(rec["revoked"]["reason"]),
                )

    def save(self, paths: PkiPaths) -> None:
        doc = {"version": 1, "crl_number": self.crl_number, "certificates": self.certificates}
        _write(paths.index, json.dumps(doc, indent=2).encode() + b"\n", PUBLIC_MODE, replace=True)


def _load_index(paths: PkiPaths) -> _Index:
    try:
        raw = paths.index.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{paths.index}: missing; run `fixbridge certs init` first") from None
    try:
        doc = json.loads(raw)
        index = _Index(int(doc["crl_number"]), dict(doc["certificates"]))
        for serial, rec in index.certificates.items():
            int(serial, 16)
            if rec["kind"] not in ("ca", "server", "client"):
                raise ValueError(f"serial {serial}: unknown kind {rec['kind']!r}")
            if rec["revoked"] is not None:
                dt.datetime.fromisoformat(rec["revoked"]["at"])
                x509.ReasonFlags(rec["revoked"]["reason"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PkiError(f"{paths.index}: not a valid certificate index ({exc})") from None
    return index


def _load_ca(paths: PkiPaths) -> _Ca:
    cert = _read_cert(paths.ca_cert)
    try:
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(
            f"{paths.ca_key}: missing; this directory cannot issue or revoke (bring-your-own CA?)"
        ) from None
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{paths.ca_key}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{paths.ca_key}: does not belong to the certificate in {paths.ca_cert}")
    if cert.not_valid_after_utc <= _now():
        raise PkiError(f"{paths.ca_cert}: the CA expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return _Ca(cert, key)


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"{path}: missing; run `fixbridge certs init` first") from None
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM certificate ({exc})") from None


def _issue_client(
    paths: PkiPaths, ca: _Ca, index: _Index, comp_id: str, days: int, now: dt.datetime
) -> Path:
    target = paths.client_cert(comp_id)
    for serial, rec in index.certificates.items():
        if (
            rec["kind"] == "client"
            and paths.archived_client_cert(rec["comp_id"], int(serial, 16)) == target
        ):
            raise PkiError(f"{target}: CompID {comp_id!r} clashes with an archived certificate")
    key = _new_key()
    cert = _leaf(
        ca,
        key,
        comp_id,
        [x509.UniformResourceIdentifier(COMPID_URN + comp_id)],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        days,
        now,
    )
    paths.clients_dir.mkdir(mode=DIR_MODE, exist_ok=True)
    index.record(cert, "client", comp_id, now)
    index.save(paths)  # on record (revocable) before the certificate is anywhere else
    if target.exists():
        old = _read_cert(target)
        if serial_hex(old.serial_number) not in index.certificates:
            index.record(old, "client", comp_id, now)
            index.save(paths)
        archive = paths.archived_client_cert(comp_id, old.serial_number)
        if not archive.exists():
            _write(archive, _cert_pem(old), PUBLIC_MODE, replace=False)
    _write(paths.client_key(comp_id), _key_pem(key), KEY_MODE, replace=True)
    _write(target, _cert_pem(cert), PUBLIC_MODE, replace=True)
    return target


def _issue_server(
    paths: PkiPaths,
    ca: _Ca,
    index: _Index,
    sans: list[x509.GeneralName],
    days: int,
    now: dt.datetime,
) -> Path:
    first = str(sans[0].value)
    key = _new_key()
    cert = _leaf(
        ca,
        key,
        first if len(first) <= 64 else "fixbridge gateway",
        sans,
        ExtendedKeyUsageOID.SERVER_AUTH,
        days,
        now,
    )
    index.record(cert, "server", None, now)
    index.save(paths)
    if paths.server_cert.exists():
        old = _read_cert(paths.server_cert)
        archive = paths.certs_dir / f"server.{serial_hex(old.serial_number)}.pem"
        if not archive.exists():
            _write(archive, _cert_pem(old), PUBLIC_MODE, replace=False)
    _write(paths.server_key, _key_pem(key), KEY_MODE, replace=True)
    _write(paths.server_cert, _cert_pem(cert), PUBLIC_MODE, replace=True)
    return paths.server_cert


def _new_ca(now: dt.datetime) -> _Ca:
    key = _new_key()
    # A random suffix keeps two development CAs apart: OpenSSL finds issuers by name.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fixbridge"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"fixbridge development CA {secrets.token_hex(4)}"
            ),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing_certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Ca(cert, key)


def _leaf(
    ca: _Ca,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
    now: dt.datetime,
) -> x509.Certificate:
    not_after = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


def _key_usage(*, signing_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signing_certs,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing_certs,
        crl_sign=signing_certs,
        encipher_only=False,
        decipher_only=False,
    )


def _sign_crl(paths: PkiPaths, ca: _Ca, index: _Index, now: dt.datetime, days: int) -> None:
    """Write crl.pem from the index. The number is saved first so it never repeats."""
    index.crl_number += 1
    index.save(paths)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(index.crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    for serial, when, reason in index.revoked():
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not x509.ReasonFlags.unspecified:  # RFC 5280 5.3.1: omit rather than say so
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(ca.key, hashes.SHA256())
    _write(paths.crl, crl.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE, replace=True)


def _server_sans(names: Iterable[str]) -> list[x509.GeneralName]:
    if isinstance(names, str):
        raise PkiError(f"server names must be a list, got the string {names!r}")
    sans: list[x509.GeneralName] = []
    for raw in dict.fromkeys(names):
        name = str(raw).strip()
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        if len(name) > 253 or not _DNS.fullmatch(name):
            raise PkiError(
                f"server name {raw!r} is neither an IP address nor a DNS name "
                "(internationalised names go in their xn-- form)"
            )
        sans.append(x509.DNSName(name.lower()))
    sans = list(dict.fromkeys(sans))
    if not sans:
        raise PkiError("at least one server name (DNS name or IP address) is required")
    return sans


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise PkiError(f"validity must be a whole number of days, at least 1 (got {days!r})")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------- files


def _write(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write ``data`` whole or not at all, with ``mode`` from the first byte on.

    The temp file is created with O_EXCL and ``mode`` (so a key is never readable by others,
    whatever the umask), synced, then renamed over ``path`` or, without ``replace``, hard-linked
    to it, which fails if ``path`` exists.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have cleared bits of a public file
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise PkiError(f"{path}: already exists; refusing to overwrite it") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


@contextlib.contextmanager
def _locked(paths: PkiPaths) -> Iterator[None]:
    """One writer at a time: two `fixbridge certs` commands at once would lose index entries."""
    try:
        paths.certs_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(paths.certs_dir / ".lock", os.O_CREAT | os.O_RDWR, KEY_MODE)
    except OSError as exc:
        raise PkiError(f"{paths.certs_dir}: cannot use it ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def client_context(paths: PkiPaths, comp_id: str) -> ssl.SSLContext:
    """Context for a test or load client: trusts the CA, presents ``comp_id``'s certificate.

    Host names are checked; pass ``server_hostname=`` (a name in the server certificate) to
    ``wrap_socket``.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = paths.client_cert(comp_id), paths.client_key(comp_id)
    require_files(paths.ca_cert, cert, key)
    load_file(paths.ca_cert, lambda: ctx.load_verify_locations(cafile=paths.ca_cert))
    load_file(f"{cert} or {key}", lambda: ctx.load_cert_chain(cert, key))
    return ctx
