"""A lean FIX 4.4 order client for benchmarks.

:mod:`load.fixclient` builds with simplefix and parses into ``RawMessage``; at tens of thousands of
orders a second that client, not the server, would be what is measured. Here a NewOrderSingle is
a byte template in which only MsgSeqNum, SendingTime/TransactTime, ClOrdID, BodyLength and
CheckSum change, and incoming messages are framed by scanning for ``<SOH>10=`` and read with
``bytes.find``: no per-field parsing, no objects per message.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

SOH = b"\x01"
TRAILER = b"\x0110="


class SessionError(RuntimeError):
    """The counterparty rejected something or went away: the benchmark run is not valid."""


def fix_stamp(t: datetime | None = None) -> bytes:
    """UTCTimestamp with microseconds, as bytes."""
    return (t or datetime.now(UTC)).strftime("%Y%m%d-%H:%M:%S.%f").encode()


def frame(body: bytes) -> bytes:
    """Add BeginString, BodyLength and CheckSum around ``body`` (which starts with ``35=``)."""
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    msg = head + body
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


def field_value(msg: bytes, tag: bytes, start: int = 0, end: int | None = None) -> bytes | None:
    """The value of ``tag`` (e.g. ``b"35"``) in a framed message, found with ``bytes.find``."""
    stop = len(msg) if end is None else end
    key = SOH + tag + b"="
    k = msg.find(key, start, stop)
    if k < 0:
        return None
    v = k + len(key)
    return msg[v : msg.find(SOH, v, stop)]


class OrderTemplate:
    """A limit NewOrderSingle for one symbol, side, quantity and price, as a byte template."""

    def __init__(
        self,
        sender: str,
        target: str,
        symbol: str,
        side: str = "1",
        quantity: str = "1",
        price: str = "65000",
    ) -> None:
        self._head = f"35=D\x0149={sender}\x0156={target}\x0134=".encode()
        self._instrument = f"\x0155={symbol}\x0154={side}\x0160=".encode()
        self._tail = f"\x0138={quantity}\x0140=2\x0144={price}\x0159=0\x01".encode()

    def build(self, seq: int, cl_ord_id: bytes, stamp: bytes) -> bytes:
        """The order with MsgSeqNum ``seq``; ``stamp`` is both SendingTime and TransactTime."""
        return frame(
            b"%s%d\x0152=%s\x0111=%s%s%s%s"
            % (self._head, seq, stamp, cl_ord_id, self._instrument, stamp, self._tail)
        )


@dataclass(slots=True)
class PipelineResult:
    """What one pipelined run saw. ``elapsed_ns``: first send to the last order's fill."""

    orders: int
    elapsed_ns: int = 0
    execution_reports: int = 0
    acks: int = 0  # ExecutionReports with OrdStatus New
    fills: int = 0  # ExecutionReports with OrdStatus Filled
    last_fill_cl_ord_id: bytes = b""
    errors: list[bytes] = field(default_factory=list)

    @property
    def orders_per_second(self) -> float:
        return self.orders * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0


@dataclass(slots=True)
class LatencySample:
    """Order sent -> first ExecutionReport for it, and -> its fill (nanoseconds)."""

    first_er_ns: int
    fill_ns: int
    execution_reports: int


