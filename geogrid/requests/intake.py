"""The public intake page's library side: a resident files a request without a key, and
follows it by its tracking token (issue 15, item 5).

* :func:`file_report` files through the same path as ``POST /v1/requests`` and Open311
  (:func:`geogrid.requests.workflow.receive`: checked, routed to grid, field and member at
  once, audited), as the intake page's own actor (:func:`intake_actor`, role ``public``), in
  the caller's transaction — together with the rate limit's count (:func:`begin_intake`), so
  that a refused or invalid report writes nothing at all.
* The rate limit: :data:`RATE_WINDOWS` — ``intake_max_per_hour`` in an hour and
  ``intake_max_per_day`` in a day per client address (5 and 20 by default), counted in the
  ``intake_attempts`` table so that it holds across the service's workers, with the
  caller's clock (tests set it). Attempts older than a day are pruned as new ones come.
* :func:`track` is the status page's content: progress as steps with times, the category,
  the description scrubbed as the public API scrubs it, the grid, the place snapped to its H3
  cell — and never anyone's personal data: no member name (not even masked), no reporter
  contact, no actor, no note other than those addressed to the reporter (scrubbed).
* Care-programme categories (关爱) are never public: the page does not offer them, and a
  care request's status page shows its progress alone (as Open311's ``tokens`` does).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shapely.geometry import mapping
from sqlalchemy import Connection

from geogrid import crs as gcrs
from geogrid.access import Actor
from geogrid.db import models
from geogrid.db.queries import intake as intake_queries
from geogrid.db.queries import maps as map_queries
from geogrid.db.queries import requests as request_queries
from geogrid.directory import list_categories
from geogrid.errors import InvalidInput, NotFound, TooManyAttempts
from geogrid.privacy import scrub
from geogrid.requests.media import Photo
from geogrid.requests.views import PUBLIC_NOTE_ACTIONS, is_care, public_location
from geogrid.requests.workflow import Contact, Geocoder, Intake, Outcome, receive
from geogrid.settings import RequestsSettings

__all__ = [
    "RATE_WINDOWS",
    "Report",
    "begin_intake",
    "file_report",
    "intake_actor",
    "map_outline",
    "public_categories",
    "track",
]

#: The windows of the rate limit and the setting that holds each one's allowance.
RATE_WINDOWS: Final = (
    (dt.timedelta(hours=1), "intake_max_per_hour"),
    (dt.timedelta(days=1), "intake_max_per_day"),
)
#: ``requests.source`` of what the page files.
SOURCE: Final = "web"
#: Longest contact name and phone the page takes (Open311's contact fields hold 200).
MAX_CONTACT: Final = 100


def intake_actor(client: str | None) -> Actor:
    """Who files through the public page: the page itself (role ``public``; no community,
    no personal-data right), recorded in the audit log with the client's address."""
    return Actor(
        role=models.Role.PUBLIC,
        label="web intake",
        client=client,
        via="POST /report",
    )


def public_categories(conn: Connection) -> list[dict[str, Any]]:
    """The active categories a resident may choose: every programme but care (关爱), whose
    requests are never public (DESIGN.md, "Data rules")."""
    return [
        c
        for c in list_categories(conn)
        if c["active"] and c["programme"] != models.Programme.CARE.value
    ]


