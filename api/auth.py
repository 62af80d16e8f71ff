"""Who is calling: API keys (``X-API-Key`` or ``Authorization: Bearer``), the browser
session cookie of officials and planners, and the sign-in and sign-out pages.

Keys and sessions are checked by ``geogrid.access``; here they are read from the
HTTP request. A session cookie authorizes safe methods (GET, HEAD) only: a ``/v1`` write
always needs the key in a header, which a cross-site page cannot add. The app's own forms
(sign in, sign out) carry a CSRF token (``api.csrf``), and sign-in is throttled per client
address (``geogrid.access.begin_login_attempt``; docs/api.md, "Access").
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api import csrf, errors
from api.deps import EngineDep, RequestsSettingsDep, client_address
from api.schemas.auth import MeOut
from api.schemas.common import ErrorEnvelope
from geogrid.access import (
    Actor,
    begin_login_attempt,
    check_key,
    close_session,
    login_succeeded,
    open_session,
    record_key_use,
    session_actor,
)
from geogrid.errors import DatabaseUnavailable, GeogridError, NotAuthenticated

log = logging.getLogger("geogrid.api")

SESSION_COOKIE = "geogrid_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key (`geogrid keys create`)."
)
_bearer = HTTPBearer(auto_error=False, description="The same key as a bearer token.")


def get_actor(
    request: Request,
    engine: EngineDep,
    key: Annotated[str | None, Depends(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Actor:
    """The caller: a key's actor, a session's (safe methods only), or anonymous.

    An ``Authorization`` header of another scheme (``Basic …``) is refused (401), not taken
    for anonymous: a client that thinks it sent credentials must hear that it did not."""
    scheme = request.headers.get("authorization")
    if scheme is not None and bearer is None:
        raise NotAuthenticated(
            "the Authorization header must be 'Bearer <key>'", field="Authorization"
        )
    if key is None and request.headers.get("x-api-key") is not None:
        raise NotAuthenticated("the X-API-Key header is empty", field="X-API-Key")
    secret = key or (bearer.credentials if bearer is not None else None)
    if secret:
        # Read, then record the use apart and only when due (once a minute per key): a key
        # check must not wait for SQLite's write lock, and a failed record costs nothing.
        with engine.connect() as conn:
            actor, due = check_key(conn, secret)
        if due and actor.key_id is not None:
            try:
                with engine.begin() as conn:
                    record_key_use(conn, key_id=actor.key_id)
            except DatabaseUnavailable:
                log.info("the use of key %s was not recorded: the database is busy", actor.label)
        return reached(actor, request)
    token = request.cookies.get(SESSION_COOKIE)
    if token and request.method in SAFE_METHODS:
        with engine.connect() as conn:  # reads only
            return reached(session_actor(conn, token), request)
    return reached(Actor.anonymous(), request)


def reached(actor: Actor, request: Request) -> Actor:
    """``actor`` with where the call came from, for the audit log: the client's address
    (:func:`api.deps.client_address`: behind a trusted proxy, the address it forwards) and the
    route as declared (``POST /v1/requests/{request_id}/{action}``: no ids or tokens from the
    path)."""
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    return actor.reached(client=client_address(request) or None, via=f"{request.method} {route}")


ActorDep = Annotated[Actor, Depends(get_actor)]

#: ``openapi_extra`` of a route anyone may call, a key only adding to what it answers: its
#: OpenAPI security lists the empty requirement ``{}`` beside the key schemes (OpenAPI 3.1,
#: "Security Requirement Object": an empty object makes security optional).
OPEN: dict[str, Any] = {"security": [{}]}

router = APIRouter(tags=["access"])

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>geogrid — 登录 sign in</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:3em auto;max-width:28em}}
label,input,button{{display:block;width:100%;margin:.4em 0}}input{{padding:.4em}}
.error{{color:#b00}}</style></head><body>
<h1>geogrid 登录 · Sign in</h1>
<p>Officials and planners sign in with their API key; maps and exports then open without a
key in the link.</p>
{message}
<form method="post" action="/login">
<label for="api_key">API key</label>
<input id="api_key" name="api_key" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit">Sign in 登录</button>
</form></body></html>"""

_LOGOUT_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>geogrid — 退出 sign out</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:3em auto;max-width:28em}}
button{{display:block;width:100%;margin:.4em 0}}</style></head><body>
<h1>geogrid 退出 · Sign out</h1>
<form method="post" action="/logout">
<input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit">Sign out 退出</button>
</form></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only a local path (no scheme, no ``//host``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: str,
) -> HTMLResponse:
    """A form page with a CSRF token, its cookie set on the answer."""
    token = csrf.token_of(request)
    response = HTMLResponse(
        template.format(csrf=html.escape(token), **values), status_code=status, headers=headers
    )
    csrf.set_cookie(
        response, token, secure=request.app.state.settings.requests.session_cookie_secure
    )
    return response


@router.get("/login", response_class=HTMLResponse, summary="The sign-in page")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _page(request, _PAGE, message="", next=html.escape(_safe_next(next)))


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
    target = html.escape(_safe_next(next))
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
            token, _actor = open_session(conn, key=api_key, hours=settings.session_hours)
            login_succeeded(conn, attempt=attempt)
    except GeogridError as exc:
        retry = getattr(exc, "retry_after", None)
        return _page(
            request,
            _PAGE,
            status=errors.status_of(exc),
            headers={"Retry-After": str(retry)} if retry else None,
            message=f'<p class="error">{html.escape(exc.message)}</p>',
            next=target,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )
    return response


@router.get("/logout", response_class=HTMLResponse, summary="The sign-out page (a button)")
def logout_page(request: Request) -> HTMLResponse:
    return _page(request, _LOGOUT_PAGE)


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


@router.get(
    "/v1/me",
    openapi_extra=OPEN,
    summary="Who am I: the role and scope of the key or session",
    response_model=MeOut,
    responses={401: {"model": ErrorEnvelope, "description": "A wrong or revoked key"}},
)
def me(actor: ActorDep) -> dict[str, object]:
    return {
        "authenticated": actor.authenticated,
        "role": actor.role.value,
        "label": actor.label,
        "community_id": actor.community_id,
        "member_id": actor.member_id,
        "department_id": actor.department_id,
        "personal_data": actor.personal_data,
        "via_session": actor.via_session,
    }
