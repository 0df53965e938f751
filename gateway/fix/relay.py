"""One thread relays the bytes of every connection a front has admitted.

A thread per direction per connection made each relay contend for the GIL with QuickFIX's own
callbacks (200 threads for 100 sessions); here one selector loop moves the bytes of all of them
over non-blocking sockets. A client socket may be TLS: reads and writes then go through the
SSL object, whose ``SSLWantReadError`` / ``SSLWantWriteError`` mean "wait for the socket", and
a write that had to wait is retried with the same bytes, as OpenSSL requires.

Each :class:`Pipe` joins a client and its upstream (the acceptor's loopback port). Bytes are
written on at once when the destination accepts them; what it does not accept waits in that
end's buffer, and reading the source pauses while the buffer is over :data:`HIGH_WATER`. When
either side closes, what has been read is still written on (for up to :data:`LINGER_SECONDS`),
then both are closed: the acceptor sees a client's disconnect as before, and a client receives
the acceptor's last Logout.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

CHUNK = 65536
HIGH_WATER = 1 << 20  # bytes waiting for a slow reader before its source is no longer read
LINGER_SECONDS = 5.0  # after one side closed, how long the other may take to receive the rest
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class End:
    """One socket of a pipe and the bytes waiting to be written to it."""

    __slots__ = ("sock", "out", "retry", "eof", "events", "peer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()
        self.retry = 0  # TLS: a write that had to wait; retried with exactly these bytes
        self.eof = False
        self.events = 0
        self.peer: End

    def write(self) -> None:
        """Write what the socket accepts now; raises OSError if it is gone."""
        out = self.out
        while out:
            size = self.retry or min(len(out), CHUNK)
            try:
                sent = self.sock.send(memoryview(out)[:size])
            except _WANT:
                self.retry = size
                return
            except BlockingIOError:
                return
            self.retry = 0
            if not sent:
                return
            del out[:sent]

    def read(self) -> bytes:
        """Everything readable now (b"" if nothing); sets :attr:`eof` when the peer closed."""
        chunks: list[bytes] = []
        sock = self.sock
        while True:
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, *_WANT):
                break
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
                self.eof = True
                break
            if not data:
                self.eof = True
                break
            chunks.append(data)
            if len(data) < CHUNK and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        return b"".join(chunks)


class Pipe:
    """A client and its upstream; ``on_close`` runs once, on the relay's thread, after both
    sockets are closed."""

    __slots__ = ("client", "upstream", "on_close", "answer_by", "closing_by", "closed")

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        first: bytes,
        on_close: Callable[[], None],
        answer_within: float | None,
    ) -> None:
        self.client = End(client)
        self.upstream = End(upstream)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.upstream.out += first
        self.on_close = on_close
        # the acceptor answers a Logon at once; silence means it keeps the connection forever
        self.answer_by = None if answer_within is None else time.monotonic() + answer_within
        self.closing_by: float | None = None
        self.closed = False


class Relay:
    """The selector loop. :meth:`add` may be called from any thread; everything else happens
    on the loop's own thread."""

    def __init__(self, name: str = "fix-relay") -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._incoming: deque[Pipe] = deque()
        self._finished = False  # the loop has ended: add() closes what it is given
        self._pipes: set[Pipe] = set()
        self._timed: set[Pipe] = set()  # pipes with a deadline (logon answer, or closing)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def relayed(self) -> int:
        return len(self._pipes)

    def add(
        self,
        client: socket.socket,
        upstream: socket.socket,
        first: bytes,
        on_close: Callable[[], None],
        answer_within: float | None = None,
    ) -> None:
        """Relay ``client`` <-> ``upstream`` from now on, ``first`` (bytes already read from the
        client) first. Closes both unless the upstream answers within ``answer_within`` s."""
        for s in (client, upstream):
            s.setblocking(False)
        pipe = Pipe(client, upstream, first, on_close, answer_within)
        with self._lock:
            if not self._finished:
                self._incoming.append(pipe)
                self._wake()
                return
        self._close(pipe)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every relayed connection and end the loop."""
        self._stopping = True
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the loop's thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._sel.select(self._timeout()):
                    if key.data is None:
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                        self._adopt()
                        continue
                    end: End = key.data[0]
                    pipe: Pipe = key.data[1]
                    if not pipe.closed:
                        self._service(pipe, end, mask)
                if self._timed:
                    self._expire()
        except Exception:  # a bug here must not leave sessions relayed by nobody
            log.exception("FIX relay loop failed; closing its connections")
        finally:
            with self._lock:
                self._finished = True
            self._adopt()
            for pipe in list(self._pipes):
                self._close(pipe)
            self._sel.close()
            for s in (self._wake_r, self._wake_w):
                s.close()

    def _adopt(self) -> None:
        while self._incoming:
            pipe = self._incoming.popleft()
            self._pipes.add(pipe)
            if pipe.answer_by is not None:
                self._timed.add(pipe)
            self._interest(pipe, pipe.client)
            if not pipe.closed:
                self._flush(pipe, pipe.upstream)

    def _service(self, pipe: Pipe, end: End, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                self._pull(pipe, end)
            if mask & selectors.EVENT_WRITE:
                end.write()
            # room again in a buffer: an SSL object may hold bytes select() does not report
            for src in (end, end.peer):
                if _pending(src.sock):
                    self._pull(pipe, src)
        except OSError as exc:
            log.debug("relay connection ended: %s", exc)
            self._close(pipe)
            return
        if end.eof or end.peer.eof:
            if pipe.closing_by is None:
                pipe.closing_by = time.monotonic() + LINGER_SECONDS
                self._timed.add(pipe)
            if not pipe.client.out and not pipe.upstream.out:
                self._close(pipe)
                return
        self._interest(pipe, end)
        self._interest(pipe, end.peer)

    def _pull(self, pipe: Pipe, src: End) -> None:
        """Read ``src`` and write on to its peer (raises OSError if either is gone)."""
        if src.eof or len(src.peer.out) >= HIGH_WATER:
            return
        data = src.read()
        if data:
            if src is pipe.upstream and pipe.answer_by is not None:
                pipe.answer_by = None
                if pipe.closing_by is None:
                    self._timed.discard(pipe)
            src.peer.out += data
            src.peer.write()

    def _flush(self, pipe: Pipe, end: End) -> None:
        try:
            end.write()
        except OSError:
            self._close(pipe)
            return
        self._interest(pipe, end)

    def _interest(self, pipe: Pipe, end: End) -> None:
        """Read while the peer's buffer has room and nothing closed; write while bytes wait."""
        events = 0
        if not end.eof and len(end.peer.out) < HIGH_WATER and pipe.closing_by is None:
            events |= selectors.EVENT_READ
        if end.out:
            events |= selectors.EVENT_WRITE
        if events == end.events:
            return
        try:
            if events and end.events:
                self._sel.modify(end.sock, events, (end, pipe))
            elif events:
                self._sel.register(end.sock, events, (end, pipe))
            else:
                self._sel.unregister(end.sock)
        except (OSError, ValueError, KeyError):  # closed meanwhile (a drop, a stop)
            self._close(pipe)
            return
        end.events = events

    def _timeout(self) -> float | None:
        deadlines = [d for p in self._timed for d in (p.answer_by, p.closing_by) if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _expire(self) -> None:
        now = time.monotonic()
        for pipe in list(self._timed):
            if pipe.answer_by is not None and now >= pipe.answer_by:
                log.warning("the acceptor did not answer the first message; closing")
                self._close(pipe)
            elif pipe.closing_by is not None and now >= pipe.closing_by:
                self._close(pipe)

    def _close(self, pipe: Pipe) -> None:
        if pipe.closed:
            return
        pipe.closed = True
        self._pipes.discard(pipe)
        self._timed.discard(pipe)
        for end in (pipe.client, pipe.upstream):
            if end.events:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    self._sel.unregister(end.sock)
                end.events = 0
            with contextlib.suppress(OSError):
                end.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                end.sock.close()
        try:
            pipe.on_close()
        except Exception:
            log.exception("closing a relayed connection failed")


def _pending(sock: socket.socket) -> bool:
    """Decrypted bytes an SSL object holds that select() cannot see."""
    return isinstance(sock, ssl.SSLSocket) and bool(sock.pending())
