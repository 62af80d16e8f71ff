"""Queries of residents' requests: the view row, lists by filter and scope, intake, actions.

The request modules (``geogrid.requests.views``, ``workflow``, ``open311``) check their inputs
and rights, then call these; nothing here decides who may see what (``geogrid.requests.rights``
turns a key into a :class:`RequestScope`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import shapely
from geoalchemy2 import functions as gfunc
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Select, and_, case, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from geogrid.db import models
from geogrid.db.queries import geom_value

#: A request's category's default department (the request's own is ``escalated_to``).
CATEGORY_DEPARTMENT = aliased(models.Department, name="category_department")


class RequestRow(NamedTuple):
    """Every column a view of a request needs (``geogrid.requests.views``)."""

    id: int
    community_id: int
    community_code: str
    community_name: str
    timezone: str
    status: str
    version: int
    programme: str
    category_code: str
    category_name: str
    category_name_en: str | None
    category_class: str
    description: str | None
    source: str | None
    address_id: str | None
    street_name: str | None
    house_number: str | None
    compound: str | None
    building_name: str | None
    received_at: dt.datetime
    registered_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    due_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime
    escalated_to_id: int | None
    department_code: str | None
    department_name: str | None
    category_department_code: str | None
    category_department_name: str | None
    satisfaction: str | None
    satisfaction_comment: str | None
    evaluated_at: dt.datetime | None
    grid_id: int | None
    grid_code: str | None
    grid_name: str | None
    field_id: int | None
    member_id: int | None
    member_name: str | None
    assignment_rule: str | None
    flag: str | None
    token: str | None
    attributes: dict[str, Any] | None
    lon: float
    lat: float


def request_select() -> Select[*tuple[Any, ...]]:
    """The statement of :class:`RequestRow`: one row per request (add ``where`` clauses)."""
    request, category, community = models.Request, models.Category, models.Community
    grid, member, department, household = (
        models.Grid,
        models.Member,
        models.Department,
        models.Household,
    )
    return (
        select(
            request.id,
            request.community_id,
            community.code.label("community_code"),
            community.name.label("community_name"),
            community.timezone,
            request.status,
            request.version,
            request.programme,
            category.code.label("category_code"),
            category.name.label("category_name"),
            category.name_en.label("category_name_en"),
            category.category_class,
            request.description,
            request.source,
            request.address_id,
            household.street_name,
            household.house_number,
            household.compound,
            household.building_name,
            request.received_at,
            request.registered_at,
            request.dispatched_at,
            request.due_at,
            request.resolved_at,
            request.closed_at,
            request.updated_at,
            request.escalated_to_id,
            department.code.label("department_code"),
            department.name.label("department_name"),
            CATEGORY_DEPARTMENT.code.label("category_department_code"),
            CATEGORY_DEPARTMENT.name.label("category_department_name"),
            request.satisfaction,
            request.satisfaction_comment,
            request.evaluated_at,
            request.grid_id,
            grid.code.label("grid_code"),
            grid.name.label("grid_name"),
            request.field_id,
            request.member_id,
            member.name.label("member_name"),
            request.assignment_rule,
            request.flag,
            request.token,
            request.attributes,
            gfunc.ST_X(request.geom).label("lon"),
            gfunc.ST_Y(request.geom).label("lat"),
        )
        .join(category, category.id == request.category_id)
        .join(community, community.id == request.community_id)
        .outerjoin(grid, grid.id == request.grid_id)
        .outerjoin(member, member.id == request.member_id)
        .outerjoin(department, department.id == request.escalated_to_id)
        .outerjoin(CATEGORY_DEPARTMENT, CATEGORY_DEPARTMENT.id == category.department_id)
        .outerjoin(household, household.address_id == request.address_id)
    )


def request_row(conn: Connection, *, request_id: int) -> RequestRow | None:
    """One request's :class:`RequestRow`, or None."""
    row = conn.execute(request_select().where(models.Request.id == request_id)).one_or_none()
    return None if row is None else RequestRow(**row._asdict())


# --- lists: filters and scope --------------------------------------------------------------


