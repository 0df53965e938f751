"""Password and token hashing. Plain secrets are never stored, only these hashes.

Passwords use scrypt (memory-hard, from ``cryptography``) with a random salt; the encoded form
carries its parameters so they can be raised later without breaking stored hashes. API tokens
are long random strings, so a single SHA-256 is enough for them.
"""

from __future__ import annotations

import base64
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
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` for ``password``."""
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=LENGTH, n=N, r=R, p=P).derive(password.encode())
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def is_password_hash(text: str) -> bool:
    parts = text.split("$")
    return len(parts) == 6 and parts[0] == SCHEME and all(p.isdigit() for p in parts[1:4])


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a hash from :func:`hash_password`."""
    if not is_password_hash(encoded):
        return False
    _, n, r, p, salt, key = encoded.split("$")
    kdf = Scrypt(salt=_unb64(salt), length=len(_unb64(key)), n=int(n), r=int(r), p=int(p))
    try:
        kdf.verify(password.encode(), _unb64(key))
    except InvalidKey:
        return False
    return True


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def verify_token(token: str, encoded: str) -> bool:
    return hmac.compare_digest(hash_token(token), encoded)
