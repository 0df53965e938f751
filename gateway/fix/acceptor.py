"""QuickFIX acceptor settings and lifecycle, built from our configuration in code."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import quickfix as fix

from gateway.config import Config
from gateway.fix.auditlog import AuditingLogFactory
from gateway.fix.front import PeerRegistry


def session_settings(config: Config, acceptor_port: int, dictionary: Path) -> fix.SessionSettings:
    data = config.gateway.data_dir
    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": "acceptor",
        "SocketAcceptPort": str(acceptor_port),
        "SocketReuseAddress": "Y",
        "SocketNodelay": "Y",
        "SenderCompID": config.gateway.comp_id,
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "UseDataDictionary": "Y",
        "DataDictionary": str(dictionary),
        "FileStorePath": str(data / "store"),
        "FileLogPath": str(data / "log"),
        "PersistMessages": "Y",
        "CheckLatency": "Y",
        "MaxLatency": "120",
        "AllowedRemoteAddresses": "127.0.0.1",  # only the front reaches the acceptor's port
    }.items():
        defaults.setString(key, value)
    settings = fix.SessionSettings()
    settings.set(defaults)
    for s in config.sessions:
        d = fix.Dictionary()
        d.setString("BeginString", s.begin_string)
        d.setString("TargetCompID", s.comp_id)
        d.setString("ResetOnLogon", "Y" if s.reset_on_logon else "N")
        d.setString("ValidateFieldsHaveValues", "Y" if s.validate_fields_have_values else "N")
        session_id = fix.SessionID(s.begin_string, config.gateway.comp_id, s.comp_id)
        settings.set(session_id, d)
    return settings


class Acceptor:
    """A started QuickFIX SocketAcceptor with FileStore and (optionally) FileLog."""

    def __init__(
        self,
        application: fix.Application,
        settings: fix.SessionSettings,
        file_log: bool,
        audit_sink=None,
    ):
        self.store_factory = fix.FileStoreFactory(settings)
        self.file_log_factory = fix.FileLogFactory(settings) if file_log else None
        self.log_factory = (
            AuditingLogFactory(self.file_log_factory, audit_sink)
            if audit_sink is not None
            else self.file_log_factory
        )
        if self.log_factory is not None:
            self.acceptor = fix.SocketAcceptor(
                application, self.store_factory, settings, self.log_factory
            )
        else:
            self.acceptor = fix.SocketAcceptor(application, self.store_factory, settings)

    def start(self) -> None:
        self.acceptor.start()

    def logout_all(self, reason: str, timeout: float = 5.0) -> bool:
        """Send every logged-on session a Logout and wait for the sessions to end.

        This is our whole shutdown of the acceptor. QuickFIX 1.16's ``Acceptor.stop`` races its own
        thread (both close and delete the socket server: a use-after-free we have seen crash the
        process), so we never call it: the process exits once the sessions are logged out. The
        FileStore and FileLog flush every write, so nothing the acceptor recorded is lost.
        """
        for session_id in self.acceptor.getSessions():
            session = fix.Session.lookupSession(session_id)
            if session is not None and session.isLoggedOn():
                session.logout(reason)
        deadline = time.monotonic() + timeout
        while self.acceptor.isLoggedOn() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.acceptor.isLoggedOn()


def session_status(session_id: fix.SessionID) -> dict[str, Any]:
    session = fix.Session.lookupSession(session_id)
    if session is None:
        return {"logged_on": False}
    return {
        "logged_on": session.isLoggedOn(),
        "next_sender_seq_num": session.getExpectedSenderNum(),
        "next_target_seq_num": session.getExpectedTargetNum(),
    }


class SessionViews:
    """Every configured FIX session as GET /sessions shows it: logged on or not, sequence
    numbers, and the peer the front saw log on. ``sessions`` is the application's live map of
    CompID to QuickFIX SessionID (filled as QuickFIX creates the sessions)."""

    def __init__(
        self, config: Config, sessions: Mapping[str, fix.SessionID], peers: PeerRegistry
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.peers = peers

    def __call__(self) -> list[dict[str, Any]]:
        views = []
        for s in self.config.sessions:
            session_id = self.sessions.get(s.comp_id)
            status = session_status(session_id) if session_id is not None else {"logged_on": False}
            peer = self.peers.active(s.comp_id)
            views.append({"comp_id": s.comp_id, "peer": str(peer) if peer else None, **status})
        return views
