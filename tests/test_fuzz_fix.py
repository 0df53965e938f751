"""Hostile FIX input over real sockets against a running gateway: no crash, no lost session.

The big test sends at least 100,000 mutated messages (see :mod:`load.fuzz_fix`) from four
sessions at once, plus connections that never log on, while a well-behaved client keeps trading
on its own session. The gateway must stay up, answer every mutation as QuickFIX's session rules
say (counted per kind of answer, per connection), keep memory and threads bounded, and give the
trader every ExecutionReport. The smaller tests pin the exact answer to each kind of garbage and
the defects fuzzing found: bytes that are not UTF-8, a first message that never completes, and a
Logon the engine never answers.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from load import fuzz_fix
from load.fixclient import FixClient
from tests.harness import API_TOKEN, GatewayProcess, order_fields

SEED = 20261124
FUZZ_SESSIONS = ("FUZZ1", "FUZZ2", "FUZZ3", "FUZZ4")
EXTRA = "".join(
    f'\n[[sessions]]\ncomp_id = "{s}"\n'
    "throttle = { reject_above = 1000000, logout_above = 1000000 }\n"
    for s in (*FUZZ_SESSIONS, "PROBE")
)


def start(workdir: Path) -> GatewayProcess:
    # garbage logons must not lock 127.0.0.1 out: the trader shares the address
    return GatewayProcess(workdir, extra=EXTRA, max_failures=10**9).start()


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS in kB, Threads) of a process, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["Threads"])


class Trader:
    """A well-behaved client: one order at a time in a small window, every ER recorded."""

    def __init__(self, gw: GatewayProcess, comp_id: str = "CLIENT2") -> None:
        self.client = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
        assert self.client.logon().msg_type == "A"
        self.client.sock.settimeout(None)
        self.statuses: dict[str, list[str]] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _read(self) -> None:
        client = self.client
        while True:
            try:
                data = client.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.lost.set()
                with self.cond:
                    self.cond.notify_all()
                return
            client.buf += data
            with self.cond:
                while (frame := client._frame()) is not None:
                    fields = dict(p.split(b"=", 1) for p in frame.split(b"\x01") if p)
                    if fields.get(b"35") == b"8":
                        cl = fields[b"11"].decode()
                        self.statuses.setdefault(cl, []).append(fields[b"39"].decode())
                self.cond.notify_all()

    def open_orders(self) -> int:
        return sum(1 for s in self.statuses.values() if s != ["0", "2"])

    def _write(self) -> None:
        n = 0
        while not self.stop.is_set() and not self.lost.is_set():
            n += 1
            cl = f"good-{n}"
            with self.cond:
                self.statuses[cl] = []
            self.client.send("D", order_fields(cl, qty="1"))
            with self.cond:
                self.cond.wait_for(lambda: self.open_orders() < 4 or self.lost.is_set(), 30)
            time.sleep(0.005)

    def finish(self) -> dict[str, list[str]]:
        self.stop.set()
        self.writer.join(30)
        with self.cond:
            self.cond.wait_for(lambda: self.open_orders() == 0 or self.lost.is_set(), 30)
            return dict(self.statuses)


def test_100k_mutated_messages_leave_the_gateway_up_bounded_and_trading(tmp_path):
    gw = start(tmp_path)
    try:
        trader = Trader(gw)
        time.sleep(0.5)
        rss_before, threads_before = proc_status(gw.proc.pid)
        peak = [rss_before]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                peak[0] = max(peak[0], proc_status(gw.proc.pid)[0])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stats, _ = fuzz_fix.fuzz(
            "127.0.0.1",
            gw.fix_port,
            FUZZ_SESSIONS,
            100_000,
            SEED,
            per_connection=3000,
            stranger_rounds=2,
        )
        sampling.set()
        sampler.join()
        orders = trader.finish()

        assert gw.proc.poll() is None, gw.stderr()[-3000:]
        assert stats.frames >= 100_000
        assert stats.mismatches == [], stats.mismatches[:10]
        mutator = fuzz_fix.Mutator(random.Random(0), "X")
        assert {name for name, _ in mutator.categories} <= set(stats.sent)
        assert {f.category for f in fuzz_fix.FATALS} | {s.category for s in fuzz_fix.STRANGERS} <= {
            category for category, _ in stats.fatal_outcomes
        }
        for reason in ("0", "1", "2", "4", "5", "6", "11", "13", "14"):
            assert stats.answers[("3", reason)] > 100, reason
        # the trader kept trading on its own session the whole time and got every ER
        assert not trader.lost.is_set()
        assert len(orders) >= 50
        assert all(statuses == ["0", "2"] for statuses in orders.values()), [
            (cl, s) for cl, s in orders.items() if s != ["0", "2"]
        ][:5]

        deadline = time.monotonic() + 20
        while (threads := proc_status(gw.proc.pid)[1]) > threads_before + 2:
            assert time.monotonic() < deadline, (threads_before, threads)
            time.sleep(0.2)
        rss_after = proc_status(gw.proc.pid)[0]
        assert (peak[0] - rss_before) < 200 * 1024, (rss_before, peak[0])
        assert (rss_after - rss_before) < 200 * 1024, (rss_before, rss_after)
        assert httpx.get(f"{gw.http}/health").status_code == 200
        trader.client.sock.settimeout(10)
        trader.client.logout()
    finally:
        code = gw.stop()
    assert code == 0


# --- the exact answers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = start(tmp_path_factory.mktemp("fuzz"))
    yield gw
    assert gw.stop() == 0, gw.stderr()[-3000:]


class Probe:
    """A logged-on session sending one mutation at a time and collecting what answers it."""

    def __init__(self, gw: GatewayProcess) -> None:
        self.client = FixClient("127.0.0.1", gw.fix_port, "PROBE", "FIXBRIDGE", timeout=5)
        assert self.client.logon().msg_type == "A"
        self.mut = fuzz_fix.Mutator(random.Random(SEED), "PROBE")
        self.marks = 0

    @property
    def seq(self) -> int:
        return self.client.next_seq

    def answers(self, case: fuzz_fix.Case) -> list:
        """What comes back for ``case``, up to the Heartbeat for a TestRequest sent after it;
        that TestRequest uses the MsgSeqNum after the case's, so it also proves whether the
        case used one."""
        self.client.send_raw(case.data)
        self.client.next_seq += case.consumes
        self.marks += 1
        mark = f"mark-{self.marks}"
        self.client.send("1", [(112, mark)])
        got = []
        while (msg := self.client.recv()).get(112) != mark:
            got.append(msg)
        return got

    def close(self) -> None:
        self.client.logout()


@pytest.fixture
def probe(gateway):
    p = Probe(gateway)
    yield p
    p.close()


@pytest.mark.parametrize(
    ("category", "reason", "ref_tag"),
    [
        ("unknown_tag", "0", None),
        ("repeated_tag", "13", "112"),
        ("empty_value", "4", "112"),
        ("tag_not_in_message", "2", None),
        ("required_tag_missing", "1", "112"),
        ("header_tag_in_body", "14", None),
        ("value_out_of_range", "5", "54"),
        ("incorrect_format", "6", "38"),
        ("invalid_msg_type", "11", None),
    ],
)
def test_session_level_garbage_gets_a_reject_naming_tag_and_sequence(
    probe, category, reason, ref_tag
):
    seq = probe.seq
    case = dict(probe.mut.categories)[category](seq)
    (reject,) = probe.answers(case)
    assert (reject.msg_type, reject.get(373), reject.get(45)) == ("3", reason, str(seq))
    if ref_tag is not None:
        assert reject.get(371) == ref_tag
    if category == "unknown_tag":
        sent = dict(p.split(b"=", 1) for p in case.data.split(b"\x01") if p)
        assert int(reject.get(371)) in fuzz_fix.UNKNOWN_TAGS
        assert str(reject.get(371)).encode() in sent
        assert reject.get(58) == "Invalid tag number"


@pytest.mark.parametrize(
    "category", ["bad_checksum", "body_length_short", "body_length_long", "junk_between_frames"]
)
def test_unframeable_garbage_is_dropped_silently_without_using_a_sequence_number(probe, category):
    case = dict(probe.mut.categories)[category](probe.seq)
    assert not case.consumes
    assert probe.answers(case) == []  # and the next message, at the same MsgSeqNum, is taken


def test_application_garbage_gets_application_answers(probe):
    seq = probe.seq
    (bmr,) = probe.answers(probe.mut.unsupported_msg_type(seq))
    assert (bmr.msg_type, bmr.get(380), bmr.get(372), bmr.get(45)) == ("j", "3", "AF", str(seq))
    (er,) = probe.answers(probe.mut.unknown_symbol_order(probe.seq))
    assert (er.msg_type, er.get(39), er.get(150), er.get(103)) == ("8", "8", "8", "1")


def test_huge_and_binary_test_request_ids_are_echoed_byte_for_byte(probe):
    for make in (probe.mut.huge_field, probe.mut.binary_field):
        case = make(probe.seq)
        sent = case.data.split(b"\x01112=", 1)[1].split(b"\x01", 1)[0]
        (heartbeat,) = probe.answers(case)
        assert heartbeat.msg_type == "0"
        assert heartbeat.get(112).encode("latin-1") == sent


def test_an_order_that_is_not_text_is_refused_before_the_order_core(probe, gateway):
    """Bytes that are not UTF-8 in a ClOrdID: once, the core filled the order, the client got
    'internal error; not processed', and the writer's batch could not be stored."""
    seq = probe.seq
    (reject,) = probe.answers(probe.mut.undecodable_order(seq))
    assert (reject.msg_type, reject.get(373), reject.get(371), reject.get(45)) == (
        "3",
        "6",
        "11",
        str(seq),
    )
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    listed = httpx.get(f"{gateway.http}/orders", params={"owner": "PROBE"}, headers=auth)
    assert listed.status_code == 200 and listed.json() == []


