"""The rows behind the data-quality report (``geogrid check``, ``geogrid.quality``).

Plain reads, the same on both backends: the spatial tests themselves run in shapely on what
these return. Geometries travel as WKB (SpatiaLite's blobs are its own format) and come back as
shapely geometries in EPSG:4326; household doors come as ``lon, lat`` floats, which are much
cheaper than a Point per row at 500,000 households. Nothing personal is read: no names, no
phones, no units or rooms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import shapely
from geoalchemy2 import functions as gfunc
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Connection, select, true

from geogrid.db import models


class CommunityShape(NamedTuple):
    id: int
    code: str
    boundary: BaseGeometry


class ActivePlan(NamedTuple):
    community_id: int
    plan_id: int


class GridShape(NamedTuple):
    id: int
    community_id: int
    code: str
    lead_member_id: int | None
    geom: BaseGeometry


class FieldShape(NamedTuple):
    id: int
    community_id: int
    member_id: int | None
    geom: BaseGeometry


class MemberRef(NamedTuple):
    id: int
    community_id: int


class HouseholdAddress(NamedTuple):
    """A household's door and building-level address (never unit or room)."""

    id: int
    community_id: int
    address_id: str
    street_name: str | None
    house_number: str | None
    compound: str | None
    building_name: str | None
    building_id: int | None
    lon: float
    lat: float


class BuildingAddress(NamedTuple):
    """A building, its address (its street's name and its house number) and its polygon."""

    id: int
    community_id: int
    name: str | None
    compound: str | None
    street_name: str | None
    house_number: str | None
    geom: BaseGeometry


def _in(column: Any, ids: Sequence[int] | None) -> ColumnElement[bool]:
    """``column`` in ``ids``; always true when ``ids`` is None (every community)."""
    return true() if ids is None else column.in_(list(ids))


def _shapes(blobs: Sequence[Any]) -> list[BaseGeometry]:
    return list(shapely.from_wkb([bytes(b) for b in blobs]))


def community_shapes(conn: Connection) -> list[CommunityShape]:
    """Every community's boundary, ordered by code.

    All of them, even for a check of one community: "outside every community" and overlaps
    look at the neighbours too, and a district's few hundred boundaries read in milliseconds.
    """
    c = models.Community
    rows = conn.execute(select(c.id, c.code, gfunc.ST_AsBinary(c.boundary)).order_by(c.code)).all()
    geoms = _shapes([r[2] for r in rows])
    return [CommunityShape(r[0], r[1], g) for r, g in zip(rows, geoms, strict=True)]


def active_plans(conn: Connection, *, community_ids: Sequence[int] | None) -> list[ActivePlan]:
    """The active plan of each community that has one."""
    p = models.BoundaryPlan
    stmt = select(p.community_id, p.id).where(p.status == models.PlanStatus.ACTIVE.value)
    rows = conn.execute(
        stmt.where(_in(p.community_id, community_ids)).order_by(p.community_id)
    ).all()
    return [ActivePlan(r[0], r[1]) for r in rows]


def grid_shapes(conn: Connection, *, plan_ids: Sequence[int]) -> list[GridShape]:
    """The grids of the plans ``plan_ids`` with their community, ordered by code."""
    g, p = models.Grid, models.BoundaryPlan
    rows = conn.execute(
        select(g.id, p.community_id, g.code, g.lead_member_id, gfunc.ST_AsBinary(g.geom))
        .join(p, p.id == g.plan_id)
        .where(g.plan_id.in_(list(plan_ids)))
        .order_by(p.community_id, g.code, g.id)
    ).all()
    geoms = _shapes([r[4] for r in rows])
    return [GridShape(r[0], r[1], r[2], r[3], g) for r, g in zip(rows, geoms, strict=True)]


def field_shapes(conn: Connection, *, community_ids: Sequence[int] | None) -> list[FieldShape]:
    """The responsibility fields of the communities, ordered by id."""
    f = models.ResponsibilityField
    stmt = select(f.id, f.community_id, f.member_id, gfunc.ST_AsBinary(f.geom))
    rows = conn.execute(stmt.where(_in(f.community_id, community_ids)).order_by(f.id)).all()
    geoms = _shapes([r[3] for r in rows])
    return [FieldShape(r[0], r[1], r[2], g) for r, g in zip(rows, geoms, strict=True)]


def members_without_branch(
    conn: Connection, *, community_ids: Sequence[int] | None
) -> list[MemberRef]:
    """Active members of the communities who belong to no branch, ordered by id (ids only:
    the report never carries names). Inactive members are left out: they need no branch."""
    mb = models.Member
    stmt = select(mb.id, mb.community_id).where(mb.branch_id.is_(None), mb.active.is_(True))
    rows = conn.execute(stmt.where(_in(mb.community_id, community_ids)).order_by(mb.id)).all()
    return [MemberRef(r[0], r[1]) for r in rows]


def household_addresses(
    conn: Connection, *, community_ids: Sequence[int] | None
) -> list[HouseholdAddress]:
    """The households of the communities: door point and building-level address, by id."""
    h = models.Household
    stmt = select(
        h.id,
        h.community_id,
        h.address_id,
        h.street_name,
        h.house_number,
        h.compound,
        h.building_name,
        h.building_id,
        gfunc.ST_X(h.geom),
        gfunc.ST_Y(h.geom),
    )
    rows = conn.execute(stmt.where(_in(h.community_id, community_ids)).order_by(h.id)).all()
    return [HouseholdAddress._make(r) for r in rows]


def building_addresses(
    conn: Connection, *, community_ids: Sequence[int] | None
) -> list[BuildingAddress]:
    """The buildings of the communities with their street's name (None without a street), by
    id. A building's address is its street and house number; the link to the street is by id,
    so the name is the street's, as households' addresses spell it."""
    b, s = models.Building, models.Street
    stmt = select(
        b.id, b.community_id, b.name, b.compound, s.name, b.house_number, gfunc.ST_AsBinary(b.geom)
    ).outerjoin(s, s.id == b.street_id)
    rows = conn.execute(stmt.where(_in(b.community_id, community_ids)).order_by(b.id)).all()
    geoms = _shapes([r[6] for r in rows])
    return [
        BuildingAddress(r[0], r[1], r[2], r[3], r[4], r[5], g)
        for r, g in zip(rows, geoms, strict=True)
    ]
