"""The web API served by uvicorn on a thread of its own. The main thread owns signals: uvicorn
installs no handlers off the main thread."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from gateway.config import ApiSection
from gateway.http.limits import MAX_WS_MESSAGE_BYTES

log = logging.getLogger("fixbridge")


class HttpServer:
    def __init__(self, app: FastAPI, listen: str, api: ApiSection) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host, int(port)
        self.tls = api.tls_cert is not None
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=int(port),
                log_level="warning",
                access_log=False,
                ssl_certfile=str(api.tls_cert) if api.tls_cert else None,
                ssl_keyfile=str(api.tls_key) if api.tls_key else None,
                # RequestLimits closes a desk stream's oversized message (over 64 KiB) with a
                # closing handshake; uvicorn's own limit, kept as a ceiling on what it buffers,
                # fails the connection at once, and a client still sending then gets a reset
                # where it should read the 1009
                ws_max_size=max(api.max_body_bytes, MAX_WS_MESSAGE_BYTES),
            )
        )

    def start(self, timeout: float = 10.0) -> None:
        """Serve, and return once uvicorn is listening."""
        server = self._server
        threading.Thread(target=server.run, name="http", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"HTTP API did not start on {self.host}:{self.port}")
        scheme = "https" if self.tls else "http"
        log.info("HTTP API on %s://%s:%s (OpenAPI at /docs)", scheme, self.host, self.port)

    def stop(self) -> None:
        """Ask uvicorn to finish; the process exits without waiting for it."""
        self._server.should_exit = True
