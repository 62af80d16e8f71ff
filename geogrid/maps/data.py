"""What the maps show, read from the database (:mod:`geogrid.db.queries.maps`) and shaped
into frames for the builders, both backends alike.

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
from sqlalchemy import Connection

from geogrid.db import models, queries
from geogrid.db.queries import maps as map_queries
from geogrid.db.queries import osm as osm_queries
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import Period
from geogrid.privacy import mask_name
from geogrid.spatial import assign_points

__all__ = [
    "Scope",
    "community_scope",
    "coverage_frames",
    "request_points",
    "source_credits",
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
    for code in sorted(set(community_codes or ())):
        queries.community_row(conn, code=code, field="community")
    frame = map_queries.communities_frame(conn, codes=community_codes)
    if frame.empty:
        raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
    plans = pd.DataFrame(
        map_queries.active_plans(conn, community_ids=[int(i) for i in frame["id"]]),
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


def _licence_label(licence: str | None) -> str | None:
    """``ODbL-1.0`` → ``ODbL``: the short name a map's credit line carries."""
    if not licence:
        return None
    return licence.split("-")[0] if licence.startswith("ODbL") else licence


def source_credits(
    conn: Connection, *, community_ids: Sequence[int]
) -> list[tuple[str, str | None]]:
    """``(text, url)`` credits of the data sources of ``community_ids`` that ask for one
    (an OpenStreetMap import: ``© OpenStreetMap contributors (ODbL)``), each once."""
    credits: list[tuple[str, str | None]] = []
    for row in osm_queries.data_sources(conn, community_ids=community_ids):
        if not row.attribution:
            continue
        label = _licence_label(row.licence)
        credit = (f"{row.attribution} ({label})" if label else row.attribution, row.url)
        if credit not in credits:
            credits.append(credit)
    return credits


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


def _per_key(counts: dict[int, int], keys: pd.Series) -> np.ndarray:
    """``counts`` in the order of ``keys`` (0 where a key has none), as int64."""
    series = pd.Series(counts, dtype="float64")
    return series.reindex(keys).fillna(0).to_numpy().astype(np.int64)


def coverage_frames(
    conn: Connection, *, scope: Scope, include_members: bool = False
) -> CoverageFrames:
    """The per-grid figures, fields, uncovered households, streets (and members)."""
    plan_ids = scope.plan_ids
    ids = scope.community_ids
    grids = map_queries.coverage_grids_frame(conn, plan_ids=plan_ids)
    # The only personal datum read here: masked at once, the raw name dropped.
    grids["lead_member_masked"] = [mask_name(v) or None for v in grids.pop("lead_member")]
    gid = grids["grid_id"]
    figures = map_queries.grid_figures(
        conn, plan_ids=plan_ids, visited_from=scope.period.start, visited_to=scope.period.end
    )
    grids["households"] = _per_key(figures.households, gid)
    grids["residents"] = _per_key(figures.residents, gid)
    grids["uncovered"] = _per_key(figures.uncovered, gid)
    grids["fields"] = _per_key(figures.fields, gid)
    grids["fields_vacant"] = _per_key(figures.fields_vacant, gid)
    grids["members"] = _per_key(figures.members, gid)
    grids["visited"] = _per_key(figures.visited, gid)
    branches = pd.concat(
        [queries.branch_grids_frame(conn, plan_id=pid) for pid in plan_ids], ignore_index=True
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
    opened = req["status"].isin(models.OPEN_STATUSES).to_numpy()
    resolved = req["status"].isin(models.RESOLVED_STATUSES).to_numpy()
    inside = idx >= 0
    grids["received"] = np.bincount(idx[inside], minlength=n)
    grids["resolved"] = np.bincount(idx[inside & resolved], minlength=n)
    grids["open_requests"] = np.bincount(idx[inside & opened], minlength=n)
    extra = {"requests_outside": int((~inside).sum()), "requests": len(req)}

    fields = map_queries.fields_frame(conn, community_ids=ids)
    fields["member_masked"] = [mask_name(v) or None for v in fields.pop("member")]
    fields["grid_code"] = fields["grid_id"].map(dict(zip(gid, grids["code"], strict=True)))
    fields["households"] = _per_key(
        map_queries.field_households(conn, plan_ids=plan_ids), fields["field_id"]
    )
    uncovered = pd.DataFrame(
        map_queries.uncovered_households(conn, plan_ids=plan_ids, community_ids=ids),
        columns=["lon", "lat"],
        dtype="float64",
    )
    streets = map_queries.streets_frame(conn, community_ids=ids)
    members = None
    if include_members:
        members = pd.DataFrame(
            [
                (
                    member.id,
                    mask_name(member.name) or None,
                    member.kind,
                    member.branch,
                    member.lon,
                    member.lat,
                )
                for member in map_queries.member_points(conn, community_ids=ids)
            ],
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
    category_name_en, programme, status, received_at, due_at, overdue, lon, lat, grid_code,
    timezone`` (the grid the request was routed to, None outside every grid; the zone of the
    request's community).

    ``status``: None (all), ``open`` (still open) or ``overdue`` (open and past its SLA
    deadline at ``as_of``, default now). No description, address or person is read.
    """
    as_of = as_of or dt.datetime.now(dt.UTC)
    if status not in (None, "open", "overdue", "all"):
        raise InvalidInput(f"status must be open, overdue or all, got {status!r}", field="status")
    if programmes:
        known = {p.value for p in models.Programme}
        bad = sorted(set(programmes) - known)
        if bad:
            raise InvalidInput(
                f"unknown programme {', '.join(bad)}; one of {', '.join(sorted(known))}",
                field="programme",
            )
    frame = pd.DataFrame(
        map_queries.request_points(
            conn,
            community_ids=community_ids,
            received_from=period.lower,
            received_before=period.upper,
            open_only=status in ("open", "overdue"),
            due_before=as_of if status == "overdue" else None,
            categories=categories,
            programmes=programmes,
        ),
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
            "grid_code",
            "timezone",
        ],
    )
    due = pd.to_datetime(frame["due_at"], utc=True)
    frame["overdue"] = (
        frame["status"].isin(models.OPEN_STATUSES) & due.notna() & (due < pd.Timestamp(as_of))
    ).to_numpy(dtype=bool)
    frame["lon"] = frame["lon"].astype("float64")
    frame["lat"] = frame["lat"].astype("float64")
    return frame


def check_categories(conn: Connection, codes: Sequence[str]) -> None:
    """Refuse unknown category codes (so a typo is an error, not an empty map)."""
    bad = sorted(set(codes) - map_queries.category_codes(conn))
    if bad:
        raise InvalidInput(f"unknown category {', '.join(bad)}", field="category")


def household_points(conn: Connection, *, community_ids: Sequence[int]) -> pd.DataFrame:
    """Household doors as ``lon, lat`` only (for normalizing by households)."""
    return pd.DataFrame(
        map_queries.household_points(conn, community_ids=community_ids),
        columns=["lon", "lat"],
        dtype="float64",
    )


def grid_frame(conn: Connection, *, scope: Scope) -> gpd.GeoDataFrame:
    """The active plans' grids: ``grid_id, code, name, community_code`` and polygons."""
    return map_queries.grids_frame(conn, plan_ids=scope.plan_ids)


def points_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """A lon/lat frame as a GeoDataFrame of points (EPSG:4326)."""
    return gpd.GeoDataFrame(
        frame,
        geometry=shapely.points(frame["lon"].to_numpy(), frame["lat"].to_numpy()),
        crs=WGS84,
    )
