"""Limits on what an HTTP API client can make the gateway hold: request bodies, WebSocket
traffic, and each desk's request rate.

uvicorn and Starlette read a request body of any size into memory before a route sees it, so a
body over ``max_body_bytes`` is refused with 413: at once when Content-Length says so, else as
soon as the bytes received pass the limit. A WebSocket route may never read what its client
sends (the desk stream only pushes): uvicorn then stops reading the socket, a disconnect goes
unnoticed and the route waits for ever. Here every inbound WebSocket message is read as it
comes; one over ``max_ws_message_bytes`` closes the socket with 1009, more than ``max_ws_queued``
messages the route has not taken close it with 1008, and a client that goes away cancels the
route at once.

A desk's requests draw on its own token bucket (:class:`DeskRateLimits`): ``rate`` tokens a second
up to ``burst``; a request that finds the bucket empty is refused with 429 and a ``Retry-After``
saying when a token will be there. The bucket is checked where the caller's token is known (the
role check in ``gateway.http.deps``); the desk stream is not a request and draws nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.websockets import WebSocketDisconnect

from gateway.config import ApiSection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20  # the largest legitimate body (a quote, an RFQ, limits) is < 10 kB
MAX_WS_MESSAGE_BYTES = 64 << 10
MAX_WS_QUEUED = 16


class TooManyRequests(HTTPException):
    """429 with ``Retry-After`` (whole seconds, at least 1)."""

    def __init__(self, desk_id: str, rate: float, wait: float) -> None:
        super().__init__(
            429,
            f"desk {desk_id} is over its API rate of {rate:g} requests per second",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


class DeskRateLimits:
    """One token bucket per desk. ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(
        self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, math.ceil(rate)))
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # desk -> (tokens, as of)

    def take(self, desk_id: str) -> None:
        """Spend one of the desk's tokens, or raise :class:`TooManyRequests`."""
        with self._lock:
            now = self._clock()
            tokens, since = self._buckets.get(desk_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            if tokens < 1:
                self._buckets[desk_id] = (tokens, now)
                raise TooManyRequests(desk_id, self.rate, (1 - tokens) / self.rate)
            self._buckets[desk_id] = (tokens - 1, now)


def desk_rate_limits(api: ApiSection) -> DeskRateLimits | None:
    """The desks' buckets as ``[api]`` sets them; None when no rate is set."""
    if api.desk_requests_per_second is None:
        return None
    return DeskRateLimits(api.desk_requests_per_second, api.desk_request_burst)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body without Content-Length passes the limit; FastAPI
    passes an HTTPException raised while it reads the body on to the app's problem handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class RequestLimits:
    """ASGI middleware: see the module docstring. ``app.add_middleware(RequestLimits)``."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_ws_message_bytes: int = MAX_WS_MESSAGE_BYTES,
        max_ws_queued: int = MAX_WS_QUEUED,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_ws_message_bytes = max_ws_message_bytes
        self.max_ws_queued = max_ws_queued

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- HTTP -----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _problem(send, 400, "Bad Request", "Content-Length is not a number")
                return
            if int(declared) > self.max_body_bytes:
                await _problem(
                    send,
                    413,
                    "Content Too Large",
                    f"request body of {int(declared)} bytes exceeds {self.max_body_bytes} bytes",
                )
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # read by something that did not turn it into a response
            if started:
                raise
            await _problem(send, 413, "Content Too Large", str(exc.detail))

    # -- WebSocket --------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        closed_by_us: list[int] = []

        async def app_send(message: Message) -> None:
            if closed_by_us:
                raise WebSocketDisconnect(closed_by_us[0])
            await send(message)

        async def close(code: int, reason: str) -> None:
            closed_by_us.append(code)
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": code, "reason": reason})

        async def pump() -> None:
            """Read everything the client sends, as it comes; decide on limits here."""
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    size = len(message.get("bytes") or b"") + len(
                        (message.get("text") or "").encode()
                    )
                    if size > self.max_ws_message_bytes:
                        await close(1009, f"message over {self.max_ws_message_bytes} bytes")
                        return
                    if inbox.qsize() >= self.max_ws_queued:
                        await close(1008, "more messages than the server reads")
                        return
                inbox.put_nowait(message)
                if message["type"] == "websocket.disconnect":
                    return

        app_task = asyncio.ensure_future(self.app(scope, inbox.get, app_send))
        pump_task = asyncio.ensure_future(pump())
        try:
            await asyncio.wait({app_task, pump_task}, return_when=asyncio.FIRST_COMPLETED)
            if pump_task.done() and not app_task.done():
                # the client went away or was cut off; a route waiting on something else (a
                # queue of events) would otherwise wait for ever
                app_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app_task
        finally:
            for task in (pump_task, app_task):
                task.cancel()
            for task in (pump_task, app_task):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task  # a failed read means the client is gone: nothing to report


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
