"""Requests as JSON: the public view, the official view, and personal data on request.

* **public** (no key, ``public`` keys, anyone outside a request's scope): status, category,
  times, the place blurred to its H3 cell's centre and the street, grid and the member's
  masked name and role; no reporter contact, no address id, no notes except the public
  status notes, no actor names. Care-programme requests are not public at all.
* **scoped** (officials of the community, its member, the department it is escalated to):
  also the exact place and building-level address, notes, actors, the address id, the
  reporter's evaluation comment.
* **personal** — the reporter's contact details, a member's full name and the unscrubbed
  free text — only for a key with the ``personal_data`` right that asks for it
  (``personal=true``); each read is logged (:func:`geogrid.access.log_personal_read`).
  Everyone else, officials included, reads descriptions and notes scrubbed of phone numbers,
  ID numbers and e-mail addresses (:func:`geogrid.privacy.scrub`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from geogrid.access import Actor, Forbidden, log_personal_read
from geogrid.db import models
from geogrid.db.queries import catalogue
from geogrid.db.queries import requests as request_queries
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import Period, iso
from geogrid.privacy import mask_name, scrub, snap
from geogrid.requests.media import ACCEPTED_TYPES
from geogrid.requests.rights import can_read, list_scope

#: Actions whose notes are addressed to the reporter (Open311 ``status_notes``).
PUBLIC_NOTE_ACTIONS: Final = ("resolve", "reject", "close", "reopen", "send_back")
MAX_PAGE: Final = 500
#: Orders of a list: newest received first (the API's), soonest due first, by status.
SORTS: Final = request_queries.ORDERS


def public_address(row: Any) -> str | None:
    """The building-level address of a household (no unit or room: those are personal)."""
    parts = [
        row.street_name and f"{row.street_name}{row.house_number or ''}",
        row.compound,
        row.building_name,
    ]
    text = " ".join(p for p in parts if p)
    return text or None


def street_address(row: Any) -> str | None:
    """What the public sees of a request's address: the street only (no number, compound or
    building: a door on a small street is one household)."""
    return str(row.street_name) if row.street_name else None


def public_location(row: Any) -> dict[str, Any]:
    """The place of a request as the public sees it: its H3 cell's centre, the street."""
    lon, lat = snap(float(row.lon), float(row.lat))
    return {"lon": round(lon, 6), "lat": round(lat, 6), "address": street_address(row)}


def is_care(row: Any) -> bool:
    """A care-programme request (关爱): who needs care, and where, is never public."""
    return bool(row.programme == models.Programme.CARE.value)


def is_overdue(row: Any, now: dt.datetime | None = None) -> bool:
    now = now or models.utcnow()
    return bool(row.status in models.OPEN_STATUSES and row.due_at is not None and row.due_at < now)


def agency_responsible(row: Any) -> str:
    """Who holds the request now: the department it is escalated to, else the grid (or the
    community, outside every grid)."""
    if row.department_name:
        return str(row.department_name)
    if row.grid_code:
        return f"{row.community_name} {row.grid_name or row.grid_code}"
    return str(row.community_name)