# --- defects found by fuzzing, each with its own gateway ---------------------------------------


def test_bytes_that_are_not_utf8_do_not_stop_the_engine(tmp_path):
    """Once, one such byte in any message (even a Logon) killed QuickFIX's socket thread."""
    gw = start(tmp_path)
    try:
        stranger = socket.create_connection(("127.0.0.1", gw.fix_port), timeout=10)
        mut = fuzz_fix.Mutator(random.Random(1), "CLIENT1")
        stranger.sendall(
            fuzz_fix.frame(
                mut.header(b"A", 1)
                + [(98, b"0"), (108, b"30"), (141, b"Y"), (553, b"client1"), (554, b"\xff\xfe\x80")]
            )
        )
        assert b"invalid username or password" in stranger.recv(65536)
        stranger.close()
        trader = connect_and_ping(gw, "CLIENT2")
        trader.send_raw(
            fuzz_fix.frame(
                [
                    (35, b"1"),
                    (49, b"CLIENT2"),
                    (56, b"FIXBRIDGE"),
                    (34, str(trader.next_seq).encode()),
                    (52, fuzz_fix.stamp()),
                    (112, b"\xc3\x28\xff"),
                ]
            )
        )
        trader.next_seq += 1
        assert trader.expect("0").get(112).encode("latin-1") == b"\xc3\x28\xff"
        connect_and_ping(gw, "FUZZ1").logout()
        trader.logout()
    finally:
        gw.stop()


