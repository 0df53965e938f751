"""Senders: the edge that moves a rendered clearing message to a clearinghouse.

Two adapters behind :class:`~otc.clearing.delivery.ClearingSender`:

* :class:`FileDropSender` writes ``<key>.xml`` into a drop directory: temp file in the same
  directory, fsync, ``os.link`` to the final name (atomic, and fails instead of overwriting),
  fsync of the directory. A second drop of the same bytes is a no-op; different bytes under
  an existing name are refused.
* :class:`HttpSender` POSTs to ``{base}/clearing/messages`` with the idempotency key in the
  ``Idempotency-Key`` header and asks ``GET {base}/clearing/messages/{key}`` before resending
  after a timeout.

Errors before the request left us (connect refused/timeout) are safe to retry. Anything after
(read timeout, dropped connection, unreadable answer) leaves the outcome unknown.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from pathlib import Path

import httpx

from gateway.durable import fsync_dir
from otc.clearing.codec import parse_ack
from otc.clearing.delivery import SendOutcome, SendResult, StatusResult, WireAnswer
from otc.clearing.model import ClearingFormatError, OutgoingMessage
from otc.clearing.outbox import StatusAnswer

IDEMPOTENCY_HEADER = "Idempotency-Key"
MESSAGES_PATH = "/clearing/messages"


# --- file drop ------------------------------------------------------------------------------


class FileDropSender:
    """Atomic, no-overwrite delivery into a directory another process picks up from."""

    def __init__(self, target_dir: Path | str) -> None:
        self.target_dir = Path(target_dir)

    def _final(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"unsafe message key for a file name: {key!r}")
        return self.target_dir / f"{key}.xml"

    def send(self, msg: OutgoingMessage) -> SendOutcome:
        final = self._final(msg.key)
        try:
            fd, tmp_name = tempfile.mkstemp(
                dir=self.target_dir, prefix=f".{msg.key}.", suffix=".tmp"
            )
        except OSError as exc:
            return SendOutcome(
                SendResult.TRANSPORT_ERROR, detail=f"drop dir {self.target_dir}: {exc}"
            )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msg.body)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                if final.read_bytes() == msg.body:
                    return SendOutcome(SendResult.DELIVERED, detail=f"{final.name} already dropped")
                return SendOutcome(
                    SendResult.INVALID,
                    detail=f"refusing to overwrite {final}: it holds different content",
                )
            fsync_dir(self.target_dir)
            return SendOutcome(SendResult.DELIVERED, detail=str(final))
        except OSError as exc:
            return SendOutcome(SendResult.TRANSPORT_ERROR, detail=f"writing {final}: {exc}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def query_status(self, key: str) -> StatusResult:
        try:
            present = self._final(key).exists()
        except OSError as exc:
            return StatusResult(StatusAnswer.ERROR, detail=str(exc))
        return StatusResult(StatusAnswer.RECEIVED if present else StatusAnswer.NOT_RECEIVED)


# --- HTTPS ----------------------------------------------------------------------------------


def tls_context(
    ca_file: str | None = None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """Verifying TLS context: system CAs or ``ca_file``, plus a client cert for mutual TLS."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


class HttpSender:
    """HTTP(S) delivery with idempotency keys. ``verify`` is ``True`` (system CAs), an
    :class:`ssl.SSLContext` (see :func:`tls_context`), or ``False`` for plain test setups."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | ssl.SSLContext = True,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._client = client or httpx.Client(base_url=base_url, verify=verify, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg: OutgoingMessage) -> SendOutcome:
        headers = {IDEMPOTENCY_HEADER: msg.key, "Content-Type": msg.content_type}
        try:
            resp = self._client.post(MESSAGES_PATH, content=msg.body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            return SendOutcome(SendResult.TRANSPORT_ERROR, detail=f"not sent: {exc!r}")
        except httpx.TransportError as exc:
            return SendOutcome(SendResult.UNKNOWN, detail=f"no answer: {exc!r}")
        return self._outcome(resp)

    def _outcome(self, resp: httpx.Response) -> SendOutcome:
        code = resp.status_code
        wire = _wire(resp)
        if code == 200:
            try:
                return SendOutcome(SendResult.ANSWERED, ack=parse_ack(resp.content), wire=wire)
            except ClearingFormatError as exc:
                return SendOutcome(
                    SendResult.UNKNOWN, detail=f"unreadable answer: {exc}", wire=wire
                )
        if code == 202:
            return SendOutcome(SendResult.DELIVERED, detail="accepted for processing", wire=wire)
        if code in (400, 409, 413, 415, 422):
            return SendOutcome(
                SendResult.INVALID, detail=f"HTTP {code}: {resp.text[:2000]}", wire=wire
            )
        return SendOutcome(
            SendResult.TRANSPORT_ERROR, detail=f"HTTP {code}: {resp.text[:200]}", wire=wire
        )

    def query_status(self, key: str) -> StatusResult:
        try:
            resp = self._client.get(f"{MESSAGES_PATH}/{key}")
        except httpx.TransportError as exc:
            return StatusResult(StatusAnswer.ERROR, detail=repr(exc))
        wire = _wire(resp)
        if resp.status_code == 404:
            return StatusResult(StatusAnswer.NOT_RECEIVED, wire=wire)
        if resp.status_code == 202:
            return StatusResult(StatusAnswer.RECEIVED, wire=wire)
        if resp.status_code == 200:
            try:
                return StatusResult(StatusAnswer.RECEIVED, ack=parse_ack(resp.content), wire=wire)
            except ClearingFormatError as exc:
                return StatusResult(
                    StatusAnswer.ERROR, detail=f"unreadable status: {exc}", wire=wire
                )
        return StatusResult(StatusAnswer.ERROR, detail=f"HTTP {resp.status_code}", wire=wire)


def _wire(resp: httpx.Response) -> WireAnswer:
    """The answer's body bytes as received (after any transfer or content encoding)."""
    return WireAnswer(resp.content, resp.status_code, resp.headers.get("content-type"))
