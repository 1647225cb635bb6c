"""Errors the API answers on purpose, and the handlers that turn every failure into clear JSON.

Every error body is ``{"detail": "<one line>", "problems": ["<one line each>", ...]}``. Client
mistakes are 4xx with what to fix; nothing a client sends is ever echoed into the logs, and an
unexpected exception is logged by type and code location only (its message could quote input).
"""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ServingError", "InputProblem", "NotReady", "Busy", "install_error_handlers", "CatchAllMiddleware"]

log = logging.getLogger(__name__)


class ServingError(Exception):
    """An error answered with ``status`` and one line per problem."""

    status = 500

    def __init__(self, problems: list[str], status: int | None = None):
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        if status is not None:
            self.status = status


class InputProblem(ServingError):
    """Client input that cannot be scored (422 unless said otherwise, e.g. 413)."""

    status = 422


class NotReady(ServingError):
    """No model is loaded for the requested target yet (503: retry later)."""

    status = 503


class Busy(ServingError):
    """Too many scoring requests at once (503 with ``Retry-After``: retry shortly)."""

    status = 503
    headers = {"Retry-After": "1"}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _body(detail: str, problems: list[str] | None = None) -> dict:
    return {"detail": detail, "problems": problems if problems is not None else [detail]}


async def _serving_error(request: Request, error: ServingError) -> JSONResponse:
    detail = error.problems[0] if len(error.problems) == 1 else f"{len(error.problems)} problems with the request"
    return JSONResponse(_body(detail, error.problems), status_code=error.status,
                        headers=getattr(error, "headers", None))


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems, status = [], 422
    for e in error.errors():
        if e.get("type") == "json_invalid":
            status = 400
            problems.append(f"malformed JSON at character {e['loc'][-1]}: {e.get('ctx', {}).get('error', e['msg'])}")
        elif e.get("type") == "model_attributes_type" and tuple(e["loc"]) == ("body",):
            problems.append("expected a JSON object body (Content-Type: application/json)")
        else:
            where = ".".join(str(part) for part in e["loc"][1:] if part != "body") or "body"
            # pydantic's message, not its "input" (which would echo the whole patient back).
            problems.append(f"{where}: {e['msg']}")
    detail = problems[0] if len(problems) == 1 else f"{len(problems)} problems with the request"
    return JSONResponse(_body(detail, problems), status_code=status)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(_body(str(error.detail)), status_code=error.status_code, headers=error.headers)


class CatchAllMiddleware:
    """Answer an unexpected exception with a 500 and log it without its message.

    Starlette's own last-resort handler re-raises to the server, which logs the message (and a
    message can quote input, e.g. a KeyError's key). This one sits inside the metrics middleware,
    so the 500 is still counted.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:  # the last line of defence: log where, answer 500, keep serving
            where = "".join(traceback.format_tb(error.__traceback__))
            route = getattr(scope.get("route"), "path", "<unmatched>")
            log.error("unexpected %s on %s %s\n%s", type(error).__name__, scope["method"], route, where)
            if not started:
                await JSONResponse(_body("internal error (logged); the request was not scored"),
                                   status_code=500)(scope, receive, send)
