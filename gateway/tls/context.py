"""What the running gateway uses, whatever CA issued its certificates: the TLS server context
(:func:`server_context`, and :class:`ContextCache`, which picks up a new CRL without a restart),
the names a peer certificate vouches for (:func:`cert_identities`) and the rule binding them to
CompIDs (:class:`CertBinding`).

Mutual TLS binds a FIX session to a key the counterparty holds, so a leaked password alone cannot
log on. In production :class:`~gateway.tls.files.TlsServerFiles` points at the operator's own
CA's files (see ``certs/README.md``); in development at what :mod:`gateway.tls.devca` minted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.config import Config
from gateway.tls.files import COMPID_URN, PkiError, TlsServerFiles

_CRL_PEM = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)


class HasServerFiles(Protocol):
    """A certificates directory that knows its server files (``PkiPaths``)."""

    def server_files(self) -> TlsServerFiles: ...


def _server_files(files: HasServerFiles | TlsServerFiles) -> TlsServerFiles:
    return files if isinstance(files, TlsServerFiles) else files.server_files()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def server_context(
    files: HasServerFiles | TlsServerFiles, require_client_cert: bool = True
) -> ssl.SSLContext:
    """TLS 1.2+ server context that verifies client certificates against the CA and the CRL.

    Session resumption is off: a resumed session skips certificate checks, and FIX sessions are
    long-lived, so it would only buy a way around a revocation. A context is a snapshot of its
    files; use :class:`ContextCache` to follow changes.
    """
    f = _server_files(files)
    return _server_context(f, require_client_cert, _now())[0]


def _server_context(
    f: TlsServerFiles, require_client_cert: bool, now: dt.datetime
) -> tuple[ssl.SSLContext, dt.datetime | None]:
    """The context and when its CRL expires (``None`` without a CRL)."""
    require_files(f.cert, f.key, f.client_ca, f.crl)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    load_file(f"{f.cert} or {f.key}", lambda: ctx.load_cert_chain(f.cert, f.key))
    load_file(f.client_ca, lambda: ctx.load_verify_locations(cafile=f.client_ca))
    expires = None
    if f.crl is not None:
        expires = check_crl(f.crl, f.client_ca, now)
        load_file(f.crl, lambda: ctx.load_verify_locations(cafile=f.crl))
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx, expires


def check_crl(crl_path: Path, ca_path: Path, now: dt.datetime | None = None) -> dt.datetime:
    """Check every CRL in ``crl_path``; returns the earliest nextUpdate.

    OpenSSL would refuse every client on an expired or foreign CRL with a bare "certificate
    verify failed"; this says which file and why before the listener uses it.
    """
    now = now or _now()
    try:
        blocks = _CRL_PEM.findall(crl_path.read_bytes())
        cas = x509.load_pem_x509_certificates(ca_path.read_bytes())
    except OSError as exc:
        raise PkiError(f"{exc.filename}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise PkiError(f"{ca_path}: not a PEM certificate bundle ({exc})") from None
    if not blocks:
        raise PkiError(f"{crl_path}: no PEM CRL in it")
    earliest: dt.datetime | None = None
    for block in blocks:
        try:
            crl = x509.load_pem_x509_crl(block)
        except ValueError as exc:
            raise PkiError(f"{crl_path}: not a valid CRL ({exc})") from None
        if not any(
            ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key()) for ca in cas
        ):
            raise PkiError(
                f"{crl_path}: CRL of {crl.issuer.rfc4514_string()} is not signed by a CA in "
                f"{ca_path}"
            )
        next_update = crl.next_update_utc
        if next_update is None or next_update <= now:
            raise PkiError(
                f"{crl_path}: CRL of {crl.issuer.rfc4514_string()} expired at {next_update}; "
                "re-sign it (`fixbridge certs revoke` or renew_crl) or every client is refused"
            )
        earliest = next_update if earliest is None else min(earliest, next_update)
    assert earliest is not None
    return earliest


def require_files(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and not path.is_file():
            raise PkiError(f"{path}: missing; run `fixbridge certs init` or fix the TLS settings")


def load_file(what: Path | str, load: Callable[[], None]) -> None:
    try:
        load()
    except (ssl.SSLError, OSError) as exc:
        raise PkiError(f"{what}: cannot load it ({exc})") from None


class ContextCache:
    """A server context rebuilt when its files change, so a revoke needs no restart.

    Call :meth:`get` for each accepted connection; it costs a ``stat`` per file. Rebuilding also
    happens when the CRL passes its nextUpdate, which then raises :class:`PkiError`: the listener
    should refuse the connection and log the message (fail closed) rather than keep an old CRL.
    Connections already open are untouched; dropping a revoked CompID's session is the caller's.
    """

    def __init__(
        self,
        files: HasServerFiles | TlsServerFiles,
        require_client_cert: bool = True,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._files = _server_files(files)
        self._require = require_client_cert
        self._clock = clock
        self._lock = threading.Lock()
        self._ctx: ssl.SSLContext | None = None
        self._stamp: tuple[tuple[int, int, int] | None, ...] = ()
        self._expires: dt.datetime | None = None
        self.builds = 0

    def get(self) -> ssl.SSLContext:
        stamp = self._current_stamp()
        with self._lock:
            expired = self._expires is not None and self._clock() >= self._expires
            if self._ctx is None or stamp != self._stamp or expired:
                self._ctx = None  # a failed rebuild must not leave the old context in use
                self._ctx, self._expires = _server_context(
                    self._files, self._require, self._clock()
                )
                self._stamp = stamp
                self.builds += 1
            return self._ctx

    def _current_stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        f = self._files
        return tuple(_stat(p) for p in (f.cert, f.key, f.client_ca, f.crl))


def _stat(path: Path | None) -> tuple[int, int, int] | None:
    """Identity of a file's content: files are replaced by rename, so the inode changes too."""
    if path is None:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def cert_identities(peer: bytes | Mapping[str, Any] | x509.Certificate | None) -> set[str]:
    """The names a verified peer certificate vouches for: CN, DNS/URI/IP SANs, and ``X`` for a
    ``urn:fix:compid:X`` URI. The Logon's SenderCompID must be one of them.

    ``peer`` is ``SSLSocket.getpeercert(binary_form=True)`` (DER), the dict from
    ``getpeercert()``, or a parsed certificate; ``None`` (no certificate) gives an empty set.
    """
    if peer is None:
        return set()
    if isinstance(peer, Mapping):
        return _dict_identities(peer)
    if isinstance(peer, bytes | bytearray | memoryview):
        try:
            peer = x509.load_der_x509_certificate(bytes(peer))
        except ValueError as exc:
            raise PkiError(f"peer certificate is not valid DER ({exc})") from None
    if not isinstance(peer, x509.Certificate):
        raise PkiError(f"expected a certificate, got {type(peer).__name__}")
    names = {str(a.value) for a in peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    names.update(san.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        names.update(_uri_identities(uri))
    return names


def _dict_identities(peer: Mapping[str, Any]) -> set[str]:
    names = {value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"}
    for kind, value in peer.get("subjectAltName", ()):
        if kind == "DNS":
            names.add(value)
        elif kind == "IP Address":
            try:
                names.add(str(ipaddress.ip_address(value.strip())))  # "0:0:...:1" -> "::1"
            except ValueError:
                names.add(value)
        elif kind == "URI":
            names.update(_uri_identities(value))
    return names


def _uri_identities(uri: str) -> set[str]:
    if uri.startswith(COMPID_URN) and len(uri) > len(COMPID_URN):
        return {uri, uri[len(COMPID_URN) :]}
    return {uri}


class CertBinding:
    """The TLS listener's rule: a client certificate may log on only as the CompID bound to it
    (the session's ``cert_identity``, by default the CompID itself, as CN or SAN).

    This is the :class:`gateway.fix.front.TlsPolicy` of the gateway's TLS listener.
    """

    def __init__(self, config: Config, contexts: ContextCache) -> None:
        self.config = config
        self.contexts = contexts

    def context(self) -> ssl.SSLContext:
        return self.contexts.get()

    def identities(self, der: bytes) -> set[str]:
        return cert_identities(der)

    def refuse(self, comp_id: str, identities: set[str]) -> str | None:
        session = self.config.session(comp_id)
        if session is None:
            return f"unknown CompID {comp_id}"
        expected = session.cert_identity or comp_id
        if expected not in identities:
            return f"certificate {sorted(identities)} is not bound to CompID {comp_id}"
        return None
