"""Hostile FIX input over real sockets: mutated messages, junk, split and merged frames, floods.

    python -m load.fuzz_fix --port 9876 --comp-id FUZZ1 [--comp-id FUZZ2 ...]
        [--messages 100000] [--seed 1] [--per-connection 4000] [--host 127.0.0.1]

Needs a running gateway with a session per ``--comp-id`` (auth none, ResetOnLogon, a throttle
above the rate reached: the fuzzer logs on with ResetSeqNumFlag). One worker per CompID logs on
and pipelines buffers of seeded mutations (bad CheckSum and BodyLength, unknown, undefined,
repeated and empty tags, header tags in the body, bad values and formats, invalid and
unsupported MsgTypes, huge and binary fields, junk between frames), each buffer sent whole
(frames merged) or cut into random pieces (frames split across sends), closed by a TestRequest
whose Heartbeat marks everything before it answered. The worker knows which mutations use up a
MsgSeqNum and what QuickFIX answers to each (a Reject with a given SessionRejectReason, a
BusinessMessageReject, a Heartbeat, or nothing), and counts every answer against that. Each
connection ends with a session-fatal mutation (MsgSeqNum too low, wrong BeginString or CompID,
stale SendingTime, a second Logon, a garbled or huge BodyLength, a Logout) whose answer is
checked too, then the worker reconnects. A further worker opens connections that never log on
(junk, bad or unanswerable Logons, floods of half-open connections).

Prints messages sent, the rate, answers by kind and any mismatch, with a baseline measured in
the same run: the rate of valid TestRequests (each answered by a Heartbeat) on one session.
The model of QuickFIX's answers is the one ``tests/test_fuzz_fix.py`` asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

SOH = b"\x01"
FRAME = re.compile(rb"8=[^\x01]*\x019=(\d+)\x01")
TARGET = "FIXBRIDGE"
# Answers, as counted: ("3", SessionRejectReason), ("j", BusinessRejectReason), ("0", "echo")
# for a Heartbeat answering a TestRequest, ("8", OrdStatus) for an ExecutionReport.
Answer = tuple[str, str]
# Tags the gateway's FIX 4.4 dictionary does not define, below and above the user-defined range.
UNKNOWN_TAGS = (4999, 4321, 5999, 7777, 9999, 19999)
HEADER_TAGS = (34, 49, 52, 56)
NEW_ORDER_FIELDS = ((55, b"BTC-PERP"), (54, b"1"), (38, b"1"), (40, b"2"), (44, b"1"))


def stamp(t: datetime | None = None) -> bytes:
    return (t or datetime.now(UTC)).strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


def frame(
    fields: Sequence[tuple[int, bytes]],
    begin: bytes = b"FIX.4.4",
    body_length: bytes | None = None,
    checksum: bytes | None = None,
) -> bytes:
    """A FIX message around ``fields`` (35 first); BodyLength and CheckSum right unless given."""
    body = b"".join(b"%d=%s\x01" % (tag, value) for tag, value in fields)
    head = b"8=%s\x019=%s\x01" % (
        begin,
        str(len(body)).encode() if body_length is None else body_length,
    )
    total = (sum(head) + sum(body)) & 0xFF
    return head + body + b"10=%s\x01" % (b"%03d" % total if checksum is None else checksum)


def junk(rng: random.Random, size: int) -> bytes:
    """Random bytes that contain no frame start (``8=``) and no SOH: the parser skips them."""
    data = rng.randbytes(size).replace(b"\x01", b"\x02")
    return data.replace(b"8=", b"8-")


def binary_value(rng: random.Random, size: int) -> bytes:
    """A field value of bytes that are not text (high bytes, control characters), no SOH."""
    alphabet = bytes(range(0x80, 0x100)) + bytes(range(0x02, 0x20))
    return bytes(rng.choice(alphabet) for _ in range(size))


@dataclass(frozen=True, slots=True)
class Case:
    """One mutation: its bytes, whether it uses a MsgSeqNum, and QuickFIX's answer (if any)."""

    category: str
    data: bytes
    consumes: bool
    answer: Answer | None
    frames: int = 1  # FIX frames in ``data`` (0 for junk between frames)