@dataclass(frozen=True)
class RequestWhere:
    """Filters of a list of requests, already checked; empty values filter nothing."""

    ids: Sequence[int] = ()
    #: None filters nothing (an empty list matches nothing).
    statuses: Sequence[str] | None = None
    category_codes: Sequence[str] = ()
    programme: str | None = None
    community_code: str | None = None
    grid_code: str | None = None
    member_id: int | None = None
    department_code: str | None = None
    flag: str | None = None
    #: True: open and past the deadline now; False: anything else.
    overdue: bool | None = None
    #: Received at or after.
    received_from: dt.datetime | None = None
    #: Received before (the end of a half-open period).
    received_before: dt.datetime | None = None
    #: Received at or before (Open311's ``end_date`` is inclusive).
    received_until: dt.datetime | None = None
    token: str | None = None


@dataclass(frozen=True)
class RequestScope:
    """Which requests a caller may list (``geogrid.requests.rights.list_scope``)."""

    #: A scoped key's communities (None: every community).
    community_ids: frozenset[int] | None = None
    #: Care-programme requests are never public.
    exclude_care: bool = False
    #: A member's key: only the requests assigned to ``member_id``.
    own_member: bool = False
    member_id: int | None = None
    #: A department's key: only what is escalated to ``department_id``.
    own_department: bool = False
    department_id: int | None = None


def _conditions(where: RequestWhere, scope: RequestScope) -> list[Any]:
    request = models.Request
    out: list[Any] = []
    if where.statuses is not None:
        out.append(request.status.in_(list(where.statuses)))
    if where.category_codes:
        out.append(models.Category.code.in_(list(where.category_codes)))
    if where.programme:
        out.append(request.programme == where.programme)
    if where.community_code:
        out.append(models.Community.code == where.community_code)
    if where.grid_code:
        out.append(models.Grid.code == where.grid_code)
    if where.member_id is not None:
        out.append(request.member_id == where.member_id)
    if where.department_code:
        out.append(models.Department.code == where.department_code)
    if where.flag:
        out.append(request.flag == where.flag)
    if where.overdue is not None:
        now = models.utcnow()
        late = and_(request.status.in_(models.OPEN_STATUSES), request.due_at < now)
        on_time = or_(
            ~request.status.in_(models.OPEN_STATUSES),
            request.due_at.is_(None),
            request.due_at >= now,
        )
        out.append(late if where.overdue else on_time)
    if where.received_from is not None:
        out.append(request.received_at >= where.received_from)
    if where.received_before is not None:
        out.append(request.received_at < where.received_before)
    if where.received_until is not None:
        out.append(request.received_at <= where.received_until)
    if where.ids:
        out.append(request.id.in_([int(i) for i in where.ids]))
    if where.token is not None:
        out.append(request.token == where.token)
    if scope.community_ids is not None:
        out.append(request.community_id.in_(sorted(scope.community_ids)))
    if scope.exclude_care:
        out.append(request.programme != models.Programme.CARE.value)
    if scope.own_member:
        out.append(request.member_id == scope.member_id)
    if scope.own_department:
        out.append(request.escalated_to_id == scope.department_id)
    return out


def count_requests(conn: Connection, *, where: RequestWhere, scope: RequestScope) -> int:
    """How many requests match ``where`` within ``scope``."""
    base = request_select().where(*_conditions(where, scope))
    return int(conn.execute(select(func.count()).select_from(base.subquery())).scalar_one())


#: Orders of a list (``geogrid.requests.views.SORTS``); each ends with the id, so that pages
#: of a list never repeat or skip a request.
ORDERS: Final = ("received", "due", "status")


def _order(order: str, newest_first: bool) -> list[Any]:
    request = models.Request
    if order == "due":
        # Soonest due first; requests without a deadline (not dispatched yet) last.
        return [request.due_at.is_(None), request.due_at, request.id]
    if order == "status":
        # The workflow's order (received → … → rejected), newest received first within one.
        rank = case({s.value: i for i, s in enumerate(models.RequestStatus)}, value=request.status)
        return [rank, request.received_at.desc(), request.id.desc()]
    if newest_first:
        return [request.received_at.desc(), request.id.desc()]
    return [request.received_at, request.id]


def find_requests(
    conn: Connection,
    *,
    where: RequestWhere,
    scope: RequestScope,
    limit: int,
    offset: int = 0,
    newest_first: bool = True,
    order: str = "received",
) -> list[RequestRow]:
    """A page of the matching requests by received time (then id), newest first or not, or
    by ``order`` (:data:`ORDERS`)."""
    stmt = request_select().where(*_conditions(where, scope))
    rows = conn.execute(
        stmt.order_by(*_order(order, newest_first)).limit(limit).offset(offset)
    ).all()
    return [RequestRow(**r._asdict()) for r in rows]


