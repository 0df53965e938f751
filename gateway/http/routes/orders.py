"""Orders as the database holds them (the writer is flushed first, so they are current)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gateway.http.deps import OrdersDep, ViewerToken
from gateway.http.models import OrderView
from gateway.http.problems import NOT_FOUND, problem

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("", response_model=list[OrderView])
def list_orders(
    token: ViewerToken,
    orders: OrdersDep,
    owner: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrderView]:
    """Orders, newest first; filter by client CompID (owner) and OrdStatus code."""
    return [OrderView.model_validate(r) for r in orders.orders(owner, status, limit)]


@router.get("/{order_id}", response_model=OrderView, responses=NOT_FOUND)
def get_order(order_id: str, token: ViewerToken, orders: OrdersDep) -> OrderView | JSONResponse:
    """One order by our OrderID(37)."""
    row = orders.order(order_id)
    if row is None:
        return problem(404, "Not Found", f"no order {order_id!r}")
    return OrderView.model_validate(row)