class Mutator:
    """Seeded mutations of messages on a logged-on session whose next MsgSeqNum is ``seq``."""

    def __init__(self, rng: random.Random, sender: str, target: str = TARGET) -> None:
        self.rng = rng
        self.sender = sender.encode()
        self.target = target.encode()
        self.sending_time = stamp()
        self.categories: list[tuple[str, Callable[[int], Case]]] = [
            ("bad_checksum", self.bad_checksum),
            ("body_length_short", self.body_length_short),
            ("body_length_long", self.body_length_long),
            ("junk_between_frames", self.junk_between_frames),
            ("unknown_tag", self.unknown_tag),
            ("repeated_tag", self.repeated_tag),
            ("empty_value", self.empty_value),
            ("tag_not_in_message", self.tag_not_in_message),
            ("invalid_msg_type", self.invalid_msg_type),
            ("required_tag_missing", self.required_tag_missing),
            ("header_tag_in_body", self.header_tag_in_body),
            ("value_out_of_range", self.value_out_of_range),
            ("incorrect_format", self.incorrect_format),
            ("unsupported_msg_type", self.unsupported_msg_type),
            ("unknown_symbol_order", self.unknown_symbol_order),
            ("undecodable_order", self.undecodable_order),
            ("binary_field", self.binary_field),
            ("test_request", self.test_request),
            ("heartbeat", self.heartbeat),
        ]
        self.weights = [8, 6, 3, 3, 8, 6, 6, 6, 6, 6, 6, 6, 6, 4, 3, 3, 5, 4, 6]

    def refresh_time(self) -> None:
        self.sending_time = stamp()

    def header(self, msg_type: bytes, seq: int | bytes) -> list[tuple[int, bytes]]:
        seq_value = seq if isinstance(seq, bytes) else str(seq).encode()
        return [
            (35, msg_type),
            (49, self.sender),
            (56, self.target),
            (34, seq_value),
            (52, self.sending_time),
        ]

    def next_case(self, seq: int) -> Case:
        if self.rng.random() < 0.004:
            return self.huge_field(seq)
        name, make = self.rng.choices(self.categories, self.weights)[0]
        return make(seq)

    # -- dropped without an answer, MsgSeqNum not used -----------------------------------

    def bad_checksum(self, seq: int) -> Case:
        good = frame(self.header(b"1", seq) + [(112, b"ck")])
        wrong = b"%03d" % ((int(good[-4:-1]) + self.rng.randint(1, 255)) % 256)
        return Case("bad_checksum", good[:-4] + wrong + SOH, False, None)

    def body_length_short(self, seq: int) -> Case:
        fields = self.header(b"1", seq) + [(112, b"short")]
        true = len(frame(fields).split(SOH, 2)[2]) - 7
        claimed = str(self.rng.randint(1, true - 1)).encode()
        return Case("body_length_short", frame(fields, body_length=claimed), False, None)

    def body_length_long(self, seq: int) -> Case:
        """BodyLength a few bytes too long: the parser's frame runs into the next message's
        CheckSum, so that message (a valid Heartbeat here) is swallowed with it, unanswered."""
        fields = self.header(b"1", seq) + [(112, b"long")]
        true = len(frame(fields).split(SOH, 2)[2]) - 7
        first = frame(fields, body_length=str(true + self.rng.randint(1, 5)).encode())
        swallowed = frame(self.header(b"0", seq))
        return Case("body_length_long", first + swallowed, False, None, frames=2)

    def junk_between_frames(self, seq: int) -> Case:
        return Case(
            "junk_between_frames", junk(self.rng, self.rng.randint(1, 2048)), False, None, frames=0
        )

    # -- session-level Reject (35=3) with SessionRejectReason(373); MsgSeqNum used ---------

    def unknown_tag(self, seq: int) -> Case:
        tag = self.rng.choice(UNKNOWN_TAGS)
        fields = self.header(b"1", seq) + [(112, b"u"), (tag, b"x")]
        return Case("unknown_tag", frame(fields), True, ("3", "0"))

    def repeated_tag(self, seq: int) -> Case:
        fields = self.header(b"1", seq) + [(112, b"a"), (112, b"b")]
        return Case("repeated_tag", frame(fields), True, ("3", "13"))

    def empty_value(self, seq: int) -> Case:
        return Case("empty_value", frame(self.header(b"1", seq) + [(112, b"")]), True, ("3", "4"))

    def tag_not_in_message(self, seq: int) -> Case:
        tag, value = self.rng.choice(((55, b"BTC-PERP"), (11, b"c1"), (38, b"1")))
        fields = self.header(b"1", seq) + [(112, b"n"), (tag, value)]
        return Case("tag_not_in_message", frame(fields), True, ("3", "2"))

    def invalid_msg_type(self, seq: int) -> Case:
        msg_type = self.rng.choice((b"ZZ", b"QQ", b"!", b"99"))
        fields = self.header(msg_type, seq) + [(112, b"t")]
        return Case("invalid_msg_type", frame(fields), True, ("3", "11"))

    def required_tag_missing(self, seq: int) -> Case:
        return Case("required_tag_missing", frame(self.header(b"1", seq)), True, ("3", "1"))

    def header_tag_in_body(self, seq: int) -> Case:
        head = self.header(b"1", seq)
        moved = self.rng.choice(HEADER_TAGS)
        kept = [f for f in head if f[0] != moved]
        fields = kept + [(112, b"h")] + [f for f in head if f[0] == moved]
        return Case("header_tag_in_body", frame(fields), True, ("3", "14"))

    def value_out_of_range(self, seq: int) -> Case:
        fields = self.header(b"D", seq) + [
            (11, b"v"),
            (55, b"BTC-PERP"),
            (54, b"Q"),
            (60, self.sending_time),
            (38, b"1"),
            (40, b"2"),
            (44, b"1"),
        ]
        return Case("value_out_of_range", frame(fields), True, ("3", "5"))

    def incorrect_format(self, seq: int) -> Case:
        value = self.rng.choice((b"lots", b"1e5", b"--1", b"1.2.3", b"\xff\xfe"))
        fields = self.header(b"D", seq) + [
            (11, b"f"),
            (55, b"BTC-PERP"),
            (54, b"1"),
            (60, self.sending_time),
            (38, value),
            (40, b"2"),
            (44, b"1"),
        ]
        return Case("incorrect_format", frame(fields), True, ("3", "6"))

    # -- application answers ---------------------------------------------------------------

    def unsupported_msg_type(self, seq: int) -> Case:
        fields = self.header(b"AF", seq) + [(584, b"m1"), (585, b"7")]
        return Case("unsupported_msg_type", frame(fields), True, ("j", "3"))

    def unknown_symbol_order(self, seq: int) -> Case:
        fields = self.header(b"D", seq) + [
            (11, b"z%d" % seq),
            (55, b"NOT-A-THING-X"),
            (54, b"1"),
            (60, self.sending_time),
            (38, b"1"),
            (40, b"2"),
            (44, b"1"),
        ]
        return Case("unknown_symbol_order", frame(fields), True, ("8", "8"))

    def undecodable_order(self, seq: int) -> Case:
        """An order whose ClOrdID is not text: refused before the order core sees it."""
        fields = self.header(b"D", seq) + [
            (11, b"\xff" + binary_value(self.rng, 11)),
            (55, b"BTC-PERP"),
            (54, b"1"),
            (60, self.sending_time),
            (38, b"1"),
            (40, b"2"),
            (44, b"1"),
        ]
        return Case("undecodable_order", frame(fields), True, ("3", "6"))

    # -- valid, answered or not ------------------------------------------------------------

    def binary_field(self, seq: int) -> Case:
        value = binary_value(self.rng, self.rng.randint(1, 512))
        return Case(
            "binary_field", frame(self.header(b"1", seq) + [(112, value)]), True, ("0", "echo")
        )

    def huge_field(self, seq: int) -> Case:
        value = b"H" * self.rng.randint(16 * 1024, 256 * 1024)
        return Case(
            "huge_field", frame(self.header(b"1", seq) + [(112, value)]), True, ("0", "echo")
        )

    def test_request(self, seq: int) -> Case:
        return Case(
            "test_request",
            frame(self.header(b"1", seq) + [(112, b"t%d" % seq)]),
            True,
            ("0", "echo"),
        )

    def heartbeat(self, seq: int) -> Case:
        return Case("heartbeat", frame(self.header(b"0", seq)), True, None)


