"""Queries of the operator's duties: retention of reporters' data, a person's export and
erasure.

What is erased and kept, and why, is in ``geogrid.retention`` and ``geogrid.person``; here
only the statements. Lists of ids go through ``dialect.in_values`` (one array on PostGIS,
``IN`` lists of 900 on SpatiaLite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    null,
    or_,
    select,
    update,
)

from geogrid.db import dialect, models
from geogrid.db.queries.audit import permit

_S = models.RequestStatus


# --- requests: what a reporter left -----------------------------------------------------------


class ExpiredRequest(NamedTuple):
    id: int
    community_code: str


def requests_done_before(conn: Connection, *, before: dt.datetime) -> list[ExpiredRequest]:
    """Requests finished before ``before``: closed (核查结案) then, or rejected (不予受理,
    a terminal state with no ``closed_at``: its last change is its end) then."""
    req, community = models.Request, models.Community
    rows = conn.execute(
        select(req.id, community.code)
        .join(community, community.id == req.community_id)
        .where(
            or_(
                and_(req.status == _S.CLOSED.value, req.closed_at < before),
                and_(req.status == _S.REJECTED.value, req.updated_at < before),
            )
        )
        .order_by(req.id)
    ).all()
    return [ExpiredRequest(int(i), str(code)) for i, code in rows]


def _ids(values: Iterable[int]) -> list[int]:
    return sorted({int(v) for v in values})


def contact_request_ids(conn: Connection, *, request_ids: Iterable[int]) -> set[int]:
    """Which of the requests have a contact row."""
    contact = models.RequestContact
    out: set[int] = set()
    for cond in dialect.in_values(conn, contact.request_id, _ids(request_ids)):
        out.update(int(i) for i in conn.execute(select(contact.request_id).where(cond)).scalars())
    return out


class MediaCount(NamedTuple):
    request_id: int
    photos: int
    links: int


def media_counts(conn: Connection, *, request_ids: Iterable[int]) -> list[MediaCount]:
    """Uploaded photos (``data``) and linked ones (``url``) per request that has any."""
    media = models.RequestMedia
    out: list[MediaCount] = []
    for cond in dialect.in_values(conn, media.request_id, _ids(request_ids)):
        rows = conn.execute(
            select(
                media.request_id,
                func.count(media.data),
                func.count(media.url),
            )
            .where(cond)
            .group_by(media.request_id)
        ).all()
        out += [MediaCount(int(r), int(p), int(u)) for r, p, u in rows]
    return out


class RequestText(NamedTuple):
    id: int
    description: str | None
    has_token: bool
    has_comment: bool
    has_attributes: bool
    has_address_id: bool


def request_texts(conn: Connection, *, request_ids: Iterable[int]) -> list[RequestText]:
    """What each request holds of its reporter besides the contact and the photos."""
    req = models.Request
    out: list[RequestText] = []
    for cond in dialect.in_values(conn, req.id, _ids(request_ids)):
        rows = conn.execute(
            select(
                req.id,
                req.description,
                req.token.is_not(None),
                req.satisfaction_comment.is_not(None),
                # JSON: SQL NULL and a JSON null both come back as None.
                req.attributes,
                req.address_id.is_not(None),
            )
            .where(cond)
            .order_by(req.id)
        ).all()
        out += [
            RequestText(int(i), text, bool(token), bool(comment), attrs is not None, bool(addr))
            for i, text, token, comment, attrs, addr in rows
        ]
    return out


class EventNote(NamedTuple):
    id: int
    request_id: int
    action: str | None
    note: str


def event_notes(conn: Connection, *, request_ids: Iterable[int]) -> list[EventNote]:
    """The notes of the requests' events (those that have one)."""
    event = models.RequestEvent
    out: list[EventNote] = []
    for cond in dialect.in_values(conn, event.request_id, _ids(request_ids)):
        rows = conn.execute(
            select(event.id, event.request_id, event.action, event.note)
            .where(cond, event.note.is_not(None))
            .order_by(event.id)
        ).all()
        out += [EventNote(int(i), int(r), a, str(n)) for i, r, a, n in rows]
    return out


