"""Who the browser is, for the pages: its session, and where to send it when it has none.

A page that needs a role sends an anonymous browser to ``/login?next=…`` (:class:`LoginRequired`,
answered with a 303 by ``api.errors``) and answers a signed-in one without the role with a page
saying so (403). A form's POST is taken only with the form's CSRF token (``api.csrf``) and a
session: that is the one way a cookie session writes (docs/api.md, "Access").
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from sqlalchemy import Engine

from api import csrf
from api.auth import SESSION_COOKIE, reached
from geogrid.access import Actor, session_actor
from geogrid.db.models import Role
from geogrid.errors import NotAuthenticated


class LoginRequired(Exception):
    """The page needs a signed-in viewer: the browser goes to ``/login?next=<this page>``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return "/login?next=" + quote(self.next_path, safe="/")


def viewer(request: Request, engine: Engine) -> Actor:
    """The browser's actor: its session's, or anonymous (an expired session is anonymous)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return reached(Actor.anonymous(), request)
    try:
        with engine.connect() as conn:
            return reached(session_actor(conn, token), request)
    except NotAuthenticated:
        return reached(Actor.anonymous(), request)


def _this_page(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def require(request: Request, engine: Engine, *roles: Role, what: str) -> Actor:
    """The signed-in viewer holding one of ``roles``: else to the sign-in page (anonymous) or
    :class:`Forbidden` (another role)."""
    actor = viewer(request, engine)
    if not actor.authenticated:
        raise LoginRequired(_this_page(request))
    actor.require(*roles, what=what)
    return actor


def form_actor(
    request: Request, engine: Engine, csrf_token: str | None, *roles: Role, what: str
) -> Actor:
    """The viewer of a form's POST: the CSRF token checked first, then the session and role
    (an anonymous POST goes to the sign-in page, back to the page the form was on)."""
    csrf.check(request, csrf_token)
    actor = viewer(request, engine)
    if not actor.authenticated:
        referer = request.headers.get("referer", "")
        own = f"{request.url.scheme}://{request.url.netloc}"
        back = referer[len(own) :] if referer.startswith(own + "/") else "/"
        raise LoginRequired(back)
    if roles:
        actor.require(*roles, what=what)
    return actor


def wants_html(request: Request) -> bool:
    """A browser's page request, not an API client's: no key sent, HTML accepted, and not a
    path of the JSON or Open311 APIs (which keep their JSON and XML errors)."""
    path = request.url.path
    if path.startswith(("/v1/", "/open311/", "/health", "/openapi", "/docs", "/redoc")):
        return False
    if request.headers.get("x-api-key") or request.headers.get("authorization"):
        return False
    return "text/html" in request.headers.get("accept", "")


__all__ = ["LoginRequired", "form_actor", "require", "viewer", "wants_html"]