@dataclass(frozen=True, slots=True)
class Fatal:
    """A mutation that ends the session, and what must come back before the connection closes:
    the messages (MsgType, SessionRejectReason or Text fragment) and whether it closes."""

    category: str
    build: Callable[[Mutator, int], bytes]
    answers: tuple[tuple[str, str | None], ...]
    closes: bool


def _stale(mut: Mutator, seq: int) -> bytes:
    old = stamp(datetime.now(UTC) - timedelta(minutes=30))
    head = [f if f[0] != 52 else (52, old) for f in mut.header(b"1", seq)]
    return frame(head + [(112, b"stale")])


def _foreign_comp_id(mut: Mutator, seq: int) -> bytes:
    head = [f if f[0] != 49 else (49, b"SOMEONE") for f in mut.header(b"1", seq)]
    return frame(head + [(112, b"who")])


FATALS: tuple[Fatal, ...] = (
    Fatal(
        "msg_seq_num_too_low",
        lambda mut, seq: frame(mut.header(b"1", seq - 2) + [(112, b"low")]),
        (("5", "MsgSeqNum too low"),),
        True,
    ),
    Fatal(
        "wrong_begin_string",
        lambda mut, seq: frame(mut.header(b"1", seq) + [(112, b"b")], begin=b"FIX.4.2"),
        (("5", "Incorrect BeginString"),),
        True,
    ),
    Fatal("foreign_comp_id", _foreign_comp_id, (("3", "9"), ("5", None)), True),
    Fatal("stale_sending_time", _stale, (("3", "10"), ("5", None)), True),
    Fatal(
        "second_logon",
        lambda mut, seq: frame(mut.header(b"A", seq) + [(98, b"0"), (108, b"60")]),
        (),
        True,
    ),
    Fatal("logout", lambda mut, seq: frame(mut.header(b"5", seq)), (("5", None),), True),
    # the parser cannot frame these: nothing comes back; the client gives up and closes
    Fatal(
        "garbled_body_length",
        lambda mut, seq: frame(mut.header(b"1", seq) + [(112, b"g")], body_length=b"x1"),
        (),
        False,
    ),
    Fatal(
        "huge_body_length",
        lambda mut, seq: frame(mut.header(b"1", seq) + [(112, b"g")], body_length=b"999999999"),
        (),
        False,
    ),
)


