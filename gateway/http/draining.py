"""The web API during a drain (SIGTERM), or while the admission gate is closed.

Once :meth:`Draining.close` is called, every POST, PUT, PATCH and DELETE is answered 503 with
``Retry-After`` (a standby, or this gateway once restarted, takes it then) before anything reads
its body or its token; GET, HEAD and WebSockets pass. Changes already admitted are counted, so
the drain can wait for them before it flushes the database writer and seals the audit log.

While ``refusal`` (the :class:`gateway.admission.Admission` gate) names a reason (the audit
trail or the database cannot make records durable), the routes that make new business (a desk
entering an RFQ, quoting (one quote or a batch), replacing a quote, answering a counter,
confirming a last-look fill) get a 503 problem whose detail is that reason, with
``Retry-After``; cancels, passes, rejects, the kill switch and the operators' session and risk
routes go on. Plain ASGI, outermost.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from typing import Any

from gateway.http.limits import ASGIApp, Receive, Scope, Send
from gateway.http.problems import problem

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# (method, path) of the routes that make new business
NEW_BUSINESS = (
    ("POST", re.compile(r"^/rfqs/?$")),
    ("POST", re.compile(r"^/desk/rfqs/[^/]+/quotes/?$")),
    ("POST", re.compile(r"^/desk/quotes/batch/?$")),
    ("PUT", re.compile(r"^/desk/quotes/[^/]+/?$")),
    ("POST", re.compile(r"^/desk/counters/[^/]+/answer/?$")),
    ("POST", re.compile(r"^/desk/quotes/[^/]+/last-look/confirm/?$")),
)


def new_business(method: str, path: str) -> bool:
    return any(method == m and pattern.match(path) for m, pattern in NEW_BUSINESS)


class Draining:
    def __init__(
        self,
        app: ASGIApp,
        retry_after: float = 10.0,
        on_refused: Callable[[str, str, str, int, str], Any] | None = None,
        refusal: Callable[[], str | None] | None = None,
        refusal_retry_after: float = 2.0,
    ) -> None:
        self.app = app
        self.retry_after = str(max(1, math.ceil(retry_after)))
        self.refusal = refusal
        self.refusal_retry_after = str(max(1, math.ceil(refusal_retry_after)))
        self.on_refused = on_refused  # (actor, method, path, status, peer): the audit trail
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0

    def close(self) -> None:
        """Refuse every change from now on."""
        with self._cond:
            self._closed = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no admitted change is in flight; False if some still are."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        reason, retry_after = None, self.retry_after
        if self.refusal is not None and new_business(scope["method"], scope["path"]):
            reason = self.refusal()  # the drain's own reason, or the audit's or database's
            retry_after = self.refusal_retry_after
        with self._cond:
            if self._closed:
                reason, retry_after = "gateway shutting down", self.retry_after
            elif reason is None:
                self._in_flight += 1
        if reason is not None:
            if self.on_refused is not None:
                peer = scope["client"][0] if scope.get("client") else "?"
                self.on_refused("anonymous", scope["method"], scope["path"], 503, peer)
            await problem(503, "Service Unavailable", reason, {"Retry-After": retry_after})(
                scope, receive, send
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
