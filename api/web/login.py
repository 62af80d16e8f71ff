"""Signing in and out in a browser: the key form, and the session cookie it sets.

Every role but the public apps' may sign in (issue 15); a grid member may also redeem a
one-time link. The forms carry a CSRF token (``api.csrf``) and sign-in is throttled per client
address (``geogrid.access.begin_login_attempt``; docs/api.md, "Access").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import csrf, errors
from api.auth import SESSION_COOKIE
from api.deps import EngineDep, RequestsSettingsDep, client_address
from api.schemas.common import ErrorEnvelope
from api.web.home import safe_next
from api.web.render import home_of, render
from api.web.session import viewer
from geogrid.access import (
    Actor,
    begin_login_attempt,
    close_session,
    login_succeeded,
    open_session,
)
from geogrid.errors import GeogridError

router = APIRouter(tags=["access"])


@router.get("/login", response_class=HTMLResponse, summary="The sign-in page")
def login_page(request: Request, engine: EngineDep, next: str | None = None) -> HTMLResponse:
    return render(
        request, "login.html", actor=viewer(request, engine), message="", next=safe_next(next)
    )


_LOGIN_ANSWERS: dict[int | str, dict[str, Any]] = {
    303: {"description": "Signed in: the session cookie is set; on to `next`"},
    401: {"content": {"text/html": {}}, "description": "The sign-in page again, saying why"},
    403: {
        "content": {"text/html": {}},
        "description": "A key that may not sign in, or a form without its CSRF token",
    },
    429: {
        "content": {"text/html": {}},
        "description": "Too many wrong keys from this address in a minute (`Retry-After`)",
    },
}


def set_session_cookie(response: Response, token: str, settings: Any) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )


def landing(actor: Actor, next: str | None) -> str:
    """Where to go after signing in: the page that asked, else the role's home."""
    target = safe_next(next)
    return home_of(actor) if target == "/" else target


@router.post(
    "/login",
    summary="Sign in with a key: sets the session cookie",
    status_code=303,
    response_class=Response,
    responses=_LOGIN_ANSWERS,
)
def login(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    api_key: Annotated[str, Form(min_length=1, max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    client = client_address(request)
    now = request.app.state.clock()
    limit = request.app.state.settings.http.login_max_failures
    try:
        csrf.check(request, csrf_token)
        # The attempt counts as a failure from the start (one transaction with the count), so
        # that a burst of concurrent wrong keys cannot all pass the throttle together.
        with engine.begin() as conn:
            attempt = begin_login_attempt(conn, client=client, now=now, limit=limit)
        with engine.begin() as conn:
            token, actor = open_session(conn, key=api_key, hours=settings.session_hours)
            login_succeeded(conn, attempt=attempt)
    except GeogridError as exc:
        retry = getattr(exc, "retry_after", None)
        return render(
            request,
            "login.html",
            status=errors.status_of(exc),
            headers={"Retry-After": str(retry)} if retry else None,
            message=exc.message,
            next=safe_next(next),
        )
    response = RedirectResponse(landing(actor, next), status_code=303)
    set_session_cookie(response, token, settings)
    return response


@router.get("/logout", response_class=HTMLResponse, summary="The sign-out page (a button)")
def logout_page(request: Request, engine: EngineDep) -> HTMLResponse:
    return render(request, "logout.html", actor=viewer(request, engine))


@router.post(
    "/logout",
    summary="Sign out: ends the session",
    status_code=303,
    response_class=Response,
    responses={
        303: {"description": "Signed out: the cookie is cleared; on to `/login`"},
        403: {"model": ErrorEnvelope, "description": "A form without its CSRF token"},
    },
)
def logout(
    request: Request,
    engine: EngineDep,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    # A sign-out forced by another site is a nuisance, not a breach, but it is refused the
    # same way (issue 14): only the app's own form, carrying the token, signs out.
    csrf.check(request, csrf_token)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with engine.begin() as conn:
            close_session(conn, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