@dataclass
class Stats:
    """What the fuzzer sent and what came back; ``mismatches`` must stay empty."""

    frames: int = 0
    junk_chunks: int = 0
    bytes_sent: int = 0
    connections: int = 0
    sent: Counter = field(default_factory=Counter)  # by category
    answers: Counter = field(default_factory=Counter)  # by Answer
    fatal_outcomes: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        self.frames += other.frames
        self.junk_chunks += other.junk_chunks
        self.bytes_sent += other.bytes_sent
        self.connections += other.connections
        self.sent.update(other.sent)
        self.answers.update(other.answers)
        self.fatal_outcomes.update(other.fatal_outcomes)
        self.mismatches.extend(other.mismatches)


class Inbox:
    """Reads one connection on its own thread: frames, classifies and counts the answers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.cond = threading.Condition()
        self.answers: Counter = Counter()
        self.markers: set[bytes] = set()
        self.messages: list[tuple[str, str | None, str | None]] = []  # (35, 373, 58) in order
        self.closed = False
        self.unexpected: list[bytes] = []
        self._thread = threading.Thread(target=self._run, name="fuzz-inbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        try:
            while data := self.sock.recv(1 << 18):
                buf += data
                buf = self._consume(buf)
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _consume(self, buf: bytes) -> bytes:
        found = []
        while (m := FRAME.match(buf)) is not None:
            end = buf.find(b"\x0110=", m.end() + int(m.group(1)) - 1)
            if end < 0 or (stop := buf.find(SOH, end + 4)) < 0:
                break
            found.append(buf[: stop + 1])
            buf = buf[stop + 1 :]
        with self.cond:
            for msg in found:
                self._classify(msg)
            self.cond.notify_all()
        return buf

    def _classify(self, msg: bytes) -> None:
        msg_type = _value(msg, b"35") or b""
        reason = text = None
        if msg_type == b"0":
            test_req_id = _value(msg, b"112")
            if test_req_id is None:
                return  # the gateway's own heartbeat
            if test_req_id.startswith(b"MARK-"):
                self.markers.add(test_req_id)
                return
            self.answers[("0", "echo")] += 1
        elif msg_type == b"3":
            reason = (_value(msg, b"373") or b"").decode()
            self.answers[("3", reason)] += 1
        elif msg_type == b"j":
            self.answers[("j", (_value(msg, b"380") or b"").decode())] += 1
        elif msg_type == b"8":
            self.answers[("8", (_value(msg, b"39") or b"").decode())] += 1
        elif msg_type == b"5":
            text = (_value(msg, b"58") or b"").decode("latin-1")
            self.answers[("5", "")] += 1
        elif msg_type != b"A" or self.messages:  # only the answer to our Logon may be a Logon
            self.unexpected.append(msg[:200])
        self.messages.append((msg_type.decode("latin-1"), reason, text))

    def wait_marker(self, marker: bytes, timeout: float) -> bool:
        with self.cond:
            return (
                self.cond.wait_for(lambda: marker in self.markers or self.closed, timeout)
                and marker in self.markers
            )

    def wait_closed(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.closed, timeout)


def hang_up(sock: socket.socket) -> None:
    """Close for real: ``close`` alone leaves the connection open while the inbox thread is
    blocked in ``recv`` on it (the kernel keeps the file until that call returns)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _value(msg: bytes, tag: bytes) -> bytes | None:
    key = SOH + tag + b"="
    k = msg.find(key)
    if k < 0:
        return None
    v = k + len(key)
    return msg[v : msg.find(SOH, v)]


