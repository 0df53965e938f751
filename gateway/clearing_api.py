"""Clearing routes: delivery state of clearing messages and the exceptions list."""

from typing import Annotated

from fastapi import Depends, FastAPI

from gateway.api import ApiToken
from gateway.store.clearing import SqlOutbox, exceptions_view, message_view
from otc.clearing.outbox import ClearingState


def add_clearing_routes(repo: SqlOutbox):
    def add(app: FastAPI, caller) -> None:
        reader = caller("admin", "compliance")

        @app.get("/clearing/messages", tags=["clearing"])
        def messages(token: Annotated[ApiToken, Depends(reader)],
                     trade_id: str | None = None) -> list[dict]:
            """Clearing messages with their delivery state (all, or one trade's)."""
            found = (repo.for_trade(trade_id) if trade_id
                     else repo.in_states(list(ClearingState)))
            return [message_view(m) for m in found]

        @app.get("/clearing/exceptions", tags=["clearing"])
        def exceptions(token: Annotated[ApiToken, Depends(reader)]) -> list[dict]:
            """Rejected and given-up clearing messages: not retried, they need a human."""
            return exceptions_view(repo)

    return add
