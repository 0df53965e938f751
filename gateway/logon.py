"""Logon policy: who may log on, and when an address is locked out.

Pure logic with time passed in. The FIX adapter asks :meth:`LogonPolicy.check` during Logon and
the listener asks :meth:`LogonPolicy.locked_out` when a connection arrives.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from gateway.config import Config
from gateway.passwords import verify_password


@dataclass(frozen=True, slots=True)
class LogonAttempt:
    comp_id: str
    peer: str | None
    heartbeat: int | None
    username: str | None
    password: str | None


@dataclass
class LogonPolicy:
    config: Config
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _locked_until: dict[str, float] = field(default_factory=dict)

    def check(self, attempt: LogonAttempt, now: float) -> str | None:
        """``None`` if the logon may proceed, else the Text for the Logout that refuses it."""
        if attempt.peer and self.locked_out(attempt.peer, now):
            return "too many failed logons from this address; try again later"
        session = self.config.session(attempt.comp_id)
        if session is None:
            return f"unknown CompID {attempt.comp_id}"
        hb = attempt.heartbeat
        if hb is None or not session.heartbeat_min <= hb <= session.heartbeat_max:
            return (
                f"HeartBtInt must be between {session.heartbeat_min} and "
                f"{session.heartbeat_max} seconds"
            )
        if session.auth == "password":
            if not attempt.username or attempt.password is None:
                return "Username(553) and Password(554) are required"
            if attempt.username != session.username or not verify_password(
                attempt.password, session.password_hash or ""
            ):
                return "invalid username or password"
        return None

    def record_failure(self, peer: str | None, now: float) -> bool:
        """Count a failure from ``peer``; ``True`` if that address is now locked out."""
        if not peer:
            return False
        window = self.config.logon.window_seconds
        failures = self._failures[peer]
        failures.append(now)
        while failures and failures[0] < now - window:
            failures.popleft()
        if len(failures) >= self.config.logon.max_failures:
            self._locked_until[peer] = now + self.config.logon.lockout_seconds
            failures.clear()
            return True
        return False

    def locked_out(self, peer: str, now: float) -> bool:
        until = self._locked_until.get(peer)
        if until is None:
            return False
        if now >= until:
            del self._locked_until[peer]
            return False
        return True