class Worker:
    """One CompID: connection after connection of pipelined mutations, each ended by a fatal."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        seed: int,
        batch: int = 250,
        per_connection: int = 4000,
        split_share: float = 0.25,
        timeout: float = 20.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.rng = random.Random(seed)
        self.batch = batch
        self.per_connection = per_connection
        self.split_share = split_share
        self.timeout = timeout
        self.stats = Stats()
        self._fatal = self.rng.randrange(len(FATALS))

    def run(self, messages: int) -> Stats:
        try:
            while self.stats.frames < messages:
                self.connection(min(self.per_connection, messages - self.stats.frames))
        except (OSError, RuntimeError) as exc:
            self.stats.mismatches.append(f"{self.sender}: stopped: {exc}")
        return self.stats

    def _logon(self) -> tuple[socket.socket, Inbox, Mutator]:
        """Log on; while the acceptor still holds the previous connection (it is closing it), a
        new one is dropped unanswered, so that is retried for a while, as any client would."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self._logon_once()
            except ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _logon_once(self) -> tuple[socket.socket, Inbox, Mutator]:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        mut = Mutator(self.rng, self.sender)
        logon = frame(mut.header(b"A", 1) + [(98, b"0"), (108, b"60"), (141, b"Y")])
        inbox = Inbox(sock)
        if self.rng.random() < 0.5:  # a Logon split into small pieces
            cut = sorted(self.rng.sample(range(1, len(logon)), 4))
            for a, b in zip([0, *cut], [*cut, len(logon)], strict=True):
                sock.sendall(logon[a:b])
        else:
            sock.sendall(logon)
        with inbox.cond:
            ok = inbox.cond.wait_for(lambda: inbox.messages or inbox.closed, self.timeout)
            answer = inbox.messages[:3]
        if not answer:
            hang_up(sock)
            if ok:  # closed unanswered
                raise ConnectionError(f"{self.sender}: logon dropped")
            raise RuntimeError(f"{self.sender}: logon not answered")
        if answer[0][0] != "A":
            hang_up(sock)
            raise RuntimeError(f"{self.sender}: logon answered with {answer}")
        inbox.messages.clear()
        return sock, inbox, mut

    def connection(self, budget: int) -> None:
        sock, inbox, mut = self._logon()
        self.stats.connections += 1
        seq, sent, expected = 2, 0, Counter()
        markers: list[bytes] = []
        try:
            while sent < budget:
                mut.refresh_time()
                cases = [mut.next_case(seq)]
                seq += cases[0].consumes
                while len(cases) < self.batch and sent + len(cases) < budget:
                    case = mut.next_case(seq)
                    cases.append(case)
                    seq += case.consumes
                marker = b"MARK-%s-%d" % (self.sender.encode(), seq)
                data = b"".join(c.data for c in cases) + frame(
                    mut.header(b"1", seq) + [(112, marker)]
                )
                seq += 1
                self._send(sock, data)
                for case in cases:
                    self.stats.sent[case.category] += 1
                    self.stats.frames += case.frames
                    self.stats.junk_chunks += case.frames == 0
                    if case.answer is not None:
                        expected[case.answer] += 1
                sent += len(cases)
                markers.append(marker)
                if len(markers) >= 2 and not inbox.wait_marker(markers[-2], self.timeout):
                    raise RuntimeError(f"{self.sender}: no Heartbeat for {markers[-2]!r}")
            if not inbox.wait_marker(markers[-1], self.timeout):
                raise RuntimeError(f"{self.sender}: no Heartbeat for {markers[-1]!r}")
            with inbox.cond:
                got = Counter(inbox.answers)
                if inbox.unexpected:
                    self.stats.mismatches.append(f"{self.sender}: unexpected {inbox.unexpected}")
            self.stats.answers.update(got)
            if got != expected:
                self.stats.mismatches.append(
                    f"{self.sender}: answers {dict(got - expected)} beyond and "
                    f"{dict(expected - got)} short of the model"
                )
            self._end(sock, inbox, mut, seq)
        except (OSError, RuntimeError) as exc:
            self.stats.mismatches.append(f"{self.sender}: {exc}")
        finally:
            hang_up(sock)
            inbox.wait_closed(self.timeout)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        self.stats.bytes_sent += len(data)
        if self.rng.random() >= self.split_share:
            sock.sendall(data)  # many frames merged into one send
            return
        at = 0
        while at < len(data):  # frames split across sends, at arbitrary bytes
            n = self.rng.choice((1, 7, 64, 512, 4096))
            sock.sendall(data[at : at + n])
            at += n

    def _end(self, sock: socket.socket, inbox: Inbox, mut: Mutator, seq: int) -> None:
        fatal = FATALS[self._fatal % len(FATALS)]
        self._fatal += 1
        with inbox.cond:
            inbox.messages.clear()
        sock.sendall(fatal.build(mut, seq))
        self.stats.frames += 1
        self.stats.sent[fatal.category] += 1
        closed = inbox.wait_closed(self.timeout if fatal.closes else 0.5)
        with inbox.cond:
            seen = [(t, r if t == "3" else x) for t, r, x in inbox.messages]
        ok = (
            closed == fatal.closes
            and len(seen) == len(fatal.answers)
            and all(
                t == want_t and (want is None or (got or "").startswith(want))
                for (t, got), (want_t, want) in zip(seen, fatal.answers, strict=False)
            )
        )
        self.stats.fatal_outcomes[(fatal.category, "as expected" if ok else "other")] += 1
        if not ok:
            self.stats.mismatches.append(
                f"{self.sender}: {fatal.category}: got {seen}, closed={closed}"
            )


