"""Load a generated demo community into the database, in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from geogrid.assign import AssignmentReport, assign_community
from geogrid.catalogue import ensure_default_catalogue
from geogrid.db import models, queries
from geogrid.db.queries import catalogue as catalogue_queries
from geogrid.demo.generate import DemoData
from geogrid.errors import Conflict
from geogrid.spatial import multi

Progress = Callable[[str], None]


@dataclass
class DemoLoadReport:
    community_code: str
    community_id: int
    plan_id: int
    counts: dict[str, int]
    assignment: AssignmentReport


def _none(value: Any) -> Any:
    """pandas' missing values (NaN, NaT, None) as None."""
    if value is None:
        return None
    if isinstance(value, list | tuple | dict):
        return value
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def _ts(value: Any) -> dt.datetime | None:
    value = _none(value)
    if value is None:
        return None
    return pd.Timestamp(value).to_pydatetime()


def _int(value: Any) -> int | None:
    value = _none(value)
    return None if value is None else int(value)


def load_demo(
    conn: Connection, data: DemoData, *, progress: Progress | None = None
) -> DemoLoadReport:
    """Write ``data`` into an empty database (the caller owns the transaction)."""
    say = progress or (lambda _msg: None)
    c = data.community
    if queries.count(conn, models.Community, models.Community.code == c["code"]):
        raise Conflict(
            f"community {c['code']} is already loaded: use a fresh database for the demo",
            field="community",
        )
    ensure_default_catalogue(conn)
    dept_ids = catalogue_queries.department_ids(conn)
    categories = catalogue_queries.categories_for_intake(conn)
    cat_ids = {category.code: category.id for category in categories}
    sla_hours = {category.code: category.sla_hours for category in categories}

    say("community")
    community_id = queries.insert_returning_ids(
        conn,
        models.Community,
        [
            {
                "code": c["code"],
                "name": c["name"],
                "name_en": c.get("name_en"),
                "subdistrict": c.get("subdistrict"),
                # The code's head: 9 digits the subdistrict, 6 the county-level district.
                "subdistrict_code": c["code"][:9],
                "district": c.get("district"),
                "district_code": c["code"][:6],
                "city": c.get("city"),
                "province": c.get("province"),
                "country": "CN",
                "timezone": c.get("timezone", "Asia/Shanghai"),
                "synthetic": bool(c.get("synthetic", True)),
                "note": c.get("note"),
                "boundary": queries.geom_value(multi(c["boundary"])),
                "created_at": models.utcnow(),
            }
        ],
    )[0]
    counts: dict[str, int] = {}

    say("streets")
    street_ids = _keyed(
        conn,
        models.Street,
        data.streets,
        "street_key",
        lambda r: {
            "community_id": community_id,
            "name": r.name,
            "kind": r.kind,
            "geom": queries.geom_value(multi(r.geometry)),
        },
    )
    street_names = dict(zip(data.streets["street_key"], data.streets["name"], strict=True))
    say("buildings")
    building_ids = _keyed(
        conn,
        models.Building,
        data.buildings,
        "building_key",
        lambda r: {
            "community_id": community_id,
            "name": _none(r.name),
            "compound": _none(r.compound),
            "aliases": list(r.aliases) if _none(r.aliases) is not None else [],
            "street_id": street_ids.get(_int(r.street_key)),
            "street_name": street_names.get(r.street_key) if _none(r.street_key) else None,
            "house_number": _none(r.house_number),
            "floors": _int(r.floors),
            "geom": queries.geom_value(multi(r.geometry)),
        },
    )
    unit_ids = dict(
        zip(
            data.resident_units["name"],
            queries.insert_returning_ids(
                conn,
                models.ResidentUnit,
                [{"community_id": community_id, "name": n} for n in data.resident_units["name"]],
            ),
            strict=True,
        )
    )
    branch_ids = _keyed(
        conn,
        models.Branch,
        data.branches,
        "branch_key",
        lambda r: {"community_id": community_id, "name": r.name},
    )
    group_ids = _keyed(
        conn,
        models.Group,
        data.groups,
        "group_key",
        lambda r: {
            "branch_id": branch_ids[int(r.branch_key)],
            "name": r.name,
            "building_id": building_ids.get(_int(r.building_key)),
        },
    )
    say("members")
    member_ids = _keyed(
        conn,
        models.Member,
        data.members,
        "member_key",
        lambda r: {
            "community_id": community_id,
            "name": r.name,
            "kind": r.kind,
            "home_unit_id": unit_ids.get(_none(r.home_unit)),
            "branch_id": branch_ids.get(_int(r.branch_key)),
            "group_id": group_ids.get(_int(r.group_key)),
            "active": True,
            "position": queries.geom_value(r.geometry),
        },
    )

    say("boundary plan")
    plan_id = queries.create_plan(
        conn,
        community_id=community_id,
        name="示例初始方案 (demo initial plan)",
        source="geogrid demo generator (synthetic)",
    )
    leads = {
        code: member_ids[int(k)]
        for k, code in zip(data.members["member_key"], data.members["lead_grid_code"], strict=True)
        if _none(code) is not None
    }
    grid_rows = [
        {
            "plan_id": plan_id,
            "code": r.code,
            "name": r.name,
            "lead_member_id": leads.get(r.code),
            "geom": queries.geom_value(multi(r.geometry)),
        }
        for r in data.grids.itertuples()
    ]
    grid_ids = dict(
        zip(
            data.grids["code"],
            queries.insert_returning_ids(conn, models.Grid, grid_rows),
            strict=True,
        )
    )
    queries.bulk_insert(
        conn,
        models.BranchGrid,
        (
            {"branch_id": branch_ids[int(r.branch_key)], "grid_id": grid_ids[code]}
            for r in data.branches.itertuples()
            for code in r.grid_codes
        ),
    )
    queries.mark_plan_active(conn, community_id=community_id, plan_id=plan_id)

    say("responsibility fields")
    field_ids = _keyed(
        conn,
        models.ResponsibilityField,
        data.fields,
        "field_key",
        lambda r: {
            "community_id": community_id,
            "member_id": member_ids[int(r.member_key)],
            "name": r.name,
            "street_id": street_ids.get(_int(r.street_key)),
            "geom": queries.geom_value(multi(r.geometry)),
        },
    )

    say("households")
    household_ids = _keyed(
        conn,
        models.Household,
        data.households,
        "address_id",
        lambda r: {
            "community_id": community_id,
            "address_id": r.address_id,
            "building_id": building_ids.get(_int(r.building_key)),
            "street_id": street_ids.get(_int(r.street_key)),
            "street_name": _none(r.street_name),
            "house_number": _none(r.house_number),
            "compound": _none(r.compound),
            "building_name": _none(r.building_name),
            "unit": _none(r.unit),
            "room": _none(r.room),
            "size": int(r.size),
            "registered": bool(r.registered),
            "geom": queries.geom_value(r.geometry),
        },
        key_type=str,
    )
    queries.bulk_insert(
        conn,
        models.HouseholdPersonal,
        (
            {
                "household_id": household_ids[r.address_id],
                "head_name": _none(r.head_name),
                "phone": None,
                "care_flags": list(r.care_flags) if _none(r.care_flags) is not None else [],
            }
            for r in data.households.itertuples()
        ),
    )

    say("requests")
    request_ids = _keyed(
        conn,
        models.Request,
        data.requests,
        "request_key",
        lambda r: {
            "community_id": community_id,
            "category_id": cat_ids[r.category_code],
            "programme": r.programme,
            "description": _none(r.description),
            "source": _none(r.source),
            "address_id": _none(r.address_id),
            "status": r.status,
            "received_at": _ts(r.received_at),
            "registered_at": _ts(r.registered_at),
            "dispatched_at": _ts(r.dispatched_at),
            "due_at": _due(_ts(r.dispatched_at), sla_hours[r.category_code]),
            "resolved_at": _ts(r.resolved_at),
            "closed_at": _ts(r.closed_at),
            "escalated_to_id": dept_ids.get(_none(r.escalated_to)),
            "satisfaction": _none(r.satisfaction),
            "version": 1,
            "updated_at": max(
                t for t in (_ts(getattr(r, c)) for c in _REQUEST_TIMES) if t is not None
            ),
            "geom": queries.geom_value(r.geometry),
        },
    )
    queries.bulk_insert(
        conn,
        models.RequestEvent,
        (
            {
                "request_id": request_ids[int(r.request_key)],
                "at": _ts(r.at),
                "actor": _none(r.actor),
                "from_status": _none(r.from_status),
                "to_status": r.to_status,
                "note": _none(r.note),
            }
            for r in data.request_events.itertuples()
        ),
    )
    queries.bulk_insert(
        conn,
        models.Visit,
        (
            {
                "member_id": member_ids[int(r.member_key)],
                "household_id": household_ids[r.address_id],
                "visited_on": pd.Timestamp(r.visited_at).date(),
                "kind": _none(r.kind),
                "note": _none(r.note),
            }
            for r in data.visits.itertuples()
        ),
    )
    counts.update(
        streets=len(street_ids),
        buildings=len(building_ids),
        resident_units=len(unit_ids),
        branches=len(branch_ids),
        groups=len(group_ids),
        members=len(member_ids),
        grids=len(grid_ids),
        responsibility_fields=len(field_ids),
        households=len(household_ids),
        requests=len(request_ids),
        request_events=len(data.request_events),
        visits=len(data.visits),
    )
    say("assignment")
    report = assign_community(conn, community_id=community_id, plan_id=plan_id, all_requests=True)
    return DemoLoadReport(
        community_code=c["code"],
        community_id=community_id,
        plan_id=plan_id,
        counts=counts,
        assignment=report,
    )


def _due(dispatched: dt.datetime | None, sla_hours: int) -> dt.datetime | None:
    """The SLA deadline: the clock starts at dispatch (GB/T 30428)."""
    return None if dispatched is None else dispatched + dt.timedelta(hours=int(sla_hours))


_REQUEST_TIMES = ("received_at", "registered_at", "dispatched_at", "resolved_at", "closed_at")


def _keyed(
    conn: Connection,
    model: Any,
    frame: pd.DataFrame,
    key: str,
    row: Callable[[Any], dict[str, Any]],
    *,
    key_type: type = int,
) -> dict[Any, int]:
    """Insert one row per frame row; map the frame's ``key`` column to the new ids."""
    rows = [row(r) for r in frame.itertuples(index=False)]
    ids = queries.insert_returning_ids(conn, model, rows)
    return {key_type(k): i for k, i in zip(frame[key], ids, strict=True)}
