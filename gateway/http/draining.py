"""The web API during a drain (SIGTERM): reads go on, changes are refused.

Once :meth:`Draining.close` is called, every POST, PUT, PATCH and DELETE is answered 503 with
``Retry-After`` (a standby, or this gateway once restarted, takes it then) before anything reads
its body or its token; GET, HEAD and WebSockets pass. Changes already admitted are counted, so
the drain can wait for them before it flushes the database writer and seals the audit log.
Plain ASGI, outermost.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from gateway.http.limits import ASGIApp, Receive, Scope, Send
from gateway.http.problems import problem

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Draining:
    def __init__(
        self,
        app: ASGIApp,
        retry_after: float = 10.0,
        on_refused: Callable[[str, str, str, int, str], Any] | None = None,
    ) -> None:
        self.app = app
        self.retry_after = str(max(1, math.ceil(retry_after)))
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
        with self._cond:
            refused = self._closed
            if not refused:
                self._in_flight += 1
        if refused:
            if self.on_refused is not None:
                peer = scope["client"][0] if scope.get("client") else "?"
                self.on_refused("anonymous", scope["method"], scope["path"], 503, peer)
            await problem(
                503,
                "Service Unavailable",
                "gateway shutting down",
                {"Retry-After": self.retry_after},
            )(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
