"""The desk API as a browser page uses it: the desk stream authenticated by a subprotocol (a
browser cannot set headers on a WebSocket) and the caller's desk from GET /desk/me."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.harness import API_TOKEN, DESK_B_TOKEN, VIEWER_TOKEN, GatewayProcess
from tests.otc_support import RfqClient

DESK_A_TOKEN = VIEWER_TOKEN


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def bearer_protocol(token: str) -> str:
    return "fixbridge.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def test_a_browser_authenticates_the_desk_stream_with_a_subprotocol(gateway, client):
    url = f"ws://127.0.0.1:{gateway.http_port}/desk/stream"
    with ws_connect(url, subprotocols=["fixbridge.desk.v1", bearer_protocol(DESK_A_TOKEN)],
                    open_timeout=10) as ws:
        assert ws.subprotocol == "fixbridge.desk.v1"  # never the token back
        client.rfq("page-ws-auth")
        while (event := json.loads(ws.recv(timeout=10)))["event"] != "RfqToDesk":
            pass
        assert event["desk_id"] == "DESK_A" and event["rfq"]["quote_req_id"] == "page-ws-auth"
    for offered in (bearer_protocol("not-a-token"), bearer_protocol(API_TOKEN),
                    "fixbridge.bearer.!!!", "fixbridge.bearer."):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, subprotocols=["fixbridge.desk.v1", offered], open_timeout=10)
        assert refused.value.response.status_code == 403, offered


def test_desk_me_names_the_callers_desk(gateway):
    me = httpx.get(f"{gateway.http}/desk/me", headers={"Authorization": f"Bearer {DESK_B_TOKEN}"})
    assert me.json() == {"desk_id": "DESK_B", "token_name": "test-desk-b"}
    assert httpx.get(f"{gateway.http}/desk/me").status_code == 401
    admin = httpx.get(f"{gateway.http}/desk/me", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert admin.status_code == 403
