"""Delivery: file drop (atomic, never overwrites), HTTP(S) to the real simulator on loopback,
the dispatcher driving the outbox through acks, rejects, transport errors and timeouts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import ssl
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.clearinghouse.simulator import ClearinghouseSimulator, DropMode, SimulatorRules
from gateway.clearinghouse.transport import FileDropSender, HttpSender, tls_context
from otc.clearing import fixml
from otc.clearing.codec import parse_ack, read_submission, render
from otc.clearing.delivery import SendResult
from otc.clearing.dispatcher import ClearingDispatcher, enqueue
from otc.clearing.model import OutgoingMessage
from otc.clearing.outbox import (
    ClearingState,
    InMemoryOutbox,
    RetryPolicy,
    StatusAnswer,
    list_exceptions,
)
from otc.clearing.samples import all_samples, future_trade, irs_trade, option_trade

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    base_delay=timedelta(seconds=1),
    max_delay=timedelta(seconds=30),
    max_attempts=5,
    ack_timeout=timedelta(seconds=30),
    status_query_delay=timedelta(seconds=2),
)


class Clock:
    """Test time: the dispatcher reads it; tests move it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _dispatcher(repo, sender, clock) -> ClearingDispatcher:
    return ClearingDispatcher(repo, sender, policy=POLICY, rng=random.Random(11), clock=clock)


# --- file drop --------------------------------------------------------------------------------


def test_file_drop_writes_exact_bytes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    sender = FileDropSender(tmp_path)
    msg = render(option_trade())
    assert sender.query_status(msg.key).answer is StatusAnswer.NOT_RECEIVED
    outcome = sender.send(msg)
    assert outcome.result is SendResult.DELIVERED
    assert (tmp_path / msg.filename).read_bytes() == msg.body
    assert sorted(p.name for p in tmp_path.iterdir()) == [msg.filename]
    assert sender.query_status(msg.key).answer is StatusAnswer.RECEIVED


def test_file_drop_never_overwrites(tmp_path: Path) -> None:
    sender = FileDropSender(tmp_path)
    msg = render(option_trade())
    assert sender.send(msg).result is SendResult.DELIVERED
    again = sender.send(msg)
    assert again.result is SendResult.DELIVERED and "already dropped" in again.detail
    other = replace(msg, body=msg.body.replace(b'LastQty="25"', b'LastQty="26"'))
    clash = sender.send(other)
    assert clash.result is SendResult.INVALID and "refusing to overwrite" in clash.detail
    assert (tmp_path / msg.filename).read_bytes() == msg.body
    assert sorted(p.name for p in tmp_path.iterdir()) == [msg.filename]


def test_file_drop_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    sender = FileDropSender(tmp_path)
    padding = b"<!--" + b"x" * (2 << 20) + b"-->\n"
    messages = [
        OutgoingMessage(
            f"cb-big{i:02d}", f"T{i}", render(option_trade()).fmt, padding + bytes([65 + i])
        )
        for i in range(8)
    ]
    expected = {m.filename: m.body for m in messages}
    seen_partial: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for path in tmp_path.glob("*.xml"):
                if path.read_bytes() != expected[path.name]:
                    seen_partial.append(path.name)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for m in messages:
            assert sender.send(m).result is SendResult.DELIVERED
    finally:
        done.set()
        thread.join()
    assert seen_partial == []
    assert {p.name for p in tmp_path.glob("*.xml")} == set(expected)


def test_file_drop_errors_are_transport_errors_and_keys_must_be_safe(tmp_path: Path) -> None:
    missing = FileDropSender(tmp_path / "absent")
    outcome = missing.send(render(option_trade()))
    assert outcome.result is SendResult.TRANSPORT_ERROR and "absent" in outcome.detail
    with pytest.raises(ValueError, match="unsafe message key"):
        FileDropSender(tmp_path).send(replace(render(option_trade()), key="../etc/passwd"))


