"""A lean FIX 4.4 initiator over a plain socket, for tests and benchmarks.

simplefix builds outgoing messages; incoming ones are framed and split by hand because
simplefix's parser (~65 µs a message here) would dominate a benchmark's measurements.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from datetime import UTC, datetime

import simplefix

from fixspec.codec import RawMessage

SOH = b"\x01"
FRAME = re.compile(rb"8=[^\x01]*\x019=(\d+)\x01")


def fix_time(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class FixClient:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        target: str,
        timeout: float = 10.0,
        sock: socket.socket | None = None,
    ) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.target = sender, target
        self.timeout = timeout
        self.next_seq = 1
        self.buf = b""

    # -- sending -------------------------------------------------------------------------

    def build(self, msg_type: str, fields, seq: int | None = None, header=()) -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4")
        msg.append_pair(35, msg_type)
        msg.append_pair(49, self.sender)
        msg.append_pair(56, self.target)
        msg.append_pair(34, self.next_seq if seq is None else seq)
        msg.append_pair(52, fix_time())
        for tag, value in header:
            msg.append_pair(tag, value)
        for tag, value in fields:
            msg.append_pair(tag, value)
        if seq is None:
            self.next_seq += 1
        return msg.encode()

    def send(self, msg_type: str, fields=(), seq: int | None = None, header=()) -> None:
        self.sock.sendall(self.build(msg_type, fields, seq, header))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- receiving -----------------------------------------------------------------------

    def _frame(self) -> bytes | None:
        m = FRAME.match(self.buf)
        if not m:
            return None
        end = m.end() + int(m.group(1))
        ck = self.buf.find(SOH, end)
        if ck == -1:
            return None
        frame, self.buf = self.buf[: ck + 1], self.buf[ck + 1 :]
        return frame

    def recv(self, timeout: float | None = None) -> RawMessage:
        deadline = time.monotonic() + (timeout or self.timeout)
        while (frame := self._frame()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no FIX message within the timeout")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the gateway")
            self.buf += data
        return RawMessage.parse(frame.decode("latin-1"))

    def expect(self, msg_type: str, timeout: float | None = None, skip=("0",)) -> RawMessage:
        """The next message that is not a heartbeat; fails if it is not ``msg_type``."""
        while True:
            msg = self.recv(timeout)
            if msg.msg_type in skip and msg.msg_type != msg_type:
                continue
            if msg.msg_type != msg_type:
                raise AssertionError(f"expected {msg_type}, got {msg.fields}")
            return msg

    def closed(self, timeout: float = 5.0) -> bool:
        """True once the gateway has closed the connection (remaining data is drained)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.buf += data
        return False

    # -- session -------------------------------------------------------------------------

    def logon(
        self,
        heartbeat: int = 30,
        reset: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> RawMessage:
        fields: list[tuple[int, object]] = [(98, 0), (108, heartbeat)]
        if reset:
            fields.append((141, "Y"))
        if username is not None:
            fields.append((553, username))
        if password is not None:
            fields.append((554, password))
        self.send("A", fields)
        return self.recv()

    def logout(self) -> None:
        self.send("5")
        with contextlib.suppress(TimeoutError, ConnectionError, AssertionError):
            self.expect("5", timeout=5)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
