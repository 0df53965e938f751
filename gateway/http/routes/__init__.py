"""One ``router`` per resource; :func:`gateway.http.app.create_app` includes them all, in this
order (it decides which route answers when two paths could match)."""

from gateway.http.routes import (
    admin,
    audit,
    clearing,
    compliance,
    desk,
    health,
    metrics,
    orders,
    rfqs,
    risk,
    sessions,
    trades,
)

ROUTERS = (
    health.router,
    sessions.router,
    orders.router,
    risk.router,
    desk.router,
    rfqs.router,
    trades.router,
    audit.router,
    compliance.router,
    clearing.router,
    metrics.router,
    admin.router,
)
