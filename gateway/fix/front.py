"""The FIX listener in front of the QuickFIX acceptor.

QuickFIX 1.16 binds its acceptor to every interface and never tells the application who is on
the other end of a session. The front listens on the configured address instead, refuses
locked-out addresses at once, notes which peer is logging on as which CompID, and relays bytes
unchanged to the acceptor's internal port on loopback. The session layer stays QuickFIX's: the
front never interprets, alters or answers a FIX message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

SENDER = re.compile(rb"\x0149=([^\x01]*)\x01")
PEEK_LIMIT = 8192  # a Logon is far shorter; beyond this we stop looking for SenderCompID
PEEK_SECONDS = 5.0
# The acceptor answers a Logon at once (Logon, or Logout and close). Silence means it took the
# first message for invalid and keeps the connection, and with it the session, forever.
LOGON_SECONDS = 5.0
FIRST_FRAME = re.compile(rb"8=[^\x01]{1,16}\x019=(\d{1,5})\x01")


@dataclass(frozen=True, slots=True)
class Peer:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class PeerRegistry:
    """Which peer most recently started a logon as which CompID (entries expire)."""

    def __init__(self, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Peer, float]] = {}
        self._active: dict[str, Peer] = {}

    def announce(self, comp_id: str, peer: Peer) -> None:
        with self._lock:
            self._pending[comp_id] = (peer, time.monotonic())

    def claim(self, comp_id: str) -> Peer | None:
        """The peer announced for ``comp_id``, if recent; it becomes that session's peer."""
        with self._lock:
            entry = self._pending.pop(comp_id, None)
            if entry is None or time.monotonic() - entry[1] > self._ttl:
                return None
            self._active[comp_id] = entry[0]
            return entry[0]

    def active(self, comp_id: str) -> Peer | None:
        with self._lock:
            return self._active.get(comp_id)

    def release(self, comp_id: str) -> None:
        with self._lock:
            self._active.pop(comp_id, None)


class TlsPolicy(Protocol):
    """What a TLS listener needs: a server context, and the rule binding certificates to CompIDs."""

    def context(self) -> ssl.SSLContext: ...

    def refuse(self, comp_id: str, identities: set[str]) -> str | None:
        """``None`` if a certificate with ``identities`` may log on as ``comp_id``, else why not."""
        ...

    def identities(self, der: bytes) -> set[str]: ...


class Refused(Exception):
    """The front closes the connection before the acceptor sees anything."""


