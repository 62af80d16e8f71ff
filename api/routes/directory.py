"""The catalogue and the directory: categories, departments, members, responsibility fields,
grid leads and visits (docs/api.md, "Catalogue and directory", "Visits").

Reads of the catalogue are public; members are shown with masked names unless a key with
the personal_data right asks (``personal=true``, logged). Edits need an official or admin key.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query

from api.auth import OPEN, ActorDep
from api.deps import ConnDep, EngineDep, SettingsDep, known_fields
from api.params import Day, Id, Offset
from api.schemas.common import ErrorEnvelope
from api.schemas.directory import (
    CategoryOut,
    CoverageTable,
    DepartmentOut,
    FieldMemberSet,
    FieldOut,
    GridLeadSet,
    MemberOut,
    VisitCreated,
    VisitPage,
)
from geogrid import bounds, directory
from geogrid.db import queries
from geogrid.db.models import Role
from geogrid.errors import InvalidInput
from geogrid.periods import period
from geogrid.requests import visits

router = APIRouter(prefix="/v1", tags=["directory"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorEnvelope} for s in (401, 403, 404, 409, 422)
}
_EDITORS = (Role.OFFICIAL, Role.ADMIN)
JsonBody = Annotated[dict[str, Any], Body()]


# --- categories and departments ----------------------------------------------------------


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    summary="The request catalogue",
    responses=_ERRORS,
)
def list_categories(conn: ConnDep, include_inactive: bool = False) -> list[dict[str, Any]]:
    return directory.list_categories(conn, include_inactive=include_inactive)


@router.post(
    "/categories",
    status_code=201,
    response_model=CategoryOut,
    summary="Add a category",
    responses=_ERRORS,
)
def create_category(
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "code": "stray_dogs",
                    "name": "流浪犬",
                    "programme": "safety",
                    "class": "event",
                    "sla_hours": 48,
                    "department": "urban_management",
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    """Fields: code, name, name_en, programme, class, subclass, sla_hours, department,
    attributes (Open311 definitions), active."""
    actor.require(*_EDITORS, what="editing the catalogue")
    actor.require_unscoped(what="editing the catalogue")
    body = dict(body)
    code = body.pop("code", None)
    with engine.begin() as conn:
        return directory.save_category(conn, code=code, values=body, create=True, actor=actor)


@router.patch(
    "/categories/{code}",
    response_model=CategoryOut,
    summary="Change a category",
    responses=_ERRORS,
)
def update_category(
    code: str, engine: EngineDep, actor: ActorDep, body: JsonBody
) -> dict[str, Any]:
    actor.require(*_EDITORS, what="editing the catalogue")
    actor.require_unscoped(what="editing the catalogue")
    with engine.begin() as conn:
        return directory.save_category(conn, code=code, values=body, create=False, actor=actor)


@router.get(
    "/departments",
    response_model=list[DepartmentOut],
    summary="The departments requests escalate to",
)
def list_departments(conn: ConnDep) -> list[dict[str, Any]]:
    return directory.list_departments(conn)


@router.put(
    "/departments/{code}",
    response_model=DepartmentOut,
    summary="Add or rename a department",
    responses=_ERRORS,
)
def save_department(
    code: str, engine: EngineDep, actor: ActorDep, body: JsonBody
) -> dict[str, Any]:
    actor.require(*_EDITORS, what="editing departments")
    actor.require_unscoped(what="editing departments")
    known_fields(body, ("name", "name_en"))
    with engine.begin() as conn:
        return directory.save_department(
            conn, code=code, name=body.get("name"), name_en=body.get("name_en"), actor=actor
        )


# --- members, fields, grid leads -----------------------------------------------------------


# Members: ``name`` and ``phone`` are in the body only with personal=true, so keys the library
# leaves out stay out (response_model_exclude_unset), and nulls it gives stay null.
@router.get(
    "/members",
    response_model=list[MemberOut],
    response_model_exclude_unset=True,
    summary="Members (masked names; personal=true with the right)",
    responses=_ERRORS,
)
def list_members(
    engine: EngineDep,
    actor: ActorDep,
    community: str | None = None,
    personal: bool = False,
) -> list[dict[str, Any]]:
    actor.require(Role.MEMBER, Role.DEPARTMENT, *_EDITORS, Role.PLANNER, what="reading members")
    with engine.begin() as conn:
        return directory.list_members(conn, actor=actor, community=community, personal=personal)


@router.post(
    "/members",
    status_code=201,
    response_model=MemberOut,
    response_model_exclude_unset=True,
    summary="Add a member",
    responses=_ERRORS,
)
def create_member(engine: EngineDep, actor: ActorDep, body: JsonBody) -> dict[str, Any]:
    """Fields: community (code), name, kind, phone, branch (name), active."""
    actor.require(*_EDITORS, what="editing members")
    body = dict(body)
    community = body.pop("community", None)
    with engine.begin() as conn:
        if actor.community_id is not None and community is None:  # a community's key
            community = queries.community_by_id(conn, community_id=actor.community_id).code
        member_id = directory.save_member(
            conn, member_id=None, values=body, community=community, actor=actor
        )
        _in_scope(conn, actor, member_id)
        return directory.list_members(conn, actor=actor, ids=[member_id])[0]


@router.patch(
    "/members/{member_id}",
    response_model=MemberOut,
    response_model_exclude_unset=True,
    summary="Change a member",
    responses=_ERRORS,
)
def update_member(
    member_id: Id, engine: EngineDep, actor: ActorDep, body: JsonBody
) -> dict[str, Any]:
    """Deactivating a member vacates its fields: their open requests go to the grid lead."""
    actor.require(*_EDITORS, what="editing members")
    with engine.begin() as conn:
        _in_scope(conn, actor, member_id)
        directory.save_member(conn, member_id=member_id, values=body, actor=actor)
        return directory.list_members(conn, actor=actor, ids=[member_id])[0]


def _in_scope(conn: Any, actor: Any, member_id: int) -> None:
    cid = queries.member_community_id(conn, member_id=member_id)
    actor.require_community(cid, what=f"editing member {member_id}")


@router.get(
    "/fields",
    response_model=list[FieldOut],
    summary="Responsibility fields and who holds them",
    responses={404: {"model": ErrorEnvelope, "description": "No such community"}},
)
def list_fields(conn: ConnDep, community: str | None = None) -> list[dict[str, Any]]:
    return directory.list_fields(conn, community=community)


@router.put(
    "/fields/{field_id}/member",
    response_model=FieldMemberSet,
    summary="Give a field to a member, or vacate it",
    responses=_ERRORS,
)
def set_field_member(
    field_id: Id,
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[dict[str, Any], Body(examples=[{"member_id": 12}, {"member_id": None}])],
) -> dict[str, Any]:
    actor.require(*_EDITORS, what="assigning fields")
    member_id = _member_id(known_fields(body, ("member_id",)))
    with engine.begin() as conn:
        return directory.set_field_member(conn, field_id=field_id, member_id=member_id, actor=actor)


@router.put(
    "/grids/{grid_code}/lead",
    response_model=GridLeadSet,
    summary="Set the lead member of a grid",
    responses=_ERRORS,
)
def set_grid_lead(
    grid_code: str,
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[dict[str, Any], Body(examples=[{"member_id": 12}])],
) -> dict[str, Any]:
    actor.require(*_EDITORS, what="setting grid leads")
    known_fields(body, ("member_id", "community"))
    with engine.begin() as conn:
        return directory.set_grid_lead(
            conn,
            grid_code=grid_code,
            member_id=_member_id(body),
            actor=actor,
            community=body.get("community"),
        )


def _member_id(body: dict[str, Any]) -> int | None:
    if "member_id" not in body:
        raise InvalidInput("member_id is required (null vacates)", field="member_id")
    value = body["member_id"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput("member_id must be a member id or null", field="member_id")
    return None if value is None else bounds.check_id(value, field="member_id")


# --- visits --------------------------------------------------------------------------------


@router.post(
    "/visits",
    status_code=201,
    response_model=VisitCreated,
    summary="Log a visit to a household (分类走访)",
    responses=_ERRORS,
)
def log_visit(
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "address_id": "JY-0001",
                    "visited_on": "2018-04-18",
                    "kind": "care",
                    "note": "节前慰问",
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    """A member logs its own visits to households of its fields; officials for any member
    (``member_id``). kind: routine, care, follow_up, mediation, other."""
    known_fields(body, ("address_id", "visited_on", "kind", "member_id", "note"))
    with engine.begin() as conn:
        vid = visits.log_visit(
            conn,
            actor=actor,
            address_id=str(body.get("address_id") or ""),
            visited_on=body.get("visited_on") or dt.date.today().isoformat(),
            kind=str(body.get("kind") or ""),
            member_id=body.get("member_id"),
            note=body.get("note"),
        )
    return {"id": vid}


@router.get("/visits", response_model=VisitPage, summary="Visits, newest first", responses=_ERRORS)
def list_visits(
    conn: ConnDep,
    actor: ActorDep,
    settings: SettingsDep,
    member_id: Id | None = None,
    from_: Annotated[Day | None, Query(alias="from")] = None,
    to: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    p = period(from_, to, tz=settings.service.timezone) if (from_ or to) else None
    return visits.list_visits(
        conn, actor=actor, member_id=member_id, period=p, limit=limit, offset=offset
    )


@router.get(
    "/visits/coverage",
    openapi_extra=OPEN,
    response_model=CoverageTable,
    summary="Visit coverage = households visited ÷ households",
    responses=_ERRORS,
)
def visit_coverage(
    conn: ConnDep,
    settings: SettingsDep,
    actor: ActorDep,
    from_: Annotated[Day | None, Query(alias="from")] = None,
    to: Day | None = None,
    group_by: Annotated[
        Literal["community", "grid", "branch", "member"], Query(description="The grouping")
    ] = "grid",
    community: str | None = None,
) -> dict[str, Any]:
    p = period(from_, to, tz=settings.service.timezone)
    if group_by == "member":
        actor.require(Role.OFFICIAL, Role.PLANNER, Role.ADMIN, what="coverage by member")
    return {
        "period": p.to_dict(),
        "group_by": group_by,
        "rows": visits.coverage(
            conn, period=p, group_by=group_by, community=community, actor=actor
        ),
    }
