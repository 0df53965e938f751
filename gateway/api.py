"""HTTP API (FastAPI): health, FIX sessions and orders.

Every route but /health needs a bearer token from the configuration, whose role the route must
allow. Errors are RFC 9457 problem details. Auth failures are logged with the caller's address.
"""


import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gateway.config import ApiToken, Config, RiskSection
from gateway.limits import RequestLimits
from gateway.passwords import hash_token
from gateway.store.orders import OrderReader

log = logging.getLogger("fixbridge.api")
PROBLEM = "application/problem+json"


# Text that may reach a FIX message: no control characters (an SOH would smuggle fields in)
FixText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


class SessionView(BaseModel):
    comp_id: str
    logged_on: bool
    peer: str | None = None
    next_sender_seq_num: int | None = None
    next_target_seq_num: int | None = None


class OrderView(BaseModel):
    order_id: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    symbol: str
    side: str
    ord_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    status: str
    cum_qty: Decimal
    avg_px: Decimal
    text: str | None
    created_at: datetime
    updated_at: datetime


class RiskView(BaseModel):
    client: str
    limits: RiskSection
    exposure: Decimal
    halted: str | None


class KillRequest(BaseModel):
    client: FixText | None = None  # None: every client
    reason: FixText


class RiskControl:
    """What the API may do to the core; implemented by the gateway."""

    def risk_view(self, client: str) -> dict: ...

    def set_limits(self, client: str, limits: RiskSection, actor: str) -> dict: ...

    def kill(self, client: str | None, reason: str, actor: str) -> int: ...

    def resume(self, client: str | None, actor: str) -> bool: ...


def problem(status: int, title: str, detail: str | None = None, headers=None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class Auth:
    """Bearer-token authentication and role checks, as FastAPI dependencies.

    Every failure is logged with the caller's address and handed to ``on_failure`` (the audit
    log), then answered 401 (no or unknown token) or 403 (a role the route does not allow).
    """

    def __init__(self, config: Config, on_failure=None) -> None:
        self.config = config
        self.on_failure = on_failure or (lambda **kw: None)
        self.bearer = HTTPBearer(auto_error=False)

    def identify(self, token: str | None) -> ApiToken | None:
        if not token:
            return None
        presented = hash_token(token)  # once, not once per configured token
        return next(
            (t for t in self.config.api.tokens if hmac.compare_digest(presented, t.hash)), None
        )

    def fail(self, status: int, why: str, peer: str, path: str, who: str | None = None):
        log.warning("API auth failure: %s from %s for %s", why, peer, path)
        self.on_failure(status=status, reason=why, peer=peer, path=path, token_name=who)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, why, headers)

    def require(self, *roles: str):
        async def check(  # async: a token check is too cheap to hop to a worker thread
            request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(self.bearer)],
        ) -> ApiToken:
            peer = request.client.host if request.client else "?"
            path = request.url.path
            if creds is None or creds.scheme.lower() != "bearer":
                raise self.fail(401, "missing bearer token", peer, path)
            # AuthGate has identified this request's token already; identify it here otherwise
            token = getattr(request.state, "token", None) or self.identify(creds.credentials)
            if token is None:
                raise self.fail(401, "invalid bearer token", peer, path)
            request.state.actor = token.name
            if token.role not in roles:
                raise self.fail(
                    403, f"role {token.role!r} may not use this endpoint", peer, path, token.name
                )
            return token

        return check


OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/redoc")


class AuthGate:
    """Refuses a request without a valid bearer token before anything reads its body, so an
    anonymous caller always gets 401 (logged and audited), whatever it sends. Roles are still
    checked per route by :meth:`Auth.require`. Plain ASGI; WebSockets authenticate themselves."""

    def __init__(self, app, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
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
    """Every API action, with its actor (the token's name, set by :class:`Auth`) and status,
    into the audit trail. Plain ASGI: it only watches the response start go by."""

    def __init__(self, app, on_action) -> None:
        self.app = app
        self.on_action = on_action

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message) -> None:
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


