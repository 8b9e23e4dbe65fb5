"""OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, for every `/v1/*`
response the gateway refuses (FastAPI's `{"detail": ...}` stays on the other routes). The SDK
reads `message` into its exceptions and picks the exception class by status."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from contracts.body_limit import detail_body

OPENAI_PREFIX = "/v1/"
# a status without a code of its own gets this one
DEFAULT_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_value",
    429: "rate_limit_exceeded",
    502: "upstream_failed",
    503: "overloaded",
}


class OpenAIHTTPError(HTTPException):
    """An HTTP error that names its OpenAI `code` and `param` (on any route a plain
    HTTPException with `detail`)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.code = code
        self.param = param


def error_type(status: int) -> str:
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": error_type(status),
            "param": param,
            "code": code or DEFAULT_CODES.get(status),
        }
    }


def field_of(message: str) -> str | None:
    """`param` from the project's one-line messages, which start with the field: `language: ...`."""
    head, sep, _ = message.partition(":")
    return head.strip() if sep and head.strip().replace("[]", "").isidentifier() else None


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX)


def refusal_body(path: str, message: str) -> bytes:
    """The body of a 413 the body-size middleware sends before any route runs."""
    if is_openai_path(path):
        return json.dumps(error_body(413, message, "too_large")).encode()
    return detail_body(path, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not is_openai_path(request.url.path):
        return await http_exception_handler(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    code = getattr(exc, "code", None)
    param = getattr(exc, "param", None) or field_of(message)
    return JSONResponse(
        error_body(exc.status_code, message, code, param),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not is_openai_path(request.url.path):
        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    message = f"{param or 'request'}: {first.get('msg', 'invalid request')}"
    return JSONResponse(error_body(422, message, "invalid_value", param), status_code=422)


async def _server_error(request: Request, exc: Exception) -> Response:
    """Unexpected failures (the traceback is still logged by the server)."""
    if not is_openai_path(request.url.path):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return JSONResponse(error_body(500, "internal error; please report it", "internal"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