# --- connections that never log on -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stranger:
    """A connection that does not log on: what it sends and what must come back."""

    category: str
    data: Callable[[random.Random], bytes]
    answer: str | None  # a Text fragment of the Logout that must come, or None for none
    gateway_closes: bool  # the gateway must close it (else the client gives up after a while)


def _logon(sender: bytes, *extra: tuple[int, bytes], checksum: bytes | None = None) -> bytes:
    fields = [
        (35, b"A"),
        (49, sender),
        (56, TARGET.encode()),
        (34, b"1"),
        (52, stamp()),
        (98, b"0"),
        (108, b"30"),
        (141, b"Y"),
        *extra,
    ]
    return frame(fields, checksum=checksum)


STRANGERS: tuple[Stranger, ...] = (
    Stranger("junk_without_frame", lambda rng: junk(rng, 12000), None, True),
    Stranger(
        "junk_with_sender", lambda rng: b"8=FIX.4.4\x019=5\x0149=" + junk(rng, 9000), None, True
    ),
    Stranger("logon_bad_checksum", lambda rng: _logon(b"CLIENT2", checksum=b"000"), None, True),
    Stranger("logon_unknown_comp_id", lambda rng: _logon(b"NOBODY"), None, True),
    Stranger(
        "first_message_not_logon",
        lambda rng: frame(
            [
                (35, b"1"),
                (49, b"CLIENT2"),
                (56, TARGET.encode()),
                (34, b"1"),
                (52, stamp()),
                (112, b"x"),
            ]
        ),
        None,
        True,
    ),
    Stranger(
        "logon_wrong_password",
        lambda rng: _logon(b"CLIENT1", (553, b"client1"), (554, b"wrong")),
        "invalid username or password",
        True,
    ),
    Stranger(
        "logon_binary_password",
        lambda rng: _logon(b"CLIENT1", (553, b"client1"), (554, binary_value(rng, 40))),
        "invalid username or password",
        True,
    ),
    Stranger("empty", lambda rng: b"", None, True),
)


