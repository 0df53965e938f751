"""Hostile HTTP API input: every answer a problem body, never a 500.

schemathesis generates requests from the OpenAPI document of a running gateway (valid ones and
ones that break the schema, derandomized, a bounded number per operation): no operation may
answer 5xx, with an admin or a desk token; without a token every operation but /health and
/ready answers 401. Oversized bodies are refused with 413 and a flood on the desk WebSocket is
closed by the server, which stays healthy. :class:`gateway.http.limits.RequestLimits` is also
checked in-process on the API built exactly as the gateway builds it, where the desk stream's
subscriptions can be seen.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from gateway.audit.feed import Auditor
from gateway.audit.keys import generate_signing_key
from gateway.config import Config
from gateway.http.app import create_app
from gateway.http.desk_messages import MAX_UNREADABLE_IN_A_ROW
from gateway.http.limits import MAX_BODY_BYTES, MAX_WS_QUEUED, RequestLimits
from gateway.http.security import Auth
from gateway.http.services import ApiServices
from gateway.http.streams import DeskHub
from gateway.negotiation import NegotiationService, engine_for, load_desk_keys
from gateway.risk_control import RiskControl
from gateway.store.clearing import SqlOutbox
from gateway.store.connect import connect
from gateway.store.orders import OrderReader
from gateway.store.rfqs import RfqArchive
from gateway.store.trades import TradeReader, TradesWithClearing
from gateway.store.writer import Writer
from otc.orders import OrderManager
from otc.risk import RiskCheck
from otc.venue import SimulatedVenue
from tests.harness import API_TOKEN, VIEWER_TOKEN, GatewayProcess, config_text, free_port

EXAMPLES = 25  # per operation and generation mode
OPEN = ("GET /health", "GET /ready")  # the operations that need no token
FIVE_MB = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(tmp_path_factory.mktemp("api-fuzz")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()[-3000:]


BOTH = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def explore(
    base_url: str, headers: dict[str, str], modes: tuple[GenerationMode, ...] = BOTH
) -> tuple[Counter, list[str]]:
    """Every operation of the OpenAPI document, with cases that fit the schema (positive) and
    cases that break it (negative); returns the status codes seen by operation and a line for
    every 5xx."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # our Authorization header only: generated security parameters would replace it
    schema.config.generation.update(with_security_parameters=False)
    seen: Counter = Counter()
    errors: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            for mode in modes:
                try:
                    _explore(result.ok(), mode, session, base_url, headers, seen, errors)
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to break (e.g. /health)
    return seen, errors


