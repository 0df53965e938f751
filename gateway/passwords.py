"""Password and token hashing. Plain secrets are never stored, only these hashes.

Passwords use scrypt (memory-hard, from ``cryptography``) with a random salt; the encoded form
carries its parameters so they can be raised later without breaking stored hashes. API tokens
are long random strings, so a single SHA-256 is enough for them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCHEME = "scrypt"
N, R, P, LENGTH = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    """The parts of a stored hash, or ``None`` if it is not one we could have written."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(p.isdigit() for p in parts[1:4]):
        return None
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        return None
    try:
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (binascii.Error, ValueError):
        return None
    if len(salt) < 16 or len(key) < 16:
        return None
    return n, r, p, salt, key


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` for ``password``."""
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=LENGTH, n=N, r=R, p=P).derive(password.encode())
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def is_password_hash(text: str) -> bool:
    return _parse(text) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a hash from :func:`hash_password`."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    kdf = Scrypt(salt=salt, length=len(key), n=n, r=r, p=p)
    try:
        kdf.verify(password.encode("utf-8", "surrogateescape"), key)  # bytes as received
    except InvalidKey:
        return False
    return True


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def verify_token(token: str, encoded: str) -> bool:
    return hmac.compare_digest(hash_token(token), encoded)