def strangers(host: str, port: int, rounds: int, seed: int, flood: int = 48) -> Stats:
    """``rounds`` of every :data:`STRANGERS` case, then ``flood`` half-open connections at once."""
    rng = random.Random(seed)
    stats = Stats()
    for _ in range(rounds):
        for case in STRANGERS:
            stats.connections += 1
            stats.sent[case.category] += 1
            stats.frames += 1
            outcome = _stranger(host, port, case.data(rng), case)
            stats.fatal_outcomes[(case.category, outcome)] += 1
            if outcome != "as expected":
                stats.mismatches.append(f"{case.category}: {outcome}")
    socks = []
    for _ in range(flood):  # a burst of connections that send half a header and linger
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"8=FIX.4.4\x019=")
        socks.append(s)
    stats.connections += flood
    stats.sent["half_open_flood"] += flood
    time.sleep(0.2)
    for s in socks:
        s.close()
    return stats


def _stranger(host: str, port: int, data: bytes, case: Stranger) -> str:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(data)
        if not data:
            s.shutdown(socket.SHUT_WR)
        got, closed = b"", False
        s.settimeout(10)
        try:
            while chunk := s.recv(65536):
                got += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    if case.gateway_closes and not closed:
        return "not closed by the gateway"
    if case.answer is None:
        return "as expected" if not got else f"unexpected answer {got[:120]!r}"
    if b"35=5\x01" not in got or case.answer.encode() not in got:
        return f"no Logout naming {case.answer!r}: {got[:160]!r}"
    return "as expected"


# --- baseline and command line ---------------------------------------------------------------


def baseline(host: str, port: int, sender: str, count: int = 20000) -> float:
    """Valid TestRequests a second on one session, pipelined like the fuzz buffers."""
    worker = Worker(host, port, sender, seed=0)
    sock, inbox, mut = worker._logon()
    try:
        seq, started = 2, time.perf_counter()
        for start in range(0, count, 250):
            mut.refresh_time()
            cases = [mut.test_request(seq + i) for i in range(250)]
            seq += len(cases)
            marker = b"MARK-base-%d" % start
            sock.sendall(
                b"".join(c.data for c in cases) + frame(mut.header(b"1", seq) + [(112, marker)])
            )
            seq += 1
            if not inbox.wait_marker(marker, 30):
                raise RuntimeError("baseline session stopped answering")
        rate = count / (time.perf_counter() - started)
        sock.sendall(frame(mut.header(b"5", seq)))
        inbox.wait_closed(5)
        return rate
    finally:
        hang_up(sock)


def fuzz(
    host: str,
    port: int,
    comp_ids: Sequence[str],
    messages: int,
    seed: int,
    per_connection: int = 4000,
    stranger_rounds: int = 3,
) -> tuple[Stats, float]:
    """Every worker in parallel; returns the merged stats and the elapsed seconds."""
    share = -(-messages // len(comp_ids))
    workers = [
        Worker(host, port, c, seed + i, per_connection=per_connection)
        for i, c in enumerate(comp_ids)
    ]
    results: list[Stats] = []
    threads = [
        threading.Thread(target=lambda w=w: results.append(w.run(share)), daemon=True)
        for w in workers
    ]
    threads.append(
        threading.Thread(
            target=lambda: results.append(strangers(host, port, stranger_rounds, seed)), daemon=True
        )
    )
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = Stats()
    for r in results:
        total.merge(r)
    return total, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load.fuzz_fix", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--comp-id", action="append", required=True, dest="comp_ids")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-connection", type=int, default=4000)
    args = p.parse_args(argv)
    base = baseline(args.host, args.port, args.comp_ids[0])
    stats, elapsed = fuzz(
        args.host, args.port, args.comp_ids, args.messages, args.seed, args.per_connection
    )
    print(f"baseline: {base:,.0f} valid TestRequests/s on one session")
    print(
        f"fuzz: {stats.frames:,} frames + {stats.junk_chunks:,} junk chunks "
        f"({stats.bytes_sent / 1e6:.1f} MB) over {stats.connections} connections in "
        f"{elapsed:.1f} s: {stats.frames / elapsed:,.0f} frames/s"
    )
    for category, n in sorted(stats.sent.items()):
        print(f"  sent {category:<26} {n:>8,}")
    for answer, n in sorted(stats.answers.items()):
        print(f"  answer {'/'.join(answer):<24} {n:>8,}")
    for outcome, n in sorted(stats.fatal_outcomes.items()):
        print(f"  end {outcome[0]:<27} {outcome[1]:<14} {n:>4}")
    for line in stats.mismatches[:20]:
        print(f"  MISMATCH {line}")
    return 1 if stats.mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
