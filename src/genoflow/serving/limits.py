"""Request limits: body size (413, before the body is buffered or parsed) and scoring concurrency (503)."""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool

from genoflow.serving.errors import Busy

__all__ = ["BodyLimitMiddleware", "ScoringSlots"]


class ScoringSlots:
    """Run scoring work in worker threads, at most ``max_concurrent`` at once and ``max_queued`` waiting.

    Parsing an upload and scoring a batch take seconds of CPU; on the event loop they would stall
    every other request, ``/health`` included (a container's liveness probe). In a thread they
    do not, and the bound keeps a burst from queueing threads and memory without limit: a request
    past ``max_concurrent + max_queued`` gets 503 with ``Retry-After`` at once.

    Parameters
    ----------
    max_concurrent : int
    max_queued : int
    """

    def __init__(self, max_concurrent: int, max_queued: int):
        self.max_concurrent = max_concurrent
        self.capacity = max_concurrent + max_queued
        self.admitted = 0  # running + waiting; only touched on the event loop, so no lock
        self._semaphore: asyncio.Semaphore | None = None

    async def run(self, fn, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` in a worker thread once a slot is free; `Busy` (503) when full."""
        if self.admitted >= self.capacity:
            raise Busy([f"busy: {self.admitted} scoring requests in progress or waiting, the most allowed "
                        "(GENOFLOW_SERVING_MAX_CONCURRENT + GENOFLOW_SERVING_MAX_QUEUED); retry shortly"])
        if self._semaphore is None:  # made on the serving loop (TestClient runs the app on its own loop)
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        self.admitted += 1
        try:
            async with self._semaphore:
                return await run_in_threadpool(fn, *args, **kwargs)
        finally:
            self.admitted -= 1


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
