"""``GET /maps/coverage``, ``GET /maps/hotspots`` (HTML pages) and ``GET /maps/assets/…``.

The pages link Leaflet & co. from ``/maps/assets/`` (relative ``assets/…``, so a path prefix
in front of the API still works): an intranet browser needs nothing but this server. Roles
``audience=official`` (members' positions, masked names, links to the requests' pages) needs
an official, planner or admin key or session; public maps need none. Without ``audience`` the
map follows the caller (an official's session gets the officials' map); a browser asking for
an official map without a session is sent to ``/login?next=…`` (``api.web.errors``), an API
client gets the JSON 401. ``embed=1`` drops the title box, for the dashboard's ``<iframe>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from api.auth import OPEN, ActorDep
from api.deps import ASSETS_URL, ConnDep, MapSettingsDep, SettingsDep
from api.params import Day
from api.web.render import lang_of, with_who_box
from geogrid.access import Actor, limit_to_scope
from geogrid.areas import area_codes
from geogrid.db.models import Role
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.hotspots import DEFAULT_RESOLUTION
from geogrid.maps.assets import asset_path
from geogrid.maps.base import render_html
from geogrid.maps.service import HotspotRequest, build_coverage, build_hotspots

router = APIRouter(prefix="/maps", tags=["maps"])

_OFFICIALS = (Role.OFFICIAL, Role.PLANNER, Role.ADMIN)
#: A request's page (the web workbench), relative to ``/maps/…``: a path prefix still works.
REQUEST_PAGE = "../requests/{id}"

#: Errors are the JSON envelope although the pages are HTML: named by media type, since a
#: ``model`` would be filed under the route's own (text/html).
_ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_ERRORS: dict[int | str, dict[str, object]] = {
    200: {"description": "An HTML page (Folium/Leaflet); not cached"},
    401: {"content": _ENVELOPE, "description": "audience=official without a key or session"},
    403: {"content": _ENVELOPE, "description": "audience=official: not an official's key"},
    404: {"content": _ENVELOPE, "description": "unknown community, or no active plan"},
    422: {"content": _ENVELOPE, "description": "a parameter is malformed (invalid_input)"},
    500: {"content": _ENVELOPE, "description": "tiles or map assets not configured"},
}

Community = Annotated[
    str | None,
    Query(
        description="Community code(s), comma-separated; default: every community (a district)",
        examples=["441302011005"],
    ),
]
Subdistrict = Annotated[
    str | None,
    Query(
        description="The communities of this subdistrict code, drawn together",
        examples=["441302011"],
    ),
]
District = Annotated[
    str | None,
    Query(description="The communities of this district code, drawn together", examples=["441302"]),
]
From = Annotated[
    Day | None,
    Query(alias="from", description="First received date, inclusive; default: all history"),
]
To = Annotated[Day | None, Query(description="Last date, inclusive; default: today")]
Audience = Annotated[
    Literal["public", "official"] | None,
    Query(
        description="public: no personal data at all; official: masked names, members' "
        "positions, households per door, requests linked to their pages. Default: official "
        "for an official's, planner's or admin's session or key, public for anyone else"
    ),
]
Embed = Annotated[
    bool,
    Query(description="For an <iframe> in a page that names the map (the dashboard): no title box"),
]
Lang = Annotated[
    Literal["zh", "en"] | None,
    Query(description="Labels in Chinese or English; default: the viewer's (cookie), else zh"),
]
Tiles = Annotated[
    Literal["none", "osm", "tianditu", "amap", "custom"] | None,
    Query(description="Base map; default GEOGRID_MAP_TILES (none: nothing fetched elsewhere)"),
]


def _page(html: str, request: Request, actor: Actor, *, embed: bool) -> HTMLResponse:
    """The map page; outside a frame with who is signed in (``api.web.render``)."""
    page = html if embed else with_who_box(html, request, actor)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get(
    "/coverage",
    openapi_extra=OPEN,
    response_class=HTMLResponse,
    summary="Coverage map: grids coloured by a measure, fields, uncovered households",
    responses=_ERRORS,
)
def coverage(
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    settings: SettingsDep,
    map_settings: MapSettingsDep,
    community: Community = None,
    subdistrict: Subdistrict = None,
    district: District = None,
    measure: Annotated[
        Literal["households_per_member", "visit_coverage", "open_per_100"],
        Query(description="What colours the grids"),
    ] = "households_per_member",
    from_: From = None,
    to: To = None,
    audience: Audience = None,
    lang: Lang = None,
    tiles: Tiles = None,
    embed: Embed = False,
) -> HTMLResponse:
    """An HTML page (Folium/Leaflet); visits and requests are counted in the period."""
    community = area_codes(conn, community=community, subdistrict=subdistrict, district=district)
    shown, community = _audience(conn, actor, audience, community)
    m = build_coverage(
        conn,
        community=community,
        measure=measure,
        date_from=from_,
        date_to=to,
        audience=shown,
        lang=lang or lang_of(request),
        tiles=tiles,
        timezone=settings.service.timezone,
        settings=map_settings,
    )
    return _page(
        render_html(m, assets=ASSETS_URL, assets_dir=map_settings.map_assets_dir, embed=embed),
        request,
        actor,
        embed=embed,
    )


@router.get(
    "/hotspots",
    openapi_extra=OPEN,
    response_class=HTMLResponse,
    summary="Hot-spot map: Gi* hot and cold spots of open (or overdue) requests",
    responses=_ERRORS,
)
def hotspots(
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    settings: SettingsDep,
    map_settings: MapSettingsDep,
    community: Community = None,
    subdistrict: Subdistrict = None,
    district: District = None,
    from_: From = None,
    to: To = None,
    status: Annotated[
        Literal["open", "overdue"], Query(description="open, or open and past the SLA")
    ] = "open",
    category: Annotated[
        str | None,
        Query(description="Category code(s), comma-separated", examples=["sewer_blocked"]),
    ] = None,
    programme: Annotated[
        str | None,
        Query(description="Programme(s): convenience, integration, care, mediation, safety"),
    ] = None,
    unit: Annotated[
        Literal["h3", "grids"], Query(description="Aggregate to H3 hexagons or to grids")
    ] = "h3",
    resolution: Annotated[
        int, Query(ge=6, le=12, description="H3 resolution (10 ≈ 66 m edges)")
    ] = DEFAULT_RESOLUTION,
    normalize: Annotated[
        Literal["households", "none"],
        Query(description="Requests per 100 households (default) or counts"),
    ] = "households",
    audience: Audience = None,
    lang: Lang = None,
    tiles: Tiles = None,
    embed: Embed = False,
) -> HTMLResponse:
    """An HTML page; Getis-Ord Gi* with a Benjamini-Hochberg FDR correction, bins at 90/95/99 %."""
    community = area_codes(conn, community=community, subdistrict=subdistrict, district=district)
    shown, community = _audience(conn, actor, audience, community)
    m, _ = build_hotspots(
        conn,
        HotspotRequest(
            community=community,
            date_from=from_,
            date_to=to,
            status=status,
            categories=[category] if category else [],
            programmes=[programme] if programme else [],
            unit=unit,
            resolution=resolution,
            normalize=normalize,
            audience=shown,
            lang=lang or lang_of(request),
            tiles=tiles,
        ),
        timezone=settings.service.timezone,
        settings=map_settings,
        request_url=REQUEST_PAGE if shown == "official" else None,
    )
    return _page(
        render_html(m, assets=ASSETS_URL, assets_dir=map_settings.map_assets_dir, embed=embed),
        request,
        actor,
        embed=embed,
    )


def _audience(
    conn: Any, actor: Actor, audience: str | None, community: str | None
) -> tuple[str, str | None]:
    """The audience and the communities to draw. Asked for, the audience is checked
    (:func:`_check_audience`); else it follows the caller: officials, planners and admins
    (session or key) get the officials' map of what their scope covers without typing
    ``audience=official``, and the public map of what it does not; anyone else the public."""
    if audience is not None:
        return audience, _check_audience(conn, actor, audience, community)
    if not (actor.authenticated and actor.role in _OFFICIALS):
        return "public", community
    try:
        return "official", limit_to_scope(conn, actor, community, what="an official map")
    except (Forbidden, NotFound):  # another community's map: the public one, as for anyone
        return "public", community


def _check_audience(conn: Any, actor: Actor, audience: str, community: str | None) -> str | None:
    """Officials' maps show members' positions and masked names: officials, planners and
    admins only, and a key scoped to a community only that community's. Returns the
    communities to draw."""
    if audience != "official":
        return community
    actor.require(*_OFFICIALS, what="an official map")
    return limit_to_scope(conn, actor, community, what="an official map")


@router.get(
    "/assets/{path:path}",
    include_in_schema=False,
    responses={
        200: {"description": "The file, with its own media type (JavaScript, CSS, images)"},
        404: {"content": _ENVELOPE, "description": "no such asset"},
    },
)
def asset(path: str, map_settings: MapSettingsDep) -> FileResponse:
    """Leaflet & co. (``geogrid.maps.assets``); every path carries its version: cached."""
    try:
        file = asset_path(path, map_settings.map_assets_dir)
    except InvalidInput:
        raise NotFound(f"no map asset {path!r}", field="path") from None
    return FileResponse(file, headers={"Cache-Control": "public, max-age=31536000, immutable"})