def delete_contacts(conn: Connection, *, request_ids: Iterable[int]) -> int:
    """Delete the requests' contact rows; how many."""
    contact = models.RequestContact
    n = 0
    for cond in dialect.in_values(conn, contact.request_id, _ids(request_ids)):
        n += int(conn.execute(delete(contact).where(cond)).rowcount)
    return n


def delete_media(conn: Connection, *, request_ids: Iterable[int]) -> int:
    """Delete the requests' photos, uploaded and linked; how many rows."""
    media = models.RequestMedia
    n = 0
    for cond in dialect.in_values(conn, media.request_id, _ids(request_ids)):
        n += int(conn.execute(delete(media).where(cond)).rowcount)
    return n


def anonymise_requests(conn: Connection, *, descriptions: Sequence[tuple[int, str | None]]) -> int:
    """Strip requests of their reporter: no token, comment, attributes or household link;
    the description as given (scrubbed by the caller). ``descriptions``: (id, text)."""
    if not descriptions:
        return 0
    table = models.table(models.Request)
    conn.execute(
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values(
            description=bindparam("text"),
            token=None,
            satisfaction_comment=None,
            attributes=null(),  # SQL NULL, not the JSON null
            address_id=None,
        ),
        [{"rid": i, "text": text} for i, text in descriptions],
    )
    return len(descriptions)


def set_event_notes(conn: Connection, *, notes: Sequence[tuple[int, str | None]]) -> int:
    """Replace events' notes: (event id, new note or None)."""
    if not notes:
        return 0
    table = models.table(models.RequestEvent)
    with permit(conn, "erase"):
        conn.execute(
            update(table).where(table.c.id == bindparam("eid")).values(note=bindparam("text")),
            [{"eid": i, "text": text} for i, text in notes],
        )
    return len(notes)


# --- a reporter ---------------------------------------------------------------------------------


def request_id_by_token(conn: Connection, *, token: str) -> int | None:
    req = models.Request
    value = conn.execute(select(req.id).where(req.token == token)).scalar()
    return None if value is None else int(value)


def request_ids_by_phone(conn: Connection, *, digits: str) -> list[int]:
    """Requests whose reporter's phone is ``digits`` (spaces, hyphens, a ``+`` and a leading
    86 or 0086 country code aside)."""
    contact = models.RequestContact
    bare = func.replace(func.replace(func.replace(contact.phone, " ", ""), "-", ""), "+", "")
    rows = conn.execute(
        select(contact.request_id)
        .where(bare.in_([digits, f"86{digits}", f"0086{digits}"]))
        .order_by(contact.request_id)
    ).scalars()
    return [int(i) for i in rows]


