"""Request body size limits (413), enforced before the body is buffered or parsed."""

from __future__ import annotations

import json

from fastapi import HTTPException

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Refuse bodies over a byte limit: by ``Content-Length`` at once, else while streaming.

    Parameters
    ----------
    app : ASGI app
    default_limit : int
        Bytes allowed on any route.
    limits : dict of str to int
        Per-path limits (e.g. a larger one for VCF uploads).

    A chunked body that grows past the limit raises ``HTTPException(413)`` from ``receive``:
    FastAPI re-raises HTTPExceptions met while reading a body, so the client gets a 413 rather
    than a parse error, and nothing past the limit is ever held in memory.
    """

    def __init__(self, app, default_limit: int, limits: dict[str, int] | None = None):
        self.app = app
        self.default_limit = default_limit
        self.limits = limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(send, limit)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _message(limit))
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _message(limit: int) -> str:
    return f"request body larger than {limit} bytes"


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": _message(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