class FastSession:
    """One FIX session over a plain socket, driven by the benchmark."""

    def __init__(self, host: str, port: int, sender: str, target: str, timeout: float = 30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.target = sender, target
        self.timeout = timeout
        self.next_seq = 1
        self._buf = b""
        self._header = f"\x0149={sender}\x0156={target}\x0134=".encode()

    # -- framing -------------------------------------------------------------------------

    def _admin(self, msg_type: bytes, fields: bytes = b"") -> bytes:
        body = b"35=" + msg_type + self._header + b"%d\x0152=" % self.next_seq + fix_stamp()
        self.next_seq += 1
        return frame(body + SOH + fields if fields else body + SOH)

    def _next_message(self, deadline: float) -> bytes:
        """The next complete message, reading from the socket as needed."""
        while True:
            k = self._buf.find(TRAILER)
            if k >= 0:
                e = self._buf.find(SOH, k + 4)
                if e >= 0:
                    msg, self._buf = self._buf[: e + 1], self._buf[e + 1 :]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete FIX message within the timeout")
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 16)
            if not data:
                raise SessionError("connection closed by the counterparty")
            self._buf += data

    def _answer_admin(self, msg: bytes, msg_type: bytes | None) -> bool:
        """Deal with session-level traffic; True if ``msg`` was one and needs nothing more."""
        if msg_type == b"0":
            return True
        if msg_type == b"1":  # TestRequest: answer or the counterparty will drop us
            self.sock.sendall(self._admin(b"0", b"112=" + (field_value(msg, b"112") or b"") + SOH))
            return True
        if msg_type in (b"3", b"5", b"j"):
            raise SessionError(f"counterparty sent {msg!r}")
        return False

    # -- session -------------------------------------------------------------------------

    def logon(self, heartbeat: int = 120) -> None:
        self.sock.sendall(self._admin(b"A", b"98=0\x01108=%d\x01141=Y\x01" % heartbeat))
        msg = self._next_message(time.monotonic() + self.timeout)
        if field_value(msg, b"35") != b"A":
            raise SessionError(f"logon refused: {msg!r}")

    def heartbeat(self) -> None:
        """Show the counterparty we are alive (between phases, while the other target runs)."""
        self.sock.sendall(self._admin(b"0"))

    def logout(self) -> None:
        try:
            self.sock.sendall(self._admin(b"5"))
            deadline = time.monotonic() + 5
            while field_value(self._next_message(deadline), b"35") != b"5":
                pass
        except (OSError, TimeoutError, SessionError):
            pass
        finally:
            self.sock.close()

    # -- orders --------------------------------------------------------------------------

    def prebuild(self, template: OrderTemplate, cl_ord_ids: Sequence[bytes]) -> list[bytes]:
        """Orders with consecutive sequence numbers, one SendingTime: ready to write."""
        stamp = fix_stamp()
        first = self.next_seq
        self.next_seq += len(cl_ord_ids)
        return [template.build(first + i, c, stamp) for i, c in enumerate(cl_ord_ids)]

    def pipeline(
        self, orders: Sequence[bytes], fills_expected: int, batch: int = 64
    ) -> PipelineResult:
        """Write ``orders`` as fast as the socket takes them while a reader thread counts the
        ExecutionReports; returns when ``fills_expected`` fills have arrived."""
        result = PipelineResult(orders=len(orders))
        done = threading.Event()
        start = time.perf_counter_ns()
        reader = threading.Thread(
            target=self._read_pipeline, args=(result, fills_expected, start, done), daemon=True
        )
        reader.start()
        try:
            for i in range(0, len(orders), batch):
                self.sock.sendall(b"".join(orders[i : i + batch]))
        except OSError as exc:
            result.errors.append(f"send failed: {exc}".encode())
        reader.join(self.timeout + len(orders) / 1000)
        if not done.is_set():
            raise SessionError(
                f"pipelined run incomplete: {result.fills}/{fills_expected} fills, "
                f"{result.execution_reports} ExecutionReports; errors {result.errors[:3]}"
            )
        if result.errors:
            raise SessionError(f"pipelined run had errors: {result.errors[:3]}")
        return result

    def _read_pipeline(
        self, result: PipelineResult, fills: int, start: int, done: threading.Event
    ) -> None:
        sock, buf, find = self.sock, self._buf, bytes.find
        sock.settimeout(self.timeout)
        try:
            while result.fills < fills:
                data = sock.recv(1 << 20)
                if not data:
                    result.errors.append(b"connection closed")
                    return
                buf += data
                pos = 0
                while (k := find(buf, TRAILER, pos)) >= 0 and (e := find(buf, SOH, k + 4)) >= 0:
                    t = find(buf, b"\x0135=", pos, k) + 4
                    msg_type = buf[t : find(buf, SOH, t)]
                    if msg_type == b"8":
                        result.execution_reports += 1
                        s = find(buf, b"\x0139=", pos, k) + 4
                        status = buf[s : s + 2]
                        if status == b"2\x01":
                            result.fills += 1
                            c = find(buf, b"\x0111=", pos, k) + 4
                            result.last_fill_cl_ord_id = buf[c : find(buf, SOH, c)]
                        elif status == b"0\x01":
                            result.acks += 1
                        else:
                            result.errors.append(buf[pos : e + 1])
                    elif msg_type not in (b"0", b"1"):
                        result.errors.append(buf[pos : e + 1])
                    pos = e + 1
                buf = buf[pos:]
                if result.errors:
                    return
            result.elapsed_ns = time.perf_counter_ns() - start
            self._buf = buf
            done.set()
        except OSError as exc:
            result.errors.append(f"receive failed: {exc}".encode())

    def round_trip(self, order: bytes, cl_ord_id: bytes) -> LatencySample:
        """Send one order and wait for its fill; times its first ExecutionReport and the fill."""
        deadline = time.monotonic() + self.timeout
        first = 0
        count = 0
        start = time.perf_counter_ns()
        self.sock.sendall(order)
        while True:
            msg = self._next_message(deadline)
            now = time.perf_counter_ns()
            msg_type = field_value(msg, b"35")
            if self._answer_admin(msg, msg_type):
                continue
            if msg_type != b"8" or field_value(msg, b"11") != cl_ord_id:
                raise SessionError(f"unexpected message {msg!r}")
            count += 1
            first = first or now
            status = field_value(msg, b"39")
            if status == b"2":
                return LatencySample(first - start, now - start, count)
            if status != b"0":
                raise SessionError(f"order {cl_ord_id!r} not filled: {msg!r}")