def create_api(
    config: Config,
    orders: OrderReader,
    sessions: Callable[[], list[dict]],
    risk: RiskControl | None = None,
    auth: Auth | None = None,
    extra_routes=(),
    on_action=None,
) -> FastAPI:
    app = FastAPI(
        title="fixbridge",
        version="0.1.0",
        description="FIX 4.4 gateway and OTC derivatives bridge",
        responses={401: {"model": Problem}, 403: {"model": Problem}},
    )
    auth = auth or Auth(config)
    caller = auth.require
    # added before the audit middleware (so outside it runs last), so refusals are audited too
    app.add_middleware(RequestLimits, max_body_bytes=config.api.max_body_bytes)
    app.add_middleware(AuthGate, auth=auth)

    if on_action is not None:

        app.add_middleware(AuditActions, on_action=on_action)

    @app.exception_handler(HTTPException)
    async def _http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        from http import HTTPStatus

        return problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail),
                       getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return problem(422, "Unprocessable Content", detail)

    @app.get("/health", tags=["ops"])
    def health() -> dict:
        """Liveness: the process is up and serving HTTP. Needs no token."""
        return {"status": "ok"}

    viewer = ("admin", "client-viewer", "compliance")

    @app.get("/sessions", tags=["fix"], response_model=list[SessionView])
    def list_sessions(token: Annotated[ApiToken, Depends(caller(*viewer))]) -> list[dict]:
        """Every configured FIX session: logged on or not, sequence numbers, peer address."""
        return sessions()

    @app.get("/orders", tags=["orders"], response_model=list[OrderView])
    def list_orders(
        token: Annotated[ApiToken, Depends(caller(*viewer))],
        owner: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[OrderView]:
        """Orders, newest first; filter by client CompID (owner) and OrdStatus code."""
        return [OrderView.model_validate(r) for r in orders.orders(owner, status, limit)]

    @app.get(
        "/orders/{order_id}",
        tags=["orders"],
        response_model=OrderView,
        responses={404: {"model": Problem}},
    )
    def get_order(order_id: str, token: Annotated[ApiToken, Depends(caller(*viewer))]):
        """One order by our OrderID(37)."""
        row = orders.order(order_id)
        if row is None:
            return problem(404, "Not Found", f"no order {order_id!r}")
        return OrderView.model_validate(row)

    if risk is not None:
        _risk_routes(app, caller, risk, config)
    for add_routes in extra_routes:
        add_routes(app, caller)
    return app


def _risk_routes(app: FastAPI, caller, risk: RiskControl, config: Config) -> None:
    def known(client: str) -> None:
        if config.session(client) is None:
            raise HTTPException(404, f"no session {client!r}")

    @app.get("/risk/{client}", tags=["risk"], response_model=RiskView,
             responses={404: {"model": Problem}})
    def get_risk(client: str, token: Annotated[ApiToken, Depends(caller("admin", "compliance"))]):
        """A client's limits, current exposure (open plus filled notional) and kill switch."""
        known(client)
        return risk.risk_view(client)

    @app.put("/risk/{client}/limits", tags=["risk"], response_model=RiskView,
             responses={404: {"model": Problem}})
    def put_limits(
        client: str,
        limits: RiskSection,
        token: Annotated[ApiToken, Depends(caller("admin"))],
    ):
        """Replace a client's limits at run time; applies to the next order. Audited."""
        known(client)
        return risk.set_limits(client, limits, token.name)

    @app.post("/risk/kill", tags=["risk"], responses={404: {"model": Problem}})
    def kill(body: KillRequest, token: Annotated[ApiToken, Depends(caller("admin"))]) -> dict:
        """Kill switch for one client or (no client) everyone: cancels open orders and refuses
        new ones with the reason until resumed."""
        if body.client is not None:
            known(body.client)
        cancelled = risk.kill(body.client, body.reason, token.name)
        return {"client": body.client, "halted": True, "cancelled_orders": cancelled}

    @app.post("/risk/resume", tags=["risk"], responses={404: {"model": Problem}})
    def resume(body: KillRequest, token: Annotated[ApiToken, Depends(caller("admin"))]) -> dict:
        """Lift a kill switch set by /risk/kill for the same client (or the global one)."""
        if body.client is not None:
            known(body.client)
        return {"client": body.client, "resumed": risk.resume(body.client, token.name)}