class Routing(NamedTuple):
    """The names of where a request was routed: its field and its member's branch."""

    field_name: str | None
    branch_name: str | None


def routing(conn: Connection, *, request_id: int) -> Routing:
    """The responsibility field's name and the assigned member's party branch (as the KPIs
    count a request's branch: its member's)."""
    request, field, member = models.Request, models.ResponsibilityField, models.Member
    row = conn.execute(
        select(field.name.label("field_name"), models.Branch.name.label("branch_name"))
        .select_from(request)
        .outerjoin(field, field.id == request.field_id)
        .outerjoin(member, member.id == request.member_id)
        .outerjoin(models.Branch, models.Branch.id == member.branch_id)
        .where(request.id == request_id)
    ).one_or_none()
    return Routing(None, None) if row is None else Routing(**row._asdict())


class GridOption(NamedTuple):
    code: str
    name: str | None


def active_grid_options(
    conn: Connection, *, community_ids: frozenset[int] | None
) -> list[GridOption]:
    """Codes and names of the grids of the active plans (of ``community_ids``; None: all)."""
    grid, plan = models.Grid, models.BoundaryPlan
    stmt = (
        select(grid.code, grid.name)
        .join(plan, plan.id == grid.plan_id)
        .where(plan.status == models.PlanStatus.ACTIVE.value)
        .order_by(grid.code)
    )
    if community_ids is not None:
        stmt = stmt.where(plan.community_id.in_(sorted(community_ids)))
    return [GridOption(*r) for r in conn.execute(stmt).all()]


# --- details: media, history, contact --------------------------------------------------------


class MediaRow(NamedTuple):
    """A photo or link of a request (without the photo's bytes)."""

    id: int
    request_id: int
    url: str | None
    content_type: str | None
    event_id: int | None


def media(conn: Connection, *, request_ids: Sequence[int]) -> list[MediaRow]:
    """The requests' photos and links, in the order they were added."""
    media_ = models.RequestMedia
    rows = conn.execute(
        select(media_.id, media_.request_id, media_.url, media_.content_type, media_.event_id)
        .where(media_.request_id.in_(list(request_ids)))
        .order_by(media_.id)
    ).all()
    return [MediaRow(**r._asdict()) for r in rows]


class StoredMedia(NamedTuple):
    """A media row with its bytes (None for a link)."""

    id: int
    request_id: int
    content_type: str | None
    data: bytes | None
    quarantined: bool


def stored_media(conn: Connection, *, media_id: int) -> StoredMedia | None:
    """One media row with its bytes, or None."""
    media_ = models.RequestMedia
    row = conn.execute(
        select(
            media_.id, media_.request_id, media_.content_type, media_.data, media_.quarantined
        ).where(media_.id == media_id)
    ).one_or_none()
    return None if row is None else StoredMedia(**row._asdict())


class EventRow(NamedTuple):
    """One transition of a request (``request_events``)."""

    id: int
    at: dt.datetime
    actor: str | None
    actor_role: str | None
    from_status: str | None
    to_status: str
    note: str | None
    action: str | None
    version: int | None
    details: dict[str, Any] | None


def events(conn: Connection, *, request_id: int) -> list[EventRow]:
    """A request's transitions, oldest first."""
    event = models.RequestEvent
    rows = conn.execute(
        select(
            event.id,
            event.at,
            event.actor,
            event.actor_role,
            event.from_status,
            event.to_status,
            event.note,
            event.action,
            event.version,
            event.details,
        )
        .where(event.request_id == request_id)
        .order_by(event.at, event.id)
    ).all()
    return [EventRow(**r._asdict()) for r in rows]


class NoteRow(NamedTuple):
    request_id: int
    note: str


def notes(conn: Connection, *, request_ids: Sequence[int], actions: Sequence[str]) -> list[NoteRow]:
    """The notes of the requests' transitions by ``actions``, oldest first."""
    event = models.RequestEvent
    rows = conn.execute(
        select(event.request_id, event.note)
        .where(
            event.request_id.in_(list(request_ids)),
            event.action.in_(list(actions)),
            event.note.is_not(None),
        )
        .order_by(event.at, event.id)
    ).all()
    return [NoteRow(**r._asdict()) for r in rows]


class ContactRow(NamedTuple):
    """The reporter's contact details (personal data)."""

    request_id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    device_id: str | None
    account_id: str | None
    address_string: str | None


