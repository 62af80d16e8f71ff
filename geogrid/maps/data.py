"""What the maps show, read from the database: one query per layer, both backends alike.

Every function takes keyword-only arguments and returns plain frames in WGS 84 (EPSG:4326);
the builders (``geogrid.maps.coverage`` …) never touch the database. Personal data stays here:
member names leave only masked (:func:`geogrid.privacy.mask_name`) and only when asked for
(officials' maps); household heads, phones, care flags, units and rooms are never read.

Request figures per grid are taken by *location* under the active plan (the edge rule of
:func:`geogrid.spatial.assign_points`), not by the stored ``grid_id``: a closed request keeps
the grid it had, possibly of a retired plan, and the map shows today's grids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2 import functions as gfunc
from sqlalchemy import Connection, and_, func, select

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import Period
from geogrid.privacy import mask_name
from geogrid.spatial import assign_points

__all__ = [
    "Scope",
    "community_scope",
    "coverage_frames",
    "request_points",
]

WGS84 = "EPSG:4326"


@dataclass
class Scope:
    """The communities a map covers, their active plans and the period."""

    communities: pd.DataFrame  # id, code, name, name_en, district, synthetic, timezone
    plans: pd.DataFrame  # community_id, plan_id, version, name, activated_at
    period: Period
    boundary: gpd.GeoDataFrame  # code, name, geometry

    @property
    def community_ids(self) -> list[int]:
        return [int(i) for i in self.communities["id"]]

    @property
    def plan_ids(self) -> list[int]:
        return [int(i) for i in self.plans["plan_id"]]

    @property
    def synthetic(self) -> bool:
        return bool(self.communities["synthetic"].any())


def community_scope(
    conn: Connection, *, community_codes: Sequence[str] | None, period: Period
) -> Scope:
    """The communities named (all of them when None: a district map) with active plans."""
    c = m.Community
    stmt = select(
        c.id, c.code, c.name, c.name_en, c.district, c.synthetic, c.timezone, q.wkb(c.boundary)
    ).order_by(c.code)
    if community_codes:
        stmt = stmt.where(c.code.in_(list(community_codes)))
    frame = q.read_frame(conn, stmt)
    if community_codes:
        missing = sorted(set(community_codes) - set(frame["code"]))
        if missing:
            raise NotFound(f"no community with code {', '.join(missing)}", field="community")
    if frame.empty:
        raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
    p = m.BoundaryPlan
    plans = pd.DataFrame(
        conn.execute(
            select(p.community_id, p.id, p.version, p.name, p.activated_at).where(
                p.community_id.in_([int(i) for i in frame["id"]]),
                p.status == m.PlanStatus.ACTIVE.value,
            )
        ).all(),
        columns=["community_id", "plan_id", "version", "name", "activated_at"],
    )
    if plans.empty:
        raise NotFound(
            "no active boundary plan in these communities: import grids with --commit",
            field="community",
        )
    communities = pd.DataFrame(frame.drop(columns="geometry"))
    boundary = frame[["code", "name", "geometry"]].copy()
    return Scope(communities=communities, plans=plans, period=period, boundary=boundary)


# --- coverage ---------------------------------------------------------------------------------


@dataclass
class CoverageFrames:
    """Everything a coverage map draws (see :func:`geogrid.maps.coverage.coverage_map`)."""

    scope: Scope
    grids: gpd.GeoDataFrame
    fields: gpd.GeoDataFrame
    uncovered: pd.DataFrame  # lon, lat of households no field covers (no identity)
    streets: gpd.GeoDataFrame
    members: pd.DataFrame | None = None  # officials only: id, name_masked, kind, branch, lon, lat
    extra: dict[str, Any] = field(default_factory=dict)


def _grouped(conn: Connection, stmt: Any, key: str, value: str) -> pd.Series:
    rows = conn.execute(stmt).all()
    return pd.Series({r[0]: r[1] for r in rows}, name=value, dtype="float64").rename_axis(key)


def coverage_frames(
    conn: Connection, *, scope: Scope, include_members: bool = False
) -> CoverageFrames:
    """The per-grid figures, fields, uncovered households, streets (and members)."""
    plan_ids = scope.plan_ids
    ids = scope.community_ids
    g, p, a = m.Grid, m.BoundaryPlan, m.HouseholdAssignment
    lead = m.Member
    grids = q.read_frame(
        conn,
        select(
            g.id.label("grid_id"),
            g.code,
            g.name,
            g.plan_id,
            m.Community.code.label("community_code"),
            lead.name.label("lead_member"),
            q.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(m.Community, m.Community.id == p.community_id)
        .outerjoin(lead, lead.id == g.lead_member_id)
        .where(g.plan_id.in_(plan_ids))
        .order_by(g.code, g.id),
    )
    # The only personal datum read here: masked at once, the raw name dropped.
    grids["lead_member_masked"] = [mask_name(v) or None for v in grids.pop("lead_member")]
    gid = grids["grid_id"]

    def per_grid(series: pd.Series) -> np.ndarray:
        return series.reindex(gid).fillna(0).to_numpy().astype(np.int64)

    grids["households"] = per_grid(
        _grouped(
            conn,
            select(a.grid_id, func.count()).where(a.plan_id.in_(plan_ids)).group_by(a.grid_id),
            "grid_id",
            "households",
        )
    )
    grids["residents"] = per_grid(
        _grouped(
            conn,
            select(a.grid_id, func.coalesce(func.sum(m.Household.size), 0))
            .join(m.Household, m.Household.id == a.household_id)
            .where(a.plan_id.in_(plan_ids))
            .group_by(a.grid_id),
            "grid_id",
            "residents",
        )
    )
    grids["uncovered"] = per_grid(
        _grouped(
            conn,
            select(a.grid_id, func.count())
            .where(a.plan_id.in_(plan_ids), a.field_id.is_(None))
            .group_by(a.grid_id),
            "grid_id",
            "uncovered",
        )
    )
    f = m.ResponsibilityField
    in_grids = f.grid_id.in_(select(g.id).where(g.plan_id.in_(plan_ids)))
    grids["fields"] = per_grid(
        _grouped(
            conn,
            select(f.grid_id, func.count()).where(in_grids).group_by(f.grid_id),
            "grid_id",
            "fields",
        )
    )
    grids["fields_vacant"] = per_grid(
        _grouped(
            conn,
            select(f.grid_id, func.count())
            .where(in_grids, f.member_id.is_(None))
            .group_by(f.grid_id),
            "grid_id",
            "fields_vacant",
        )
    )
    grids["members"] = per_grid(
        _grouped(
            conn,
            select(f.grid_id, func.count(func.distinct(f.member_id)))
            .where(in_grids, f.member_id.is_not(None))
            .group_by(f.grid_id),
            "grid_id",
            "members",
        )
    )
    # Households visited in the period (distinct), by the grid that holds them.
    v = m.Visit
    grids["visited"] = per_grid(
        _grouped(
            conn,
            select(a.grid_id, func.count(func.distinct(v.household_id)))
            .join(a, and_(a.household_id == v.household_id, a.plan_id.in_(plan_ids)))
            .where(v.visited_on >= scope.period.start, v.visited_on <= scope.period.end)
            .group_by(a.grid_id),
            "grid_id",
            "visited",
        )
    )
    branches = pd.concat(
        [q.branch_grids_frame(conn, plan_id=pid) for pid in plan_ids], ignore_index=True
    )
    names = branches.groupby("grid_id")["branch_name"].agg(lambda s: "、".join(map(str, s)))
    grids["branch"] = [names.get(i) for i in gid]
    # Requests received in the period, by location under today's grids.
    req = request_points(conn, community_ids=ids, period=scope.period)
    idx = assign_points(
        shapely.points(req["lon"].to_numpy(), req["lat"].to_numpy()),
        grids,
        key=grids["code"].to_numpy(),
    )
    n = len(grids)
    opened = req["status"].isin(m.OPEN_STATUSES).to_numpy()
    resolved = req["status"].isin(m.RESOLVED_STATUSES).to_numpy()
    inside = idx >= 0
    grids["received"] = np.bincount(idx[inside], minlength=n)
    grids["resolved"] = np.bincount(idx[inside & resolved], minlength=n)
    grids["open_requests"] = np.bincount(idx[inside & opened], minlength=n)
    extra = {"requests_outside": int((~inside).sum()), "requests": len(req)}

    fields = q.read_frame(
        conn,
        select(
            f.id.label("field_id"),
            f.name,
            f.member_id,
            f.grid_id,
            m.Member.name.label("member"),
            q.wkb(f.geom),
        )
        .outerjoin(m.Member, m.Member.id == f.member_id)
        .where(f.community_id.in_(ids))
        .order_by(f.id),
    )
    fields["member_masked"] = [mask_name(v) or None for v in fields.pop("member")]
    fields["grid_code"] = fields["grid_id"].map(dict(zip(gid, grids["code"], strict=True)))
    fields["households"] = (
        _grouped(
            conn,
            select(a.field_id, func.count())
            .where(a.plan_id.in_(plan_ids), a.field_id.is_not(None))
            .group_by(a.field_id),
            "field_id",
            "households",
        )
        .reindex(fields["field_id"])
        .fillna(0)
        .to_numpy()
        .astype(np.int64)
    )

    # Households no field covers: in a grid without a field, or outside every grid.
    h = m.Household
    uncovered = pd.DataFrame(
        conn.execute(
            select(gfunc.ST_X(h.geom), gfunc.ST_Y(h.geom))
            .outerjoin(a, and_(a.household_id == h.id, a.plan_id.in_(plan_ids)))
            .where(h.community_id.in_(ids), a.field_id.is_(None))
        ).all(),
        columns=["lon", "lat"],
        dtype="float64",
    )
    s = m.Street
    streets = q.read_frame(
        conn,
        select(s.id, s.name, q.wkb(s.geom)).where(s.community_id.in_(ids)).order_by(s.id),
    )
    members = None
    if include_members:
        mb = m.Member
        rows = conn.execute(
            select(
                mb.id,
                mb.name,
                mb.kind,
                m.Branch.name,
                gfunc.ST_X(mb.position),
                gfunc.ST_Y(mb.position),
            )
            .outerjoin(m.Branch, m.Branch.id == mb.branch_id)
            .where(mb.community_id.in_(ids), mb.active.is_(True), mb.position.is_not(None))
            .order_by(mb.id)
        ).all()
        members = pd.DataFrame(
            [(r[0], mask_name(r[1]) or None, r[2], r[3], r[4], r[5]) for r in rows],
            columns=["id", "name_masked", "kind", "branch", "lon", "lat"],
        )
    return CoverageFrames(
        scope=scope,
        grids=grids,
        fields=fields,
        uncovered=uncovered,
        streets=streets,
        members=members,
        extra=extra,
    )


# --- requests ---------------------------------------------------------------------------------


def request_points(
    conn: Connection,
    *,
    community_ids: Sequence[int],
    period: Period,
    status: str | None = None,
    categories: Sequence[str] | None = None,
    programmes: Sequence[str] | None = None,
    as_of: dt.datetime | None = None,
) -> pd.DataFrame:
    """Requests received in ``period`` as points: ``id, category, category_name,
    category_name_en, programme, status, received_at, due_at, overdue, lon, lat``.

    ``status``: None (all), ``open`` (still open) or ``overdue`` (open and past its SLA
    deadline at ``as_of``, default now). No description, address or person is read.
    """
    r, cat = m.Request, m.Category
    stmt = (
        select(
            r.id,
            cat.code,
            cat.name,
            cat.name_en,
            r.programme,
            r.status,
            r.received_at,
            r.due_at,
            gfunc.ST_X(r.geom),
            gfunc.ST_Y(r.geom),
        )
        .join(cat, cat.id == r.category_id)
        .where(
            r.community_id.in_(list(community_ids)),
            r.received_at >= period.lower,
            r.received_at < period.upper,
        )
        .order_by(r.id)
    )
    as_of = as_of or dt.datetime.now(dt.UTC)
    if status in ("open", "overdue"):
        stmt = stmt.where(r.status.in_(m.OPEN_STATUSES))
    if status == "overdue":
        stmt = stmt.where(r.due_at.is_not(None), r.due_at < as_of)
    elif status not in (None, "open", "all"):
        raise InvalidInput(f"status must be open, overdue or all, got {status!r}", field="status")
    if categories:
        stmt = stmt.where(cat.code.in_(list(categories)))
    if programmes:
        known = {p.value for p in m.Programme}
        bad = sorted(set(programmes) - known)
        if bad:
            raise InvalidInput(
                f"unknown programme {', '.join(bad)}; one of {', '.join(sorted(known))}",
                field="programme",
            )
        stmt = stmt.where(r.programme.in_(list(programmes)))
    frame = pd.DataFrame(
        conn.execute(stmt).all(),
        columns=[
            "id",
            "category",
            "category_name",
            "category_name_en",
            "programme",
            "status",
            "received_at",
            "due_at",
            "lon",
            "lat",
        ],
    )
    due = pd.to_datetime(frame["due_at"], utc=True)
    frame["overdue"] = (
        frame["status"].isin(m.OPEN_STATUSES) & due.notna() & (due < pd.Timestamp(as_of))
    ).to_numpy(dtype=bool)
    frame["lon"] = frame["lon"].astype("float64")
    frame["lat"] = frame["lat"].astype("float64")
    return frame


def check_categories(conn: Connection, codes: Sequence[str]) -> None:
    """Refuse unknown category codes (so a typo is an error, not an empty map)."""
    known = set(conn.execute(select(m.Category.code)).scalars())
    bad = sorted(set(codes) - known)
    if bad:
        raise InvalidInput(f"unknown category {', '.join(bad)}", field="category")


def household_points(conn: Connection, *, community_ids: Sequence[int]) -> pd.DataFrame:
    """Household doors as ``lon, lat`` only (for normalizing by households)."""
    h = m.Household
    return pd.DataFrame(
        conn.execute(
            select(gfunc.ST_X(h.geom), gfunc.ST_Y(h.geom))
            .where(h.community_id.in_(list(community_ids)))
            .order_by(h.id)
        ).all(),
        columns=["lon", "lat"],
        dtype="float64",
    )


def grid_frame(conn: Connection, *, scope: Scope) -> gpd.GeoDataFrame:
    """The active plans' grids: ``grid_id, code, name, community_code`` and polygons."""
    g, p = m.Grid, m.BoundaryPlan
    return q.read_frame(
        conn,
        select(
            g.id.label("grid_id"),
            g.code,
            g.name,
            m.Community.code.label("community_code"),
            q.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(m.Community, m.Community.id == p.community_id)
        .where(g.plan_id.in_(scope.plan_ids))
        .order_by(g.code, g.id),
    )


def points_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """A lon/lat frame as a GeoDataFrame of points (EPSG:4326)."""
    return gpd.GeoDataFrame(
        frame,
        geometry=shapely.points(frame["lon"].to_numpy(), frame["lat"].to_numpy()),
        crs=WGS84,
    )
