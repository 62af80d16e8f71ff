"""The landing page (``/``: public for anonymous viewers, by role for the signed in), the
language switch and the pages' own static files."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import EngineDep
from api.web.render import LANG_COOKIE, render
from api.web.session import viewer
from geogrid import i18n

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a local path (no scheme, no ``//host``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/", response_class=HTMLResponse)
def home(request: Request, engine: EngineDep) -> HTMLResponse:
    return render(request, "home.html", actor=viewer(request, engine))


@router.get("/lang/{code}")
def switch_language(code: str, next: str | None = None) -> RedirectResponse:
    """Remember the viewer's language (a cookie) and go back to the page."""
    lang = i18n.lang_of(code)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response
