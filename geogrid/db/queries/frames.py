"""Frames of a community or plan (grids, fields, members, buildings …) for the lookup,
the maps and planning: GeoDataFrames in EPSG:4326."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from geoalchemy2 import functions as gfunc
from sqlalchemy import Connection, select

from geogrid.db import models
from geogrid.db.queries.core import read_frame, wkb


def grids_frame(conn: Connection, *, plan_id: int) -> gpd.GeoDataFrame:
    """The plan's grids: ``id, code, name, lead_member_id, geometry`` ordered by code."""
    return read_frame(
        conn,
        select(
            models.Grid.id,
            models.Grid.code,
            models.Grid.name,
            models.Grid.lead_member_id,
            wkb(models.Grid.geom),
        )
        .where(models.Grid.plan_id == plan_id)
        .order_by(models.Grid.code, models.Grid.id),
    )


def fields_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    f = models.ResponsibilityField
    return read_frame(
        conn,
        select(
            f.id,
            f.name,
            f.member_id,
            f.street_id,
            f.grid_id,
            f.needs_review,
            wkb(f.geom),
        )
        .where(f.community_id == community_id)
        .order_by(f.id),
    )


def household_assignments(conn: Connection, *, plan_id: int) -> dict[int, tuple[int, int | None]]:
    """``{household_id: (grid_id, field_id)}`` of a plan."""
    a = models.HouseholdAssignment
    rows = conn.execute(
        select(a.household_id, a.grid_id, a.field_id).where(a.plan_id == plan_id)
    ).all()
    return {r.household_id: (r.grid_id, r.field_id) for r in rows}


def members_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The community's members: ``id, name, kind, active`` (``name`` is personal: mask it)."""
    mb = models.Member
    rows = conn.execute(
        select(mb.id, mb.name, mb.kind, mb.active)
        .where(mb.community_id == community_id)
        .order_by(mb.id)
    ).all()
    return pd.DataFrame(rows, columns=["id", "name", "kind", "active"])


def branch_grids_frame(conn: Connection, *, plan_id: int) -> pd.DataFrame:
    """Which branch sits on which grid of a plan: ``grid_id, branch_id, branch_name``."""
    bg, b, g = models.BranchGrid, models.Branch, models.Grid
    rows = conn.execute(
        select(bg.grid_id, b.id, b.name)
        .join(b, b.id == bg.branch_id)
        .join(g, g.id == bg.grid_id)
        .where(g.plan_id == plan_id)
        .order_by(bg.grid_id, b.id)
    ).all()
    return pd.DataFrame(rows, columns=["grid_id", "branch_id", "branch_name"])


def party_groups_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The community's party groups: ``id, name, branch_id, building_id``."""
    gr, b = models.Group, models.Branch
    rows = conn.execute(
        select(gr.id, gr.name, gr.branch_id, gr.building_id)
        .join(b, b.id == gr.branch_id)
        .where(b.community_id == community_id)
        .order_by(gr.id)
    ).all()
    return pd.DataFrame(rows, columns=["id", "name", "branch_id", "building_id"])


def buildings_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's buildings: ``id, name, compound, aliases, street_id, street_name,
    house_number``."""
    b = models.Building
    return read_frame(
        conn,
        select(
            b.id,
            b.name,
            b.compound,
            b.aliases,
            b.street_id,
            b.street_name,
            b.house_number,
            wkb(b.geom),
        )
        .where(b.community_id == community_id)
        .order_by(b.id),
    )


def streets_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's streets: ``id, name, kind`` and their lines."""
    s = models.Street
    return read_frame(
        conn,
        select(s.id, s.name, s.kind, wkb(s.geom))
        .where(s.community_id == community_id)
        .order_by(s.id),
    )


def address_households_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The household addresses of the gazetteer, door point as ``lon, lat`` (WGS 84).

    ``id, address_id, street_name, house_number, compound, building_name, unit, room,
    building_id, street_id, lon, lat``. ``unit`` and ``room`` complete a personal address:
    they may be matched on, never shown.
    """
    h = models.Household
    rows = conn.execute(
        select(
            h.id,
            h.address_id,
            h.street_name,
            h.house_number,
            h.compound,
            h.building_name,
            h.unit,
            h.room,
            h.building_id,
            h.street_id,
            gfunc.ST_X(h.geom),
            gfunc.ST_Y(h.geom),
        )
        .where(h.community_id == community_id)
        .order_by(h.id)
    ).all()
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "address_id",
            "street_name",
            "house_number",
            "compound",
            "building_name",
            "unit",
            "room",
            "building_id",
            "street_id",
            "lon",
            "lat",
        ],
    )


def planning_households_frame(
    conn: Connection, *, community_id: int, plan_id: int | None
) -> gpd.GeoDataFrame:
    """Households for planning: ``id, address_id, size, building_id, grid_id, field_id``
    (the assignment under ``plan_id``; null without one) and door points."""
    h, a = models.Household, models.HouseholdAssignment
    on = (a.household_id == h.id) & (a.plan_id == (plan_id if plan_id is not None else -1))
    return read_frame(
        conn,
        select(h.id, h.address_id, h.size, h.building_id, a.grid_id, a.field_id, wkb(h.geom))
        .outerjoin(a, on)
        .where(h.community_id == community_id)
        .order_by(h.id),
    )


def open_requests_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's open requests with a location: ``id, grid_id, member_id`` and points."""
    r = models.Request
    return read_frame(
        conn,
        select(r.id, r.grid_id, r.member_id, wkb(r.geom))
        .where(
            r.community_id == community_id,
            r.status.in_(models.OPEN_STATUSES),
            r.geom.is_not(None),
        )
        .order_by(r.id),
    )


def plan_branches_frame(conn: Connection, *, plan_id: int) -> pd.DataFrame:
    """Branches on a plan's grids: ``branch_id, branch_name, grid_id, code, needs_review``."""
    bg, b, g = models.BranchGrid, models.Branch, models.Grid
    rows = conn.execute(
        select(b.id, b.name, g.id, g.code, bg.needs_review)
        .join(b, b.id == bg.branch_id)
        .join(g, g.id == bg.grid_id)
        .where(g.plan_id == plan_id)
        .order_by(g.code, b.id)
    ).all()
    return pd.DataFrame(
        rows, columns=["branch_id", "branch_name", "grid_id", "code", "needs_review"]
    )
