"""LogonPolicy: who may log on, heartbeat bounds, credentials, and lockout of failing addresses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import Config
from gateway.logon import LogonAttempt, LogonPolicy
from gateway.passwords import hash_password

PASSWORD = "s3cret-pass"
PASSWORD_HASH = hash_password(PASSWORD)
PEER = "192.0.2.10"


def config(**logon: int) -> Config:
    return Config.model_validate(
        {
            "logon": {"max_failures": 3, "window_seconds": 60, "lockout_seconds": 300, **logon},
            "sessions": [
                {"comp_id": "OPEN", "heartbeat_min": 10, "heartbeat_max": 60},
                {
                    "comp_id": "SECURE",
                    "auth": "password",
                    "username": "alice",
                    "password_hash": PASSWORD_HASH,
                },
            ],
        }
    )


@pytest.fixture
def policy() -> LogonPolicy:
    return LogonPolicy(config())


def attempt(
    comp_id: str = "SECURE",
    *,
    peer: str | None = PEER,
    heartbeat: int | None = 30,
    username: str | None = "alice",
    password: str | None = PASSWORD,
) -> LogonAttempt:
    return LogonAttempt(comp_id, peer, heartbeat, username, password)


def test_valid_logons_are_accepted(policy: LogonPolicy) -> None:
    assert policy.check(attempt(), now=0.0) is None
    assert policy.check(attempt("OPEN", username=None, password=None), now=0.0) is None


def test_unknown_comp_id_is_refused_by_name(policy: LogonPolicy) -> None:
    assert policy.check(attempt("MALLORY"), now=0.0) == "unknown CompID MALLORY"


@pytest.mark.parametrize(("heartbeat", "ok"), [(9, False), (10, True), (60, True), (61, False)])
def test_heartbeat_must_be_within_the_session_bounds(
    policy: LogonPolicy, heartbeat: int, ok: bool
) -> None:
    why = policy.check(attempt("OPEN", heartbeat=heartbeat), now=0.0)
    if ok:
        assert why is None
    else:
        assert why == "HeartBtInt must be between 10 and 60 seconds"


def test_missing_heartbeat_is_refused(policy: LogonPolicy) -> None:
    assert "HeartBtInt" in policy.check(attempt("OPEN", heartbeat=None), now=0.0)


def test_default_heartbeat_bounds_apply_when_not_configured(policy: LogonPolicy) -> None:
    assert policy.check(attempt(heartbeat=1), now=0.0) is None
    assert policy.check(attempt(heartbeat=120), now=0.0) is None
    assert "between 1 and 120" in policy.check(attempt(heartbeat=121), now=0.0)
    assert "between 1 and 120" in policy.check(attempt(heartbeat=0), now=0.0)


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, PASSWORD), ("", PASSWORD), ("alice", None)],
)
def test_password_session_needs_username_and_password(
    policy: LogonPolicy, username: str | None, password: str | None
) -> None:
    why = policy.check(attempt(username=username, password=password), now=0.0)
    assert why == "Username(553) and Password(554) are required"


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("bob", PASSWORD), ("ALICE", PASSWORD), ("alice", "")],
)
def test_wrong_credentials_get_one_message_that_does_not_say_which_part(
    policy: LogonPolicy, username: str, password: str
) -> None:
    assert policy.check(attempt(username=username, password=password), now=0.0) == (
        "invalid username or password"
    )


def test_credentials_on_an_open_session_are_ignored(policy: LogonPolicy) -> None:
    assert policy.check(attempt("OPEN", username="x", password="y"), now=0.0) is None


def test_lockout_after_max_failures_within_the_window(policy: LogonPolicy) -> None:
    assert policy.record_failure(PEER, now=0.0) is False
    assert policy.record_failure(PEER, now=10.0) is False
    assert not policy.locked_out(PEER, now=10.0)
    assert policy.record_failure(PEER, now=20.0) is True
    assert policy.locked_out(PEER, now=20.0)
    # even correct credentials are refused while the address is locked out
    why = policy.check(attempt(), now=21.0)
    assert why == "too many failed logons from this address; try again later"
    # other addresses are not affected
    assert not policy.locked_out("192.0.2.99", now=21.0)
    assert policy.check(attempt(peer="192.0.2.99"), now=21.0) is None


def test_lockout_expires(policy: LogonPolicy) -> None:
    for t in (0.0, 1.0, 2.0):
        policy.record_failure(PEER, now=t)
    assert policy.locked_out(PEER, now=301.9)
    assert not policy.locked_out(PEER, now=302.0)
    assert policy.check(attempt(), now=302.0) is None
    # the count starts again from zero after a lockout
    assert policy.record_failure(PEER, now=303.0) is False
    assert policy.record_failure(PEER, now=304.0) is False
    assert policy.record_failure(PEER, now=305.0) is True


def test_failures_outside_the_window_do_not_count(policy: LogonPolicy) -> None:
    assert policy.record_failure(PEER, now=0.0) is False
    assert policy.record_failure(PEER, now=30.0) is False
    # the failure at 0 is more than 60 s before 61: only two failures are in the window
    assert policy.record_failure(PEER, now=61.0) is False
    assert not policy.locked_out(PEER, now=61.0)
    assert policy.record_failure(PEER, now=62.0) is True


def test_failure_exactly_at_the_window_edge_still_counts(policy: LogonPolicy) -> None:
    policy.record_failure(PEER, now=0.0)
    policy.record_failure(PEER, now=30.0)
    assert policy.record_failure(PEER, now=60.0) is True


def test_failures_without_a_peer_address_are_not_counted(policy: LogonPolicy) -> None:
    for t in range(10):
        assert policy.record_failure(None, now=float(t)) is False
    assert policy.check(attempt(peer=None), now=10.0) is None


def test_max_failures_of_one_locks_out_at_once() -> None:
    policy = LogonPolicy(config(max_failures=1, lockout_seconds=5))
    assert policy.record_failure(PEER, now=0.0) is True
    assert policy.locked_out(PEER, now=4.0)
    assert not policy.locked_out(PEER, now=5.0)


def test_corrupt_password_hash_in_config_never_lets_anyone_in() -> None:
    # An empty key part decodes to b"", and scrypt of any password to 0 bytes equals it.
    corrupt = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$"
    try:
        cfg = Config.model_validate(
            {
                "sessions": [
                    {
                        "comp_id": "SECURE",
                        "auth": "password",
                        "username": "alice",
                        "password_hash": corrupt,
                    }
                ]
            }
        )
    except ValidationError:
        return  # refused at load time: fine
    assert LogonPolicy(cfg).check(attempt(password="anything"), now=0.0) is not None


def test_config_refuses_password_auth_without_a_hash() -> None:
    with pytest.raises(ValidationError, match="password_hash"):
        Config.model_validate(
            {
                "sessions": [
                    {"comp_id": "S", "auth": "password", "username": "u", "password_hash": "plain"}
                ]
            }
        )
