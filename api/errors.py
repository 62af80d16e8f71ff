"""Library errors → HTTP statuses, in one table, with one error envelope.

Every error body of ``/v1`` is ``{"error": {"code", "message", "field", …}}`` (docs/api.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geogrid import errors as domain

STATUS: dict[type[domain.GeogridError], int] = {
    domain.TooLarge: 413,
    domain.InvalidInput: 422,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.NotAuthenticated: 401,
    domain.Forbidden: 403,
    domain.DatabaseNotReady: 503,
    domain.ConfigurationError: 500,
}


def status_of(exc: domain.GeogridError) -> int:
    """The status of the nearest class in :data:`STATUS` (subclasses inherit)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def envelope(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


async def _geogrid_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.GeogridError)
    return JSONResponse({"error": exc.to_dict()}, status_code=status_of(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = exc.errors()
    first = errs[0] if errs else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path")]
    field = ".".join(loc) or None
    message = f"{field}: {first.get('msg', 'invalid value')}" if field else "invalid request"
    details = [
        {
            "field": ".".join(
                str(p) for p in x.get("loc", ()) if p not in ("query", "body", "path")
            ),
            "message": x.get("msg"),
        }
        for x in errs
    ]
    return JSONResponse(envelope("invalid_input", message, field, details=details), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(envelope(code, str(exc.detail)), status_code=exc.status_code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(domain.GeogridError, _geogrid_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
