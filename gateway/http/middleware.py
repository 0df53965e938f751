"""Plain ASGI middleware around every route: authentication before a body is read, and the
audit of every API action. (Request limits are :mod:`gateway.http.limits`.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.http.docs import is_docs_path
from gateway.http.limits import ASGIApp, Message, Receive, Scope, Send
from gateway.http.problems import problem
from gateway.http.security import Auth
from gateway.web import pages

OPEN_PATHS = frozenset({"/health"})


class AuthGate:
    """Refuses a request without a valid bearer token before anything reads its body, so an
    anonymous caller always gets 401 (logged and audited), whatever it sends. Roles are still
    checked per route (the token aliases of :mod:`gateway.http.deps`). Plain ASGI; WebSockets
    authenticate themselves."""

    def __init__(self, app: ASGIApp, auth: Auth, docs_public: bool = True) -> None:
        self.app = app
        self.auth = auth
        self.docs_public = docs_public

    def _open(self, path: str) -> bool:
        """Liveness, the static pages and their assets, and the API docs unless configured
        otherwise: everything else needs a token."""
        return (
            path in OPEN_PATHS or pages.is_public(path) or (self.docs_public and is_docs_path(path))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        value = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        scheme, _, presented = value.partition(" ")
        token = self.auth.identify(presented.strip()) if scheme.lower() == "bearer" else None
        if token is not None:
            scope.setdefault("state", {})["token"] = token  # for the route's role check
            await self.app(scope, receive, send)
            return
        bearer = scheme.lower() == "bearer" and presented
        why = "invalid bearer token" if bearer else "missing bearer token"
        peer = scope["client"][0] if scope.get("client") else "?"
        self.auth.fail(401, why, peer, scope["path"])
        await problem(401, "Unauthorized", why, {"WWW-Authenticate": "Bearer"})(
            scope, receive, send
        )


class AuditActions:
    """Every API action, with its actor (the token's name, set by the role check) and status,
    into the audit trail. Plain ASGI: it only watches the response start go by."""

    def __init__(self, app: ASGIApp, on_action: Callable[[str, str, str, int, str], Any]) -> None:
        self.app = app
        self.on_action = on_action

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            actor = scope.get("state", {}).get("actor") or "anonymous"
            peer = scope["client"][0] if scope.get("client") else "?"
            self.on_action(actor, scope["method"], scope["path"], status, peer)
