"""``/v1/requests``: file, list, read and act on requests (docs/api.md, "Requests").

Thin routes: parse, call ``geogrid.requests``, return its JSON. Each write is one
transaction; webhook deliveries queued by it are sent after the commit (a background task),
and the app's lifespan runs the worker that retries them and finds overdue requests.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from api.auth import OPEN, ActorDep
from api.deps import (
    ConnDep,
    EngineDep,
    RequestsSettingsDep,
    SettingsDep,
    base_url,
    geocoder_of,
    http_crs,
)
from api.params import Day, Id, Offset
from api.schemas.common import ErrorEnvelope
from api.schemas.requests import ActionIn, ActionOut, RequestCreate, RequestOut, RequestPage
from geogrid import crs as gcrs
from geogrid.errors import Conflict, DatabaseUnavailable
from geogrid.periods import period
from geogrid.requests import views, webhooks
from geogrid.requests.media import ACCEPTED_TYPES, Photo
from geogrid.requests.workflow import (
    TRANSITIONS,
    ActionInput,
    Contact,
    Intake,
    act,
    receive,
)
from geogrid.settings import RequestsSettings

log = logging.getLogger("geogrid.api")

router = APIRouter(prefix="/v1", tags=["requests"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "No key, or a wrong or revoked one"},
    403: {"model": ErrorEnvelope, "description": "The key's role or scope does not allow it"},
    404: {"model": ErrorEnvelope, "description": "No such request (or action)"},
    409: {
        "model": ErrorEnvelope,
        "description": "A stale version or an action not allowed from the current status; "
        "details.current is the request as it is now",
    },
    422: {"model": ErrorEnvelope, "description": "Bad input; error.field names it"},
}


def _photos(items: list[Any], field: str) -> list[Photo]:
    return [Photo.from_base64(p.model_dump(), field=f"{field}[{i}]") for i, p in enumerate(items)]


def _deliver(engine: Engine, settings: RequestsSettings, ids: list[int]) -> None:
    if not ids:
        return
    try:
        webhooks.deliver_due(engine, settings=settings, ids=ids)
    except DatabaseUnavailable as exc:  # the deliveries are in the outbox: the worker retries
        log.warning("webhook deliveries %s left to the worker: %s", ids, exc)


@router.post(
    "/requests",
    status_code=201,
    response_model=RequestOut,
    response_model_exclude_none=False,
    summary="File a request (受理); it is assigned at once: point → grid → field → member",
    responses=_ERRORS,
)
def create_request(
    body: RequestCreate,
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    settings: RequestsSettingsDep,
) -> Any:
    """Needs a key (any role). A location outside every grid is accepted, routed to the
    community level and flagged ``outside_grids``."""
    contact = Contact(**body.contact.model_dump()) if body.contact else Contact()
    intake = Intake(
        category=body.category,
        description=body.description,
        lon=body.lon,
        lat=body.lat,
        crs=gcrs.prepare(http_crs(request, body.crs)),
        address_id=body.address_id,
        address=body.address,
        community=body.community,
        attributes=body.attributes,
        contact=contact,
        media_urls=body.media_urls,
        photos=_photos(body.photos, "photos"),
        source="api",
    )
    with engine.begin() as conn:
        out = receive(conn, intake, actor=actor, geocoder=geocoder_of(request), settings=settings)
        view = views.get_request(
            conn, out.request_id, actor=actor, base_url=base_url(request), filer=True
        )
    view["token"] = out.token
    return view


@router.get(
    "/requests",
    openapi_extra=OPEN,
    response_model=RequestPage,
    summary="List requests with filters, newest received first",
    responses=_ERRORS,
)
def list_requests(
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    app_settings: SettingsDep,
    status: Annotated[
        str | None, Query(description="Comma list of statuses, or open", examples=["open"])
    ] = None,
    category: Annotated[str | None, Query(description="Comma list of category codes")] = None,
    programme: str | None = None,
    community: str | None = None,
    grid: Annotated[str | None, Query(description="Grid code")] = None,
    member_id: Id | None = None,
    department: Annotated[str | None, Query(description="Escalated to (code)")] = None,
    flag: Annotated[str | None, Query(examples=["outside_grids"])] = None,
    overdue: bool | None = None,
    from_: Annotated[
        Day | None, Query(alias="from", description="First received date (inclusive)")
    ] = None,
    to: Annotated[Day | None, Query(description="Last received date (inclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=views.MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> Any:
    """Public fields for everyone; a member key lists its own requests, a department key
    what is escalated to it, a community key its community."""
    p = None
    if from_ is not None or to is not None:
        p = period(from_, to, tz=app_settings.service.timezone)
    filters = views.RequestFilter(
        status=[s.strip() for s in status.split(",") if s.strip()] if status else (),
        category=[c.strip() for c in category.split(",") if c.strip()] if category else (),
        programme=programme,
        community=community,
        grid=grid,
        member_id=member_id,
        department=department,
        flag=flag,
        overdue=overdue,
        period=p,
    )
    page = views.list_requests(
        conn, actor=actor, filters=filters, limit=limit, offset=offset, base_url=base_url(request)
    )
    if offset + limit < page["total"]:
        params = dict(request.query_params)
        params["offset"] = str(offset + limit)
        page["next"] = f"{base_url(request)}/v1/requests?{urlencode(params)}"
    return page


@router.get(
    "/requests/actions",
    response_model=list[ActionOut],
    summary="The state machine: each action, the statuses it starts from, where it leads",
)
def list_actions() -> list[dict[str, Any]]:
    return [
        {
            "action": a.value,
            "from": sorted(t.sources),
            "to": t.target,
            "roles": sorted(r.value for r in t.roles),
            "note_required": t.note_required,
            "description": t.description,
        }
        for a, t in TRANSITIONS.items()
    ]


@router.get(
    "/requests/{request_id}",
    openapi_extra=OPEN,
    response_model=RequestOut,
    summary="One request with its full history",
    responses=_ERRORS,
)
def get_request(
    request_id: Id,
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    personal: Annotated[
        bool,
        Query(
            description="Add the reporter's contact and the member's name (needs the "
            "personal_data right; logged)"
        ),
    ] = False,
) -> Any:
    with engine.begin() as conn:  # a personal read writes its log entry
        return views.get_request(
            conn, request_id, actor=actor, personal=personal, base_url=base_url(request)
        )


@router.post(
    "/requests/{request_id}/{action}",
    response_model=RequestOut,
    summary="Perform an action: register, reject, dispatch, start, escalate, send_back, "
    "resolve, close, reopen, evaluate, reassign",
    responses=_ERRORS,
)
def post_action(
    request_id: Id,
    action: str,
    body: ActionIn,
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    settings: RequestsSettingsDep,
    background: BackgroundTasks,
) -> Any:
    """Each action carries the ``version`` you saw: a stale one answers 409 with the
    current state (``error.details.current``) and changes nothing."""
    params = ActionInput(
        version=body.version,
        note=body.note,
        member_id=body.member_id,
        department=body.department,
        satisfaction=body.satisfaction,
        comment=body.comment,
        reopen=body.reopen,
        token=body.token,
        photos=_photos(body.photos, "photos"),
        media_urls=body.media_urls,
    )
    try:
        with engine.begin() as conn:
            out = act(
                conn,
                request_id=request_id,
                action=action,
                actor=actor,
                params=params,
                settings=settings,
            )
            view = views.get_request(conn, request_id, actor=actor, base_url=base_url(request))
    except Conflict as exc:
        with engine.connect() as conn:
            current = views.get_request(conn, request_id, actor=actor, base_url=base_url(request))
        raise Conflict(
            exc.message, field=exc.field, details={**exc.details, "current": current}
        ) from None
    background.add_task(_deliver, engine, settings, out.deliveries)
    return view


@router.get(
    "/media/{media_id}",
    openapi_extra=OPEN,
    summary="A photo of a request",
    responses={
        200: {
            "description": "The photo: its checked type (JPEG, PNG or WebP); a quarantined one "
            "as an application/octet-stream attachment",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in (*ACCEPTED_TYPES, "application/octet-stream")
            },
        },
        401: {"model": ErrorEnvelope, "description": "A wrong or revoked key"},
        404: {"model": ErrorEnvelope, "description": "No such photo, or not for this caller"},
    },
    response_class=Response,
)
def get_media(media_id: Id, conn: ConnDep, actor: ActorDep) -> Response:
    """The stored photo, with its request's read rights, never run as a page: its checked
    type only, ``nosniff``, a sandboxing CSP; links (``media_url``) are never redirected to."""
    photo = views.stored_photo(conn, media_id, actor=actor)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f'inline; filename="{photo.filename}"',
        # Only what the public may see may sit in shared caches.
        "Cache-Control": "public, max-age=86400" if photo.public else "private, no-store",
    }
    media_type = photo.content_type
    if photo.quarantined:
        media_type = "application/octet-stream"
        headers["Content-Disposition"] = f'attachment; filename="{photo.filename}"'
    return Response(photo.data, media_type=media_type, headers=headers)