def connect_and_ping(gw: GatewayProcess, comp_id: str) -> FixClient:
    client = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE", timeout=5)
    assert client.logon().msg_type == "A"
    client.send("1", [(112, "ping")])
    assert client.expect("0").get(112) == "ping"
    return client


def test_a_first_message_that_never_completes_does_not_stall_other_sessions(tmp_path):
    """QuickFIX reads an unidentified connection's first message in a blocking loop on its one
    socket thread; a peer trickling a never-ending first message once froze every session."""
    gw = start(tmp_path)
    try:
        trader = connect_and_ping(gw, "CLIENT2")
        slow = socket.create_connection(("127.0.0.1", gw.fix_port), timeout=10)
        slow.sendall(b"8=FIX.4.4\x019=500\x0135=A\x0149=CLIENT1\x0156=FIXBRIDGE\x01")
        answered = threading.Event()
        trickled = Counter()

        def trickle() -> None:  # one byte every 0.3 s until the trader is answered
            while not answered.is_set() and trickled["bytes"] < 60:
                time.sleep(0.3)
                try:
                    slow.sendall(b"5")
                except OSError:
                    trickled["refused"] += 1
                    return
                trickled["bytes"] += 1

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        time.sleep(1.0)  # the trickle is well under way
        trader.send("1", [(112, "during")])
        assert trader.expect("0", timeout=30).get(112) == "during"
        answered.set()
        t.join()
        # answered while the slow peer was still trickling (or already refused by the gateway)
        assert trickled["bytes"] < 60
        trader.logout()
        slow.close()
    finally:
        gw.stop()


def test_a_logon_the_engine_does_not_answer_does_not_hold_the_session(tmp_path):
    """A Logon failing dictionary validation (here, Text(58) in a Logon) gets no answer from
    QuickFIX, which then keeps the connection, and the session with it, for ever: anyone knowing
    a CompID could lock its owner out without a password."""
    gw = start(tmp_path)
    try:
        squatter = socket.create_connection(("127.0.0.1", gw.fix_port), timeout=30)
        mut = fuzz_fix.Mutator(random.Random(2), "CLIENT2")
        squatter.sendall(
            fuzz_fix.frame(
                mut.header(b"A", 1) + [(98, b"0"), (108, b"30"), (141, b"Y"), (58, b"squat")]
            )
        )
        assert squatter.recv(65536) == b""  # closed by the gateway, unanswered
        connect_and_ping(gw, "CLIENT2").logout()
        squatter.close()
    finally:
        gw.stop()
