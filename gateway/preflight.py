"""What ``fixbridge run`` checks before it starts anything.

Every file and directory the gateway needs is looked at first, so an operator gets one line
naming the file and the command that makes it, not a traceback from deep inside start-up, and no
part is left half started. Each check returns a problem or ``None``.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from gateway.config import Config


def _writable_dir(path: Path, what: str) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"{what} {path} is not usable: {exc.strerror or exc}"
    return None


def _data_dir(config: Config, config_path: Path) -> str | None:
    return _writable_dir(config.gateway.data_dir, "data directory")


def _audit_key(config: Config, config_path: Path) -> str | None:
    from gateway.audit.keys import AuditKeyError, load_signing_key

    try:
        load_signing_key(config.gateway.data_dir / "audit")
    except AuditKeyError as exc:
        return str(exc)
    return None


def _fix_tls(config: Config, config_path: Path) -> str | None:
    if not config.tls.enabled:
        return None
    from gateway.tls.context import ContextCache
    from gateway.tls.files import PkiError, PkiPaths

    try:
        ContextCache(PkiPaths(config.certs_dir)).get()
    except (PkiError, OSError) as exc:
        return (
            f"FIX over TLS cannot start: {exc}; make development certificates with "
            f"`fixbridge certs init --config {config_path}` or set tls.certs_dir"
        )
    return None


def _api_tls(config: Config, config_path: Path) -> str | None:
    api = config.api
    if api.tls_cert is None or api.tls_key is None:
        return None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(api.tls_cert, api.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return f"api.tls_cert {api.tls_cert} / api.tls_key {api.tls_key} unusable: {reason}"
    return None


def _clearing(config: Config, config_path: Path) -> str | None:
    drop = config.clearing.drop_dir
    if config.clearing.mode != "file" or drop is None:
        return None
    if not drop.is_dir() or not os.access(drop, os.W_OK):
        return f"clearing.drop_dir {drop} is not a writable directory"
    return None


def _venue(config: Config, config_path: Path) -> str | None:
    upstream = config.venue.fix
    if config.venue.kind != "fix" or upstream is None:
        return None
    from gateway.venues.credentials import UpstreamConfigError, check_tls, upstream_password

    try:
        upstream_password(upstream)
        check_tls(upstream)
    except UpstreamConfigError as exc:
        return f"{config_path}: {exc}"
    return _writable_dir(config.venue_dir, "venue.fix.store_dir")


CHECKS: tuple[Callable[[Config, Path], str | None], ...] = (
    _data_dir,
    _audit_key,
    _fix_tls,
    _api_tls,
    _clearing,
    _venue,
)


def problems(config: Config, config_path: Path) -> list[str]:
    """Every problem found, in the order an operator would fix them (the data directory first:
    without it the later checks cannot look)."""
    found: list[str] = []
    for check in CHECKS:
        problem = check(config, config_path)
        if problem is not None:
            found.append(problem)
            if check is _data_dir:
                break
    return found
