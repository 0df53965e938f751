"""The upstream venue's password and TLS, checked before start-up: never in the configuration file,
always named by the key that points at it when something is wrong."""

from __future__ import annotations

import os

from gateway.config import UpstreamSection


class UpstreamConfigError(Exception):
    """A problem with ``[venue.fix]`` that only shows at start-up, phrased for the operator."""


def upstream_password(upstream: UpstreamSection) -> str | None:
    """The Logon password (Password 554) from ``password_env`` or ``password_file``, if any."""
    if upstream.password_env is not None:
        value = os.environ.get(upstream.password_env)
        if not value:
            raise UpstreamConfigError(
                f"venue.fix.password_env: environment variable {upstream.password_env} is not set"
            )
        return value
    if upstream.password_file is not None:
        try:
            value = upstream.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UpstreamConfigError(
                f"venue.fix.password_file: cannot read {upstream.password_file}: {why}"
            ) from None
        if not value:
            raise UpstreamConfigError(f"venue.fix.password_file: {upstream.password_file} is empty")
        return value
    return None


def quickfix_has_ssl() -> bool:
    """Whether the installed QuickFIX was built with OpenSSL. Its SSL classes exist either way;
    one built without refuses to construct an initiator (nothing is connected or started)."""
    import quickfix as fix

    class _Probe(fix.Application):
        def onCreate(self, sessionID: fix.SessionID) -> None: ...
        def onLogon(self, sessionID: fix.SessionID) -> None: ...
        def onLogout(self, sessionID: fix.SessionID) -> None: ...
        def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...
        def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...
        def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...
        def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    defaults = fix.Dictionary()
    for key, value in {
        "ConnectionType": "initiator",
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "SocketConnectHost": "127.0.0.1",
        "SocketConnectPort": "1",
        "HeartBtInt": "30",
        "UseDataDictionary": "N",
    }.items():
        defaults.setString(key, value)
    settings = fix.SessionSettings()
    settings.set(defaults)
    settings.set(fix.SessionID("FIX.4.4", "SSL-PROBE", "SSL-PROBE-PEER"), fix.Dictionary())
    try:
        fix.SSLSocketInitiator(_Probe(), fix.MemoryStoreFactory(), settings)
    except fix.ConfigError as exc:
        return "HAVE_SSL" not in str(exc)
    return True


def check_tls(upstream: UpstreamSection) -> None:
    if not upstream.tls:
        return
    if not quickfix_has_ssl():
        raise UpstreamConfigError(
            "venue.fix.tls: the installed QuickFIX was built without SSL, so it cannot reach the "
            "venue over TLS; run a TLS tunnel (e.g. stunnel) on this host and point venue.fix.host "
            "and port at it with tls = false"
        )
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(upstream, key)
        if path is not None and not path.is_file():
            raise UpstreamConfigError(f"venue.fix.{key}: {path} is not a file")
