"""Prometheus metrics of this gateway process (:mod:`gateway.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.http.deps import MetricsDep, MetricsToken

router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text exposition (OpenMetrics if asked for)",
        }
    },
)
def metrics(request: Request, token: MetricsToken, metrics: MetricsDep) -> Response:
    """Every metric of this process in the Prometheus text format (OpenMetrics when the
    ``Accept`` header asks for it). Roles: ``metrics`` (a scraper's token) and ``admin``."""
    body, content_type = metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
