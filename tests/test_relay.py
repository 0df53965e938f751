"""The front's relay: one thread moves the bytes of every connection, both ways, in order,
through a slow reader, and closes both sides when either closes or the acceptor stays silent."""

from __future__ import annotations

import socket
import threading
import time

import psutil

from gateway.fix.relay import HIGH_WATER, Relay
from tests.conftest import connect
from tests.harness import GatewayProcess, order_fields


def _pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of a real TCP connection on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    return a, b


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(10)
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(min(65536, n - len(buf)))
        assert data, f"closed after {len(buf)} of {n} bytes"
        buf += data
    return bytes(buf)


def _relayed(relay: Relay, first: bytes = b"", answer_within: float | None = None):
    """(client's far end, upstream's far end, closed event) of one relayed connection."""
    client_far, client = _pair()
    upstream, upstream_far = _pair()
    closed = threading.Event()
    relay.add(client, upstream, first, closed.set, answer_within)
    return client_far, upstream_far, closed


def test_many_connections_relay_both_ways_on_one_thread():
    relay = Relay("test-relay")
    relay.start()
    before = threading.active_count()
    conns = [_relayed(relay, first=b"logon-%d;" % i) for i in range(20)]
    try:
        assert threading.active_count() == before  # no thread per connection
        for i, (client, upstream, _) in enumerate(conns):
            assert _recv_exactly(upstream, len(b"logon-%d;" % i)) == b"logon-%d;" % i
            client.sendall(b"order-%d" % i)
            upstream.sendall(b"ack-%d" % i)
        for i, (client, upstream, _) in enumerate(conns):
            assert _recv_exactly(upstream, len(b"order-%d" % i)) == b"order-%d" % i
            assert _recv_exactly(client, len(b"ack-%d" % i)) == b"ack-%d" % i
        assert relay.relayed == 20
    finally:
        relay.stop()
    for client, upstream, closed in conns:
        assert closed.wait(5)
        client.settimeout(5)
        assert client.recv(1) == b""
        client.close()
        upstream.close()


def test_a_slow_reader_gets_every_byte_in_order():
    relay = Relay("test-relay")
    relay.start()
    client, upstream, _ = _relayed(relay)
    data = bytes(range(256)) * (4 * HIGH_WATER // 256)  # far more than the socket buffers
    try:
        sender = threading.Thread(target=upstream.sendall, args=(data,))
        sender.start()
        assert _recv_exactly(client, len(data)) == data
        sender.join(10)
    finally:
        relay.stop()
        client.close()
        upstream.close()


def test_the_last_bytes_arrive_before_the_close_is_passed_on():
    relay = Relay("test-relay")
    relay.start()
    client, upstream, closed = _relayed(relay)
    try:
        upstream.sendall(b"8=FIX.4.4|35=5|logout")
        upstream.close()  # the acceptor logs out and closes
        assert _recv_exactly(client, 21) == b"8=FIX.4.4|35=5|logout"
        client.settimeout(5)
        assert client.recv(1) == b""
        assert closed.wait(5)
        assert relay.relayed == 0
    finally:
        relay.stop()
        client.close()


def test_a_silent_acceptor_gets_the_connection_closed():
    relay = Relay("test-relay")
    relay.start()
    client, upstream, closed = _relayed(relay, first=b"logon", answer_within=0.2)
    try:
        assert closed.wait(5)  # the acceptor never answered the first message
        client.settimeout(5)
        assert client.recv(1) == b""
    finally:
        relay.stop()
        client.close()
        upstream.close()


def test_a_connection_added_after_stop_is_closed_not_left_open():
    relay = Relay("test-relay")
    relay.start()
    relay.stop()
    client, upstream, closed = _relayed(relay)
    assert closed.is_set()
    client.settimeout(5)
    assert client.recv(1) == b""
    client.close()
    upstream.close()


def test_a_running_gateway_relays_a_logged_on_session_with_no_thread_of_its_own(tmp_path):
    """Through the real front: once its Logon has passed, a session adds no thread."""
    gw = GatewayProcess(tmp_path).start()
    first = connect(gw, "CLIENT2")  # anything started lazily by a first session starts here
    try:
        _acknowledged(first, "relay-warm")
        process = psutil.Process(gw.proc.pid)
        before = _settled_threads(process)
        second = connect(gw, "CLIENT1")
        try:
            _acknowledged(second, "relay-2")
            _acknowledged(first, "relay-3")  # the other session is still relayed
            assert _settled_threads(process, until=before) == before
        finally:
            second.logout()
    finally:
        first.logout()
        assert gw.stop() == 0, gw.stderr()


def _acknowledged(client, cl_ord_id: str) -> None:
    """Send an order and read ExecutionReports until one answers it (earlier fills may come
    first)."""
    client.send("D", order_fields(cl_ord_id))
    for _ in range(10):
        if client.expect("8").get(11) == cl_ord_id:
            return
    raise AssertionError(f"no ExecutionReport for {cl_ord_id}")


def _settled_threads(process: psutil.Process, until: int | None = None) -> int:
    """The process's thread count once the short-lived logon threads have ended."""
    deadline = time.monotonic() + 10
    count = process.num_threads()
    while time.monotonic() < deadline and (until is None or count != until):
        time.sleep(0.2)
        latest = process.num_threads()
        if until is None and latest == count:
            return count
        count = latest
    return count
