"""Typed API errors with stable codes, and the handlers that render every error — validation errors
and unknown routes included — as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from runledger.contracts.errors import ErrorCode

log = structlog.get_logger(__name__)


class AppError(Exception):
    status_code = 500
    code: str = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(AppError):
    status_code = 400
    code = ErrorCode.VALIDATION_ERROR


class Unauthorized(AppError):
    status_code = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(AppError):
    status_code = 403
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    status_code = 404
    code = ErrorCode.NOT_FOUND


class PaymentRequired(AppError):
    status_code = 402
    code = ErrorCode.INSUFFICIENT_CREDITS


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class Unprocessable(AppError):
    status_code = 422
    code = ErrorCode.VALIDATION_ERROR


class ServiceUnavailable(AppError):
    status_code = 503
    code = ErrorCode.TEMPORAL_UNAVAILABLE


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorEnvelope(BaseModel):
    """Every error body (SPEC §4)."""

    error: ErrorDetail


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        message = err.get("msg", "invalid")
        if err.get("type") == "string_pattern_mismatch" and err.get("loc", ("",))[0] == "path":
            message = "not a canonical UUID (8-4-4-4-12 hex digits)"  # the only patterned path ids
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "invalid request"


def _allowed_methods(request: Request) -> list[str]:
    """Every method of every route on this path (Starlette's own ``Allow`` names only the first
    route that matched the path, while each method of a path is its own route here)."""
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        match, _ = context.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(context.methods or ())
    return sorted(methods)


#: Renders an error of a dashboard path as an HTML page: ``(request, status, code, message)``.
HtmlErrorPage = Callable[[Request, int, str, str], Response]
#: Paths whose errors are pages, not JSON envelopes (the dashboard, ``api.ui``).
HTML_PREFIX = "/ui/"


def install_error_handlers(app: FastAPI, html_error_page: HtmlErrorPage | None = None) -> None:
    """Every error as the JSON envelope, except under :data:`HTML_PREFIX` when ``html_error_page``
    is given: the same code and message, drawn as a page."""

    def render(request: Request, status: int, code: str, message: str, headers: Any = None) -> Response:
        if html_error_page is not None and request.url.path.startswith(HTML_PREFIX):
            return html_error_page(request, status, code, message)
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return render(request, exc.status_code, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, 422, ErrorCode.VALIDATION_ERROR, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return render(request, exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path)
        return render(request, 500, ErrorCode.INTERNAL_ERROR, "internal error")
