"""Password (scrypt) and API token hashing."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gateway.passwords import (
    hash_password,
    hash_token,
    is_password_hash,
    verify_password,
    verify_token,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def test_hash_has_the_documented_shape(stored: str) -> None:
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", salt)  # 16 bytes, unpadded url-safe base64
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)  # 32 bytes
    assert PASSWORD not in stored
    assert is_password_hash(stored)


def test_right_password_verifies_and_wrong_ones_do_not(stored: str) -> None:
    assert verify_password(PASSWORD, stored)
    for wrong in ("", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1]):
        assert not verify_password(wrong, stored), wrong


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("same", first) and verify_password("same", second)


def test_non_ascii_password() -> None:
    stored = hash_password("pässwörd-密码")
    assert verify_password("pässwörd-密码", stored)
    assert not verify_password("passwort-密码", stored)


def test_hash_parameters_are_read_from_the_stored_hash() -> None:
    # A hash made with other (here: lower) parameters still verifies after the defaults change.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    salt = b"0123456789abcdef"
    key = Scrypt(salt=salt, length=32, n=2**10, r=8, p=1).derive(b"old")
    old = f"scrypt$1024$8$1${b64(salt)}${b64(key)}"
    assert verify_password("old", old)
    assert not verify_password("new", old)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain-password",
        "scrypt$16384$8$1$salt",
        "bcrypt$16384$8$1$c2FsdA$a2V5",
        "scrypt$x$8$1$a$b",
    ],
)
def test_things_that_are_not_hashes(text: str) -> None:
    assert not is_password_hash(text)
    assert not verify_password(text, text)
    assert not verify_password("anything", text)


@pytest.mark.parametrize(
    "encoded",
    [
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$",  # empty key
        "scrypt$16384$8$1$!!!!$@@@@",  # neither part is base64: both decode to nothing
        "scrypt$3$8$1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",  # N not 2^k
        "scrypt$16384$0$1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",  # r = 0
        "scrypt$16384$8$1$c2Fsd$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",  # bad base64 length
    ],
)
def test_malformed_hash_never_verifies_and_never_raises(encoded: str) -> None:
    # A corrupt password_hash in the configuration must refuse every password, not accept any
    # password (empty key) or crash the logon (ValueError from Scrypt or base64).
    assert verify_password("whatever", encoded) is False
    assert verify_password("", encoded) is False


@pytest.mark.parametrize(
    "encoded",
    [
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$",
        "scrypt$16384$8$1$!!!!$@@@@",
        "scrypt$3$8$1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    ],
)
def test_malformed_hash_is_not_accepted_as_a_hash(encoded: str) -> None:
    # Config validation relies on is_password_hash; it must catch these at load time.
    assert not is_password_hash(encoded)


def test_token_hash_is_sha256_hex_and_verifies_exactly() -> None:
    stored = hash_token("tok-123")
    assert re.fullmatch(r"sha256\$[0-9a-f]{64}", stored)
    assert hash_token("tok-123") == stored  # deterministic: looked up by hash
    assert verify_token("tok-123", stored)
    assert not verify_token("tok-124", stored)
    assert not verify_token("", stored)
    assert not verify_token("tok-123", stored.upper())
    assert hash_token("") != hash_token(" ")