class Front:
    """Accepts FIX connections on ``listen`` and relays them to ``127.0.0.1:acceptor_port``.

    With ``tls``, the listener terminates TLS, requires a client certificate, and refuses a
    Logon whose SenderCompID is not bound to that certificate before the acceptor sees it.
    """

    def __init__(
        self,
        listen: tuple[str, int],
        acceptor_port: int,
        registry: PeerRegistry,
        admit: Callable[[Peer], bool] = lambda peer: True,
        tls: TlsPolicy | None = None,
        on_refused: Callable[[Peer, str, str], None] = lambda peer, comp_id, why: None,
    ) -> None:
        self.listen = listen
        self.acceptor_port = acceptor_port
        self.registry = registry
        self.admit = admit
        self.tls = tls
        self.on_refused = on_refused
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        assert self._sock is not None
        return self._sock.getsockname()[1]

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.listen[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.listen)
        sock.listen(128)
        self._sock = sock
        name = "fix-front-tls" if self.tls else "fix-front"
        threading.Thread(target=self._accept_loop, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _close(conn)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                client, addr = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            peer = Peer(addr[0], addr[1])
            try:
                admitted = self.admit(peer)
            except Exception:  # a policy failure must not stop the listener
                log.exception("admission check failed for %s", peer)
                admitted = False
            if not admitted:
                log.warning("refused FIX connection from %s", peer)
                _close(client)
                continue
            threading.Thread(
                target=self._serve, args=(client, peer), name=f"fix-{peer}", daemon=True
            ).start()

    def _serve(self, client: socket.socket, peer: Peer) -> None:
        identities: set[str] | None = None
        if self.tls is not None:
            client.settimeout(PEEK_SECONDS)
            if not _sends_anything(client):
                log.info(
                    "connection from %s closed before a TLS handshake (a port check?); "
                    "not a failed logon",
                    peer,
                )
                _close(client)
                return
            try:
                client = self.tls.context().wrap_socket(client, server_side=True)
                identities = self.tls.identities(client.getpeercert(binary_form=True) or b"")
            except (ssl.SSLEOFError, ConnectionError, TimeoutError) as exc:
                # the peer went away mid-handshake: nothing was presented, nothing refused
                log.info(
                    "TLS handshake with %s abandoned by the peer: %s; not a failed logon", peer, exc
                )
                _close(client)
                return
            except (OSError, ssl.SSLError, ValueError) as exc:
                log.warning("TLS handshake with %s failed: %s", peer, exc)
                self.on_refused(peer, "", f"TLS handshake failed: {exc}")
                _close(client)
                return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.acceptor_port), timeout=5)
        except OSError:
            log.error("acceptor not reachable on port %d; dropping %s", self.acceptor_port, peer)
            _close(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conns.update((client, upstream))
        try:
            first = self._peek_logon(client, peer, identities)
            upstream.sendall(first)
            if isinstance(client, ssl.SSLSocket):  # TLS relays both ways on one thread
                self._relay_tls(client, upstream, LOGON_SECONDS)
            else:
                threading.Thread(
                    target=self._pump,
                    args=(upstream, client, LOGON_SECONDS),
                    name=f"fix-{peer}-out",
                    daemon=True,
                ).start()
                self._pump(client, upstream)
        except Refused:
            pass
        finally:
            _close(client)
            _close(upstream)
            with self._lock:
                self._conns.difference_update((client, upstream))

    def _peek_logon(
        self, client: socket.socket, peer: Peer, identities: set[str] | None = None
    ) -> bytes:
        """Read until the first message's SenderCompID is visible, announce it, return the bytes.

        Over TLS, a SenderCompID the client certificate is not bound to (or none at all) raises
        :class:`Refused`: nothing reaches the acceptor without a binding.
        """
        buf = b""
        comp_id = None
        deadline = time.monotonic() + PEEK_SECONDS
        while (comp_id is None or not complete_frame(buf)) and len(buf) < PEEK_LIMIT:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            client.settimeout(left)
            try:
                data = client.recv(65536)
            except (TimeoutError, OSError):
                break
            if not data:
                break
            buf += data
            if match := SENDER.search(buf):
                comp_id = match.group(1).decode("ascii", "replace")
        if not buf:
            log.info("%s sent nothing (a port check?); closed, not a failed logon", peer)
            raise Refused("nothing sent")
        if not complete_frame(buf):
            # QuickFIX reads an unidentified connection's first message in a blocking loop on
            # its only socket thread: a partial one would stall every session.
            log.warning(
                "refused %s: no complete first message within %d bytes and %.0f s",
                peer,
                PEEK_LIMIT,
                PEEK_SECONDS,
            )
            raise Refused("no complete first message")
        if self.tls is not None and identities is not None:
            why = (
                "no SenderCompID in the first message"
                if comp_id is None
                else self.tls.refuse(comp_id, identities)
            )
            if why is not None:
                log.warning("refused %s as %s: %s", peer, comp_id, why)
                self.on_refused(peer, comp_id or "", why)
                raise Refused(why)
        if comp_id is not None:
            self.registry.announce(comp_id, peer)
        client.settimeout(None)
        return buf

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, first_within: float | None = None) -> None:
        """Relay until EOF. ``first_within``: close unless the first bytes come that soon."""
        try:
            if first_within is not None:
                ready, _, _ = select.select([src], [], [], first_within)
                if not ready:
                    log.warning("the acceptor did not answer the first message; closing")
                    return
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # half-close so the other direction sees EOF, then let the owner close both
            for s in (dst, src):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _relay_tls(client: ssl.SSLSocket, upstream: socket.socket, first_within: float) -> None:
        """Both directions on one thread: an SSL object must not be read and written at once.
        Closes unless the acceptor answers within ``first_within`` seconds."""
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        sel.register(upstream, selectors.EVENT_READ)
        deadline: float | None = time.monotonic() + first_within
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    log.warning("the acceptor did not answer the first message; closing")
                    return
                for key, _ in sel.select(left):
                    if key.fileobj is upstream:
                        deadline = None
                    if key.fileobj is client:
                        data = client.recv(65536)
                        while data and client.pending():
                            data += client.recv(client.pending())
                        if not data:
                            return
                        upstream.sendall(data)
                    else:
                        data = upstream.recv(65536)
                        if not data:
                            return
                        client.sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            sel.close()


def _sends_anything(sock: socket.socket) -> bool:
    """Whether the peer sends a first byte before closing or going quiet (left unread)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except OSError:  # timeout or reset
        return False


def complete_frame(buf: bytes) -> bool:
    """Whether ``buf`` starts with a whole FIX message, framed as QuickFIX's parser frames it
    (BodyLength, then the next ``<SOH>10=`` from there, then its SOH)."""
    match = FIRST_FRAME.match(buf)
    if match is None:
        return False
    end = buf.find(b"\x0110=", match.end() + int(match.group(1)) - 1)
    return end >= 0 and buf.find(b"\x01", end + 4) >= 0


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
