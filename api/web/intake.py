"""The residents' pages, public, without a key (issue 15, item 5): report a problem
(``/report``), follow it by its tracking token (``/track``), and find the grid of a place
(``/find``).

Thin routes over ``geogrid.requests.intake``: the report is filed through the same library
path as ``POST /v1/requests`` and Open311, rate-limited per client address in the same
transaction (``api.deps.client_address``: ``X-Forwarded-For`` only from a trusted proxy; the
app's clock, ``app.state.clock``). A bad input shows the form again with the error next to
its field and writes nothing; the limit answers a 429 page saying when to file again.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import csrf
from api.deps import EngineDep, client_address, geocoder_of
from api.web.render import lang_of, render
from api.web.session import viewer
from geogrid import crs as gcrs
from geogrid import i18n
from geogrid.errors import (
    ConfigurationError,
    GeogridError,
    InvalidInput,
    NotFound,
    TooManyAttempts,
)
from geogrid.i18n import N_
from geogrid.maps.tiles import tile_source
from geogrid.requests import intake
from geogrid.requests.media import ACCEPTED_TYPES, Photo

router = APIRouter(include_in_schema=False)

#: Where the vendored Leaflet is served (geogrid.maps.vendoring; api/routes/maps.py).
LEAFLET: Final = "/maps/assets/leaflet-1.9.4/dist"

#: The form's fields, and which one a library error's field belongs to.
_FIELD_OF: Final = {
    "category": "category",
    "description": "description",
    "lon": "location",
    "lat": "location",
    "location": "location",
    "address": "location",
    "crs": "location",
    "community": "location",
    "first_name": "name",
    "name": "name",
    "phone": "phone",
}
_FORM_FIELDS: Final = ("category", "description", "lon", "lat", "address", "name", "phone")
#: What each field's error says first, in the viewer's language (the library's message,
#: in English, follows it as the detail).
_FIELD_HELP: Final = {
    "category": N_("Choose what kind of problem it is."),
    "description": N_("Describe the problem in a few words."),
    "location": N_("Show where it is: tap the map or search an address."),
    "photo": N_("The photo was not accepted: a JPEG, PNG or WebP photo within the size limit."),
    "name": N_("The name is too long."),
    "phone": N_("The phone number may hold digits, spaces and + - ( ) only."),
}
#: The status page's steps, as the page names them.
STEP_NAMES: Final = {
    "received": N_("Received"),
    "dispatched": N_("Sent to the grid member"),
    "in_progress": N_("Being handled"),
    "escalated": N_("Passed to a higher department"),
    "resolved": N_("Solved"),
    "closed": N_("Case closed"),
    "rejected": N_("Not accepted"),
}
STATUS_NAMES: Final = {
    "received": N_("Received"),
    "registered": N_("Registered"),
    "dispatched": N_("Sent to the grid member"),
    "in_progress": N_("Being handled"),
    "escalated": N_("Passed to a higher department"),
    "resolved": N_("Solved"),
    "closed": N_("Case closed"),
    "rejected": N_("Not accepted"),
}
NOTE_NAMES: Final = {
    "resolve": N_("Solved"),
    "reject": N_("Not accepted"),
    "close": N_("Case closed"),
    "reopen": N_("Reopened"),
    "send_back": N_("Returned to the grid member"),
}
#: ``member.role`` of the lookup, as the page names it.
MEMBER_ROLES: Final = {
    "grid_lead": N_("grid lead"),
    "field_holder": N_("holds the responsibility field"),
    "member": N_("grid member"),
}


def _map_data(request: Request, conn: Any) -> dict[str, Any]:
    """The small map's settings: base map (the maps' settings, or none), its CRS, and the
    outlines drawn on it so that a place can be found offline."""
    lang = lang_of(request)
    try:
        source = tile_source(None, lang=lang, settings=request.app.state.settings.maps)
    except ConfigurationError:  # a base map the service lacks a key for: draw without one
        source = tile_source("none", lang=lang)
    return {
        "crs": source.crs,
        "tiles": [
            {
                "url": t.url,
                "attribution": t.attribution,
                "subdomains": t.subdomains,
                "max_zoom": t.max_zoom,
            }
            for t in source.layers
        ],
        "outline": intake.map_outline(conn, crs=source.crs),
    }


def _report_page(
    request: Request,
    engine: Any,
    *,
    values: dict[str, Any] | None = None,
    error: GeogridError | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = request.app.state.settings.requests
    with engine.connect() as conn:
        categories = intake.public_categories(conn)
        map_data = _map_data(request, conn)
    field = None
    if error is not None:
        raw = error.field or ""
        field = "photo" if raw.startswith("photo") else _FIELD_OF.get(raw, "form")
    return render(
        request,
        "intake/report.html",
        actor=viewer(request, engine),
        status=status,
        categories=categories,
        map_data=map_data,
        values={k: "" for k in _FORM_FIELDS} | (values or {}),
        error_field=field,
        error_help=_FIELD_HELP.get(field or "", ""),
        error_detail=None if error is None else error.message,
        max_photo_bytes=settings.max_photo_bytes,
        accepted_types=",".join(ACCEPTED_TYPES),
        leaflet=LEAFLET,
    )


@router.get("/report", response_class=HTMLResponse)
def report_form(
    request: Request, engine: EngineDep, lon: str | None = None, lat: str | None = None
) -> HTMLResponse:
    """The form; ``lon`` and ``lat`` (from ``/find``'s "report a problem here") place it."""
    return _report_page(request, engine, values={"lon": (lon or "")[:40], "lat": (lat or "")[:40]})


def _photo(upload: UploadFile | None, limit: int) -> list[Photo]:
    """The uploaded photo (none when the field was left empty), read no further than
    ``limit`` bytes; its type and size are checked again by the intake (media rules)."""
    if upload is None or not upload.filename:
        return []
    data = upload.file.read(limit + 1)
    if not data:
        return []
    if len(data) > limit:
        raise InvalidInput(f"the photo is larger than {limit:,} bytes", field="photo")
    return [Photo(data, upload.content_type or "image/jpeg", upload.filename)]


@router.post("/report", response_class=HTMLResponse)
def report_submit(
    request: Request,
    engine: EngineDep,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    category: Annotated[str, Form(max_length=64)] = "",
    description: Annotated[str, Form(max_length=20_000)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    crs: Annotated[str, Form(max_length=20)] = "wgs84",
    address: Annotated[str, Form(max_length=1000)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    phone: Annotated[str, Form(max_length=1000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """File the report; on to its status page (303), or the form again with the error."""
    csrf.check(request, csrf_token)
    settings = request.app.state.settings.requests
    values = {
        "category": category,
        "description": description,
        "lon": lon,
        "lat": lat,
        "address": address,
        "name": name,
        "phone": phone,
    }
    try:
        report = intake.Report(
            category=category,
            description=description,
            lon=lon,
            lat=lat,
            crs=gcrs.allowed_crs(crs or "wgs84", epsg=request.app.state.crs_epsg),
            address=address,
            name=name,
            phone=phone,
            photos=_photo(photo, settings.max_photo_bytes),
        )
        with engine.begin() as conn:
            out = intake.file_report(
                conn,
                report,
                client=client_address(request),
                now=request.app.state.clock(),
                settings=settings,
                geocoder=geocoder_of(request),
            )
    except InvalidInput as exc:
        return _report_page(request, engine, values=values, error=exc, status=422)
    except NotFound as exc:  # no community at all yet, or an address the lookup cannot place
        return _report_page(request, engine, values=values, error=exc, status=422)
    except TooManyAttempts as exc:
        return _too_many(request, engine, exc.retry_after)
    assert out.token is not None
    return RedirectResponse(f"/track/{out.token}?filed=1", status_code=303)


def _too_many(request: Request, engine: Any, retry: int) -> HTMLResponse:
    """The 429 page: when this address may file again (in the service's zone)."""
    tz = request.app.state.settings.service.timezone
    when = request.app.state.clock() + dt.timedelta(seconds=retry)
    return render(
        request,
        "intake/too_many.html",
        actor=viewer(request, engine),
        status=429,
        headers={"Retry-After": str(retry)},
        again_at=i18n.local_time(when, tz),
        minutes=max(1, -(-retry // 60)),
        per_hour=request.app.state.settings.requests.intake_max_per_hour,
        per_day=request.app.state.settings.requests.intake_max_per_day,
    )


@router.get("/track", response_class=HTMLResponse)
def track_form(request: Request, engine: EngineDep, token: str | None = None) -> Response:
    """The token form; a token given goes on to its status page."""
    token = (token or "").strip()
    if token:
        return RedirectResponse(f"/track/{token}", status_code=303)
    return render(request, "intake/track_form.html", actor=viewer(request, engine), unknown=False)


@router.get("/track/{token}", response_class=HTMLResponse)
def track_page(request: Request, engine: EngineDep, token: str, filed: bool = False) -> Response:
    """The status page of a request (public: no one's personal data)."""
    actor = viewer(request, engine)
    try:
        with engine.connect() as conn:
            view = intake.track(conn, token[:64])
    except NotFound:
        return render(request, "intake/track_form.html", actor=actor, status=404, unknown=True)
    return render(
        request,
        "intake/track.html",
        actor=actor,
        view=view,
        token=token,
        filed=filed,
        step_names=STEP_NAMES,
        status_names=STATUS_NAMES,
        note_names=NOTE_NAMES,
        link=f"{str(request.base_url).rstrip('/')}/track/{token}",
    )


@router.get("/find", response_class=HTMLResponse)
def find_page(
    request: Request,
    engine: EngineDep,
    address: str | None = None,
    lon: str | None = None,
    lat: str | None = None,
    crs: str | None = None,
) -> HTMLResponse:
    """Which grid covers an address or a point: what ``GET /v1/lookup`` tells anyone."""
    address = (address or "").strip()[:200] or None
    lon = (lon or "").strip() or None
    lat = (lat or "").strip() or None
    result: dict[str, Any] | None = None
    error: str | None = None
    status = 200
    if address or lon or lat:
        try:
            name = gcrs.prepare(gcrs.allowed_crs(crs or "wgs84", epsg=request.app.state.crs_epsg))
            found = request.app.state.lookup.lookup(
                address=address,
                lon=None if address else lon,
                lat=None if address else lat,
                crs=name,
            )
            result = found.to_dict()
            point = result["point"]["requested"]  # in the map's CRS: marked on the map
            lon, lat = str(point["lon"]), str(point["lat"])
        except NotFound as exc:
            error = exc.message
        except InvalidInput as exc:
            error, status = exc.message, 422
    with engine.connect() as conn:
        map_data = _map_data(request, conn)
    return render(
        request,
        "intake/find.html",
        actor=viewer(request, engine),
        status=status,
        values={"address": address or "", "lon": lon or "", "lat": lat or ""},
        result=result,
        error=error,
        member_roles=MEMBER_ROLES,
        map_data=map_data,
        leaflet=LEAFLET,
    )