def reporter_requests(conn: Connection, *, request_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The requests with everything they hold of the reporter, and their contacts."""
    req, cat, community = models.Request, models.Category, models.Community
    contact = models.RequestContact
    out: list[dict[str, Any]] = []
    for cond in dialect.in_values(conn, req.id, list(request_ids)):
        rows = conn.execute(
            select(
                req.id,
                community.code.label("community"),
                cat.code.label("category"),
                req.status,
                req.received_at,
                req.closed_at,
                req.description,
                req.address_id,
                req.attributes,
                req.satisfaction,
                req.satisfaction_comment,
                req.geom.ST_X().label("lon"),
                req.geom.ST_Y().label("lat"),
                contact.first_name,
                contact.last_name,
                contact.email,
                contact.phone,
                contact.device_id,
                contact.account_id,
                contact.address_string,
                contact.request_id.is_not(None).label("has_contact"),
            )
            .join(community, community.id == req.community_id)
            .join(cat, cat.id == req.category_id)
            .outerjoin(contact, contact.request_id == req.id)
            .where(cond)
            .order_by(req.id)
        ).all()
        out += [r._asdict() for r in rows]
    return out


def media_of(conn: Connection, *, request_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every photo of the requests, with its bytes."""
    media = models.RequestMedia
    out: list[dict[str, Any]] = []
    for cond in dialect.in_values(conn, media.request_id, list(request_ids)):
        rows = conn.execute(
            select(
                media.id,
                media.request_id,
                media.url,
                media.content_type,
                media.filename,
                media.size,
                media.sha256,
                media.data,
                media.created_at,
            )
            .where(cond)
            .order_by(media.id)
        ).all()
        out += [r._asdict() for r in rows]
    return out


def events_of(conn: Connection, *, request_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The requests' events: when, what, the note."""
    event = models.RequestEvent
    out: list[dict[str, Any]] = []
    for cond in dialect.in_values(conn, event.request_id, list(request_ids)):
        rows = conn.execute(
            select(event.request_id, event.at, event.action, event.to_status, event.note)
            .where(cond)
            .order_by(event.id)
        ).all()
        out += [r._asdict() for r in rows]
    return out


# --- a member -----------------------------------------------------------------------------------


def member_record(conn: Connection, *, member_id: int) -> dict[str, Any] | None:
    """A member's row with its community, branch, group and unit by name; position as lon/lat."""
    m, community = models.Member, models.Community
    branch, group, unit = models.Branch, models.Group, models.ResidentUnit
    row = conn.execute(
        select(
            m.id,
            community.code.label("community"),
            m.community_id,
            m.name,
            m.phone,
            m.kind,
            m.active,
            branch.name.label("branch"),
            group.name.label("group"),
            unit.name.label("home_unit"),
            m.position.ST_X().label("lon"),
            m.position.ST_Y().label("lat"),
        )
        .join(community, community.id == m.community_id)
        .outerjoin(branch, branch.id == m.branch_id)
        .outerjoin(group, group.id == m.group_id)
        .outerjoin(unit, unit.id == m.home_unit_id)
        .where(m.id == member_id)
    ).one_or_none()
    return None if row is None else row._asdict()


def member_fields(conn: Connection, *, member_id: int) -> list[dict[str, Any]]:
    f = models.ResponsibilityField
    rows = conn.execute(select(f.id, f.name).where(f.member_id == member_id).order_by(f.id)).all()
    return [r._asdict() for r in rows]


def member_grids(conn: Connection, *, member_id: int) -> list[dict[str, Any]]:
    """Grids the member leads, in every plan (active, draft, retired)."""
    grid, plan = models.Grid, models.BoundaryPlan
    rows = conn.execute(
        select(grid.id, grid.code, plan.version.label("plan_version"), plan.status)
        .join(plan, plan.id == grid.plan_id)
        .where(grid.lead_member_id == member_id)
        .order_by(grid.id)
    ).all()
    return [r._asdict() for r in rows]


def member_keys(conn: Connection, *, member_id: int) -> list[dict[str, Any]]:
    key = models.ApiKey
    rows = conn.execute(
        select(key.id, key.prefix, key.name, key.role, key.created_at, key.revoked_at)
        .where(key.member_id == member_id)
        .order_by(key.id)
    ).all()
    return [r._asdict() for r in rows]


def member_visits(conn: Connection, *, member_id: int) -> list[dict[str, Any]]:
    """The visits the member logged (the households' own data is theirs: their ids only)."""
    v = models.Visit
    rows = conn.execute(
        select(v.id, v.household_id, v.visited_on, v.kind)
        .where(v.member_id == member_id)
        .order_by(v.id)
    ).all()
    return [r._asdict() for r in rows]


def member_requests(conn: Connection, *, member_id: int) -> list[dict[str, Any]]:
    req = models.Request
    rows = conn.execute(
        select(req.id, req.status, req.received_at)
        .where(req.member_id == member_id)
        .order_by(req.id)
    ).all()
    return [r._asdict() for r in rows]


def erase_member(conn: Connection, *, member_id: int, name: str) -> None:
    """Anonymise a member's row (the row stays: fields, grids, visits and requests refer to
    it) and take it out of service."""
    m = models.Member
    conn.execute(
        update(m)
        .where(m.id == member_id)
        .values(name=name, phone=None, position=None, active=False)
    )


def clear_member_leads(conn: Connection, *, member_id: int) -> int:
    """Unassign the member as lead of every grid (every plan); how many grids."""
    grid = models.Grid
    result = conn.execute(
        update(grid).where(grid.lead_member_id == member_id).values(lead_member_id=None)
    )
    return int(result.rowcount)


def relabel_event_actors(conn: Connection, *, old: str, new: str) -> int:
    """Events recorded under the label ``old`` (a key's label with a person's name) get
    ``new``; how many."""
    event = models.RequestEvent
    with permit(conn, "erase"):
        result = conn.execute(update(event).where(event.actor == old).values(actor=new))
    return int(result.rowcount)


def erase_key_names(conn: Connection, *, key_ids: Sequence[int], at: dt.datetime) -> None:
    """Revoke keys and drop their names (a member key is often named after its holder)."""
    key = models.ApiKey
    for cond in dialect.in_values(conn, key.id, list(key_ids)):
        conn.execute(update(key).where(cond, key.revoked_at.is_(None)).values(revoked_at=at))
        conn.execute(update(key).where(cond).values(name=None))


# --- a household --------------------------------------------------------------------------------


def household_record(conn: Connection, *, address_id: str) -> dict[str, Any] | None:
    """A household with its personal row (if any) and community; door point as lon/lat."""
    h, p, community = models.Household, models.HouseholdPersonal, models.Community
    row = conn.execute(
        select(
            h.id,
            h.address_id,
            community.code.label("community"),
            h.street_name,
            h.house_number,
            h.compound,
            h.building_name,
            h.unit,
            h.room,
            h.size,
            h.registered,
            h.geom.ST_X().label("lon"),
            h.geom.ST_Y().label("lat"),
            p.head_name,
            p.phone,
            p.care_flags,
            p.household_id.is_not(None).label("has_personal"),
        )
        .join(community, community.id == h.community_id)
        .outerjoin(p, p.household_id == h.id)
        .where(h.address_id == address_id)
    ).one_or_none()
    return None if row is None else row._asdict()


def household_visits(conn: Connection, *, household_id: int) -> list[dict[str, Any]]:
    v = models.Visit
    rows = conn.execute(
        select(v.id, v.member_id, v.visited_on, v.kind, v.note)
        .where(v.household_id == household_id)
        .order_by(v.id)
    ).all()
    return [r._asdict() for r in rows]


def household_requests(conn: Connection, *, address_id: str) -> list[dict[str, Any]]:
    """Requests filed at the household's address (ids, status: the reporters' own data is
    theirs)."""
    req, cat = models.Request, models.Category
    rows = conn.execute(
        select(req.id, cat.code.label("category"), req.status, req.received_at)
        .join(cat, cat.id == req.category_id)
        .where(req.address_id == address_id)
        .order_by(req.id)
    ).all()
    return [r._asdict() for r in rows]


def erase_household(conn: Connection, *, household_id: int) -> dict[str, int]:
    """Delete the household's personal row, its unit and room, the notes of its visits."""
    h, p, v = models.Household, models.HouseholdPersonal, models.Visit
    personal = conn.execute(delete(p).where(p.household_id == household_id)).rowcount
    conn.execute(update(h).where(h.id == household_id).values(unit=None, room=None))
    notes = conn.execute(
        update(v).where(v.household_id == household_id, v.note.is_not(None)).values(note=None)
    ).rowcount
    return {"personal_rows": int(personal), "visit_notes": int(notes)}
