"""The audit signing key on disk: creation (once, never overwritten) and loading.

Files, both in the audit data directory (never in the repository):

* ``signing_key.pem``: Ed25519 private key, PKCS#8 PEM, mode 0600, created with ``O_EXCL``;
* ``signing_key.pub.pem``: the matching public key (SubjectPublicKeyInfo PEM), mode 0644,
  the file to hand to whoever verifies exports.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from gateway.durable import fsync_dir
from otc.audit.signing import public_key_from_pem, public_key_pem

__all__ = [
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "AuditKeyError",
    "KeyExistsError",
    "MissingKeyError",
    "generate_signing_key",
    "load_public_key",
    "load_signing_key",
]

PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub.pem"


class AuditKeyError(Exception):
    """The signing key cannot be created or used; the message names the file and the fix."""


class KeyExistsError(AuditKeyError):
    pass


class MissingKeyError(AuditKeyError):
    pass


def _keygen_hint(audit_dir: Path) -> str:
    """The gateway keeps its audit log in <data_dir>/audit; the CLI takes the data dir."""
    return f"create it with `fixbridge audit keygen --data-dir {audit_dir.parent}`"


def generate_signing_key(data_dir: str | os.PathLike[str]) -> Path:
    """Create a new Ed25519 key pair in ``data_dir``; return the private key's path.

    Refuses (``KeyExistsError``) if either key file already exists: replacing the key would
    orphan every checkpoint signed so far.
    """
    directory = Path(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = directory / PRIVATE_KEY_FILE
    public_path = directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise KeyExistsError(f"{path} already exists; refusing to overwrite an audit key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, public_key_pem(key.public_key()), 0o644)
    fsync_dir(directory)
    return private_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyExistsError(f"{path} already exists; refusing to overwrite an audit key") from None
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what we asked for
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_signing_key(data_dir: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load the private key; refuses a missing, unreadable, non-Ed25519 or group/world-readable
    key with a message naming the file."""
    directory = Path(data_dir)
    path = directory / PRIVATE_KEY_FILE
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingKeyError(
            f"audit signing key not found at {path}; {_keygen_hint(directory)}"
        ) from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read audit signing key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"audit signing key {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, expected Ed25519")
    public_path = directory / PUBLIC_KEY_FILE
    if public_path.exists() and load_public_key(public_path) != key.public_key():
        raise AuditKeyError(f"{public_path} does not match the private key in {path}")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingKeyError(f"audit public key not found at {path}") from None
    try:
        return public_key_from_pem(data)
    except ValueError as exc:
        raise AuditKeyError(f"{path}: {exc}") from None
