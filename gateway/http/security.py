"""Who is calling: bearer tokens from the configuration, each with a role.

Every failure is logged with the caller's address and handed to ``on_failure`` (the audit log),
then answered 401 (no or unknown token) or 403 (a role the route does not allow). Routes check
roles through the token aliases of :mod:`gateway.http.deps`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.security import HTTPBearer

from gateway.config import ApiToken, Config
from gateway.passwords import hash_token

log = logging.getLogger("fixbridge.api")

# The OpenAPI document's one security scheme; a missing header is ours to answer (401 problem).
bearer = HTTPBearer(auto_error=False)


class Auth:
    """Identifies bearer tokens and reports failures (see the module docstring)."""

    def __init__(self, config: Config, on_failure: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.on_failure = on_failure or (lambda **kw: None)

    def identify(self, token: str | None) -> ApiToken | None:
        if not token:
            return None
        presented = hash_token(token)  # once, not once per configured token
        return next(
            (t for t in self.config.api.tokens if hmac.compare_digest(presented, t.hash)), None
        )

    def fail(
        self, status: int, why: str, peer: str, path: str, who: str | None = None
    ) -> HTTPException:
        log.warning("API auth failure: %s from %s for %s", why, peer, path)
        self.on_failure(status=status, reason=why, peer=peer, path=path, token_name=who)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, why, headers)
