"""A grid member's pages (issue 15, item 4) and the one-time sign-in links officials print for
them (item 1).

* ``/members`` (officials, admins): the members of the viewer's communities, each with a
  button to print a sign-in link; ``/members/{id}/sign-in-link`` makes one (POST) and shows it
  with its QR code, ready to print.
* ``/login/link/{token}``: the member's side. The GET only shows a button — link scanners and
  chat previews fetch GETs, which must not spend the link —, the POST redeems it and sets the
  session cookie as ``/login`` does.
* ``/my`` (members): my open requests, soonest due first, with one-tap start and resolve
  with a photo (resized in the browser by ``/static/photo.js``), and a visit (走访) form. The
  forms call the library functions of ``POST /v1/requests/{id}/{action}`` and
  ``POST /v1/visits``: the same rights (a member acts on its own requests and households
  only), the same version check.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Final

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from api import csrf, errors
from api.deps import EngineDep, RequestsSettingsDep, base_url
from api.params import Id
from api.web.login import set_session_cookie
from api.web.render import lang_of, render
from api.web.session import form_actor, require, viewer
from geogrid import directory, i18n
from geogrid.access import (
    Actor,
    check_sign_in_link,
    create_sign_in_link,
    redeem_sign_in_link,
    sign_in_link_member,
)
from geogrid.db import models
from geogrid.db.queries.access import MemberCard
from geogrid.errors import (
    Conflict,
    DatabaseUnavailable,
    GeogridError,
    InvalidInput,
    NotAuthenticated,
)
from geogrid.i18n import N_, REQUEST_STATUS_NAMES
from geogrid.periods import zone
from geogrid.privacy import mask_name
from geogrid.requests import views, visits, webhooks
from geogrid.requests.media import Photo
from geogrid.requests.workflow import TRANSITIONS, Action, ActionInput, act
from geogrid.settings import RequestsSettings

log = logging.getLogger("geogrid.api")
router = APIRouter(include_in_schema=False)
Role = models.Role

#: Each request status as the work list names it.
STATUS_NAMES: Final[dict[str, str]] = REQUEST_STATUS_NAMES
#: The kinds of visit (geogrid.requests.visits.VISIT_KINDS) as the form names them.
VISIT_KIND_NAMES: Final[dict[str, str]] = {
    "routine": N_("routine visit"),
    "care": N_("care visit"),
    "follow_up": N_("follow-up"),
    "mediation": N_("mediation"),
    "other": N_("other"),
}
#: What the work list says after a form's action.
DONE: Final[dict[str, str]] = {
    "start": N_("Request %(id)s started."),
    "resolve": N_("Request %(id)s resolved."),
    "visit": N_("Visit recorded."),
}
#: The longest side of a photo after the browser shrinks it (photo.js): the service sets no
#: pixel limit (geogrid/requests/media.py limits bytes), this keeps uploads from a phone fast.
PHOTO_MAX_SIDE: Final = 2560
CONFLICT: Final = N_("Someone else acted on this request; reload the page to see it as it is now.")


# --- officials: members and their sign-in links -----------------------------------------------


@router.get("/members", response_class=HTMLResponse)
def members_page(request: Request, engine: EngineDep) -> HTMLResponse:
    actor = require(request, engine, Role.OFFICIAL, Role.ADMIN, what="the members list")
    with engine.begin() as conn:
        members = [
            m for m in directory.list_members(conn, actor=actor, via="GET /members") if m["active"]
        ]
    return render(request, "member/members.html", actor=actor, members=members)


def _card(engine: Engine, actor: Actor, member_id: int) -> MemberCard:
    with engine.connect() as conn:
        return sign_in_link_member(conn, member_id=member_id, actor=actor)


@router.get("/members/{member_id}/sign-in-link", response_class=HTMLResponse)
def sign_in_link_page(request: Request, engine: EngineDep, member_id: Id) -> HTMLResponse:
    actor = require(request, engine, Role.OFFICIAL, Role.ADMIN, what="a member's sign-in link")
    card = _card(engine, actor, member_id)
    return render(
        request,
        "member/sign_in_link.html",
        actor=actor,
        member=card,
        display_name=mask_name(card.name),
        link=None,
    )


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an inline ``<svg>`` element (error correction M: a printed
    page may get creased)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=4,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    code.add_data(text)
    code.make(fit=True)
    svg: str = code.make_image().to_string(encoding="unicode")
    return svg[svg.index("<svg") :]


@router.post("/members/{member_id}/sign-in-link", response_class=HTMLResponse)
def make_sign_in_link(
    request: Request,
    engine: EngineDep,
    member_id: Id,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> HTMLResponse:
    actor = form_actor(
        request, engine, csrf_token, Role.OFFICIAL, Role.ADMIN, what="a member's sign-in link"
    )
    card = _card(engine, actor, member_id)
    with engine.begin() as conn:
        token, expires_at = create_sign_in_link(
            conn, member_id=member_id, actor=actor, now=request.app.state.clock()
        )
    link = f"{base_url(request)}/login/link/{token}"
    response = render(
        request,
        "member/sign_in_link.html",
        actor=actor,
        member=card,
        display_name=mask_name(card.name),
        link=link,
        qr=qr_svg(link),
        expires_at=expires_at,
    )
    # The link is a password for a day: not kept by the browser's cache or a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the member's side of the link -----------------------------------------------------------


@router.get("/login/link/{token}", response_class=HTMLResponse)
def link_page(request: Request, engine: EngineDep, token: str) -> HTMLResponse:
    """Only a button: the link is spent by the POST, not by whoever fetches the URL (a link
    that would not sign in says so at once, and offers no button)."""
    message = ""
    try:
        with engine.connect() as conn:
            check_sign_in_link(conn, token=token[:200], now=request.app.state.clock())
    except NotAuthenticated as exc:
        message = i18n.translate(lang_of(request), exc.message)
    response = render(
        request, "member/link.html", actor=viewer(request, engine), token=token, message=message
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/login/link", response_class=HTMLResponse)
def redeem_link(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    token: Annotated[str, Form(min_length=1, max_length=200)],
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    try:
        csrf.check(request, csrf_token)
        with engine.begin() as conn:
            session, _ = redeem_sign_in_link(
                conn,
                token=token,
                session_hours=settings.session_hours,
                now=request.app.state.clock(),
            )
    except GeogridError as exc:
        return render(
            request,
            "member/link.html",
            status=errors.status_of(exc),
            token=token,
            message=i18n.translate(lang_of(request), exc.message),
        )
    response = RedirectResponse("/my", status_code=303)
    set_session_cookie(response, session, settings)
    return response


# --- the member's work list --------------------------------------------------------------------


def _due(item: dict[str, Any]) -> tuple[bool, dt.datetime]:
    """Sort key: soonest due first, requests without a due time last."""
    due = item["due_at"]
    if due is None:
        return True, dt.datetime.max.replace(tzinfo=dt.UTC)
    return False, dt.datetime.fromisoformat(due)


def work_list(engine: Engine, actor: Actor, base: str) -> list[dict[str, Any]]:
    """The member's open requests (the list of ``GET /v1/requests?status=open`` for its key),
    soonest due first, each with the actions a member may take on it now."""
    with engine.connect() as conn:
        page = views.list_requests(
            conn,
            actor=actor,
            filters=views.RequestFilter(status=["open"]),
            limit=views.MAX_PAGE,
            base_url=base,
            newest_first=False,
        )
    items = sorted(page["items"], key=_due)
    for item in items:
        status = item["status"]
        item["can_start"] = status in TRANSITIONS[Action.START].sources
        # A request with a department is the department's to resolve (workflow._check_scope).
        item["can_resolve"] = (
            status in TRANSITIONS[Action.RESOLVE].sources and status != "escalated"
        )
        due = item["due_at"]
        item["due_label"] = (
            dt.datetime.fromisoformat(due).strftime("%Y-%m-%d %H:%M") if due else None
        )
    return items


def _today(request: Request) -> dt.date:
    """Today in the service's zone, by the app's clock (tests may set it)."""
    tz = request.app.state.settings.service.timezone
    now: dt.datetime = request.app.state.clock()
    return now.astimezone(zone(tz)).date()


def _work_page(
    request: Request,
    engine: EngineDep,
    actor: Actor,
    settings: RequestsSettings,
    *,
    message: str = "",
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    items = work_list(engine, actor, base_url(request))
    with engine.connect() as conn:
        homes = visits.own_households(conn, actor=actor)
    return render(
        request,
        "member/my.html",
        actor=actor,
        status=status,
        items=items,
        households=homes,
        status_names=STATUS_NAMES,
        visit_kinds=VISIT_KIND_NAMES,
        today=_today(request).isoformat(),
        max_photo_bytes=settings.max_photo_bytes,
        max_side=PHOTO_MAX_SIDE,
        message=message,
        notice=notice,
    )


@router.get("/my", response_class=HTMLResponse)
def my_page(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    done: str | None = None,
    id: int | None = None,
) -> HTMLResponse:
    actor = require(request, engine, Role.MEMBER, what="a member's work list")
    notice = ""
    if done in DONE:
        _, _n = i18n.translator(lang_of(request))
        notice = _(DONE[done]) % {"id": id or ""}
    return _work_page(request, engine, actor, settings, notice=notice)


def _deliver(engine: Engine, settings: RequestsSettings, ids: list[int]) -> None:
    """Webhook deliveries queued by an action, sent after its commit (as the API does)."""
    if not ids:
        return
    try:
        webhooks.deliver_due(engine, settings=settings, ids=ids)
    except DatabaseUnavailable as exc:  # they are in the outbox: the worker retries
        log.warning("webhook deliveries %s left to the worker: %s", ids, exc)


def _act(
    request: Request,
    engine: Engine,
    settings: RequestsSettings,
    background: BackgroundTasks,
    actor: Actor,
    request_id: int,
    action: Action,
    params: ActionInput,
) -> Response:
    """``action`` through the library function of ``POST /v1/requests/{id}/{action}``; back to
    the work list, saying what happened (a version conflict: someone else acted first)."""
    _, _n = i18n.translator(lang_of(request))
    try:
        with engine.begin() as conn:
            out = act(
                conn,
                request_id=request_id,
                action=action.value,
                actor=actor,
                params=params,
                settings=settings,
            )
    except Conflict:
        return _work_page(request, engine, actor, settings, message=_(CONFLICT), status=409)
    except InvalidInput as exc:
        return _work_page(request, engine, actor, settings, message=exc.message, status=422)
    background.add_task(_deliver, engine, settings, out.deliveries)
    return RedirectResponse(f"/my?done={action.value}&id={request_id}", status_code=303)


@router.post("/my/requests/{request_id}/start")
def start_request(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    background: BackgroundTasks,
    request_id: Id,
    version: Annotated[int, Form(ge=1)],
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    actor = form_actor(request, engine, csrf_token, Role.MEMBER, what="starting a request")
    params = ActionInput(version=version)
    return _act(request, engine, settings, background, actor, request_id, Action.START, params)


@router.post("/my/requests/{request_id}/resolve")
def resolve_request(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    background: BackgroundTasks,
    request_id: Id,
    version: Annotated[int, Form(ge=1)],
    note: Annotated[str, Form(max_length=4000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    actor = form_actor(request, engine, csrf_token, Role.MEMBER, what="resolving a request")
    _, _n = i18n.translator(lang_of(request))
    photos: list[Photo] = []
    if photo is not None and photo.filename:
        # Read one byte past the limit, no more: a too-large photo is refused by its size.
        data = photo.file.read(settings.max_photo_bytes + 1)
        if len(data) > settings.max_photo_bytes:
            size = photo.size if photo.size is not None else len(data)
            message = _(
                "The photo is %(size)s MB; at most %(limit)s MB is taken. Choose a smaller "
                "photo, or turn on JavaScript so that the page shrinks it for you."
            ) % {
                "size": i18n.number(size / 1e6, lang_of(request), digits=1),
                "limit": i18n.number(settings.max_photo_bytes / 1e6, lang_of(request), digits=1),
            }
            return _work_page(request, engine, actor, settings, message=message, status=422)
        if data:
            photos.append(
                Photo(data, photo.content_type or "image/jpeg", filename=photo.filename[:200])
            )
    params = ActionInput(version=version, note=note.strip() or None, photos=photos)
    return _act(request, engine, settings, background, actor, request_id, Action.RESOLVE, params)


@router.post("/my/visits")
def log_visit(
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    address_id: Annotated[str, Form(max_length=64)] = "",
    visited_on: Annotated[str, Form(max_length=20)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    actor = form_actor(request, engine, csrf_token, Role.MEMBER, what="logging a visit")
    try:
        with engine.begin() as conn:
            visits.log_visit(
                conn,
                actor=actor,
                address_id=address_id,
                visited_on=visited_on or _today(request).isoformat(),
                kind=kind,
                note=note.strip() or None,
            )
    except InvalidInput as exc:
        return _work_page(request, engine, actor, settings, message=exc.message, status=422)
    return RedirectResponse("/my?done=visit", status_code=303)