def test_dispatcher_over_file_drop_with_async_ack_and_lost_file(tmp_path: Path) -> None:
    repo, clock = InMemoryOutbox(), Clock()
    msg = enqueue(repo, option_trade(), clock())
    dispatcher = _dispatcher(repo, FileDropSender(tmp_path), clock)
    [sent] = dispatcher.run_once()
    assert (sent.state, sent.attempts) == (ClearingState.SENT, 1)
    dropped = tmp_path / msg.outgoing.filename
    assert dropped.read_bytes() == msg.body

    # no ack before the deadline: unknown, then the status query finds the file
    clock.advance(POLICY.ack_timeout)
    assert dispatcher.run_once()[0].state is ClearingState.UNKNOWN
    clock.advance(POLICY.status_query_delay)
    assert dispatcher.run_once()[0].state is ClearingState.SENT

    # the file is lost on their side: after the next deadline the query says "not received"
    # and the same bytes are dropped again
    dropped.unlink()
    clock.advance(POLICY.ack_timeout)
    dispatcher.run_once()
    clock.advance(POLICY.status_query_delay)
    [resent] = dispatcher.run_once()
    assert (resent.state, resent.attempts) == (ClearingState.SENT, 2)
    assert dropped.read_bytes() == msg.body

    # the clearinghouse's ack arrives through the inbox
    report = read_submission(dropped.read_bytes())
    ack = parse_ack(
        fixml.build_trade_capture_report_ack(report, accepted=True, clearing_trade_id="C9")
    )
    final = dispatcher.apply_ack(ack)
    assert final is not None and final.state is ClearingState.ACKED
    assert repo.get(msg.key).clearing_trade_ids == ("C9",)


# --- HTTP to the simulator --------------------------------------------------------------------


def test_http_ack_path_for_every_product() -> None:
    repo, clock = InMemoryOutbox(), Clock()
    trades = list(all_samples().values())
    for trade in trades:
        enqueue(repo, trade, clock())
    with ClearinghouseSimulator() as sim, HttpSender(sim.url, timeout=5) as sender:
        results = _dispatcher(repo, sender, clock).run_once()
        register = sim.register_rows()
    assert {m.state for m in results} == {ClearingState.ACKED}
    assert all(m.clearing_trade_ids for m in results)
    assert sorted(r.economics.trade_id for r in register) == sorted(t.trade_id for t in trades)
    assert list_exceptions(repo) == []


def test_http_reject_goes_to_exceptions_and_is_not_retried() -> None:
    repo, clock = InMemoryOutbox(), Clock()
    msg = enqueue(repo, future_trade(), clock())  # quantity 150
    enqueue(repo, irs_trade(), clock())  # notional 50m
    rules = SimulatorRules(max_quantity=Decimal("100"))
    with ClearinghouseSimulator(rules=rules) as sim, HttpSender(sim.url, timeout=5) as sender:
        dispatcher = _dispatcher(repo, sender, clock)
        dispatcher.run_once()
        clock.advance(timedelta(hours=1))
        assert dispatcher.run_once() == []
        posts = dict(sim.stats.posts_by_key)
    exceptions = list_exceptions(repo)
    assert sorted(e.trade_id for e in exceptions) == ["T-FUT-0001", "T-IRS-0001"]
    by_trade = {e.trade_id: e for e in exceptions}
    assert by_trade["T-FUT-0001"].reason == "RejRsn=99: quantity 150 above limit 100"
    assert by_trade["T-IRS-0001"].reason == "QuantityLimit: quantity 50000000 above limit 100"
    assert posts[msg.key] == 1
    assert sim.register_rows() == []


