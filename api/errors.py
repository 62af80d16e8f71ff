"""Library errors → HTTP statuses, in one table, with one error envelope.

Every error body of ``/v1`` is ``{"error": {"code", "message", "field", …}}`` (docs/api.md).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from geogrid import errors as domain

log = logging.getLogger("geogrid.api")

STATUS: dict[type[domain.GeogridError], int] = {
    domain.TooLarge: 413,
    domain.InvalidInput: 422,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.NotAuthenticated: 401,
    domain.Forbidden: 403,
    domain.TooManyAttempts: 429,
    domain.DatabaseNotReady: 503,
    domain.ShuttingDown: 503,
    domain.DatabaseUnavailable: 503,
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


async def geogrid_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.GeogridError)
    retry = getattr(exc, "retry_after", None)
    return JSONResponse(
        {"error": exc.to_dict()},
        status_code=status_of(exc),
        headers={"Retry-After": str(retry)} if retry is not None else None,
    )


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


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status, headers = exc.status_code, dict(getattr(exc, "headers", None) or {})
    if status == 400:
        # FastAPI's answer to a body it cannot decode (bytes that are not UTF-8 JSON, a
        # broken form): bad input, answered as all bad input is (422), not an undocumented 400.
        return JSONResponse(
            envelope("invalid_input", "the body cannot be read: send UTF-8 JSON", "body"),
            status_code=422,
        )
    if status == 405:
        # Starlette's Allow names the methods of the first route that matched the path, not
        # of every route of it (GET and POST /v1/admin/keys are two routes; RFC 9110 §15.5.6).
        headers["Allow"] = ", ".join(_methods_of(request))
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(status, "http_error")
    field = "body" if status == 413 else None
    return JSONResponse(
        envelope(code, str(exc.detail), field), status_code=status, headers=headers or None
    )


def _methods_of(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    """The database refused a value (a number out of its column's range, a NUL in text):
    the caller's input, not a fault of the service. Checks before the database name the
    field; this net catches what they missed, without echoing the value."""
    return JSONResponse(
        envelope(
            "invalid_input", "a value is out of range or holds characters that cannot be stored"
        ),
        status_code=422,
    )


async def _server_error(_request: Request, exc: Exception) -> JSONResponse:
    """The last resort: a bug answers the error envelope, never a plain-text page or a trace.
    The exception is logged (with its traceback) by the server, not sent to the client."""
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse(
        envelope("internal_error", "an internal error; it has been logged"), status_code=500
    )


def install(app: FastAPI) -> None:
    # Starlette runs the ``Exception`` handler in its outermost middleware, so it answers
    # whatever a route or another middleware raised.
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(domain.GeogridError, geogrid_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
