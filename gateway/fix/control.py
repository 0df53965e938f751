"""What an operator may do to FIX sessions at run time (the API's /sessions routes and
``fixbridge sessions``): list them, log one out, drop its connection, reset or set its sequence
numbers, disable or enable logons for its CompID. Every action is logged and audited with its
actor.

How each maps onto QuickFIX 1.16, and why:

* log out: ``Session.logout(text)`` only flags the session; QuickFIX's own thread sends the
  Logout (58=text) within a second and ends the session when the peer answers (or after
  LogoutTimeout). The flag also disables the session; the application re-enables it once the
  session is down, so the gateway's own checks decide who logs on next.
* disconnect: the front shuts the relayed TCP connection, and QuickFIX ends the session on its
  own thread when it sees the socket close. ``Session.disconnect()`` (and ``reset()`` on a
  connected session) from any other thread reach the socket monitor, which has no lock: a data
  race with QuickFIX's network thread.
* reset and set sequence numbers: only while the session is logged out and no connection for it
  is open, and the front holds new connections for the CompID until done, so QuickFIX never has
  a socket for the session meanwhile. ``Session.reset()`` on a logged-on session would send a
  Logout and drop the connection; changing numbers under a live session makes the peer see a gap
  or a too-low MsgSeqNum. Setting numbers on a session that resets them on every logon
  (``reset_on_logon``) would be undone at its next logon, so that is refused too.
* disable / enable: kept in the database (``session_controls``), so it survives a restart. A
  disabled CompID's Logon is refused by the gateway with a Logout saying so (QuickFIX's own
  disabled state would drop the connection without a word), and a logged-on one is logged out.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import quickfix as fix

from fixspec import messages as m
from gateway.config import Config, SessionConfig
from gateway.fix.front import Busy, PeerRegistry
from gateway.schedule import day_refusal
from gateway.store.sessions import Disabled, SessionControls

log = logging.getLogger("fixbridge.sessions")

Audit = Callable[[str, str, dict[str, Any]], None]


class SessionError(Exception):
    """An operator action refused; ``status`` is the HTTP status that says why."""

    status = 409


class UnknownSession(SessionError):
    status = 404


class SessionConflict(SessionError):
    status = 409


class SessionControl:
    """``sessions``: the application's live map of CompID to QuickFIX SessionID. ``audit``
    records an admin action (``Auditor.admin``)."""

    def __init__(
        self,
        config: Config,
        sessions: Mapping[str, fix.SessionID],
        peers: PeerRegistry,
        controls: SessionControls,
        audit: Audit,
        clock: Callable[[], datetime] = m.utcnow,
        wait_seconds: float = 5.0,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.peers = peers
        self.controls = controls
        self.audit = audit
        self.clock = clock
        self.wait_seconds = wait_seconds
        self._disabled: dict[str, Disabled] = controls.load()
        self._lock = threading.Lock()  # one operator action at a time

    # -- what the FIX application asks (on QuickFIX's thread) ------------------------------

    def logon_refusal(self, comp_id: str) -> str | None:
        """The Logout text refusing ``comp_id``'s Logon, or ``None``: disabled by an operator,
        or a day its schedule skips."""
        disabled = self._disabled.get(comp_id)
        if disabled is not None:
            return f"logons for {comp_id} are disabled by the operator: {disabled.reason}"
        session = self.config.session(comp_id)
        return day_refusal(session.schedule, self.clock()) if session is not None else None

    def logout_text(self, comp_id: str) -> str | None:
        """Text for a Logout QuickFIX sends without one: outside the schedule's window, that is
        why (QuickFIX ends the session, or refuses a Logon, with a bare Logout)."""
        session = self.config.session(comp_id)
        if session is None or session.schedule is None:
            return None
        qf = self._qf(comp_id)
        if qf is None or qf.isSessionTime(fix.UtcTimeStamp()):
            return None
        text = f"outside the session schedule ({session.schedule.describe()})"
        log.info("session %s: Logout (%s)", comp_id, text)
        return text

    # -- views -----------------------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        """Every configured session (GET /sessions)."""
        return [self._view(s) for s in self.config.sessions]

    def view(self, comp_id: str) -> dict[str, Any]:
        return self._view(self._configured(comp_id))

    def _view(self, s: SessionConfig) -> dict[str, Any]:
        qf = self._qf(s.comp_id)
        peer = self.peers.active(s.comp_id)
        disabled = self._disabled.get(s.comp_id)
        in_session = qf is not None and bool(qf.isSessionTime(fix.UtcTimeStamp()))
        if in_session and day_refusal(s.schedule, self.clock()) is not None:
            in_session = False
        return {
            "comp_id": s.comp_id,
            "logged_on": bool(qf is not None and qf.isLoggedOn()),
            "peer": str(peer) if peer else None,
            "next_sender_seq_num": qf.getExpectedSenderNum() if qf is not None else None,
            "next_target_seq_num": qf.getExpectedTargetNum() if qf is not None else None,
            "enabled": disabled is None,
            "disabled_reason": disabled.reason if disabled else None,
            "reset_on_logon": s.reset_on_logon,
            "schedule": s.schedule.describe() if s.schedule else None,
            "in_session": in_session,
        }

    # -- operator actions ------------------------------------------------------------------

    def logout(self, comp_id: str, reason: str, actor: str) -> dict[str, Any]:
        """Send the session a Logout with ``reason`` as its Text and wait for it to end."""
        with self._lock:
            qf = self._require(comp_id)
            if not qf.isLoggedOn():
                raise SessionConflict(f"{comp_id} is not logged on")
            self._record("logout", actor, comp_id, reason=reason)
            qf.logout(reason)
            self._wait(lambda: not qf.isLoggedOn())
        return self.view(comp_id)

    def disconnect(self, comp_id: str, actor: str) -> dict[str, Any]:
        """Drop the session's TCP connection without a Logout."""
        with self._lock:
            qf = self._require(comp_id)
            if not self.peers.relayed(comp_id):
                raise SessionConflict(f"{comp_id} has no open connection")
            self._record("disconnect", actor, comp_id)
            self.peers.drop(comp_id)
            self._wait(lambda: not qf.isLoggedOn() and not self.peers.relayed(comp_id))
        return self.view(comp_id)

    def reset(self, comp_id: str, actor: str) -> dict[str, Any]:
        """Both sequence numbers back to 1 and the stored messages cleared (a new FIX session)."""
        with self._lock:
            qf = self._require(comp_id)
            with self._offline(comp_id, qf, "reset its sequence numbers"):
                before = (qf.getExpectedSenderNum(), qf.getExpectedTargetNum())
                qf.reset()  # logged out and no socket: its Logout goes nowhere, then the reset
                self._record(
                    "reset",
                    actor,
                    comp_id,
                    next_sender_before=before[0],
                    next_target_before=before[1],
                )
        return self.view(comp_id)

    def set_seqnums(
        self, comp_id: str, next_sender: int | None, next_target: int | None, actor: str
    ) -> dict[str, Any]:
        """The next MsgSeqNum the gateway sends (``next_sender``) and expects (``next_target``)."""
        with self._lock:
            qf = self._require(comp_id)
            if self._configured(comp_id).reset_on_logon:
                raise SessionConflict(
                    f"{comp_id} resets its sequence numbers at every logon (reset_on_logon = "
                    "true): numbers set now would be undone by its next logon"
                )
            with self._offline(comp_id, qf, "set its sequence numbers"):
                before = (qf.getExpectedSenderNum(), qf.getExpectedTargetNum())
                if next_sender is not None:
                    qf.setNextSenderMsgSeqNum(next_sender)
                if next_target is not None:
                    qf.setNextTargetMsgSeqNum(next_target)
                self._record(
                    "seqnums",
                    actor,
                    comp_id,
                    next_sender=next_sender,
                    next_target=next_target,
                    next_sender_before=before[0],
                    next_target_before=before[1],
                )
        return self.view(comp_id)

    def disable(self, comp_id: str, reason: str, actor: str) -> dict[str, Any]:
        """Refuse logons for ``comp_id`` from now on (and across restarts); log it out if on."""
        with self._lock:
            self._configured(comp_id)
            disabled = Disabled(reason, actor, self.clock())
            self.controls.disable(comp_id, disabled)
            self._disabled[comp_id] = disabled
            qf = self._qf(comp_id)
            logged_on = bool(qf is not None and qf.isLoggedOn())
            self._record("disable", actor, comp_id, reason=reason, logged_out=logged_on)
            if qf is not None and logged_on:
                qf.logout(f"logons for {comp_id} are disabled by the operator: {reason}")
                self._wait(lambda: not qf.isLoggedOn())
        return self.view(comp_id)

    def enable(self, comp_id: str, actor: str) -> dict[str, Any]:
        with self._lock:
            self._configured(comp_id)
            was = self._disabled.pop(comp_id, None)
            self.controls.enable(comp_id)
            self._record("enable", actor, comp_id, was_disabled=was is not None)
        return self.view(comp_id)

    # -- for a configuration reload --------------------------------------------------------

    def retire(self, comp_id: str, text: str) -> bool:
        """A session removed from the configuration: log it out if it is on (its Logons are
        refused from now on as an unknown CompID). ``True`` if it was logged on."""
        qf = self._qf(comp_id)
        if qf is None or not qf.isLoggedOn():
            return False
        qf.logout(text)
        return True

    def wait_logged_out(self, comp_ids: list[str]) -> list[str]:
        """Wait (up to ``wait_seconds``) for these sessions to end; those still on."""
        sessions = [(c, q) for c in comp_ids if (q := self._qf(c)) is not None]
        self._wait(lambda: not any(q.isLoggedOn() for _, q in sessions))
        return [c for c, q in sessions if q.isLoggedOn()]

    # -- helpers ---------------------------------------------------------------------------

    def _qf(self, comp_id: str) -> fix.Session | None:
        session_id = self.sessions.get(comp_id)
        return fix.Session.lookupSession(session_id) if session_id is not None else None

    def _configured(self, comp_id: str) -> SessionConfig:
        session = self.config.session(comp_id)
        if session is None:
            raise UnknownSession(f"no session {comp_id!r} in the configuration")
        return session

    def _require(self, comp_id: str) -> fix.Session:
        self._configured(comp_id)
        qf = self._qf(comp_id)
        if qf is None:
            raise UnknownSession(f"session {comp_id!r} does not exist in the FIX engine")
        return qf

    @contextlib.contextmanager
    def _offline(self, comp_id: str, qf: fix.Session, what: str) -> Iterator[None]:
        """The session is logged out and stays without a connection while the body runs."""
        if qf.isLoggedOn():
            raise SessionConflict(
                f"{comp_id} is logged on: log it out first to {what} "
                f"(POST /sessions/{comp_id}/logout)"
            )
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                self.peers.hold(comp_id)
                break
            except Busy as exc:  # a connection that is closing after a logout goes in a moment
                if qf.isLoggedOn() or time.monotonic() >= deadline:
                    raise SessionConflict(f"cannot {what} of {comp_id} now: {exc}") from None
                time.sleep(0.05)
        try:
            if qf.isLoggedOn():  # logged on just before the hold
                raise SessionConflict(f"{comp_id} logged on meanwhile; try again")
            yield
        finally:
            self.peers.unhold(comp_id)

    def _record(self, action: str, actor: str, comp_id: str, **details: Any) -> None:
        log.warning("session %s: %s by %s %s", comp_id, action, actor, details or "")
        self.audit(f"session.admin.{action}", f"api:{actor}", {"comp_id": comp_id, **details})

    def _wait(self, done: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.wait_seconds
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
