"""Who may write: the data directory's one-writer lock, and leadership of an active/standby pair.

Every ``fixbridge run`` takes an exclusive ``flock`` on ``<data_dir>/leader.lock`` before it
opens anything in the data directory, and holds it until the process ends. Without ``[ha]`` a
second gateway on the same data directory is refused at once (exit 2, one line naming the lock
and its holder).

With ``[ha] enabled = true`` (PostgreSQL only) leadership is a PostgreSQL session-level advisory
lock held on a connection of its own, not a protocol of ours. A gateway that cannot take it is
a standby: it opens nothing (no FIX store, audit log, database writer or listener), tries again
every ``poll_seconds``, and the moment it holds the lock it

1. confirms the lock from then on (the guard below), so it can be fenced like any leader;
2. waits until ``lease_seconds`` have passed since it took the lock: by then a leader that lost
   the lock has fenced itself even if it could not see the database at all;
3. takes the ``flock``, which the old leader's process holds until it is gone (on one host, or
   any file system whose locks work across the sharing hosts);

and then starts as a gateway normally does (recovery from the FIX store, then listeners).

The guard of a leader runs ``SELECT ... FROM pg_locks`` on the lock's connection every
``check_seconds``; a watchdog fences the process when no check has confirmed the lock for
``lease_seconds`` (a connection that hangs rather than fails). Fencing is ``os._exit(3)`` after
one line on stderr: no thread gets to write another byte to the database, the FIX store or the
audit log, and the kernel closes every socket. That is the same stop as a ``kill -9``, which the
gateway recovers from (gateway/recovery.py, the audit log's own recovery). A supervisor then
restarts it, as a standby.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from gateway.config import Config

log = logging.getLogger("fixbridge.ha")

LOCK_FILE = "leader.lock"
EXIT_FENCED = 3


class DataDirBusy(Exception):
    """Another process holds the data directory's lock (without HA: refused at start)."""


def lock_key(cluster: str) -> int:
    """The advisory lock key of ``[ha] cluster``: 63 bits of SHA-256, so it is never negative."""
    return int.from_bytes(sha256(f"fixbridge-ha:{cluster}".encode()).digest()[:8], "big") >> 1


def key_of(config: Config) -> int:
    ha = config.ha
    return ha.lock_key if ha.lock_key is not None else lock_key(ha.cluster)


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/leader.lock``, held until the process ends (the
    descriptor is never closed: ``os._exit`` and death release it)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(self, stop: threading.Event, interval: float = 0.05) -> bool:
        """Wait for the lock (False if ``stop`` is set first), saying every 5 s who holds it."""
        said = 0.0
        while not self.try_acquire():
            if time.monotonic() - said >= 5:
                log.warning(
                    "leader: waiting for the data directory lock %s held by %s",
                    self.path,
                    self.holder(),
                )
                said = time.monotonic()
            if stop.wait(interval):
                return False
        return True