def _explore(
    operation,
    mode: GenerationMode,
    session: requests.Session,
    base_url: str,
    headers: dict[str, str],
    seen: Counter,
    errors: list[str],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        seen[(operation.label, response.status_code)] += 1
        if response.status_code >= 500:
            errors.append(
                f"{operation.label} ({mode.value}): {response.status_code} "
                f"{response.text[:200]} for {case.path_parameters} {case.query} "
                f"{case.body!r:.200}"
            )

    call()


@pytest.mark.parametrize("token", [API_TOKEN, VIEWER_TOKEN], ids=["admin", "desk"])
def test_no_operation_answers_5xx(gateway, token):
    seen, errors = explore(gateway.http, {"Authorization": f"Bearer {token}"})
    assert errors == [], errors[:5]
    operations = {label for label, _ in seen}
    assert len(operations) >= 20
    # the token was used: some operations succeeded, not only refusals
    assert any(200 <= status < 300 for _, status in seen)
    assert gateway.proc.poll() is None
    assert httpx.get(f"{gateway.http}/health").status_code == 200


def test_without_a_token_every_operation_but_health_and_ready_is_401(gateway):
    seen, errors = explore(gateway.http, {}, (GenerationMode.POSITIVE,))
    assert errors == []
    wrong = {(label, status) for label, status in seen if status != (200 if label in OPEN else 401)}
    assert wrong == set()


def test_without_a_token_a_malformed_request_never_succeeds(gateway):
    """FastAPI parses and validates a body before it runs the token check, so a malformed
    body is answered 400/422 even without a token; never anything that succeeds."""
    seen, errors = explore(gateway.http, {}, (GenerationMode.NEGATIVE,))
    assert errors == []
    succeeded = {(label, status) for label, status in seen if label not in OPEN and status < 400}
    assert succeeded == set()
    assert {status for _, status in seen} <= {200, 400, 401, 422}


# --- oversized bodies and WebSocket floods, against the running gateway -------------------------


def test_a_5mb_json_body_is_refused_and_the_gateway_survives(gateway):
    auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    body = json.dumps({"max_order_qty": "1", "pad": "x" * FIVE_MB}).encode()
    r = httpx.put(f"{gateway.http}/risk/CLIENT1/limits", content=body, headers=auth, timeout=30)
    assert r.status_code == 413, r.text[:300]
    assert r.json()["status"] == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(FIVE_MB // 65536):
            yield b"y" * 65536
        yield b'"}'

    r = httpx.post(f"{gateway.http}/risk/kill", content=chunks(), headers=auth, timeout=30)
    assert r.status_code == 413, r.text[:300]
    assert gateway.proc.poll() is None
    assert httpx.get(f"{gateway.http}/health").status_code == 200
    assert httpx.get(f"{gateway.http}/risk/CLIENT1", headers=auth).status_code == 200


def desk_stream(base_url: str, token: str = VIEWER_TOKEN):
    url = base_url.replace("http://", "ws://") + "/desk/stream"
    return ws_connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=10,
        close_timeout=5,
        max_size=None,
    )


def flood(ws, message: bytes, count: int, within: float = 20.0) -> int | None:
    """Send ``message`` up to ``count`` times; the close code the server sent, if it closed
    within ``within`` seconds (a server that stops reading leaves the sender blocked)."""
    outcome: list[int | None] = []

    def run() -> None:
        try:
            for _ in range(count):
                ws.send(message)
            deadline = time.monotonic() + within
            while True:  # the route answers what it reads (errors): wait past them for the close
                ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            outcome.append(closed.rcvd.code if closed.rcvd else None)
        except (TimeoutError, OSError):
            pass

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    sender.join(within)
    if sender.is_alive():  # still blocked in send: unblock it, the server did not close
        ws.socket.shutdown(socket.SHUT_RDWR)
        sender.join(5)
    return outcome[0] if outcome else None


def test_a_websocket_flood_on_the_desk_stream_is_closed(gateway):
    with desk_stream(gateway.http) as ws:
        assert flood(ws, b"L" * (1024 * 1024), 64) == 1009  # many large messages
    with desk_stream(gateway.http) as ws:
        assert flood(ws, b"s" * 512, 5000) == 1008  # many small ones the server never reads
    assert gateway.proc.poll() is None
    assert httpx.get(f"{gateway.http}/health").status_code == 200
    # the stream still serves desks: a new RFQ reaches DESK_A
    with desk_stream(gateway.http) as ws:
        r = httpx.post(
            f"{gateway.http}/rfqs",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            json={
                "client_id": "CLIENT1",
                "quote_req_id": "after-flood",
                "legs": [{"symbol": "BTC-PERP", "side": "buy"}],
                "quantity": "1",
            },
        )
        assert r.status_code == 201, r.text
        event = json.loads(ws.recv(timeout=10))
        assert r.json()["rfq"]["rfq_id"] in json.dumps(event)


# --- RequestLimits in-process, on the API built as the gateway builds it ------------------------


class InProcessApi:
    """create_app with every route and RequestLimits wired as proposed, served by uvicorn."""

    def __init__(self, tmp: Path) -> None:
        raw = tomllib.loads(config_text(free_port(), free_port(), tmp / "data"))
        self.config = Config.model_validate(raw)
        self.database = connect(f"sqlite:///{tmp / 'api.db'}")
        self.writer = Writer(self.database)
        self.hub = DeskHub()
        keyring = load_desk_keys(tmp / "desk-keys", self.config.otc.desks)
        self.service = NegotiationService(engine_for(self.config, keyring), sinks=[self.hub.sink])
        self.service.start()
        generate_signing_key(tmp / "audit")
        self.auditor = Auditor(tmp / "audit")
        orders = OrderManager(SimulatedVenue({}), RiskCheck())
        outbox = SqlOutbox(self.database)
        app = create_app(
            ApiServices(
                config=self.config,
                auth=Auth(self.config),
                orders=OrderReader(self.database, self.writer),
                sessions=lambda: [],
                risk=RiskControl(
                    orders,
                    threading.RLock(),
                    lambda action: action(orders),
                    self.service.cancel_client_rfqs,
                    lambda kind, actor, payload: None,
                ),
                negotiation=self.service,
                desk_hub=self.hub,
                trades=TradesWithClearing(TradeReader(self.database, self.writer), outbox),
                rfq_archive=RfqArchive(self.database),
                auditor=self.auditor,
                audit_exports=tmp / "exports",
                clearing_outbox=outbox,
            )
        )
        app.add_middleware(RequestLimits)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.service.stop()
        self.writer.close()
        self.auditor.close()
        self.database.dispose()


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[InProcessApi]:
    served = InProcessApi(tmp_path_factory.mktemp("limits"))
    yield served
    served.close()


ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def test_limits_refuse_a_declared_oversized_body_before_reading_it(api):
    body = b'{"reason": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    r = httpx.post(f"{api.url}/risk/kill", content=body, headers=ADMIN, timeout=30)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Content Too Large"


def test_limits_count_a_body_without_content_length(api):
    def chunks() -> Iterator[bytes]:
        yield b'{"reason": "'
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"y" * 4096
        yield b'"}'

    r = httpx.post(f"{api.url}/rfqs", content=chunks(), headers=ADMIN, timeout=30)
    assert r.status_code == 413
    assert "exceeds" in r.json()["detail"]


def test_limits_pass_ordinary_requests_through(api):
    r = httpx.post(
        f"{api.url}/rfqs",
        headers=ADMIN,
        json={
            "client_id": "CLIENT2",
            "quote_req_id": "q-limits",
            "side": "sell",
            "legs": [{"symbol": "ETH-PERP", "side": "buy"}],
            "quantity": "2",
        },
    )
    assert r.status_code == 201, r.text
    chunked = httpx.post(
        f"{api.url}/rfqs", headers=ADMIN, content=iter([b'{"client_id": ', b'"CLIENT2"}'])
    )
    assert chunked.status_code == 422  # read whole, then validated as usual


def test_limits_close_a_websocket_flood_and_release_the_subscription(api):
    with desk_stream(api.url) as ws:
        assert flood(ws, b"L" * (70 * 1024), 10) == 1009
    with desk_stream(api.url) as ws:
        # the route reads a desk's messages: a flood it keeps up with is closed when it has
        # answered too many unreadable ones in a row; one it does not, by the queue limit
        assert flood(ws, b"s", MAX_UNREADABLE_IN_A_ROW + MAX_WS_QUEUED) == 1008
    deadline = time.monotonic() + 5
    while api.hub.subscribers("DESK_A"):
        assert time.monotonic() < deadline, "the closed streams still hold subscriptions"
        time.sleep(0.02)


def test_a_desk_that_disconnects_is_unsubscribed_at_once(api):
    """Without reading the socket, the route never learnt that its client had gone."""
    deadline = time.monotonic() + 5
    with desk_stream(api.url):
        while api.hub.subscribers("DESK_A") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    while api.hub.subscribers("DESK_A"):
        assert time.monotonic() < deadline, "the route still waits for events for a gone client"
        time.sleep(0.02)
