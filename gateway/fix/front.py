"""The FIX listener in front of the QuickFIX acceptor.

QuickFIX 1.16 binds its acceptor to every interface and never tells the application who is on
the other end of a session. The front listens on the configured address instead, refuses
locked-out addresses at once, notes which peer is logging on as which CompID, and relays bytes
unchanged to the acceptor's internal port on loopback. The session layer stays QuickFIX's: the
front never interprets, alters or answers a FIX message.

A short-lived thread per connection does what happens before the Logon reaches the acceptor
(TLS handshake, the logon peek, certificate binding, routing); from then on the front's one
:class:`~gateway.fix.relay.Relay` thread moves the bytes of all its connections.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.fix.relay import Relay

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
    """Which peer most recently started a logon as which CompID (entries expire); and, for the
    operator's session actions, the connections the fronts relay per CompID (to drop them) and
    the CompIDs held (whose connections the fronts close before the acceptor sees them)."""

    def __init__(self, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Peer, float]] = {}
        self._active: dict[str, Peer] = {}
        self._relays: dict[str, set[tuple[socket.socket, socket.socket]]] = {}
        self._held: set[str] = set()

    def attach(self, comp_id: str, client: socket.socket, upstream: socket.socket) -> bool:
        """Note a relay for ``comp_id``; ``False`` (and nothing noted) while it is held."""
        with self._lock:
            if comp_id in self._held:
                return False
            self._relays.setdefault(comp_id, set()).add((client, upstream))
            return True

    def detach(self, comp_id: str, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            relays = self._relays.get(comp_id)
            if relays is not None:
                relays.discard((client, upstream))
                if not relays:
                    del self._relays[comp_id]

    def relayed(self, comp_id: str) -> bool:
        with self._lock:
            return bool(self._relays.get(comp_id))

    def drop(self, comp_id: str) -> int:
        """Shut down every connection relayed for ``comp_id``. The acceptor sees the socket
        close on its own thread and ends the session there (QuickFIX's Session.disconnect from
        another thread races its socket monitor, which has no lock). Returns how many."""
        with self._lock:
            relays = list(self._relays.get(comp_id, ()))
        for pair in relays:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        return len(relays)

    def hold(self, comp_id: str) -> None:
        """From now until :meth:`unhold`, no connection for ``comp_id`` reaches the acceptor;
        raises :class:`Busy` if one is relayed now (or it is held already)."""
        with self._lock:
            if self._relays.get(comp_id):
                raise Busy(f"a connection for {comp_id} is open")
            if comp_id in self._held:
                raise Busy(f"another operation on {comp_id} is in progress")
            self._held.add(comp_id)

    def unhold(self, comp_id: str) -> None:
        with self._lock:
            self._held.discard(comp_id)

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


class Busy(Exception):
    """A CompID cannot be held: it has a connection, or is held already."""


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
        route: Callable[[str | None], int] | None = None,
    ) -> None:
        self.listen = listen
        self.acceptor_port = acceptor_port
        # which acceptor's port serves a CompID (sessions added at run time have their own)
        self.route = route or (lambda comp_id: acceptor_port)
        self.registry = registry
        self.admit = admit
        self.tls = tls
        self.on_refused = on_refused
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._relay = Relay("fix-relay-tls" if tls else "fix-relay")

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
        self._relay.start()
        threading.Thread(target=self._accept_loop, name=name, daemon=True).start()

    def stop_listening(self) -> None:
        """Accept no new connection; the relays already open go on (a drain logs them out)."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def stop(self) -> None:
        self.stop_listening()
        self._relay.stop()
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
        with self._lock:
            self._conns.add(client)
        try:
            first = self._peek_logon(client, peer, identities)
        except Refused:
            self._forget(client)
            return
        match = SENDER.search(first)
        comp_id = match.group(1).decode("ascii", "replace") if match else None
        port = self.route(comp_id)
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            log.error("acceptor not reachable on port %d; dropping %s", port, peer)
            self._forget(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if comp_id is not None and not self.registry.attach(comp_id, client, upstream):
            log.warning(
                "refused %s as %s: an operator action on the session is in progress", peer, comp_id
            )
            self._forget(client, upstream)
            return
        with self._lock:
            self._conns.add(upstream)

        def closed() -> None:
            if comp_id is not None:
                self.registry.detach(comp_id, client, upstream)
            self._forget(client, upstream)

        # from here on, the one relay thread moves this connection's bytes both ways
        self._relay.add(client, upstream, first, closed, answer_within=LOGON_SECONDS)

    def _forget(self, *socks: socket.socket) -> None:
        for sock in socks:
            _close(sock)
        with self._lock:
            self._conns.difference_update(socks)

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