def fence(reason: str) -> None:
    """Stop this process at once: nothing more may be written by a leader that lost the lock."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    line = f"{stamp} CRITICAL fixbridge.ha: fenced: {reason}; stopping now (exit {EXIT_FENCED})\n"
    try:
        os.write(2, line.encode())
    finally:
        os._exit(EXIT_FENCED)


def _conninfo(url: str) -> str:
    """A libpq URI from the SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def describe(url: str) -> str:
    """host:port/database, no credentials: for log lines."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


class Leadership:
    """The advisory lock ``key`` on a dedicated autocommit connection to ``url``."""

    def __init__(
        self,
        url: str,
        key: int,
        *,
        poll: float = 0.5,
        check: float = 0.5,
        lease: float = 1.5,
        on_lost: Callable[[str], None] = fence,
    ) -> None:
        self.url = url
        self.key = key
        self.poll, self.check, self.lease = poll, check, lease
        self.on_lost = on_lost
        self._conn: Any = None
        self._last_ok = 0.0
        self.acquired_at: float | None = None  # time.monotonic() when the lock was taken
        self._problem, self._said = "", 0.0  # the last connection problem logged, and when
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFF_FFFF

    def _connect(self) -> Any:
        import psycopg

        timeout = max(1, round(self.lease))
        conn = psycopg.connect(
            _conninfo(self.url),
            autocommit=True,
            connect_timeout=max(2, timeout),
            application_name="fixbridge-leader-lock",
            # the client notices a dead server within about the lease
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=int(self.lease * 1000),
        )
        # and the server drops a vanished leader's session (and its lock) soon too; these are
        # per-session settings any user may change (ignored on a Unix socket)
        for name, value in (
            ("tcp_keepalives_idle", 1),
            ("tcp_keepalives_interval", 1),
            ("tcp_keepalives_count", 3),
            ("tcp_user_timeout", 3000),
        ):
            conn.execute(f"SET {name} = {value}")
        return conn

    def try_acquire(self) -> bool:
        """One attempt; connection problems count as "not now" (logged, retried by the caller)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except Exception as exc:
            problem = " ".join(str(exc).split())
            if problem != self._problem or time.monotonic() - self._said >= 30:
                log.warning(
                    "standby: cannot reach the leadership lock on %s: %s",
                    describe(self.url),
                    problem,
                )
                self._problem, self._said = problem, time.monotonic()
            self._drop()
            return False
        if got and got[0]:
            self.acquired_at = self._last_ok = time.monotonic()
            return True
        return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def wait(self, stop: threading.Event, on_standby: Callable[[], None]) -> bool:
        """Block until this process holds the lock (True) or ``stop`` is set (False).
        ``on_standby`` is called once if the first attempt does not get the lock."""
        if self.try_acquire():
            return True
        on_standby()
        while not stop.wait(self.poll):
            if self.try_acquire():
                return True
        self._drop()
        return False

    def held(self) -> bool:
        """Whether pg_locks shows the lock granted to this connection's backend."""
        row = self._conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND classid::bigint = %s AND objid::bigint = %s",
            (self._classid, self._objid),
        ).fetchone()
        return bool(row and row[0])

    def guard(self) -> None:
        """Confirm the lock every ``check`` seconds; fence on loss, error or silence."""
        threading.Thread(target=self._checks, name="ha-check", daemon=True).start()
        threading.Thread(target=self._watchdog, name="ha-watchdog", daemon=True).start()

    def _checks(self) -> None:
        while True:
            try:
                ok = self.held()
            except Exception as exc:
                self.on_lost(
                    f"the leadership lock's connection failed: {' '.join(str(exc).split())}"
                )
                return
            if not ok:
                self.on_lost(f"advisory lock {self.key} is no longer held by this process")
                return
            self._last_ok = time.monotonic()
            time.sleep(self.check)

    def _watchdog(self) -> None:
        step = min(0.1, self.check / 2)
        while True:
            silent = time.monotonic() - self._last_ok
            if silent > self.lease:
                self.on_lost(f"the leadership lock was not confirmed for {silent:.1f} s")
                return
            time.sleep(step)


class Held:
    """What this process holds while it runs the gateway (kept referenced until exit)."""

    def __init__(
        self, data_lock: DataDirLock, leadership: Leadership | None, standby_for: float = 0.0
    ) -> None:
        self.data_lock = data_lock
        self.leadership = leadership
        self.standby_for = standby_for  # seconds this process waited as a standby


def take(config: Config, stop: threading.Event) -> Held | None:
    """Block until this process may run the gateway on its data directory.

    Without HA: the data directory lock now, or :class:`DataDirBusy`. With HA: wait as a
    standby for the advisory lock, then the lease, then the data directory lock; ``None`` if
    ``stop`` was set first (a standby asked to stop has nothing to drain).
    """
    data_lock = DataDirLock(config.gateway.data_dir)
    if not config.ha.enabled:
        if not data_lock.try_acquire():
            raise DataDirBusy(
                f"data directory {config.gateway.data_dir} is in use: {data_lock.path} is "
                f"locked by {data_lock.holder()} (one gateway per data directory; see [ha] "
                "for a standby)"
            )
        return Held(data_lock, None)

    ha = config.ha
    key = key_of(config)
    where = describe(config.gateway.database_url)
    leadership = Leadership(
        config.gateway.database_url,
        key,
        poll=ha.poll_seconds,
        check=ha.check_seconds,
        lease=ha.lease_seconds,
    )
    began = time.monotonic()
    was_standby = threading.Event()

    def standby() -> None:
        was_standby.set()
        line = f"standby: waiting for leadership (lock {key} on {where})"
        log.info(line)
        print(f"fixbridge {line}", flush=True)

    if not leadership.wait(stop, standby):
        log.info("standby: stopped")
        return None
    assert leadership.acquired_at is not None
    waited = leadership.acquired_at - began
    log.info("leader: holding lock %d on %s (waited %.1f s)", key, where, waited)
    leadership.guard()  # from here on a lost lock fences this process, whatever it is doing
    # A leader that lost the lock has fenced itself within the lease, even if it saw nothing.
    if stop.wait(max(0.0, leadership.acquired_at + ha.lease_seconds - time.monotonic())):
        return None
    if not data_lock.acquire(stop):
        return None
    log.info("leader: data directory %s is ours", config.gateway.data_dir)
    return Held(data_lock, leadership, waited if was_standby.is_set() else 0.0)


def announce_takeover(held: Held) -> None:
    """The line operators (and the tests) look for once a leader serves."""
    lead = held.leadership
    if lead is None or lead.acquired_at is None:
        return
    serving = time.monotonic() - lead.acquired_at
    if held.standby_for > 0:
        log.info(
            "leader: took over after %.1f s (lock taken to listeners bound; standby for %.1f s)",
            serving,
            held.standby_for,
        )
    else:
        log.info("leader: lock %d taken at start; listeners bound %.1f s later", lead.key, serving)