def contact(conn: Connection, *, request_id: int) -> ContactRow | None:
    """The reporter's contact details of a request, or None."""
    row = conn.execute(
        select(models.table(models.RequestContact)).where(
            models.RequestContact.request_id == request_id
        )
    ).one_or_none()
    return None if row is None else ContactRow(**row._asdict())


# --- the catalogue, households, members, departments, communities ----------------------------


class CategoryRow(NamedTuple):
    id: int
    code: str
    name: str
    programme: str
    sla_hours: int
    department_id: int | None
    attributes: list[dict[str, Any]] | None
    active: bool


def category(conn: Connection, *, code: str) -> CategoryRow | None:
    """A category by code (active or retired), or None."""
    cat = models.Category
    row = conn.execute(
        select(
            cat.id,
            cat.code,
            cat.name,
            cat.programme,
            cat.sla_hours,
            cat.department_id,
            cat.attributes,
            cat.active,
        ).where(cat.code == code)
    ).one_or_none()
    return None if row is None else CategoryRow(**row._asdict())


def sla_hours(conn: Connection, *, category_id: int) -> int:
    """A category's SLA, in hours."""
    return int(
        conn.execute(
            select(models.Category.sla_hours).where(models.Category.id == category_id)
        ).scalar_one()
    )


def sla_hours_by_code(conn: Connection, *, category_codes: Sequence[str]) -> dict[str, int]:
    """``{category code: SLA hours}``."""
    cat = models.Category
    rows = conn.execute(
        select(cat.code, cat.sla_hours).where(cat.code.in_(list(category_codes)))
    ).all()
    return {str(r.code): int(r.sla_hours) for r in rows}


class HouseholdPoint(NamedTuple):
    lon: float
    lat: float
    community_id: int


def household_point(conn: Connection, *, address_id: str) -> HouseholdPoint | None:
    """A household's door point (WGS 84) and community, or None."""
    household = models.Household
    row = conn.execute(
        select(
            gfunc.ST_X(household.geom), gfunc.ST_Y(household.geom), household.community_id
        ).where(household.address_id == address_id)
    ).one_or_none()
    return None if row is None else HouseholdPoint(float(row[0]), float(row[1]), int(row[2]))


class CommunityArea(NamedTuple):
    id: int
    code: str
    timezone: str
    boundary: BaseGeometry


def community_areas(conn: Connection, *, code: str | None = None) -> list[CommunityArea]:
    """Communities with their boundaries, by code (only ``code``'s when given)."""
    community = models.Community
    stmt = select(
        community.id, community.code, community.timezone, gfunc.ST_AsBinary(community.boundary)
    ).order_by(community.code)
    if code is not None:
        stmt = stmt.where(community.code == code)
    return [
        CommunityArea(int(r[0]), str(r[1]), str(r[2]), shapely.from_wkb(bytes(r[3])))
        for r in conn.execute(stmt).all()
    ]


class MemberStanding(NamedTuple):
    id: int
    community_id: int
    active: bool


def member_standing(conn: Connection, *, member_id: int) -> MemberStanding | None:
    """A member's community and whether it is active, or None."""
    member = models.Member
    row = conn.execute(
        select(member.id, member.community_id, member.active).where(member.id == member_id)
    ).one_or_none()
    return None if row is None else MemberStanding(**row._asdict())


class DepartmentRef(NamedTuple):
    id: int
    code: str


def department(conn: Connection, *, code: str) -> DepartmentRef | None:
    """A department by code, or None."""
    dept = models.Department
    row = conn.execute(select(dept.id, dept.code).where(dept.code == code)).one_or_none()
    return None if row is None else DepartmentRef(**row._asdict())


class DepartmentName(NamedTuple):
    code: str
    name: str
    name_en: str | None


def department_names(conn: Connection) -> list[DepartmentName]:
    """Every department's code and names, by code."""
    dept = models.Department
    rows = conn.execute(select(dept.code, dept.name, dept.name_en).order_by(dept.code)).all()
    return [DepartmentName(*r) for r in rows]


def category_department(conn: Connection, *, category_id: int) -> DepartmentRef | None:
    """The default department of a category, or None."""
    dept = models.Department
    row = conn.execute(
        select(dept.id, dept.code)
        .join(models.Category, models.Category.department_id == dept.id)
        .where(models.Category.id == category_id)
    ).one_or_none()
    return None if row is None else DepartmentRef(**row._asdict())


