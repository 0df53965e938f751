"""Locust users for the OTC desk API and FIX RFQ intake; driven by :mod:`load.run_locust`.

    python -m load.run_locust            # starts a gateway, seeds RFQs, runs locust, reports

Run by hand against a gateway you started (``--host`` is its HTTP address) once its desks have
open RFQs with QuoteReqIDs ``seed-*`` (``load.run_locust.seed_rfqs`` enters them)::

    FIXBRIDGE_DESK_TOKENS=tokA,tokB,tokC FIXBRIDGE_MAX_DESK_SLOTS=17 \\
    FIXBRIDGE_FIX=127.0.0.1:9876:LOADCLIENT:FIXBRIDGE \\
        locust -f load/locustfile.py --headless -u 17 -r 17 -t 20s \\
        --host http://127.0.0.1:8000 DeskUser FixRfqUser

Users:

* :class:`DeskUser` cycles quote (POST) -> replace (PUT) -> cancel (DELETE) over the RFQs its
  desk sees whose QuoteReqID starts with ``seed-``. A desk may have one live quote per RFQ, so the
  seeded RFQs are split between the users of one desk and no two of them ever race on an RFQ.
* :class:`FixRfqUser` is one FIX session (the seeded RFQs' client) that keeps sending new
  QuoteRequests and reads everything the gateway sends it (the Quote for every desk quote, the
  QuoteStatusReport for every replace and cancel), as a client must, counting it by MsgType.
* :class:`HealthUser` only calls ``GET /health``: the baseline for the HTTP stack itself.

Configuration (environment, set by the runner):

=============================  ==============================================================
``FIXBRIDGE_DESK_TOKENS``      comma-separated desk bearer tokens, one per desk
``FIXBRIDGE_MAX_DESK_SLOTS``   upper bound on desk users in the whole run (partitioning)
``FIXBRIDGE_PROCESSES``        locust processes (``--processes``), for unique user slots
``FIXBRIDGE_CYCLE_RATE``       quote cycles per second per desk user; 0 = as fast as answered
``FIXBRIDGE_QUOTE_VALID_MS``   quote lifetime (long: quotes must not expire during the run)
``FIXBRIDGE_FIX``              ``host:port:SenderCompID:TargetCompID`` of the FIX RFQ user
``FIXBRIDGE_FIX_RFQ_RATE``     QuoteRequests per second from the FIX user
``FIXBRIDGE_WARMUP_S``         seconds after spawning before counting starts
``FIXBRIDGE_DURATION_S``       measured seconds; then the run ends
``FIXBRIDGE_MARK_FILE``        where the measured window's start and end times are written
                               (and, in ``<file>.errors.json``, failures and user exceptions)
=============================  ==============================================================
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import gevent
import gevent.lock
from locust import FastHttpUser, User, constant, constant_throughput, events, task
from locust.runners import WorkerRunner

from fixspec.messages import Side
from gateway.fix import rfq_client
from gateway.http.routes.desk import MAX_DESK_RFQS
from load.fastclient import field_value
from load.fixclient import FixClient
from load.run_locust import partition
from otc.negotiation.commands import LegRequest, SubmitRfq

SEED_PREFIX = "seed-"
SYMBOL = "BTC-27DEC26-100000-C"
QUOTE_SUBMIT = "POST /desk/rfqs/{rfq_id}/quotes"
QUOTE_REPLACE = "PUT /desk/quotes/{quote_id}"
QUOTE_CANCEL = "DELETE /desk/quotes/{quote_id}"
DESK_RFQS = "GET /desk/rfqs"
FIX_SEND = "FIX"  # request_type of what the FIX user sends
FIX_RECV = "FIX-in"  # request_type of what it receives (response_time 0: a count, not a latency)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _pacing(rate: float):
    return constant_throughput(rate) if rate > 0 else constant(0)


_local_slots = itertools.count()


def _worker_index(user: User) -> int:
    return max(0, getattr(user.environment.runner, "worker_index", 0))


class DeskUser(FastHttpUser):
    """A desk trader quoting, improving and pulling quotes on the RFQs routed to the desk."""

    wait_time = _pacing(float(_env("FIXBRIDGE_CYCLE_RATE", "0")))

    def on_start(self) -> None:
        tokens = [t for t in _env("FIXBRIDGE_DESK_TOKENS", "").split(",") if t]
        if not tokens:
            raise RuntimeError("FIXBRIDGE_DESK_TOKENS is not set")
        processes = int(_env("FIXBRIDGE_PROCESSES", "1"))
        slot = _worker_index(self) + processes * next(_local_slots)
        max_slots = max(int(_env("FIXBRIDGE_MAX_DESK_SLOTS", "1")), slot + 1)
        self.headers = {"Authorization": f"Bearer {tokens[slot % len(tokens)]}"}
        self.valid_ms = int(_env("FIXBRIDGE_QUOTE_VALID_MS", "3600000"))
        # every RFQ the API lists: the FIX user's newer RFQs must not push seeded ones out of
        # the page, or users of one desk would split different lists and quote the same RFQs
        with self.client.get(
            f"/desk/rfqs?limit={MAX_DESK_RFQS}",
            headers=self.headers,
            name=DESK_RFQS,
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                raise RuntimeError(f"desk user {slot} could not list its RFQs")
            seeded = [
                v["rfq"]["rfq_id"]
                for v in r.json()
                if v["rfq"]["quote_req_id"].startswith(SEED_PREFIX)
            ]
        expected = int(_env("FIXBRIDGE_SEEDED_RFQS", "0"))
        if expected and len(seeded) != expected:
            raise RuntimeError(f"desk user {slot} sees {len(seeded)} of {expected} seeded RFQs")
        self.rfqs = deque(partition(seeded, slot, len(tokens), max_slots))
        if not self.rfqs:
            raise RuntimeError(f"desk user {slot} got no seeded RFQ: seed more or use fewer users")
        self.bid = Decimal("4100") + Decimal(slot % 50)

    def _terms(self, bid: Decimal) -> dict:
        return {
            "bid_px": str(bid),
            "offer_px": str(bid + 200),
            "bid_size": "10",
            "offer_size": "10",
            "valid_for_ms": self.valid_ms,
        }

    @task
    def quote_replace_cancel(self) -> None:
        rfq_id = self.rfqs[0]
        self.rfqs.rotate(-1)
        quote_id = self._send(
            "POST", f"/desk/rfqs/{rfq_id}/quotes", QUOTE_SUBMIT, 201, self._terms(self.bid)
        )
        if quote_id is None:
            return
        replaced = self._send(
            "PUT", f"/desk/quotes/{quote_id}", QUOTE_REPLACE, 200, self._terms(self.bid + 10)
        )
        self._send("DELETE", f"/desk/quotes/{replaced or quote_id}", QUOTE_CANCEL, 200, None)

    def _send(self, method: str, path: str, name: str, expect: int, body: dict | None):
        with self.client.request(
            method, path, headers=self.headers, json=body, name=name, catch_response=True
        ) as r:
            if r.status_code != expect:
                r.failure(f"HTTP {r.status_code}: {(r.text or '')[:200]}")
                return None
            if method == "DELETE":
                return None
            return r.json()["quote"]["quote_id"]


class FixRfqUser(User):
    """The client of the seeded RFQs on FIX: sends QuoteRequests and drains its session."""

    fixed_count = 1
    wait_time = _pacing(float(_env("FIXBRIDGE_FIX_RFQ_RATE", "20")))

    def on_start(self) -> None:
        spec = _env("FIXBRIDGE_FIX", "")
        try:
            host, port, sender, target = spec.split(":")
        except ValueError:
            raise RuntimeError(
                f"FIXBRIDGE_FIX must be host:port:SenderCompID:TargetCompID, not {spec!r}"
            ) from None
        self.sender = sender
        self.fix = FixClient(host, int(port), sender, target)
        reply = self.fix.logon(heartbeat=30)
        if reply.msg_type != "A":
            raise RuntimeError(f"FIX logon refused: {reply.fields}")
        self.fix.sock.settimeout(None)
        self.sending = gevent.lock.Semaphore()  # the reader answers TestRequests too
        self.seq = itertools.count(1)
        self.run_id = f"{os.getpid()}-{int(time.time())}"
        self.reader = gevent.spawn(self._read, self.fix.buf)

    def on_stop(self) -> None:
        self.reader.kill(block=False)
        self.fix.close()

    @task
    def quote_request(self) -> None:
        n = next(self.seq)
        cmd = SubmitRfq(
            self.sender,
            f"fix-{self.run_id}-{n}",
            (LegRequest(SYMBOL, Side.BUY),),
            Decimal(10),
            expire_at=datetime.now(UTC) + timedelta(minutes=10),
        )
        raw = rfq_client.encode_client_rfq(cmd)
        t0 = time.perf_counter()
        exc = None
        try:
            with self.sending:
                self.fix.send(raw.msg_type, [f for f in raw.fields if f[0] != 35])
        except OSError as e:
            exc = e
        self.environment.events.request.fire(
            request_type=FIX_SEND,
            name="R QuoteRequest",
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )

    def _read(self, buf: bytes) -> None:
        """Split the inbound stream into messages with ``bytes.find`` (no per-field parsing)
        and report each by MsgType; answer TestRequests so the session stays up."""
        sock, fire = self.fix.sock, self.environment.events.request.fire
        while True:
            data = sock.recv(262144)
            if not data:
                fire(
                    request_type=FIX_RECV,
                    name="disconnected",
                    response_time=0,
                    response_length=0,
                    exception=ConnectionError("gateway closed"),
                    context={},
                )
                return
            buf += data
            start = 0
            while (end := buf.find(b"\x0110=", start)) >= 0:
                stop = buf.find(b"\x01", end + 4)
                if stop < 0:
                    break
                frame = buf[start : stop + 1]
                start = stop + 1
                msg_type = (field_value(frame, b"35") or b"?").decode()
                if msg_type == "1":
                    test_req_id = (field_value(frame, b"112") or b"").decode()
                    with self.sending:
                        self.fix.send("0", [(112, test_req_id)])
                fire(
                    request_type=FIX_RECV,
                    name=msg_type,
                    response_time=0,
                    response_length=len(frame),
                    exception=None,
                    context={},
                )
            buf = buf[start:]


class HealthUser(FastHttpUser):
    """The HTTP stack's ceiling: the cheapest route, no token, no engine."""

    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="GET /health")