def begin_intake(
    conn: Connection, *, client: str, now: dt.datetime, settings: RequestsSettings
) -> int:
    """Count a report from ``client`` and record it, in the caller's transaction.

    :class:`TooManyAttempts` (with the seconds until the oldest attempt leaves its window)
    when ``client`` filed ``intake_max_per_hour`` in the last hour or ``intake_max_per_day``
    in the last day. Counting and recording are one step: the client's lock is held until
    the transaction ends (as :func:`geogrid.access.begin_login_attempt` does for sign-in).
    """
    client = client[:64]
    intake_queries.lock_intake_client(conn, client=client)
    longest = max(window for window, _ in RATE_WINDOWS)
    intake_queries.delete_intake_attempts(conn, before=now - longest)
    seen = intake_queries.intake_attempts_since(conn, client=client, since=now - longest)
    wait = 0.0
    for window, name in RATE_WINDOWS:
        limit = int(getattr(settings, name))
        inside = [at for at in seen if at > now - window]
        if len(inside) >= limit:
            # The oldest attempt that must leave the window for one more to fit.
            leaving = inside[len(inside) - limit]
            wait = max(wait, (leaving + window - now).total_seconds())
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyAttempts(
            f"too many requests filed from this address: try again in {seconds} s",
            retry_after=seconds,
            field="client",
        )
    return intake_queries.insert_intake_attempt(conn, client=client, at=now)


@dataclass(frozen=True)
class Report:
    """What a resident typed on the intake page (the place: a point or an address)."""

    category: str
    description: str | None = None
    lon: str | None = None
    lat: str | None = None
    crs: str = "wgs84"
    address: str | None = None
    name: str | None = None
    phone: str | None = None
    photos: Sequence[Photo] = field(default_factory=tuple)


def _contact(report: Report) -> Contact:
    for name, value in (("name", report.name), ("phone", report.phone)):
        if value is not None and len(value) > MAX_CONTACT:
            raise InvalidInput(
                f"{name} is {len(value)} characters long; at most {MAX_CONTACT} are allowed",
                field=name,
            )
    full_name = (report.name or "").strip() or None
    phone = (report.phone or "").strip() or None
    if phone is not None and not all(c.isdigit() or c in "+-() " for c in phone):
        raise InvalidInput("phone may hold digits, spaces and + - ( ) only", field="phone")
    # Open311's contact fields: the whole name as first_name (Chinese names are not split).
    return Contact(first_name=full_name, phone=phone)


def file_report(
    conn: Connection,
    report: Report,
    *,
    client: str,
    now: dt.datetime,
    settings: RequestsSettings,
    geocoder: Geocoder | None = None,
) -> Outcome:
    """File ``report`` from ``client``: the rate limit first, then the intake of
    ``POST /v1/requests``. The caller owns the transaction: any error rolls back the count
    and the request alike (nothing is written)."""
    code = (report.category or "").strip()
    if not code:
        raise InvalidInput("choose a category", field="category")
    if code not in {c["code"] for c in public_categories(conn)}:
        raise InvalidInput(f"unknown category {code!r}", field="category")
    if not (report.description or "").strip():
        raise InvalidInput("describe the problem", field="description")
    has_point = bool((report.lon or "").strip() or (report.lat or "").strip())
    if not has_point and not (report.address or "").strip():
        raise InvalidInput("tap the map or search an address to place it", field="location")
    contact = _contact(report)
    begin_intake(conn, client=client, now=now, settings=settings)
    return receive(
        conn,
        Intake(
            category=code,
            description=report.description,
            lon=report.lon if has_point else None,
            lat=report.lat if has_point else None,
            crs=report.crs,
            address=None if has_point else report.address,
            contact=contact,
            photos=report.photos,
            source=SOURCE,
        ),
        actor=intake_actor(client),
        geocoder=geocoder,
        settings=settings,
    )


# --- the status page -------------------------------------------------------------------------

#: The steps of the status page, in order (escalation is shown when it happened).
STEPS: Final = ("received", "dispatched", "in_progress", "escalated", "resolved", "closed")


