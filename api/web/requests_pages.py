"""The request pages (issue 15, item 3): ``/requests`` (a list with the filters of
``GET /v1/requests``, sorting and paging) and ``/requests/{id}`` (the timeline, photos, the
place on a small map, the routing, escalations, and the actions the viewer may take as forms).

The pages read through the library functions of the ``/v1`` routes, with the same scope: an
official or admin its communities, a planner too (read only), a department what is escalated
to it, a member its own requests. Each action form POSTs to ``/requests/{id}/{action}`` with
the CSRF token and the version the viewer saw and calls :func:`geogrid.requests.workflow.act`,
as ``POST /v1/requests/{id}/{action}`` does; then 303 back to the page. A stale version is
the page again, 409, saying someone else acted first, with what was typed kept.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, Engine

from api import errors
from api.deps import EngineDep, MapSettingsDep, RequestsSettingsDep, SettingsDep
from api.web.render import lang_of, render
from api.web.session import form_actor, require
from geogrid import crs as gcrs
from geogrid import directory, i18n
from geogrid.access import Actor, Forbidden
from geogrid.db.models import OPEN_STATUSES, Role
from geogrid.errors import (
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    GeogridError,
    InvalidInput,
)
from geogrid.i18n import N_, REQUEST_STATUS_NAMES
from geogrid.maps.tiles import tile_source
from geogrid.periods import period
from geogrid.requests import views, webhooks
from geogrid.requests.media import Photo
from geogrid.requests.workflow import TRANSITIONS, Action, ActionInput, act, actions_on
from geogrid.settings import MapSettings, RequestsSettings

log = logging.getLogger("geogrid.api")

router = APIRouter(include_in_schema=False)

#: Who reads the request pages (each within its scope, as ``GET /v1/requests``).
READERS: Final = (Role.OFFICIAL, Role.ADMIN, Role.PLANNER, Role.DEPARTMENT, Role.MEMBER)
PAGE_SIZE: Final = 25

STATUS_NAMES: Final[dict[str, str]] = {"open": N_("open (any open status)"), **REQUEST_STATUS_NAMES}
#: Each action as a button says it.
ACTION_NAMES: Final[dict[str, str]] = {
    Action.RECEIVE.value: N_("Received"),
    Action.REGISTER.value: N_("Register"),
    Action.REJECT.value: N_("Reject"),
    Action.DISPATCH.value: N_("Dispatch"),
    Action.START.value: N_("Start"),
    Action.ESCALATE.value: N_("Escalate to a department"),
    Action.SEND_BACK.value: N_("Send back to the member"),
    Action.RESOLVE.value: N_("Resolve"),
    Action.CLOSE.value: N_("Close"),
    Action.REOPEN.value: N_("Reopen"),
    Action.EVALUATE.value: N_("Record the evaluation"),
    Action.REASSIGN.value: N_("Reassign"),
}
SORT_NAMES: Final[dict[str, str]] = {
    "received": N_("newest received first"),
    "due": N_("soonest due first"),
    "status": N_("by status"),
}
RULE_NAMES: Final[dict[str, str]] = {
    "field": N_("the responsibility field's member"),
    "grid_lead": N_("the grid's lead member"),
    "manual": N_("assigned by hand"),
    "none": N_("community level (outside every grid)"),
}
#: Actions that may carry photos (``geogrid.requests.workflow.act``).
PHOTO_ACTIONS: Final = (Action.START.value, Action.ESCALATE.value, Action.RESOLVE.value)


def when(value: str | None) -> str:
    """An ISO time of the API (already in the community's zone) as people read it."""
    if not value:
        return "–"
    return dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _day(value: str | None, field: str) -> dt.date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        message = f"{field} must be a date (YYYY-MM-DD), got {value!r}"
        raise InvalidInput(message, field=field) from None


def _int(value: str | None, field: str, *, default: int | None = None) -> int | None:
    value = _blank(value)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a whole number, got {value!r}", field=field) from None


def _bool(value: str | None) -> bool | None:
    value = _blank(value)
    if value is None:
        return None
    return value.lower() in ("1", "true", "yes", "on")


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.get("/requests", response_class=HTMLResponse)
def request_list(
    request: Request,
    engine: EngineDep,
    app_settings: SettingsDep,
    status: str | None = None,
    category: str | None = None,
    programme: str | None = None,
    community: str | None = None,
    grid: str | None = None,
    member_id: str | None = None,
    department: str | None = None,
    flag: str | None = None,
    overdue: str | None = None,
    to: str | None = None,
    sort: str | None = None,
    offset: str | None = None,
) -> HTMLResponse:
    """The list, with the filters of ``GET /v1/requests`` as a GET form (plain, or live
    through htmx), sorted and paged."""
    actor = require(request, engine, *READERS, what="the request list")
    start = _blank(request.query_params.get("from"))
    end = _blank(to)
    first, last = _day(start, "from"), _day(end, "to")
    p = None
    if first is not None or last is not None:
        p = period(first, last, tz=app_settings.service.timezone)
    filters = views.RequestFilter(
        status=_list(status),
        category=_list(category),
        programme=_blank(programme),
        community=_blank(community),
        grid=_blank(grid),
        member_id=_int(member_id, "member_id"),
        department=_blank(department),
        flag=_blank(flag),
        overdue=_bool(overdue),
        period=p,
    )
    order = _blank(sort) or "received"
    skip = max(0, _int(offset, "offset", default=0) or 0)
    with engine.connect() as conn:
        page = views.list_requests(
            conn, actor=actor, filters=filters, limit=PAGE_SIZE, offset=skip, sort=order
        )
        options = views.filter_options(conn, actor=actor)
    params = {
        k: v
        for k, v in request.query_params.items()
        if k not in ("offset", "lang", "done", "request") and v
    }
    done = request.query_params.get("done")

    def page_link(at: int) -> str:
        return "/requests?" + urlencode({**params, "offset": str(at)})

    total = page["total"]
    return render(
        request,
        "requests/list.html",
        actor=actor,
        page=page,
        total=total,
        items=page["items"],
        options=options,
        chosen={
            "status": status or "",
            "category": category or "",
            "grid": grid or "",
            "department": department or "",
            "overdue": _bool(overdue) is True,
            "from": start or "",
            "to": end or "",
            "sort": order,
        },
        status_names=STATUS_NAMES,
        sort_names=SORT_NAMES,
        first_shown=skip + 1 if page["items"] else 0,
        last_shown=skip + len(page["items"]),
        previous_link=page_link(max(0, skip - PAGE_SIZE)) if skip > 0 else None,
        next_link=page_link(skip + PAGE_SIZE) if skip + PAGE_SIZE < total else None,
        when=when,
        show_departments=not actor.has(Role.DEPARTMENT, Role.MEMBER),
        done=done if done in ACTION_NAMES else None,
        done_id=_int(request.query_params.get("request"), "request"),
        action_names=ACTION_NAMES,
    )


def _map_of(view: dict[str, Any], settings: MapSettings, lang: i18n.Lang) -> dict[str, Any]:
    """The small map's point and base map: the service's tiles (as the maps' settings say),
    the point moved to GCJ-02 for Amap's; no base map when the configured one cannot be
    built (the map still shows the point)."""
    lon, lat = view["location"]["lon"], view["location"]["lat"]
    try:
        source = tile_source(None, lang=lang, settings=settings)
    except (ConfigurationError, InvalidInput) as exc:
        log.warning("the request page's map has no base map: %s", exc)
        source = tile_source("none")
    if source.shift:
        lon, lat = gcrs.wgs84_to_gcj02(lon, lat)
    return {
        "lon": float(lon),
        "lat": float(lat),
        "tiles": [
            {
                "url": t.url,
                "attribution": t.attribution,
                "subdomains": t.subdomains,
                "max_zoom": t.max_zoom,
            }
            for t in source.layers
        ],
    }


def _detail(
    request: Request,
    engine: Engine,
    actor: Actor,
    request_id: int,
    map_settings: MapSettings,
    *,
    status: int = 200,
    failed: str | None = None,
    message: str = "",
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    with engine.connect() as conn:
        view = views.request_page(conn, request_id, actor=actor)
        actions = actions_on(conn, request_id=request_id, actor=actor)
        options = views.filter_options(conn, actor=actor)
        pickable = {Action.DISPATCH, Action.REASSIGN} & set(actions)
        members = _member_choices(conn, actor, view) if pickable else []
    done = request.query_params.get("done")
    return render(
        request,
        "requests/detail.html",
        actor=actor,
        status=status,
        r=view,
        actions=[a.value for a in actions],
        transitions={a.value: t for a, t in TRANSITIONS.items()},
        departments=options["departments"],
        members=members,
        status_names=STATUS_NAMES,
        action_names=ACTION_NAMES,
        rule_names=RULE_NAMES,
        photo_actions=PHOTO_ACTIONS,
        done=done if done in ACTION_NAMES else None,
        failed=failed,
        message=message,
        typed=typed or {},
        map=_map_of(view, map_settings, lang_of(request)),
        when=when,
        open_statuses=OPEN_STATUSES,
    )


def _member_choices(conn: Connection, actor: Actor, view: dict[str, Any]) -> list[dict[str, Any]]:
    """The active members a request of this community may go to, for the dispatch and
    reassign pickers: masked names (as officials see members), the grids each leads; the
    request's own grid's members first — who looks after the place is the likely choice."""
    grid = view["assignment"]["grid_code"]
    found = directory.list_members(
        conn, actor=actor, community=view["community"]["code"], via="GET /requests/{id}"
    )
    choices = [m for m in found if m["active"]]
    choices.sort(key=lambda m: (grid not in m["leads_grids"], m["display_name"], m["id"]))
    return choices


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_detail(
    request_id: int, request: Request, engine: EngineDep, map_settings: MapSettingsDep
) -> HTMLResponse:
    actor = require(request, engine, *READERS, what="a request's page")
    return _detail(request, engine, actor, request_id, map_settings)


#: Messages of refused actions, by the field the library names (else its own message).
_FIELD_MESSAGES: Final[dict[str, str]] = {
    "note": N_("This action needs a note: the reason or the feedback."),
    "department": N_("Choose the department to escalate to."),
    "member_id": N_("Choose an active member of this request's community."),
    "satisfaction": N_("Choose satisfied or unsatisfied."),
}


def _deliver(engine: Engine, settings: RequestsSettings, ids: list[int]) -> None:
    if not ids:
        return
    try:
        webhooks.deliver_due(engine, settings=settings, ids=ids)
    except DatabaseUnavailable as exc:  # the deliveries are in the outbox: the worker retries
        log.warning("webhook deliveries %s left to the worker: %s", ids, exc)


async def _photos(files: list[UploadFile] | None) -> list[Photo]:
    out = []
    for f in files or []:
        data = await f.read()
        if data:  # an empty file input sends one empty part
            out.append(Photo(data, f.content_type or "image/jpeg", f.filename))
    return out


@router.post("/requests/{request_id}/{action}", response_class=HTMLResponse)
async def request_action(
    request_id: int,
    action: str,
    request: Request,
    engine: EngineDep,
    settings: RequestsSettingsDep,
    map_settings: MapSettingsDep,
    background: BackgroundTasks,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    version: Annotated[str | None, Form(max_length=20)] = None,
    note: Annotated[str | None, Form(max_length=20_000)] = None,
    department: Annotated[str | None, Form(max_length=200)] = None,
    member_id: Annotated[str | None, Form(max_length=20)] = None,
    satisfaction: Annotated[str | None, Form(max_length=20)] = None,
    comment: Annotated[str | None, Form(max_length=20_000)] = None,
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """One action through its form: the same library call as ``POST
    /v1/requests/{id}/{action}``, then back to the page (303), or the page with the reason."""
    actor = form_actor(request, engine, csrf_token, *READERS, what="acting on a request")
    typed = {
        "note": note or "",
        "department": department or "",
        "member_id": member_id or "",
        "satisfaction": satisfaction or "",
        "comment": comment or "",
    }
    try:
        params = ActionInput(
            version=_int(version, "version"),
            note=_blank(note),
            member_id=_int(member_id, "member_id"),
            department=_blank(department),
            satisfaction=_blank(satisfaction),
            comment=_blank(comment),
            photos=await _photos(photos) if action in PHOTO_ACTIONS else (),
        )
        with engine.begin() as conn:
            out = act(
                conn,
                request_id=request_id,
                action=action,
                actor=actor,
                params=params,
                settings=settings,
            )
            still = views.in_scope(conn, request_id, actor=actor)
    except (Conflict, InvalidInput, Forbidden) as exc:
        return _refused(request, engine, actor, request_id, map_settings, action, exc, typed)
    background.add_task(_deliver, engine, settings, out.deliveries)
    if not still:  # sent back, reassigned: it has left this viewer's scope, and its list
        return RedirectResponse(f"/requests?done={action}&request={request_id}", status_code=303)
    return RedirectResponse(f"/requests/{request_id}?done={action}#done", status_code=303)


def _refused(
    request: Request,
    engine: Engine,
    actor: Actor,
    request_id: int,
    map_settings: MapSettings,
    action: str,
    exc: GeogridError,
    typed: dict[str, Any],
) -> HTMLResponse:
    """The page again, saying why (409 someone acted first, 403 not allowed, 422 bad input),
    with what was typed kept in the action's form. A viewer who may not read the request at
    all gets the error page (``request_page`` raises)."""
    _ = i18n.translator(lang_of(request))[0]
    status = errors.status_of(exc)
    if isinstance(exc, Conflict) and exc.field == "version":
        message = _("Someone else acted on this request; reload the page and try again.")
    elif isinstance(exc, Conflict):
        message = _("This action is not possible any more: the request is now “%(status)s”.")
    elif exc.field in _FIELD_MESSAGES:
        message = _(_FIELD_MESSAGES[exc.field])
    else:
        message = exc.message
    if isinstance(exc, Conflict) and exc.field != "version":
        with engine.connect() as conn:
            current = views.request_page(conn, request_id, actor=actor)["status"]
        message = message % {"status": _(STATUS_NAMES.get(current, current))}
    return _detail(
        request,
        engine,
        actor,
        request_id,
        map_settings,
        status=status,
        failed=action,
        message=message,
        typed=typed,
    )


__all__ = ["router"]
