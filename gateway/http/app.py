"""The web API's app: middleware, problem handlers and every router. Nothing else: the routes
are in :mod:`gateway.http.routes`, what they work with in :class:`ApiServices`.

Every route but /health, the static pages (/desk and its assets) and, unless
``api.docs_public = false``, the API docs (/docs, /redoc, /openapi.json) needs a bearer token
from the configuration, whose role the route must allow. Errors are RFC 9457 problem details.
Auth failures are logged with the caller's address.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.http.docs import add_docs
from gateway.http.limits import RequestLimits
from gateway.http.middleware import AuditActions, AuthGate
from gateway.http.problems import Problem, problem
from gateway.http.routes import ROUTERS
from gateway.http.services import ApiServices
from gateway.web import pages


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(
        title="fixbridge",
        version="0.1.0",
        description="FIX 4.4 gateway and OTC derivatives bridge",
        responses={401: {"model": Problem}, 403: {"model": Problem}},
        docs_url=None,  # served from local assets by add_docs: FastAPI's load from a CDN
        redoc_url=None,
    )
    add_docs(app)
    app.state.services = services  # read by gateway.http.deps, never changed after this
    # added before the audit middleware (so outside it runs last), so refusals are audited too
    app.add_middleware(RequestLimits, max_body_bytes=services.config.api.max_body_bytes)
    app.add_middleware(AuthGate, auth=services.auth, docs_public=services.config.api.docs_public)
    if services.on_action is not None:
        app.add_middleware(AuditActions, on_action=services.on_action)
    app.add_exception_handler(HTTPException, _http_problem)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)  # the desk blotter page and its assets: no token to load
    return app


async def _http_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(
        exc.status_code,
        HTTPStatus(exc.status_code).phrase,
        str(exc.detail),
        getattr(exc, "headers", None),
    )


async def _validation_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return problem(422, "Unprocessable Content", detail)