def track(conn: Connection, token: str) -> dict[str, Any]:
    """The status page of the request whose tracking token is ``token``.

    ``steps``: each step of :data:`STEPS` with ``done`` and ``at`` (the first time the request
    reached it; UTC, shown in ``timezone``), escalation only if it happened, a rejection in
    place of the rest; ``notes``: the notes addressed to the reporter (scrubbed). A care
    request shows its progress alone (``care``: no description, place or grid).
    :class:`NotFound` for an unknown token."""
    token = (token or "").strip()
    found = intake_queries.request_id_by_token(conn, token=token) if token else None
    row = None if found is None else request_queries.request_row(conn, request_id=found)
    if row is None:
        raise NotFound("no request has this tracking token", field="token")
    events = request_queries.events(conn, request_id=row.id)
    reached: dict[str, dt.datetime] = {}
    for e in events:
        reached.setdefault(e.to_status, e.at)
    reached.setdefault(models.RequestStatus.RECEIVED.value, row.received_at)
    steps: list[dict[str, Any]] = []
    rejected = reached.get(models.RequestStatus.REJECTED.value)
    for step in STEPS:
        at = reached.get(step)
        if step == "escalated" and at is None:
            continue
        if rejected is not None and at is None:
            continue
        steps.append({"step": step, "done": at is not None, "at": at})
    if rejected is not None:
        steps.append({"step": "rejected", "done": True, "at": rejected})
    care = is_care(row)
    place = None if care else public_location(row)
    notes = [
        {"at": e.at, "action": e.action, "note": scrub(e.note)}
        for e in events
        if e.note and e.action in PUBLIC_NOTE_ACTIONS
    ]
    return {
        "id": int(row.id),
        "status": row.status,
        "open": row.status in models.OPEN_STATUSES,
        "care": care,
        "timezone": row.timezone,
        "category": {
            "code": row.category_code,
            "name": row.category_name,
            "name_en": row.category_name_en,
        },
        "description": None if care else scrub(row.description),
        "community": row.community_name,
        "grid": None
        if care or not row.grid_code
        else {"code": row.grid_code, "name": row.grid_name},
        "department": row.department_name if row.status == "escalated" else None,
        "place": place,
        "received_at": row.received_at,
        "due_at": None if care else row.due_at,
        "steps": steps,
        "notes": notes,
    }


# --- the map ---------------------------------------------------------------------------------

#: Outlines are simplified to about 5 m (degrees): enough to find a place, light to send.
_SIMPLIFY_DEG: Final = 5e-5


def map_outline(conn: Connection, *, crs: str = gcrs.WGS84) -> dict[str, Any]:
    """What the intake page's map draws so that a place can be found with no base map: each
    community's boundary and the grids of its active plan (code and name), as GeoJSON in
    ``crs`` — the base map's (GCJ-02 under Amap's tiles, so that they line up; else WGS 84)
    — and their bounds ``[west, south, east, north]`` (None without a community)."""
    communities = map_queries.communities_frame(conn, codes=None)
    features: list[dict[str, Any]] = []
    if communities.empty:
        return {"type": "FeatureCollection", "features": [], "bounds": None}

    def shape(geom: Any) -> dict[str, Any]:
        geom = geom.simplify(_SIMPLIFY_DEG)
        if crs != gcrs.WGS84:
            geom = gcrs.transform_geometry(geom, gcrs.WGS84, crs)
        return dict(mapping(geom))

    for _, c in communities.iterrows():
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "community", "code": c["code"], "name": c["name"]},
                "geometry": shape(c.geometry),
            }
        )
    plans = map_queries.active_plans(conn, community_ids=[int(i) for i in communities["id"]])
    grids = map_queries.grids_frame(conn, plan_ids=[p.plan_id for p in plans]) if plans else None
    if grids is not None:
        for _, g in grids.iterrows():
            features.append(
                {
                    "type": "Feature",
                    "properties": {"kind": "grid", "code": g["code"], "name": g["name"]},
                    "geometry": shape(g.geometry),
                }
            )
    west, south, east, north = (float(v) for v in communities.total_bounds)
    if crs != gcrs.WGS84:
        west, south = gcrs.from_wgs84(west, south, crs)
        east, north = gcrs.from_wgs84(east, north, crs)
    return {"type": "FeatureCollection", "features": features, "bounds": [west, south, east, north]}
