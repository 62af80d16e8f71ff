"""Errors as a browser should see them: a page in its language, or the sign-in page.

``api.errors`` answers every error as the JSON envelope; for a browser's page request
(:func:`api.web.session.wants_html`) this answers instead: a missing session → 303 to
``/login?next=…`` (also for the official maps, which API clients still get as JSON 401), any
other domain error or 404 → a page saying what is wrong, with the same status.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import errors
from api.web.render import render
from api.web.session import LoginRequired, viewer, wants_html
from geogrid import errors as domain


def _error_page(request: Request, status: int, message: str) -> Response:
    try:
        actor = viewer(request, request.app.state.engine)
    except domain.GeogridError:  # the database is down: the page says so without a name
        actor = None
    return render(
        request, "error.html", actor=actor, status=status, status_code=status, message=message
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


async def _geogrid_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, domain.GeogridError)
    if not wants_html(request):
        return await errors.geogrid_error(request, exc)
    if isinstance(exc, domain.NotAuthenticated):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(LoginRequired(path).location, status_code=303)
    response = _error_page(request, errors.status_of(exc), exc.message)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and wants_html(request):
        return _error_page(request, 404, "")
    return await errors.http_error(request, exc)


def install(app: FastAPI) -> None:
    """After ``api.errors.install``: these handlers take over for browsers' page requests."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(domain.GeogridError, _geogrid_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
