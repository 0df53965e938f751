"""QuickFIX acceptor settings and lifecycle, built from our configuration in code."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import quickfix as fix

from gateway.config import Config, ScheduleSection, SessionConfig
from gateway.fix.auditlog import AuditingLogFactory


def schedule_settings(schedule: ScheduleSection | None) -> dict[str, str]:
    """QuickFIX 1.16's own keys for a session's schedule: StartTime/EndTime (daily), plus
    StartDay/EndDay (weekly), read as UTC or, with UseLocalTime=Y, in the process's time zone
    (which the gateway sets to the schedule's zone at start). QuickFIX 1.16 has no TimeZone or
    Weekdays key (it ignores them): ``days`` is the gateway's own logon check."""
    if schedule is None:
        return {"StartTime": "00:00:00", "EndTime": "00:00:00"}
    keys = {
        "StartTime": schedule.start,
        "EndTime": schedule.end,
        "UseLocalTime": "N" if schedule.utc else "Y",
    }
    if schedule.weekly:
        keys.update(StartDay=str(schedule.start_day), EndDay=str(schedule.end_day))
    return keys


def engine_settings(session: SessionConfig) -> dict[str, str]:
    """What QuickFIX itself is told about one session: fixed when the acceptor creates it."""
    return {
        "BeginString": session.begin_string,
        "TargetCompID": session.comp_id,
        "ResetOnLogon": "Y" if session.reset_on_logon else "N",
        "ValidateFieldsHaveValues": "Y" if session.validate_fields_have_values else "N",
        **schedule_settings(session.schedule),
    }


def session_settings(
    config: Config,
    acceptor_port: int,
    dictionary: Path,
    sessions: Iterable[SessionConfig] | None = None,
) -> fix.SessionSettings:
    """The acceptor's settings for ``sessions`` (default: every configured session)."""
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
    for s in config.sessions if sessions is None else sessions:
        d = fix.Dictionary()
        for key, value in engine_settings(s).items():
            d.setString(key, value)
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