# --- intake and actions ----------------------------------------------------------------------


def insert_request(
    conn: Connection,
    *,
    community_id: int,
    category_id: int,
    programme: str,
    description: str | None,
    source: str,
    address_id: str | None,
    status: str,
    received_at: dt.datetime,
    updated_at: dt.datetime,
    lon: float,
    lat: float,
    token: str,
    attributes: dict[str, Any] | None,
) -> int:
    """A new request (version 1) at ``(lon, lat)``; its id."""
    return int(
        conn.execute(
            insert(models.Request)
            .values(
                community_id=community_id,
                category_id=category_id,
                programme=programme,
                description=description,
                source=source,
                address_id=address_id,
                status=status,
                received_at=received_at,
                version=1,
                updated_at=updated_at,
                geom=geom_value(Point(lon, lat)),
                token=token,
                attributes=attributes,
            )
            .returning(models.Request.id)
        ).scalar_one()
    )


def insert_contact(
    conn: Connection,
    *,
    request_id: int,
    address_string: str | None,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
    device_id: str | None,
    account_id: str | None,
) -> None:
    """Keep the reporter's contact details (personal data, apart from the request)."""
    conn.execute(
        insert(models.RequestContact).values(
            request_id=request_id,
            address_string=address_string,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            device_id=device_id,
            account_id=account_id,
        )
    )


def insert_event(
    conn: Connection,
    *,
    request_id: int,
    at: dt.datetime,
    actor: str,
    actor_role: str,
    action: str,
    from_status: str | None,
    to_status: str,
    version: int,
    note: str | None,
    details: dict[str, Any] | None,
) -> int:
    """Append one transition to a request's history; its id."""
    return int(
        conn.execute(
            insert(models.RequestEvent)
            .values(
                request_id=request_id,
                at=at,
                actor=actor,
                actor_role=actor_role,
                from_status=from_status,
                to_status=to_status,
                note=note,
                action=action,
                version=version,
                details=details,
            )
            .returning(models.RequestEvent.id)
        ).scalar_one()
    )


def insert_media(conn: Connection, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store photos and links (``request_media`` rows), in one statement."""
    if rows:
        conn.execute(insert(models.RequestMedia), [dict(r) for r in rows])


class RequestState(NamedTuple):
    """What an action checks: status, version, assignment, scope and token."""

    id: int
    community_id: int
    category_id: int
    status: str
    version: int
    member_id: int | None
    grid_id: int | None
    escalated_to_id: int | None
    token: str | None
    updated_at: dt.datetime


def request_state(conn: Connection, *, request_id: int) -> RequestState | None:
    """A request's :class:`RequestState`, or None."""
    request = models.Request
    row = conn.execute(
        select(
            request.id,
            request.community_id,
            request.category_id,
            request.status,
            request.version,
            request.member_id,
            request.grid_id,
            request.escalated_to_id,
            request.token,
            request.updated_at,
        ).where(request.id == request_id)
    ).one_or_none()
    return None if row is None else RequestState(**row._asdict())


def claim_request(conn: Connection, *, request_id: int, version: int, now: dt.datetime) -> bool:
    """``UPDATE … SET version = version + 1 WHERE id = ? AND version = ?``: whether it won
    (the optimistic lock of ``geogrid.requests.workflow``, whose docstring says why)."""
    request = models.Request
    claimed = conn.execute(
        update(request)
        .where(request.id == request_id, request.version == version)
        .values(version=request.version + 1, updated_at=now)
    ).rowcount
    return bool(claimed == 1)


def update_request(conn: Connection, *, request_id: int, values: Mapping[str, Any]) -> None:
    """Set columns of a request (``values``: column name → value)."""
    conn.execute(update(models.Request).where(models.Request.id == request_id).values(**values))


def request_community_id(conn: Connection, *, request_id: int) -> int:
    """The community of a request."""
    return int(
        conn.execute(
            select(models.Request.community_id).where(models.Request.id == request_id)
        ).scalar_one()
    )


def assignment_rule(conn: Connection, *, request_id: int) -> str | None:
    """How a request's member was found (``field``, ``grid_lead``, ``none`` …)."""
    rule = conn.execute(
        select(models.Request.assignment_rule).where(models.Request.id == request_id)
    ).scalar_one()
    return None if rule is None else str(rule)
