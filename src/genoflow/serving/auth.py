"""API-key authentication for prediction and admin routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["require_api_key"]

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="one of GENOFLOW_API_KEYS")
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <one of GENOFLOW_API_KEYS>")


async def require_api_key(request: Request, key: Annotated[str | None, Depends(_header)],
                          bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Pass when ``X-API-Key`` or ``Authorization: Bearer`` holds a configured key; else 401."""
    presented = key or (bearer.credentials if bearer else None)
    if not presented or not _accepted(presented, request.app.state.settings.api_keys):
        raise HTTPException(401, "missing or invalid API key: send it as X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})


def _accepted(presented: str, keys: frozenset[str]) -> bool:
    # Compare against every key in constant time, so timing tells nothing about a near miss.
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched
