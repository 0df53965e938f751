"""Every route in the OpenAPI document refuses anonymous callers and callers of a wrong role."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import (
    API_TOKEN,
    CLIENT_VIEWER_TOKEN,
    COMPLIANCE_TOKEN,
    VIEWER_TOKEN,
)

ROLE_TOKENS = {
    "admin": API_TOKEN,
    "desk": VIEWER_TOKEN,
    "compliance": COMPLIANCE_TOKEN,
    "client-viewer": CLIENT_VIEWER_TOKEN,
}
OPEN = {("get", "/health")}
# Routes every authenticated role may use: a desk's public key is published to all parties.
ALL_ROLES = {("get", "/desks/{desk_id}/public-key")}


def routes(gateway) -> list[tuple[str, str]]:
    spec = httpx.get(f"{gateway.http}/openapi.json").json()
    return sorted(
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    )


def call(gateway, method: str, path: str, token: str | None) -> httpx.Response:
    url = gateway.http + path.replace("{", "").replace("}", "")  # any value for path params
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url, headers=headers, json={})


def test_openapi_lists_the_routes_we_expect(gateway):
    found = routes(gateway)
    assert len(found) >= 20
    assert ("post", "/desk/rfqs/{rfq_id}/quotes") in found and ("get", "/trades") in found


def test_every_route_refuses_anonymous_and_wrong_roles(gateway):
    checked = 0
    for method, path in routes(gateway):
        if (method, path) in OPEN:
            continue
        anon = call(gateway, method, path, None)
        assert anon.status_code == 401, (method, path, anon.status_code)
        assert anon.headers["content-type"].startswith("application/problem+json")
        assert call(gateway, method, path, "not-a-token").status_code == 401, (method, path)
        statuses = {
            role: call(gateway, method, path, tok).status_code for role, tok in ROLE_TOKENS.items()
        }
        refused = {role for role, status in statuses.items() if status == 403}
        if (method, path) in ALL_ROLES:
            assert not refused, (method, path, statuses)
        else:
            assert refused, f"{method.upper()} {path}: no role is refused: {statuses}"
            assert len(refused) < len(ROLE_TOKENS), (method, path, statuses)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("role", ["desk", "compliance", "client-viewer"])
def test_only_admins_engage_the_kill_switch(gateway, role):
    r = httpx.post(
        f"{gateway.http}/risk/kill",
        json={"reason": "x"},
        headers={"Authorization": f"Bearer {ROLE_TOKENS[role]}"},
    )
    assert r.status_code == 403


def test_anonymous_gets_401_before_its_body_is_read(gateway):
    for body in (b"{not json", b'{"reason": 5}', b"x" * 5000):
        r = httpx.post(
            f"{gateway.http}/risk/kill", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 401, (body[:20], r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    bad = httpx.post(
        f"{gateway.http}/desk/rfqs/x/quotes",
        content=b"{",
        headers={"Authorization": "Bearer wrong", "content-type": "application/json"},
    )
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid bearer token"