def _mark(what: str) -> None:
    path = os.environ.get("FIXBRIDGE_MARK_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{what} {time.time():.6f}\n")


_runner = None  # this process's locust runner; only the master (or lone) process marks


@events.init.add_listener
def _init(environment, **_kw) -> None:
    global _runner
    _runner = environment.runner


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_kw) -> None:
    """Every process forgets what it counted during spawning and warm-up; the master (or the
    lone process) then marks the start of the measured window and ends the run after
    ``FIXBRIDGE_DURATION_S`` (``--run-time`` is only a safety limit)."""

    def start_window() -> None:
        _runner.stats.reset_all()
        if not isinstance(_runner, WorkerRunner):
            _mark("start")
            duration = float(_env("FIXBRIDGE_DURATION_S", "0"))
            if duration > 0:
                gevent.spawn_later(duration, _runner.quit)

    gevent.spawn_later(float(_env("FIXBRIDGE_WARMUP_S", "0")), start_window)


@events.test_stopping.add_listener
def _stopping(environment, **_kw) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _mark("end")


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    """Request failures and user exceptions, which locust's JSON stats leave out, beside the
    marks (``<mark file>.errors.json``) so the runner can report them."""
    path = os.environ.get("FIXBRIDGE_MARK_FILE")
    runner = environment.runner
    if not path or runner is None or isinstance(runner, WorkerRunner):
        return
    problems = {
        f"{e.method} {e.name}: {e.error}": e.occurrences for e in runner.stats.errors.values()
    }
    for exc in runner.exceptions.values():
        problems[f"exception: {exc['msg']}"] = exc["count"]
    with open(f"{path}.errors.json", "w") as f:
        json.dump(problems, f)
