"""What the development CA and the running gateway agree on: where the TLS files live, how
CompIDs and serials are written, and the error both raise.

Layout of ``certs_dir`` (under the data dir, never in the repository)::

    ca.pem, ca.key                 development CA (keys are always mode 0600)
    server.pem, server.key         the gateway's certificate
    crl.pem                        revocation list, re-signed on every change
    index.json                     every certificate issued: serial -> CompID, dates, revocation
    clients/<COMPID>.pem, .key     the current client certificate of a session
    clients/<COMPID>.<SERIAL>.pem  superseded client certificates, kept on record

Serials are written as upper-case hex, as ``openssl x509 -noout -serial`` prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COMPID_URN = "urn:fix:compid:"  # a client certificate's SAN URI naming the CompID it binds

_COMPID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # the rule of gateway.config.CompId


class PkiError(Exception):
    """A certificate problem, phrased for the operator and naming the file or value involved."""


@dataclass(frozen=True, slots=True)
class TlsServerFiles:
    """What a TLS listener loads. In production these point at the operator's own CA's files.

    ``client_ca`` may hold several CA certificates; ``crl`` then holds one CRL per CA. Without a
    CRL revocation is not enforced, so the development PKI always has one.
    """

    cert: Path
    key: Path
    client_ca: Path
    crl: Path | None


@dataclass(frozen=True, slots=True)
class PkiPaths:
    """Where the development PKI keeps its files inside ``certs_dir``."""

    certs_dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.certs_dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.certs_dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.certs_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.certs_dir / "server.key"

    @property
    def crl(self) -> Path:
        return self.certs_dir / "crl.pem"

    @property
    def index(self) -> Path:
        return self.certs_dir / "index.json"

    @property
    def clients_dir(self) -> Path:
        return self.certs_dir / "clients"

    def client_cert(self, comp_id: str) -> Path:
        return self.clients_dir / f"{check_comp_id(comp_id)}.pem"

    def client_key(self, comp_id: str) -> Path:
        return self.clients_dir / f"{check_comp_id(comp_id)}.key"

    def archived_client_cert(self, comp_id: str, serial: int) -> Path:
        return self.clients_dir / f"{check_comp_id(comp_id)}.{serial_hex(serial)}.pem"

    def server_files(self) -> TlsServerFiles:
        return TlsServerFiles(self.server_cert, self.server_key, self.ca_cert, self.crl)


def check_comp_id(comp_id: str) -> str:
    """``comp_id`` if it is a valid CompID (it becomes a file name, so this also bars paths)."""
    if not isinstance(comp_id, str) or not _COMPID.fullmatch(comp_id):
        raise PkiError(f"invalid CompID {comp_id!r}: use 1-64 characters from A-Z a-z 0-9 _ . -")
    return comp_id


def serial_hex(serial: int) -> str:
    return f"{serial:X}"