def request_view(
    row: Any,
    *,
    scoped: bool,
    media: Sequence[dict[str, Any]] = (),
    history: Sequence[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
    reveal: bool = False,
) -> dict[str, Any]:
    """The JSON of a request (docs/api.md, "Requests"); ``scoped`` adds the official parts:
    the exact place and building-level address. Free text is scrubbed of phone numbers, ID
    numbers and e-mail addresses unless ``reveal`` (a logged personal-data read)."""
    tz = row.timezone
    text = (lambda value: value) if reveal else scrub
    out: dict[str, Any] = {
        "id": int(row.id),
        "status": row.status,
        "open": row.status in models.OPEN_STATUSES,
        "version": int(row.version),
        "community": {"code": row.community_code, "name": row.community_name},
        "category": {
            "code": row.category_code,
            "name": row.category_name,
            "name_en": row.category_name_en,
            "programme": row.programme,
            "class": row.category_class,
        },
        "description": text(row.description),
        "source": row.source,
        "location": {
            "lon": round(float(row.lon), 7),
            "lat": round(float(row.lat), 7),
            "address": public_address(row),
        }
        if scoped
        else public_location(row),
        "assignment": {
            "grid_code": row.grid_code,
            "grid_name": row.grid_name,
            "field_id": row.field_id,
            "member_id": row.member_id,
            "member_display_name": mask_name(row.member_name) if row.member_name else None,
            "rule": row.assignment_rule,
        },
        "department": None
        if row.department_code is None
        else {"code": row.department_code, "name": row.department_name},
        "agency_responsible": agency_responsible(row),
        "flag": row.flag,
        "attributes": row.attributes,
        "received_at": iso(row.received_at, tz),
        "registered_at": iso(row.registered_at, tz),
        "dispatched_at": iso(row.dispatched_at, tz),
        "due_at": iso(row.due_at, tz),
        "resolved_at": iso(row.resolved_at, tz),
        "closed_at": iso(row.closed_at, tz),
        "updated_at": iso(row.updated_at, tz),
        "overdue": is_overdue(row, now),
        "evaluation": None
        if row.satisfaction is None
        else {
            "satisfaction": row.satisfaction,
            "comment": text(row.satisfaction_comment) if scoped else None,
            "evaluated_at": iso(row.evaluated_at, tz),
        },
        "media": list(media) if scoped or not is_care(row) else [],
    }
    if scoped:
        out["location"]["address_id"] = row.address_id
    if history is not None:
        out["history"] = list(history)
    return out


def media_of(
    conn: Connection, request_ids: Sequence[int], *, base_url: str = ""
) -> dict[int, list[dict[str, Any]]]:
    """``{request_id: [{id, url, content_type}]}``; uploads are served at ``/v1/media/{id}``."""
    out: dict[int, list[dict[str, Any]]] = {int(i): [] for i in request_ids}
    if not request_ids:
        return out
    for r in request_queries.media(conn, request_ids=request_ids):
        out[int(r.request_id)].append(
            {
                "id": int(r.id),
                "url": r.url or f"{base_url}/v1/media/{r.id}",
                "content_type": r.content_type,
                "event_id": r.event_id,
            }
        )
    return out


@dataclass(frozen=True)
class StoredPhoto:
    """An uploaded photo as ``GET /v1/media/{id}`` sends it."""

    id: int
    data: bytes
    content_type: str
    #: In the request's public view (may be cached by anyone); else only for its scope.
    public: bool
    #: Failed the check of migration 0006: sent only as an attachment, never inline.
    quarantined: bool

    @property
    def filename(self) -> str:
        extension = ACCEPTED_TYPES.get(self.content_type, "bin")
        return f"request-photo-{self.id}.{extension}"


def stored_photo(conn: Connection, media_id: int, *, actor: Actor) -> StoredPhoto:
    """A photo with the read rights of its request; :class:`NotFound` when the caller may not
    see it (as for one that does not exist), or when it is a link (``media_url``), which is
    shown in the request's view and never redirected to."""
    media = request_queries.stored_media(conn, media_id=media_id)
    missing = NotFound(f"no photo with id {media_id}", field="media_id")
    if media is None:
        raise missing
    if media.data is None:
        raise NotFound(
            f"media {media_id} is a link given with the request (its media_url), not a stored "
            "photo: the request's view shows the link",
            field="media_id",
        )
    row = request_queries.request_row(conn, request_id=media.request_id)
    assert row is not None  # media rows go with their request (ON DELETE CASCADE)
    public = not is_care(row)  # care photos: only for the request's scope
    if not (public or can_read(actor, row)):
        raise missing
    return StoredPhoto(
        id=int(media.id),
        data=bytes(media.data),
        content_type=str(media.content_type or "application/octet-stream"),
        public=public,
        quarantined=bool(media.quarantined),
    )


def history_of(
    conn: Connection, request_id: int, *, scoped: bool, tz: str, reveal: bool = False
) -> list[dict[str, Any]]:
    """Every transition, oldest first. The public sees roles, not names, and only notes
    addressed to the reporter."""
    out = []
    for r in request_queries.events(conn, request_id=request_id):
        public_note = r.action in PUBLIC_NOTE_ACTIONS or r.action is None
        out.append(
            {
                "id": int(r.id),
                "at": iso(r.at, tz),
                "action": r.action,
                "from": r.from_status,
                "to": r.to_status,
                "actor": r.actor if scoped else None,
                "actor_role": r.actor_role,
                "note": (r.note if reveal else scrub(r.note)) if (scoped or public_note) else None,
                "version": r.version,
                "details": r.details if scoped else None,
            }
        )
    return out


def get_request(
    conn: Connection,
    request_id: int,
    *,
    actor: Actor,
    personal: bool = False,
    base_url: str = "",
    via: str = "GET /v1/requests/{id}",
    filer: bool = False,
) -> dict[str, Any]:
    """One request with its history; ``personal`` adds the reporter's contact and the
    member's name (needs the right; logged). ``filer``: the answer to whoever just filed it,
    who sees its public view even of a care request (what they typed, blurred and scrubbed);
    afterwards only its scope does, and the token's holder its status (Open311 ``tokens``)."""
    row = request_queries.request_row(conn, request_id=request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}", field="id")
    scoped = can_read(actor, row)
    if is_care(row) and not (scoped or filer):  # not public at all: as if it did not exist
        raise NotFound(f"no request with id {request_id}", field="id")
    if personal:
        actor.require_personal_data(what="the reporter's contact details")
        if not scoped:
            raise Forbidden(f"request {request_id} is outside this key's scope")
    out = request_view(
        row,
        scoped=scoped,
        media=media_of(conn, [request_id], base_url=base_url)[request_id],
        history=history_of(conn, request_id, scoped=scoped, tz=row.timezone, reveal=personal),
        reveal=personal,
    )
    if personal:
        # The unscrubbed free text (description, notes, comment) is personal data too.
        log_personal_read(
            conn,
            actor=actor,
            subject="request",
            subject_ids=[request_id],
            fields=["description", "notes", "comment"],
            via=via,
        )
        contact = request_queries.contact(conn, request_id=request_id)
        out["contact"] = None
        fields: list[str] = []
        if contact is not None:
            out["contact"] = {
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "email": contact.email,
                "phone": contact.phone,
                "device_id": contact.device_id,
                "account_id": contact.account_id,
                "address_string": contact.address_string,
            }
            fields = [k for k, v in out["contact"].items() if v]
            log_personal_read(
                conn,
                actor=actor,
                subject="request_contact",
                subject_ids=[request_id],
                fields=fields,
                via=via,
            )
        if row.member_id is not None:
            out["assignment"]["member_name"] = row.member_name
            log_personal_read(
                conn,
                actor=actor,
                subject="member",
                subject_ids=[row.member_id],
                fields=["name"],
                via=via,
            )
    return out


@dataclass(frozen=True)
class RequestFilter:
    """Filters of ``GET /v1/requests`` (all optional; ``status`` and ``category`` take lists)."""

    status: Sequence[str] = ()
    category: Sequence[str] = ()
    programme: str | None = None
    community: str | None = None
    grid: str | None = None
    member_id: int | None = None
    department: str | None = None
    flag: str | None = None
    overdue: bool | None = None
    period: Period | None = None
    ids: Sequence[int] = ()


def _where(f: RequestFilter) -> request_queries.RequestWhere:
    """The checked filters (:class:`~geogrid.errors.InvalidInput` naming a bad one)."""
    bad = [s for s in f.status if s not in {x.value for x in models.RequestStatus} | {"open"}]
    if bad:
        names = ", ".join(x.value for x in models.RequestStatus)
        raise InvalidInput(f"unknown status {bad[0]!r}: one of open, {names}", field="status")
    statuses = None
    if f.status:
        wanted = {s for s in f.status if s != "open"}
        if "open" in f.status:
            wanted |= set(models.OPEN_STATUSES)
        statuses = sorted(wanted)
    if f.programme and f.programme not in {p.value for p in models.Programme}:
        names = ", ".join(p.value for p in models.Programme)
        raise InvalidInput(f"unknown programme {f.programme!r}: {names}", field="programme")
    return request_queries.RequestWhere(
        ids=list(f.ids),
        statuses=statuses,
        category_codes=list(f.category),
        programme=f.programme,
        community_code=f.community,
        grid_code=f.grid,
        member_id=f.member_id,
        department_code=f.department,
        flag=f.flag,
        overdue=f.overdue,
        received_from=None if f.period is None else f.period.lower,
        received_before=None if f.period is None else f.period.upper,
    )


def list_requests(
    conn: Connection,
    *,
    actor: Actor,
    filters: RequestFilter,
    limit: int = 50,
    offset: int = 0,
    base_url: str = "",
    newest_first: bool = True,
    sort: str = "received",
) -> dict[str, Any]:
    """A page of requests, newest received first (or by ``sort``: :data:`SORTS`), and the
    total matching the filters."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {sort!r}", field="sort")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidInput("offset cannot be negative", field="offset")
    where, scope = _where(filters), list_scope(actor)
    total = request_queries.count_requests(conn, where=where, scope=scope)
    rows = request_queries.find_requests(
        conn,
        where=where,
        scope=scope,
        limit=limit,
        offset=offset,
        newest_first=newest_first,
        order=sort,
    )
    media = media_of(conn, [int(r.id) for r in rows], base_url=base_url)
    now = models.utcnow()
    items = [
        request_view(r, scoped=can_read(actor, r), media=media[int(r.id)], now=now) for r in rows
    ]
    return {"total": int(total), "limit": limit, "offset": offset, "items": items}


def request_page(
    conn: Connection, request_id: int, *, actor: Actor, base_url: str = ""
) -> dict[str, Any]:
    """A request as its detail page shows it (the web workbench): :func:`get_request`'s view
    for a caller in its scope — anyone else is refused (:class:`Forbidden`; a care request
    they may not see is :class:`NotFound`, as in the API) — with ``routing`` (the names of the
    field and of the member's branch), ``escalations`` (each ``escalate`` of the history:
    when, to which department, why, by whom) and ``timezone``."""
    row = request_queries.request_row(conn, request_id=request_id)
    if row is not None and not can_read(actor, row):
        if is_care(row):  # not public at all: as if it did not exist (get_request's rule)
            raise NotFound(f"no request with id {request_id}", field="id")
        raise Forbidden(f"request {request_id} is outside this key's scope")
    view = get_request(conn, request_id, actor=actor, base_url=base_url, via="GET /requests/{id}")
    assert row is not None  # else get_request raised NotFound
    names = request_queries.routing(conn, request_id=request_id)
    view["routing"] = {"field_name": names.field_name, "branch_name": names.branch_name}
    departments = {d.code: d.name for d in request_queries.department_names(conn)}
    view["escalations"] = []
    for event in view["history"]:
        if event["action"] != "escalate":
            continue
        code = (event["details"] or {}).get("department")
        view["escalations"].append(
            {
                "at": event["at"],
                "department": code,
                "department_name": departments.get(str(code)),
                "note": event["note"],
                "actor": event["actor"],
            }
        )
    view["timezone"] = row.timezone
    return view


def filter_options(conn: Connection, *, actor: Actor) -> dict[str, list[dict[str, Any]]]:
    """What a list's filters offer ``actor``: the active categories, the grids of its
    communities' active plans, the departments (codes and names, as the data has them)."""
    return {
        "categories": [
            {"code": c.code, "name": c.name, "name_en": c.name_en}
            for c in catalogue.categories(conn, include_inactive=False)
        ],
        "grids": [
            {"code": g.code, "name": g.name}
            for g in request_queries.active_grid_options(conn, community_ids=actor.community_ids)
        ],
        "departments": [d._asdict() for d in request_queries.department_names(conn)],
    }


def in_scope(conn: Connection, request_id: int, *, actor: Actor) -> bool:
    """Whether ``actor`` may read request ``request_id`` beyond its public view (after an
    action a department that sent it back, or a member it was taken from, no longer may)."""
    row = request_queries.request_row(conn, request_id=request_id)
    return row is not None and can_read(actor, row)
