"""Rendering a page: Jinja2 templates in the viewer's language, with the page's frame.

The language is the ``lang`` query parameter when given (and then remembered in the
``geogrid_lang`` cookie by ``/lang``), else the cookie, else Chinese. Every page gets ``_`` and
``ngettext`` (Babel's catalogues, :mod:`geogrid.i18n`), the viewer (``actor``), a CSRF token for
its forms (its cookie set on the answer), and filters that format figures for people:
``percent``, ``number``, ``local_time`` (the community's zone).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api import csrf
from geogrid import i18n
from geogrid.access import Actor
from geogrid.db.models import Role
from geogrid.errors import InvalidInput
from geogrid.i18n import N_

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
STATIC: Final = Path(__file__).resolve().parent / "static"
LANG_COOKIE: Final = "geogrid_lang"


def lang_of(request: Request) -> i18n.Lang:
    """The viewer's language: ``?lang=``, else the cookie, else Chinese (an unknown value is
    ignored, not an error: a page always renders)."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value:
            try:
                return i18n.lang_of(value)
            except InvalidInput:  # a language geogrid does not speak
                continue
    return i18n.DEFAULT_LANG


@cache
def environment(lang: i18n.Lang) -> Environment:
    """The templates' environment of one language (built once per process)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["percent"] = lambda v, digits=1: i18n.percent(v, lang, digits=digits)
    env.filters["number"] = lambda v, digits=0: i18n.number(v, lang, digits=digits)
    env.filters["local_time"] = lambda v, tz, seconds=False: i18n.local_time(v, tz, seconds=seconds)
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    env.globals["lang"] = lang
    env.globals["role_names"] = ROLE_NAMES
    env.globals["other_lang"] = "en" if lang == "zh" else "zh"
    env.globals["html_lang"] = "zh-CN" if lang == "zh" else "en"
    return env


#: Each role as the pages name it (translated when shown).
ROLE_NAMES: Final[dict[str, str]] = {
    Role.PUBLIC.value: N_("public app"),
    Role.MEMBER.value: N_("grid member"),
    Role.DEPARTMENT.value: N_("department"),
    Role.OFFICIAL.value: N_("official"),
    Role.PLANNER.value: N_("planner"),
    Role.ADMIN.value: N_("administrator"),
}


def nav_of(actor: Actor) -> list[tuple[str, str]]:
    """The viewer's menu: (path, English label; translated in the template)."""
    items: list[tuple[str, str]] = [("/", N_("Home"))]
    if actor.has(Role.OFFICIAL, Role.ADMIN):
        items += [
            ("/dashboard", N_("Dashboard")),
            ("/requests", N_("Requests")),
            ("/members", N_("Grid members")),
        ]
    if actor.has(Role.DEPARTMENT):
        items += [("/requests", N_("Requests"))]
    if actor.has(Role.MEMBER):
        items += [("/my", N_("My work"))]
    if actor.has(Role.OFFICIAL, Role.ADMIN, Role.PLANNER):
        items += [("/maps/coverage", N_("Coverage map")), ("/maps/hotspots", N_("Hot spots"))]
    if not actor.authenticated:
        items += [("/report", N_("Report a problem")), ("/track", N_("Follow a request"))]
    return items


def home_of(actor: Actor) -> str:
    """Where a viewer lands after signing in when no page asked for it."""
    if actor.has(Role.MEMBER):
        return "/my"
    if actor.has(Role.OFFICIAL, Role.ADMIN):
        return "/dashboard"
    if actor.has(Role.DEPARTMENT):
        return "/requests"
    return "/"


def render(
    request: Request,
    template: str,
    *,
    actor: Actor | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered for this viewer, with a CSRF token for its forms."""
    lang = lang_of(request)
    actor = actor or Actor.anonymous()
    token = csrf.token_of(request)
    settings = request.app.state.settings
    page = (
        environment(lang)
        .get_template(template)
        .render(
            request=request,
            path=request.url.path,
            here=_here(request),
            actor=actor,
            nav=nav_of(actor),
            csrf_token=token,
            tz=settings.service.timezone,
            **values,
        )
    )
    response = HTMLResponse(page, status_code=status, headers=headers)
    csrf.set_cookie(response, token, secure=settings.requests.session_cookie_secure)
    if request.query_params.get("lang") and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


def with_who_box(page: str, request: Request, actor: Actor) -> str:
    """A map page (Folium's HTML) with who is signed in and sign in/out in a corner, as every
    page of the workbench shows them."""
    box = (
        environment(lang_of(request))
        .get_template("who_box.html")
        .render(actor=actor, here=_here(request))
    )
    head, sep, tail = page.rpartition("</body>")
    return head + box + sep + tail if sep else page + box


def _here(request: Request) -> str:
    """This page's path and query without ``lang`` (the language switch adds its own)."""
    query = "&".join(
        f"{quote(k)}={quote(v)}" for k, v in request.query_params.multi_items() if k != "lang"
    )
    return request.url.path + (f"?{query}" if query else "")