@pytest.mark.parametrize("mode", [DropMode.HANG, DropMode.DISCONNECT])
def test_http_timeout_then_status_query_finds_it_no_duplicate(mode: DropMode) -> None:
    repo, clock = InMemoryOutbox(), Clock()
    msg = enqueue(repo, option_trade(), clock())
    rules = SimulatorRules(drop_first=1, drop_mode=mode, hang_seconds=2.0)
    with ClearinghouseSimulator(rules=rules) as sim, HttpSender(sim.url, timeout=0.3) as sender:
        dispatcher = _dispatcher(repo, sender, clock)
        [first] = dispatcher.run_once()
        assert first.state is ClearingState.UNKNOWN and first.attempts == 1
        assert dispatcher.run_once() == []  # not resent blind, not even queried yet
        clock.advance(POLICY.status_query_delay)
        [second] = dispatcher.run_once()
        stats = sim.stats
        register = sim.register_rows()
    assert second.state is ClearingState.ACKED and second.attempts == 1
    assert second.clearing_trade_ids == ("SIMCCP-T000001",)
    assert stats.posts_by_key[msg.key] == 1 and stats.processed == 1 and stats.dropped == 1
    assert [r.economics.trade_id for r in register] == ["T-OPT-0001"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_transport_error_retries_with_backoff_until_the_ccp_is_up() -> None:
    repo, clock = InMemoryOutbox(), Clock()
    msg = enqueue(repo, option_trade(), clock())
    port = _free_port()
    with HttpSender(f"http://127.0.0.1:{port}", timeout=2) as sender:
        dispatcher = _dispatcher(repo, sender, clock)
        [failed] = dispatcher.run_once()
        assert (failed.state, failed.attempts) == (ClearingState.PENDING, 1)
        assert "not sent" in failed.last_error
        wait = failed.next_attempt_at - clock()
        assert POLICY.base_delay * 0.8 <= wait <= POLICY.base_delay * 1.2
        assert dispatcher.run_once() == []  # not due yet
        with ClearinghouseSimulator(port=port) as sim:
            clock.advance(wait)
            [acked] = dispatcher.run_once()
            assert sim.stats.posts_by_key[msg.key] == 1
    assert (acked.state, acked.attempts) == (ClearingState.ACKED, 2)


def test_simulator_deduplicates_by_key_and_answers_status() -> None:
    msg = render(option_trade())
    with ClearinghouseSimulator() as sim, HttpSender(sim.url, timeout=5) as sender:
        assert sender.query_status(msg.key).answer is StatusAnswer.NOT_RECEIVED
        first, second = sender.send(msg), sender.send(msg)
        status = sender.query_status(msg.key)
        clash = sender.send(replace(msg, body=msg.body.replace(b'LastQty="25"', b'LastQty="5"')))
        no_key = httpx.post(f"{sim.url}/clearing/messages", content=msg.body)
        register = httpx.get(f"{sim.url}/clearing/register").text
    assert first.ack == second.ack and first.ack.accepted
    assert (status.answer, status.ack) == (StatusAnswer.RECEIVED, first.ack)
    assert clash.result is SendResult.INVALID and "HTTP 409" in clash.detail
    assert no_key.status_code == 400
    assert (sim.stats.processed, sim.stats.replayed) == (1, 1)
    assert register.splitlines()[1].startswith("T-OPT-0001,SIMCCP-T000001,BTC-27DEC26-100000-C,")


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, made at test time."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clearing-sim.test")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_delivery_verifies_the_server_certificate(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    msg = render(option_trade())
    with ClearinghouseSimulator(tls=server_ctx) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        with HttpSender(sim.url, timeout=5) as untrusting:
            refused = untrusting.send(msg)
        with HttpSender(sim.url, verify=tls_context(ca_file=str(cert)), timeout=5) as trusting:
            accepted = trusting.send(msg)
        processed = sim.stats.processed
    assert (
        refused.result is SendResult.TRANSPORT_ERROR
        and "CERTIFICATE_VERIFY_FAILED" in refused.detail
    )
    assert accepted.result is SendResult.ANSWERED and accepted.ack.accepted
    assert processed == 1
