"""Boundary planning at city scale: validate, diff and activate a redrawn plan, against plain
geopandas doing the same, in one run.

    python -m benchmarks.planning [--households 1000000] [--grids 10000] [--repeats 3]
        [--postgres-url URL] [--spatialite] [--profile DIR]
        [--out benchmarks/results/planning-YYYY-MM-DD.json]

The synthetic city of ``benchmarks.synth`` is the *active* plan (its Voronoi grids; its fields
clipped to the grid holding most of each, see :func:`nest_fields`). The *draft* redraws it:
~30 % of the Voronoi seeds move by 30–70 % of the distance to their nearest neighbour (at most
500 m), 2 % are dropped (their cells merge into the neighbours') and 2 % are added next to
existing seeds (splits), then the seeds are tessellated again. A grid keeps its code when its
seed survives (moved or not); added grids get new codes. The draft is a valid tiling of the
same box (checked: ``validate_plan`` reports no error).

Timed, each a median of ``--repeats`` runs, product and baseline alternating:

1. ``geogrid.planning.validate.validate_plan(draft)`` against geopandas doing the same checks
   naively (self-overlay for overlaps, community minus the union for gaps, difference for the
   part outside, ``is_valid``, ``explode`` for multipart grids, duplicated codes).
2. ``geogrid.planning.diff.diff_plans`` with every household, field, branch and open request
   against ``sjoin`` households × both plans, ``sjoin`` requests × both plans, ``overlay``
   fields × draft (field cuts) and ``overlay`` draft × active (parents).
3. On PostGIS (a fresh database migrated by ``geogrid.db.migrate.upgrade``, loaded like
   ``benchmarks.assignment`` does, the active plan assigned by ``geogrid.assign``, the draft
   stored with ``geogrid.planning.store.load_plan``): ``store.diff_in_db`` (read + diff, a dry
   run) and ``activation.activate_plan`` (one transaction) against "the same with plain
   geopandas": ``read_postgis`` of households, fields, grids and open requests, ``sjoin``
   and ``overlay`` as above, clipped fields written with ``to_postgis``, the household
   assignment with ``COPY``, requests, leads and branches with ``to_sql`` + ``UPDATE``.
   Every activation repeat but the last is rolled back (PostgreSQL's DDL is transactional,
   so the new partition goes too); the last commits, and its time includes the commit.
4. ``--spatialite``: the product's activation on SpatiaLite at 100,000 households and
   1,000 grids (no geopandas baseline there: ``read_postgis`` needs PostGIS).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.pool import NullPool

from benchmarks import measure, synth
from benchmarks.assignment import (
    Database,
    create_postgis,
    create_spatialite,
    db_versions,
    postgres_url,
)
from benchmarks.measure import Sample
from benchmarks.synth import KM_LAT, KM_LON, X0, X1, Y0, Y1, City, make_city

ROOT = Path(__file__).resolve().parent.parent
#: The issue's targets (seconds, this machine).
TARGET_VALIDATE_DIFF_S = 60.0
TARGET_ACTIVATE_S = 120.0
#: Not 12 digits on purpose: DB11's 15-digit codes (12 + 3) hold at most 999 grids per
#: community, and a city plan has 10,000. The synthetic codes are this prefix + 6 digits.
COMMUNITY_CODE = synth.CODE_PREFIX
TOLERANCE_M2 = 1.0
#: diff.CUT_SHARE: a field is cut when more than this share lies outside its largest piece.
CUT_SHARE = 0.001
Array = npt.NDArray[Any]


# --- the draft plan -------------------------------------------------------------------------


def city_seeds(city: City, grids: int) -> npt.NDArray[np.float64]:
    """The Voronoi seeds of ``city.grids``, aligned with them: drawn again from the city's
    seed exactly as :func:`benchmarks.synth.make_city` drew them (its first draws)."""
    rng = np.random.default_rng(city.seed)
    towns = synth._towns(rng)
    seeds = synth._draw(rng, towns, grids, background=0.3)
    shuffle = rng.permutation(grids)
    seeds = seeds[shuffle]
    if not bool(shapely.equals_exact(synth._tessellate(seeds), city.grids).all()):
        raise RuntimeError("benchmarks.synth no longer draws grid seeds first: update city_seeds")
    return seeds


@dataclass
class Draft:
    """A redrawn plan: grid polygons and codes, and how it was made."""

    grids: npt.NDArray[np.object_]
    codes: npt.NDArray[np.str_]
    seeds_moved: int
    seeds_removed: int
    seeds_added: int


def make_draft(
    city: City,
    *,
    grids: int,
    seed: int,
    moved: float = 0.30,
    removed: float = 0.02,
    added: float = 0.02,
    max_move_km: float = 0.5,
) -> Draft:
    """Redraw ``city``'s grids (see the module docstring); reproducible from ``seed``."""
    rng = np.random.default_rng(seed + 1)
    seeds = city_seeds(city, grids)
    n = len(seeds)
    km = seeds / np.array([KM_LON, KM_LAT])  # local km: isotropic distances
    pts_km = shapely.points(km)
    # query_nearest returns every equidistant neighbour: keep one distance per seed.
    idx, dist = shapely.STRtree(pts_km).query_nearest(pts_km, exclusive=True, return_distance=True)
    spacing = np.full(n, np.inf)
    np.minimum.at(spacing, idx[0], dist)
    move = rng.random(n) < moved
    drop = ~move & (rng.random(n) < removed)
    angle = rng.uniform(0, 2 * np.pi, n)
    step = np.minimum(rng.uniform(0.3, 0.7, n) * spacing, max_move_km)
    new = km.copy()
    new[move] += np.column_stack([np.cos(angle), np.sin(angle)])[move] * step[move, None]
    k = round(n * added)
    parent = rng.choice(np.flatnonzero(~drop), k, replace=False)
    a2 = rng.uniform(0, 2 * np.pi, k)
    d2 = np.minimum(rng.uniform(0.3, 0.5, k) * spacing[parent], max_move_km)
    extra = km[parent] + np.column_stack([np.cos(a2), np.sin(a2)]) * d2[:, None]
    pts = np.vstack([new[~drop], extra]) * np.array([KM_LON, KM_LAT])
    pts[:, 0] = np.clip(pts[:, 0], X0 + 1e-7, X1 - 1e-7)
    pts[:, 1] = np.clip(pts[:, 1], Y0 + 1e-7, Y1 - 1e-7)
    last = max(int(c[len(synth.CODE_PREFIX) :]) for c in city.grid_codes)
    new_codes = [f"{synth.CODE_PREFIX}{last + 1 + i:06d}" for i in range(k)]
    codes = np.concatenate([city.grid_codes[~drop], np.array(new_codes, dtype=str)])
    return Draft(synth._tessellate(pts), codes, int(move.sum()), int(drop.sum()), k)


# --- the city's other data --------------------------------------------------------------------


def nest_fields(city: City) -> City:
    """``city`` with each field clipped to the active grid holding most of it.

    ``benchmarks.synth`` draws fields independently of the grids, so most of them straddle a
    grid boundary already; a responsibility field lies inside one grid (it is a member's part
    of the grid), and only then does "the fields a draft cuts" measure the redraw.
    """
    fields, grids = city.fields, city.grids
    fi, gj = shapely.STRtree(grids).query(fields, predicate="intersects")
    area = shapely.area(shapely.intersection(fields[fi], grids[gj]))
    order = np.lexsort((-area, fi))
    first = np.ones(len(order), bool)
    first[1:] = fi[order][1:] != fi[order][:-1]
    best = np.full(len(fields), -1, np.int64)
    best[fi[order][first]] = gj[order][first]
    nested = shapely.intersection(fields, grids[best])
    # A field is one polygon: keep the largest part where the clip leaves slivers.
    parts, owner = shapely.get_parts(nested, return_index=True)
    parts_area = shapely.area(parts)
    keep = np.lexsort((-parts_area, owner))
    one = np.ones(len(keep), bool)
    one[1:] = owner[keep][1:] != owner[keep][:-1]
    polys = np.empty(len(fields), dtype=object)
    polys[owner[keep][one]] = parts[keep][one]
    polys = shapely.make_valid(polys)
    return dataclasses.replace(city, fields=polys)


@dataclass
class Extras:
    """Members, leads, field holders, branches and requests of the synthetic city.

    Positions (0-based) stand for ids until the database gives real ones.
    """

    #: Member position leading each active grid (aligned with ``city.grids``).
    grid_lead: npt.NDArray[np.int64]
    #: Member position holding each field, −1 for a vacancy.
    field_holder: npt.NDArray[np.int64]
    members: int
    #: (branch position, active grid position) pairs.
    branch_grids: npt.NDArray[np.int64]
    branches: int
    req_x: npt.NDArray[np.float64]
    req_y: npt.NDArray[np.float64]
    req_open: npt.NDArray[np.bool_]


def make_extras(
    city: City, *, households: int, requests: int, closed: int, branches: int, seed: int
) -> Extras:
    """Every active grid led by its own member; 80 % of the fields held (two per holder);
    ``branches`` branches on 1–4 grids each; ``requests`` open and ``closed`` closed
    requests near random households."""
    rng = np.random.default_rng(seed + 2)
    g, f = len(city.grids), len(city.fields)
    grid_lead = np.arange(g, dtype=np.int64)
    held = rng.random(f) < 0.8
    holders = max(1, int(held.sum()) // 2)
    field_holder = np.full(f, -1, np.int64)
    field_holder[held] = g + rng.integers(0, holders, int(held.sum()))
    sizes = rng.integers(1, 5, branches)
    on = rng.choice(g, min(int(sizes.sum()), g), replace=False)
    bpos = np.repeat(np.arange(branches), sizes)[: len(on)]
    at = rng.integers(0, households, requests + closed)
    x, y = city.households(households)
    jitter = rng.normal(0, 0.02, (len(at), 2)) * np.array([KM_LON, KM_LAT])  # ~20 m
    rx = np.clip(x[at] + jitter[:, 0], X0 + 1e-7, X1 - 1e-7)
    ry = np.clip(y[at] + jitter[:, 1], Y0 + 1e-7, Y1 - 1e-7)
    is_open = np.zeros(len(at), bool)
    is_open[:requests] = True
    return Extras(
        grid_lead,
        field_holder,
        g + holders,
        np.column_stack([bpos, on]).astype(np.int64),
        branches,
        rx,
        ry,
        is_open,
    )


# --- results --------------------------------------------------------------------------------


@dataclass
class Step:
    """One timed step over its repeats."""

    name: str
    tool: str  # "product" | "baseline"
    samples: list[Sample]
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    def to_dict(self) -> dict[str, Any]:
        peaks = [s.peak_mb for s in self.samples if s.peak_mb is not None]
        return {
            "step": self.name,
            "tool": self.tool,
            "repeats": len(self.samples),
            "seconds": [round(s.seconds, 3) for s in self.samples],
            "median_s": round(self.median, 3),
            "peak_mb": round(max(peaks), 1) if peaks else None,
            "note": self.note,
            **({"repeat_details": [s.extra for s in self.samples]} if self._details() else {}),
            **({"extra": self.extra} if self.extra else {}),
        }

    def _details(self) -> bool:
        return any(s.extra for s in self.samples)


def pair(product: Step, baseline: Step) -> dict[str, Any]:
    """Ratio of medians and the median of per-repeat ratios (each repeat's product over the
    baseline run right next to it: cancels the shared machine's drift)."""
    paired = [
        p.seconds / b.seconds for p, b in zip(product.samples, baseline.samples, strict=False)
    ]
    return {
        "step": product.name,
        "product_median_s": round(product.median, 3),
        "baseline_median_s": round(baseline.median, 3),
        "ratio": round(product.median / baseline.median, 3),
        "paired_ratio": round(statistics.median(paired), 3) if paired else None,
        "speedup": round(baseline.median / product.median, 2),
    }


# --- in-memory frames ---------------------------------------------------------------------


@dataclass
class Frames:
    """The inputs of the pure steps, shaped like ``store.read_frames`` returns them."""

    community: shapely.Polygon
    active: gpd.GeoDataFrame
    draft: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    fields: gpd.GeoDataFrame
    branches: pd.DataFrame
    open_requests: gpd.GeoDataFrame


def frames(city: City, draft: Draft, extras: Extras, n: int) -> Frames:
    """Frames with 1-based position ids (members, fields, branches, requests)."""
    from geogrid.spatial import assign_points

    x, y = city.households(n)
    points = shapely.points(x, y)
    field_pos = assign_points(points, city.fields)
    households = gpd.GeoDataFrame(
        {
            "id": np.arange(1, n + 1),
            "address_id": address_ids(n),
            "field_id": pd.array(np.where(field_pos >= 0, field_pos + 1, 0), dtype="Int64"),
        },
        geometry=points,
        crs=4326,
    )
    households.loc[field_pos < 0, "field_id"] = pd.NA
    holder = extras.field_holder
    fields = gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(city.fields) + 1),
            "name": [f"责任田 {i + 1}" for i in range(len(city.fields))],
            "member_id": pd.array(np.where(holder >= 0, holder + 1, 0), dtype="Int64"),
        },
        geometry=city.fields,
        crs=4326,
    )
    fields.loc[holder < 0, "member_id"] = pd.NA
    active = gpd.GeoDataFrame(
        {"code": city.grid_codes, "name": None, "lead_member_id": extras.grid_lead + 1},
        geometry=city.grids,
        crs=4326,
    )
    plan = gpd.GeoDataFrame(
        {"code": draft.codes, "name": None, "lead_member_id": None},
        geometry=draft.grids,
        crs=4326,
    )
    bg = extras.branch_grids
    branches = pd.DataFrame(
        {
            "branch_id": bg[:, 0] + 1,
            "branch_name": [f"第{b + 1}支部" for b in bg[:, 0]],
            "code": city.grid_codes[bg[:, 1]],
        }
    )
    is_open = extras.req_open
    requests = gpd.GeoDataFrame(
        {"id": np.flatnonzero(is_open) + 1},
        geometry=shapely.points(extras.req_x[is_open], extras.req_y[is_open]),
        crs=4326,
    )
    return Frames(shapely.box(X0, Y0, X1, Y1), active, plan, households, fields, branches, requests)


def code_state() -> dict[str, Any]:
    """The commit measured and the product files that differ from it (others edit them)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    dirty = git("status", "--porcelain", "--", "geogrid")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_in_geogrid": dirty.splitlines()}


def address_ids(n: int) -> npt.NDArray[np.str_]:
    return np.char.add("H", np.char.zfill(np.arange(n).astype(str), 7))


# --- baselines: plain geopandas -----------------------------------------------------------


def baseline_validate(
    draft: gpd.GeoDataFrame, community: shapely.Geometry, crs: Any
) -> dict[str, Any]:
    """The plan checks done naively with geopandas; counts of what each finds."""
    grids = draft[["code", "geometry"]]
    duplicated = int(grids["code"].duplicated(keep=False).sum())
    invalid = int((~grids.is_valid).sum())
    multipart = int(len(grids.explode(index_parts=False)) - len(grids))
    pairs = gpd.overlay(grids, grids, how="intersection", keep_geom_type=True)
    pairs = pairs[pairs["code_1"] < pairs["code_2"]]
    overlaps = int((pairs.to_crs(crs).area > TOLERANCE_M2).sum())
    box = gpd.GeoDataFrame(geometry=[community], crs=4326)
    outside = gpd.overlay(grids, box, how="difference")
    outside_n = int((outside.to_crs(crs).area > TOLERANCE_M2).sum())
    left = gpd.GeoSeries([community.difference(grids.union_all())], crs=4326)
    gaps = int((left.explode(index_parts=False).to_crs(crs).area > TOLERANCE_M2).sum())
    return {
        "duplicate_codes": duplicated,
        "invalid": invalid,
        "multipart_parts": multipart,
        "overlaps": overlaps,
        "outside": outside_n,
        "gaps": gaps,
    }


def edge_rule(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, key: str) -> pd.Series:
    """``sjoin`` (intersects: points on edges match every grid they touch), then the lowest
    ``key`` per point; NaN outside every polygon."""
    joined = gpd.sjoin(points[["geometry"]], polys[[key, "geometry"]], predicate="intersects")
    joined = joined.sort_values(key, kind="stable")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined[key].reindex(points.index)


@dataclass
class BaselineDiff:
    moved: set[tuple[str, str | None, str | None]]
    on_edges: int
    cut: set[int]
    households_cut: int
    parents: dict[str, str]
    rerouted: set[int]


def largest_piece(pieces: pd.DataFrame, by: str, what: str) -> pd.DataFrame:
    """Per ``by``, the row of the largest ``area`` (ties: the highest ``what``)."""
    pieces = pieces.sort_values([by, "area", what], kind="stable")
    return pieces.groupby(by, sort=False).tail(1).set_index(by)


def baseline_diff(f: Frames, crs: Any) -> BaselineDiff:
    """What diff_plans answers, with sjoin and overlay."""
    hh = f.households
    before = edge_rule(hh, f.active, "code")
    after = edge_rule(hh, f.draft, "code")
    changed = (before.fillna("") != after.fillna("")).to_numpy()
    names = hh["address_id"].to_numpy()
    moved = {
        (str(a), None if pd.isna(b) else str(b), None if pd.isna(c) else str(c))
        for a, b, c in zip(
            names[changed], before.to_numpy()[changed], after.to_numpy()[changed], strict=True
        )
    }
    # Points on grid edges, counted for the record: more than one draft grid intersects them.
    hits = gpd.sjoin(hh[["geometry"]], f.draft[["code", "geometry"]], predicate="intersects")
    on_edges = int(hits.index.duplicated().sum())
    # Field cuts: the field keeps its largest piece in a draft grid.
    fl = f.fields[["id", "geometry"]]
    pieces = gpd.overlay(fl, f.draft[["code", "geometry"]], how="intersection", keep_geom_type=True)
    pieces["area"] = pieces.to_crs(crs).area
    keep = largest_piece(pieces, "id", "code")
    total = pd.Series(fl.to_crs(crs).area.to_numpy(), index=fl["id"])
    cut_m2 = total - keep["area"].reindex(total.index).fillna(0.0)
    is_cut = (
        (cut_m2 > TOLERANCE_M2)
        & (cut_m2 / total > CUT_SHARE)
        & keep["area"].reindex(total.index).notna().to_numpy()
    )
    cut = {int(i) for i in total.index[is_cut.to_numpy()]}
    # Households of cut fields that land outside the kept grid.
    with_field = hh[hh["field_id"].notna()]
    keep_code = keep["code"].reindex(with_field["field_id"].astype(int)).to_numpy()
    in_cut = with_field["field_id"].astype(int).isin(cut).to_numpy()
    households_cut = int((in_cut & (after.loc[with_field.index].to_numpy() != keep_code)).sum())
    # Parents: the active grid each draft grid overlaps most.
    over = gpd.overlay(
        f.draft[["code", "geometry"]],
        f.active[["code", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    over["area"] = over.to_crs(crs).area
    parents = largest_piece(over, "code_1", "code_2")["code_2"].to_dict()
    # Open requests re-routed.
    rq = f.open_requests
    rb, ra = edge_rule(rq, f.active, "code"), edge_rule(rq, f.draft, "code")
    rerouted = set(rq["id"][(rb.fillna("") != ra.fillna("")).to_numpy()].astype(int))
    return BaselineDiff(moved, on_edges, cut, households_cut, parents, rerouted)


# --- the database ---------------------------------------------------------------------------


@dataclass
class Ids:
    community_id: int
    active_plan_id: int
    draft_plan_id: int
    setup_seconds: dict[str, float]


@contextlib.contextmanager
def stopwatch(into: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    into[name] = round(time.perf_counter() - t0, 3)
    print(f"    setup: {name:<34} {into[name]:8.2f} s", flush=True)


def setup_database(
    engine: Engine, db: Database, city: City, draft: Draft, extras: Extras, n: int
) -> Ids:
    """Schema, community, members, active plan (grids with leads), branches, fields,
    households, requests; assign everything to the active plan; store the draft. Not timed
    (stage times are recorded)."""
    from geogrid.assign import assign_community
    from geogrid.catalogue import ensure_default_catalogue
    from geogrid.db import dialect, migrate, queries
    from geogrid.db import models as m
    from geogrid.planning import store

    took: dict[str, float] = {}
    with stopwatch(took, "migrate"):
        migrate.upgrade(engine, "head")
    with engine.begin() as conn, stopwatch(took, "community, members, grids, fields"):
        cid = queries.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": COMMUNITY_CODE,
                    "name": "基准城 (synthetic)",
                    "synthetic": True,
                    "boundary": queries.geom_value(
                        shapely.MultiPolygon([shapely.box(X0, Y0, X1, Y1)])
                    ),
                    "created_at": m.utcnow(),
                }
            ],
        )[0]
        ensure_default_catalogue(conn)
        members = np.asarray(
            queries.insert_returning_ids(
                conn,
                m.Member,
                [
                    {"community_id": cid, "name": f"成员{i}", "kind": "resident", "active": True}
                    for i in range(extras.members)
                ],
            )
        )
        plan_id = queries.create_plan(conn, community_id=cid, name="benchmark: active plan")
        grid_ids = np.asarray(
            queries.insert_returning_ids(
                conn,
                m.Grid,
                [
                    {
                        "plan_id": plan_id,
                        "code": c,
                        "lead_member_id": int(members[lead]),
                        "geom": queries.geom_value(shapely.MultiPolygon([g])),
                    }
                    for c, g, lead in zip(
                        city.grid_codes, city.grids, extras.grid_lead, strict=True
                    )
                ],
            )
        )
        queries.mark_plan_active(conn, community_id=cid, plan_id=plan_id)
        branch_ids = np.asarray(
            queries.insert_returning_ids(
                conn,
                m.Branch,
                [{"community_id": cid, "name": f"第{b + 1}支部"} for b in range(extras.branches)],
            )
        )
        queries.insert_branch_grids(
            conn,
            [
                {
                    "branch_id": int(branch_ids[b]),
                    "grid_id": int(grid_ids[g]),
                    "needs_review": False,
                }
                for b, g in extras.branch_grids
            ],
        )
        queries.bulk_insert(
            conn,
            m.ResponsibilityField,
            (
                {
                    "community_id": cid,
                    "name": f"责任田 {i + 1}",
                    "member_id": int(members[h]) if h >= 0 else None,
                    "needs_review": False,
                    "geom": queries.geom_value(shapely.MultiPolygon([g])),
                }
                for i, (g, h) in enumerate(zip(city.fields, extras.field_holder, strict=True))
            ),
        )
    x, y = city.households(n)
    with engine.begin() as conn, stopwatch(took, "households (copy_households)"):
        dialect.drop_spatial_index(conn, "households")
        dialect.copy_households(conn, community_id=cid, x=x, y=y, address_ids=address_ids(n))
    with engine.begin() as conn, stopwatch(took, "households index"):
        dialect.create_spatial_index(conn, "households")
    with engine.begin() as conn, stopwatch(took, "requests"):
        category = conn.execute(
            text("SELECT id, programme FROM categories ORDER BY id LIMIT 1")
        ).one()
        open_status = list(m.OPEN_STATUSES)
        rng = np.random.default_rng(len(extras.req_x))
        status = np.where(
            extras.req_open,
            np.asarray(open_status)[rng.integers(0, len(open_status), len(extras.req_x))],
            m.RequestStatus.CLOSED.value,
        )
        now = m.utcnow()
        queries.bulk_insert(
            conn,
            m.Request,
            (
                {
                    "community_id": cid,
                    "category_id": int(category.id),
                    "programme": category.programme,
                    "source": "benchmark",
                    "status": str(s),
                    "received_at": now - dt.timedelta(hours=int(h)),
                    "geom": queries.geom_value(shapely.Point(px, py)),
                }
                for px, py, s, h in zip(
                    extras.req_x,
                    extras.req_y,
                    status,
                    rng.integers(1, 24 * 90, len(status)),
                    strict=True,
                )
            ),
        )
    vacuum(engine, db)
    with engine.begin() as conn, stopwatch(took, "assign the active plan (assign_community)"):
        assign_community(conn, community_id=cid, plan_id=plan_id, all_requests=True)
    vacuum(engine, db)
    plan_file = store.PlanFile(
        path=Path("benchmark-draft.geojson"),
        grids=gpd.GeoDataFrame(
            {"code": draft.codes, "name": None, "lead_member_id": None},
            geometry=draft.grids,
            crs=4326,
        ),
        problems=[],
        crs="EPSG:4326",
        locations=list(range(len(draft.grids))),
    )
    with engine.begin() as conn, stopwatch(took, "store the draft (store.load_plan)"):
        draft_id, report = store.load_plan(
            conn, community_id=cid, plan_file=plan_file, name="benchmark: redrawn plan"
        )
    if not report.valid:
        raise RuntimeError(f"the draft is not valid: {report.to_dict()['problems'][:5]}")
    vacuum(engine, db)
    return Ids(cid, plan_id, draft_id, took)


def vacuum(engine: Engine, db: Database) -> None:
    """Statistics and visibility map up to date (autovacuum's job after a load)."""
    if db.backend == "postgis":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def backend_pid(conn: Connection, backend: str) -> int | None:
    """The PostgreSQL server process of ``conn`` (None on SpatiaLite)."""
    if backend != "postgis":
        return None
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@contextlib.contextmanager
def server_memory(pid: int | None) -> Iterator[measure.ServerMemory | None]:
    """Peak private memory of the backend (sampled every 0.25 s: the step is mostly Python,
    and a busy sampler thread would take the GIL from it)."""
    if pid is None:
        yield None
        return
    with measure.ServerMemory(pid, interval=0.25) as mem:
        yield mem


def timed_activation(
    engine: Engine, db: Database, ids: Ids, *, commit: bool, check: bool
) -> tuple[Sample, dict[str, Any]]:
    """One ``activate_plan`` in its own transaction; rolled back unless ``commit``."""
    from geogrid.planning import activation

    with engine.connect() as conn:
        pid = backend_pid(conn, db.backend)
        conn.commit()
        info: dict[str, Any] = {}
        with measure.process_peak() as py, server_memory(pid) as mem:
            t0 = time.perf_counter()
            trans = conn.begin()
            report = activation.activate_plan(
                conn,
                community_id=ids.community_id,
                plan_id=ids.draft_plan_id,
                actor="benchmark",
            )
            took = time.perf_counter() - t0
            if commit:
                trans.commit()
        seconds = time.perf_counter() - t0
        info["activate_s"] = round(took, 3)
        info["committed"] = commit
        if commit:
            info["commit_s"] = round(seconds - took, 3)
        if check:
            info["check"] = activation_check(conn, ids, report)
        if not commit:
            trans.rollback()
        info["server_peak_mb"] = (
            None if mem is None or mem.peak_mb is None else round(mem.peak_mb, 1)
        )
    return Sample(seconds, py["peak_mb"], info), report


def activation_check(conn: Connection, ids: Ids, report: Any) -> dict[str, Any]:
    """What the activation wrote, against what its own diff said it would do."""
    moved = conn.execute(
        text(
            """
            SELECT count(*) FROM household_assignments AS a
            JOIN grids AS g ON g.id = a.grid_id
            JOIN household_assignments AS b
              ON b.household_id = a.household_id AND b.plan_id = :old
            JOIN grids AS h ON h.id = b.grid_id
            WHERE a.plan_id = :new AND g.code <> h.code
            """
        ),
        {"old": ids.active_plan_id, "new": ids.draft_plan_id},
    ).scalar_one()
    clipped = conn.execute(
        text(
            "SELECT count(*) FROM responsibility_fields "
            "WHERE needs_review AND review_note LIKE 'cut by plan%'"
        )
    ).scalar_one()
    status = dict(conn.execute(text("SELECT id, status FROM boundary_plans")).all())
    counts = report.counts
    a = report.assignment
    return {
        "diff_households_moved": counts["households_moved"],
        "db_households_moved": int(moved),
        "households_moved_equal": counts["households_moved"] == int(moved),
        "diff_fields_cut": counts["fields_cut"],
        "fields_clipped": len(report.fields_clipped),
        "db_fields_flagged": int(clipped),
        "households_in_grids": a.get("households_in_grids"),
        "households_in_fields": a.get("households_in_fields"),
        "diff_requests_rerouted": counts["requests_rerouted"],
        "report_requests_rerouted": a.get("requests_rerouted"),
        "requests_assigned": a.get("requests_assigned"),
        "leads_assigned": len(report.leads_assigned),
        "branches_mapped": len(report.branches_mapped),
        "draft_status": status.get(ids.draft_plan_id),
        "active_status": status.get(ids.active_plan_id),
    }


def baseline_activation(engine: Engine, ids: Ids, crs: Any) -> tuple[Sample, dict[str, Any]]:
    """The same work with plain geopandas, in one transaction, rolled back; returns what
    it computed (household → grid id, fields cut) for the checks."""
    with engine.connect() as conn:
        pid = backend_pid(conn, "postgis")
        conn.commit()
        with measure.process_peak() as py, server_memory(pid) as mem:
            t0 = time.perf_counter()
            trans = conn.begin()
            parts = _baseline_activation(conn, ids, crs)
            seconds = time.perf_counter() - t0
        info: dict[str, Any] = {"parts_s": parts.pop("parts_s")}
        trans.rollback()
        info["server_peak_mb"] = (
            None if mem is None or mem.peak_mb is None else round(mem.peak_mb, 1)
        )
    return Sample(seconds, py["peak_mb"], info), parts


def _baseline_activation(conn: Connection, ids: Ids, crs: Any) -> dict[str, Any]:
    """Read, join, overlay and write back with geopandas; ``parts_s`` times each stage."""
    took: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        took[name] = round(now - t, 3)
        t = now

    p = {"c": ids.community_id, "new": ids.draft_plan_id, "old": ids.active_plan_id}

    def read(sql: str) -> gpd.GeoDataFrame:
        return gpd.read_postgis(text(sql), conn, geom_col="geom", params=p)

    hh = read("SELECT id, geom FROM households WHERE community_id = :c")
    draft = read("SELECT id, code, geom FROM grids WHERE plan_id = :new")
    active = read("SELECT id, code, lead_member_id, geom FROM grids WHERE plan_id = :old")
    fields = read("SELECT id, member_id, geom FROM responsibility_fields WHERE community_id = :c")
    open_list = ", ".join(f"'{s}'" for s in _open_statuses())
    reqs = read(
        f"SELECT id, geom FROM requests WHERE community_id = :c AND status IN ({open_list})"
    )
    branches = pd.read_sql(
        text(
            "SELECT bg.branch_id, g.code FROM branch_grids AS bg JOIN grids AS g "
            "ON g.id = bg.grid_id WHERE g.plan_id = :old"
        ),
        conn,
        params=p,
    )
    lap("read (read_postgis)")
    # Fields cut by the new boundaries keep their largest piece.
    pieces = gpd.overlay(fields[["id", "geom"]].rename_geometry("geometry"),
                         draft[["id", "code", "geom"]].rename_geometry("geometry"),
                         how="intersection", keep_geom_type=True)  # fmt: skip
    pieces["area"] = pieces.to_crs(crs).area
    keep = largest_piece(pieces, "id_1", "code")
    total = pd.Series(fields.to_crs(crs).area.to_numpy(), index=fields["id"])
    cut_m2 = total - keep["area"].reindex(total.index).fillna(0.0)
    known = keep["area"].reindex(total.index).notna()
    is_cut = ((cut_m2 > TOLERANCE_M2) & (cut_m2 / total > CUT_SHARE) & known).to_numpy()
    clipped = gpd.GeoDataFrame(
        {"id": total.index[is_cut]},
        geometry=[
            g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
            for g in keep.geometry.reindex(total.index[is_cut])
        ],
        crs=4326,
    )
    new_fields = fields.set_index("id")
    new_fields.loc[clipped["id"], "geom"] = clipped.geometry.to_numpy()
    new_fields = new_fields.reset_index()
    lap("field cuts (overlay)")
    # Households: grid (edge rule: lowest code), then field (lowest id) of the clipped fields.
    hg = edge_rule(hh.rename_geometry("geometry"), draft.rename_geometry("geometry"), "code")
    code_to_id = dict(zip(draft["code"], draft["id"], strict=True))
    hf = edge_rule(hh.rename_geometry("geometry"), new_fields.rename_geometry("geometry"), "id")
    lap("households (sjoin x2)")
    # Parents, leads and branches.
    over = gpd.overlay(draft[["code", "geom"]].rename_geometry("geometry"),
                       active[["code", "lead_member_id", "geom"]].rename_geometry("geometry"),
                       how="intersection", keep_geom_type=True)  # fmt: skip
    over["area"] = over.to_crs(crs).area
    parent = largest_piece(over, "code_1", "code_2")
    heir = parent.reset_index().sort_values(["code_2", "area"]).groupby("code_2").tail(1)
    leads = pd.DataFrame(
        {"grid_id": heir["code_1"].map(code_to_id), "member_id": heir["lead_member_id"]}
    ).dropna()
    new_branches = parent.reset_index().merge(branches, left_on="code_2", right_on="code")
    new_branches = pd.DataFrame(
        {
            "branch_id": new_branches["branch_id"],
            "grid_id": new_branches["code_1"].map(code_to_id),
            "needs_review": True,
        }
    )
    lap("parents, leads, branches (overlay)")
    # Requests: grid → field holder, else the grid's lead.
    rg = edge_rule(reqs.rename_geometry("geometry"), draft.rename_geometry("geometry"), "code")
    rf = edge_rule(reqs.rename_geometry("geometry"), new_fields.rename_geometry("geometry"), "id")
    holder = new_fields.set_index("id")["member_id"]
    lead_of = leads.set_index("grid_id")["member_id"]
    r = pd.DataFrame({"id": reqs["id"], "grid_id": rg.map(code_to_id), "field_id": rf})
    r["member_id"] = r["field_id"].map(holder)
    by_lead = r["member_id"].isna() & r["grid_id"].notna()
    r.loc[by_lead, "member_id"] = r.loc[by_lead, "grid_id"].map(lead_of)
    r["rule"] = np.where(r["grid_id"].isna(), "none", np.where(by_lead, "grid_lead", "field"))
    lap("requests (sjoin x2)")
    # Write: assignment rows by COPY, the rest by to_postgis / to_sql + UPDATE.
    conn.execute(
        text(
            "CREATE TABLE baseline_assignments "
            "(household_id integer, grid_id integer, field_id integer)"
        )
    )
    rows = pd.DataFrame(
        {"household_id": hh["id"], "grid_id": hg.map(code_to_id), "field_id": hf}
    ).dropna(subset=["grid_id"])
    buf = io.StringIO()
    rows.astype({"grid_id": "int64", "field_id": "Int64"}).to_csv(buf, index=False, header=False)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy("COPY baseline_assignments FROM STDIN (FORMAT csv)") as copy:
        copy.write(buf.getvalue())
    lap("write assignments (COPY)")
    clipped.rename_geometry("geom").to_postgis("baseline_clipped", conn, index=False)
    conn.execute(
        text(
            "UPDATE responsibility_fields AS f SET geom = c.geom, needs_review = true "
            "FROM baseline_clipped AS c WHERE f.id = c.id"
        )
    )
    fg = edge_rule(
        gpd.GeoDataFrame(
            {"id": new_fields["id"]},
            geometry=new_fields.geometry.representative_point(),
            crs=4326,
        ),
        draft.rename_geometry("geometry"),
        "code",
    )
    pd.DataFrame({"id": new_fields["id"], "grid_id": fg.map(code_to_id)}).to_sql(
        "baseline_field_grid", conn, index=False
    )
    conn.execute(
        text(
            "UPDATE responsibility_fields AS f SET grid_id = b.grid_id "
            "FROM baseline_field_grid AS b WHERE f.id = b.id"
        )
    )
    leads.to_sql("baseline_leads", conn, index=False)
    conn.execute(
        text(
            "UPDATE grids AS g SET lead_member_id = l.member_id "
            "FROM baseline_leads AS l WHERE g.id = l.grid_id"
        )
    )
    new_branches.to_sql("branch_grids", conn, index=False, if_exists="append")
    r.to_sql("baseline_requests", conn, index=False)
    conn.execute(
        text(
            "UPDATE requests AS q SET grid_id = b.grid_id, field_id = b.field_id, "
            "member_id = b.member_id, assignment_rule = b.rule "
            "FROM baseline_requests AS b WHERE q.id = b.id"
        )
    )
    conn.execute(
        text("UPDATE boundary_plans SET status = 'retired', retired_at = now() WHERE id = :old"),
        p,
    )
    conn.execute(
        text("UPDATE boundary_plans SET status = 'active', activated_at = now() WHERE id = :new"),
        p,
    )
    lap("write fields, leads, branches, requests (to_postgis/to_sql + UPDATE)")
    return {
        "parts_s": took,
        "household_grid": dict(
            zip(rows["household_id"].astype(int), rows["grid_id"].astype(int), strict=True)
        ),
        "fields_cut": int(is_cut.sum()),
        "requests": len(r),
    }


def _open_statuses() -> tuple[str, ...]:
    from geogrid.db import models as m

    return m.OPEN_STATUSES


def product_household_grid(conn: Connection, plan_id: int) -> dict[int, int]:
    rows = conn.execute(
        text("SELECT household_id, grid_id FROM household_assignments WHERE plan_id = :p"),
        {"p": plan_id},
    ).all()
    return {int(h): int(g) for h, g in rows}


# --- runs -----------------------------------------------------------------------------------


def run_pure(f: Frames, repeats: int) -> tuple[list[Step], dict[str, Any]]:
    """validate_plan and diff_plans against their geopandas baselines, alternating."""
    from geogrid.planning.common import local_crs
    from geogrid.planning.diff import diff_plans
    from geogrid.planning.validate import validate_plan

    crs = local_crs(f.community)
    vp, vb, dp, db_ = [], [], [], []
    checks: dict[str, Any] = {}
    for i in range(repeats):
        s, report = measure.time_python(
            lambda: validate_plan(
                f.draft, f.community, community_code=COMMUNITY_CODE, tolerance_m2=TOLERANCE_M2
            )
        )
        vp.append(s)
        s, found = measure.time_python(lambda: baseline_validate(f.draft, f.community, crs))
        vb.append(s)
        s, diff = measure.time_python(
            lambda: diff_plans(
                f.active,
                f.draft,
                households=f.households,
                fields=f.fields,
                branches=f.branches,
                open_requests=f.open_requests,
                tolerance_m2=TOLERANCE_M2,
            )
        )
        dp.append(s)
        s, base = measure.time_python(lambda: baseline_diff(f, crs))
        db_.append(s)
        print(
            f"  repeat {i + 1}: validate {vp[-1].seconds:.2f} s (baseline {vb[-1].seconds:.2f}), "
            f"diff {dp[-1].seconds:.2f} s (baseline {db_[-1].seconds:.2f})",
            flush=True,
        )
        if i == 0:
            checks = pure_checks(report, found, diff, base)
        del diff, base
    steps = [
        Step("validate_plan", "product", vp,
             "geogrid.planning.validate.validate_plan(draft, community, community_code=…)"),
        Step("validate_plan", "baseline", vb,
             "geopandas: overlay(draft, draft) for overlaps, overlay difference for outside, "
             "community − union_all for gaps, is_valid, explode, duplicated codes"),
        Step("diff_plans", "product", dp,
             "geogrid.planning.diff.diff_plans(active, draft, households, fields, branches, "
             "open_requests)"),
        Step("diff_plans", "baseline", db_,
             "geopandas: sjoin households × active and × draft (edge rule: lowest code), "
             "overlay fields × draft (cuts), overlay draft × active (parents), sjoin requests "
             "× both"),
    ]  # fmt: skip
    return steps, checks


def pure_checks(
    report: Any, found: dict[str, Any], diff: Any, base: BaselineDiff
) -> dict[str, Any]:
    """The product's answers against the baseline's."""
    moved = {(str(m["household"]), m["from_code"], m["to_code"]) for m in diff.households_moved}
    cut = {int(c.field_id) for c in diff.fields_cut}
    parents = {k: v for k, v in diff.parents.items() if v is not None}
    rerouted = {int(r["request_id"]) for r in diff.requests_rerouted}
    return {
        "validate": {
            "product_valid": report.valid,
            "product_errors": report.errors,
            "product_warnings": [p.check for p in report.problems if p.severity == "warning"],
            "baseline_found": found,
            "agree": report.valid
            == (not any(v for k, v in found.items() if k != "multipart_parts")),
        },
        "diff": {
            "counts": diff.counts,
            "households_moved_product": len(moved),
            "households_moved_baseline": len(base.moved),
            "households_moved_mismatch": len(moved ^ base.moved),
            "households_on_draft_edges": base.on_edges,
            "fields_cut_product": len(cut),
            "fields_cut_baseline": len(base.cut),
            "fields_cut_mismatch": len(cut ^ base.cut),
            # Borderline cuts: intersections in metres (product) vs in degrees (baseline).
            "fields_cut_mismatch_detail": [
                {"field_id": c.field_id, "cut_area_m2": c.cut_area_m2, "cut_share": c.cut_share}
                for c in diff.fields_cut
                if int(c.field_id) in cut ^ base.cut
            ][:10],
            "households_cut_product": diff.counts["households_cut_from_fields"],
            "households_cut_baseline": base.households_cut,
            "parents_mismatch": sum(1 for k, v in parents.items() if base.parents.get(k) != v)
            + len(set(base.parents) - set(parents)),
            "requests_rerouted_product": len(rerouted),
            "requests_rerouted_baseline": len(base.rerouted),
            "requests_rerouted_mismatch": len(rerouted ^ base.rerouted),
        },
    }


def run_postgis(
    db: Database, city: City, draft: Draft, extras: Extras, n: int, repeats: int
) -> tuple[list[Step], dict[str, Any]]:
    """diff_in_db and activate_plan against the geopandas activation, on PostGIS."""
    from geogrid.db import queries
    from geogrid.db.engine import make_engine
    from geogrid.planning import store
    from geogrid.planning.common import local_crs

    engine = make_engine(db.url, poolclass=NullPool)
    info: dict[str, Any] = {}
    crs = local_crs(shapely.box(X0, Y0, X1, Y1))
    try:
        ids = setup_database(engine, db, city, draft, extras, n)
        info["setup_s"] = ids.setup_seconds
        info["versions"] = db_versions(engine, db.backend)
        with engine.connect() as conn:
            info["server_settings"] = {
                name: conn.execute(text(f"SHOW {name}")).scalar_one()
                for name in (
                    "shared_buffers", "work_mem", "max_parallel_workers_per_gather", "fsync",
                    "synchronous_commit", "jit",
                )
            }  # fmt: skip
            info["sizes"] = {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in (
                    "households", "grids", "responsibility_fields", "members", "branches",
                    "branch_grids", "requests", "household_assignments",
                )
            }  # fmt: skip
            info["open_requests"] = int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM requests WHERE status IN ("
                        + ", ".join(f"'{s}'" for s in _open_statuses())
                        + ")"
                    )
                ).scalar_one()
            )
        dry: list[Sample] = []
        frames_s: list[Sample] = []
        for _ in range(repeats):
            with engine.connect() as conn:
                s, fr = measure.time_python(
                    lambda c=conn: store.read_frames(c, community_id=ids.community_id)
                )
                frames_s.append(s)
                del fr
                conn.rollback()
                s, diff = measure.time_python(
                    lambda c=conn: store.diff_in_db(
                        c,
                        community_id=ids.community_id,
                        draft=queries.grids_frame(c, plan_id=ids.draft_plan_id),
                    )
                )
                s.extra = {"counts": diff.counts}
                dry.append(s)
                conn.rollback()
            print(f"  diff_in_db {dry[-1].seconds:.2f} s (read_frames "
                  f"{frames_s[-1].seconds:.2f} s)", flush=True)  # fmt: skip
        act: list[Sample] = []
        base: list[Sample] = []
        agreement: dict[str, Any] = {}
        for i in range(repeats):
            s, parts = baseline_activation(engine, ids, crs)
            base.append(s)
            last = i == repeats - 1
            s, report = timed_activation(engine, db, ids, commit=last, check=i == 0 or last)
            act.append(s)
            print(f"  activate_plan {act[-1].seconds:.2f} s "
                  f"({'committed' if last else 'rolled back'}); geopandas "
                  f"{base[-1].seconds:.2f} s", flush=True)  # fmt: skip
            if last:
                with engine.connect() as conn:
                    mine = product_household_grid(conn, ids.draft_plan_id)
                theirs = parts["household_grid"]
                agreement = {
                    "households_product": len(mine),
                    "households_baseline": len(theirs),
                    "household_grid_mismatch": sum(1 for h, g in mine.items() if theirs.get(h) != g)
                    + len(set(theirs) - set(mine)),
                    "fields_cut_product": report.counts["fields_cut"],
                    "fields_cut_baseline": parts["fields_cut"],
                }
        steps = [
            Step("read_frames", "product", frames_s,
                 "store.read_frames: community, active grids, households with their "
                 "assignment, fields, branches, open requests"),
            Step("diff_in_db (dry run)", "product", dry,
                 "q.grids_frame(draft) + store.diff_in_db: read_frames + diff_plans"),
            Step("activate_plan", "product", act,
                 "activation.activate_plan in one transaction; repeats before the last rolled "
                 "back (time without commit), the last committed (time with commit)"),
            Step("activate_plan", "baseline", base,
                 "geopandas: read_postgis ×4, overlay fields × draft, sjoin households → "
                 "grids and clipped fields, overlay draft × active (leads, branches), sjoin "
                 "requests; COPY of the assignment into a new table, to_postgis/to_sql + "
                 "UPDATE for fields, leads, branches, requests; rolled back"),
        ]  # fmt: skip
        info["activation_vs_baseline"] = agreement
        return steps, info
    finally:
        engine.dispose()
        db.drop()


def run_spatialite(
    city: City, draft: Draft, extras: Extras, n: int, repeats: int
) -> tuple[list[Step], dict[str, Any]]:
    """The product's activation and dry-run diff on SpatiaLite."""
    from geogrid.db import queries
    from geogrid.db.engine import make_engine
    from geogrid.planning import store

    db = create_spatialite()
    engine = make_engine(db.url, poolclass=NullPool)
    info: dict[str, Any] = {}
    try:
        ids = setup_database(engine, db, city, draft, extras, n)
        info["setup_s"] = ids.setup_seconds
        info["versions"] = db_versions(engine, db.backend)
        dry: list[Sample] = []
        for _ in range(repeats):
            with engine.connect() as conn:
                s, diff = measure.time_python(
                    lambda c=conn: store.diff_in_db(
                        c,
                        community_id=ids.community_id,
                        draft=queries.grids_frame(c, plan_id=ids.draft_plan_id),
                    )
                )
                s.extra = {"counts": diff.counts}
                dry.append(s)
                conn.rollback()
        act: list[Sample] = []
        for i in range(repeats):
            last = i == repeats - 1
            s, _ = timed_activation(engine, db, ids, commit=last, check=i == 0 or last)
            act.append(s)
            print(f"  SpatiaLite activate_plan {act[-1].seconds:.2f} s", flush=True)
        steps = [
            Step("SpatiaLite diff_in_db (dry run)", "product", dry, "as on PostGIS"),
            Step("SpatiaLite activate_plan", "product", act, "as on PostGIS"),
        ]
        return steps, info
    finally:
        engine.dispose()
        db.drop()


def profile(
    f: Frames, db: Database | None, city: City, draft: Draft, extras: Extras, n: int, out: Path
) -> list[str]:
    """pyinstrument text profiles of validate, diff and one rolled-back activation."""
    from pyinstrument import Profiler

    from geogrid.db.engine import make_engine
    from geogrid.planning import activation
    from geogrid.planning.diff import diff_plans
    from geogrid.planning.validate import validate_plan

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def run(name: str, fn: Callable[[], Any]) -> None:
        prof = Profiler(interval=0.005)
        prof.start()
        fn()
        prof.stop()
        path = out / f"planning-profile-{name}.txt"
        path.write_text(prof.output_text(unicode=True, color=False, show_all=False))
        prof.write_html(str(out / f"planning-profile-{name}.html"))
        written.append(str(path))

    run("validate", lambda: validate_plan(f.draft, f.community, community_code=COMMUNITY_CODE))
    run("diff", lambda: diff_plans(f.active, f.draft, households=f.households, fields=f.fields,
                                   branches=f.branches, open_requests=f.open_requests))  # fmt: skip
    if db is not None:
        engine = make_engine(db.url, poolclass=NullPool)
        try:
            ids = setup_database(engine, db, city, draft, extras, n)

            def activate() -> None:
                with engine.connect() as conn, conn.begin() as trans:
                    activation.activate_plan(
                        conn, community_id=ids.community_id, plan_id=ids.draft_plan_id
                    )
                    trans.rollback()

            run("activate", activate)
        finally:
            engine.dispose()
            db.drop()
    return written


# --- report ---------------------------------------------------------------------------------


def table(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    by = {r["step"]: r for r in ratios}
    head = f"{'step':<34} {'tool':<9} {'median s':>9} {'runs (s)':<26} {'× baseline':>10} "
    head += f"{'paired':>7} {'peak MB':>8}"
    out = [head, "-" * len(head)]
    for r in results:
        ratio = by.get(r["step"]) if r["tool"] == "product" else None
        runs = ", ".join(f"{s:.2f}" for s in r["seconds"])
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        out.append(
            f"{r['step']:<34} {r['tool']:<9} {r['median_s']:>9.2f} {runs:<26} "
            f"{'' if ratio is None else format(ratio['ratio'], '.2f'):>10} "
            f"{'' if ratio is None or ratio['paired_ratio'] is None else format(ratio['paired_ratio'], '.2f'):>7} "  # noqa: E501
            f"{peak:>8}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.planning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--households", type=int, default=1_000_000)
    p.add_argument("--grids", type=int, default=10_000)
    p.add_argument("--fields", type=int, help="default: 3 per grid")
    p.add_argument("--requests", type=int, default=20_000, help="open requests")
    p.add_argument("--closed-requests", type=int, default=5_000)
    p.add_argument("--branches", type=int, help="default: 3 per 100 grids")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--postgres-url")
    p.add_argument("--no-postgis", action="store_true", help="only the in-memory steps")
    p.add_argument("--spatialite", action="store_true",
                   help="also activate on SpatiaLite at a smaller size")  # fmt: skip
    p.add_argument("--spatialite-households", type=int, default=100_000)
    p.add_argument("--spatialite-grids", type=int, default=1_000)
    p.add_argument("--profile", type=Path, help="write pyinstrument profiles here, then stop")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    n, grids = args.households, args.grids
    fields = args.fields or 3 * grids
    branches = args.branches or max(1, grids * 3 // 100)
    today = dt.date.today().isoformat()
    out = args.out or ROOT / "benchmarks" / "results" / f"planning-{today}.json"
    loads: dict[str, tuple[float, float, float]] = {"before": os.getloadavg()}
    code = code_state()

    t0 = time.perf_counter()
    city = nest_fields(make_city(households=n, grids=grids, fields=fields, seed=args.seed))
    draft = make_draft(city, grids=grids, seed=args.seed)
    extras = make_extras(
        city,
        households=n,
        requests=args.requests,
        closed=args.closed_requests,
        branches=branches,
        seed=args.seed,
    )
    f = frames(city, draft, extras, n)
    print(f"synthetic city: {n:,} households, {len(city.grids):,} grids → draft of "
          f"{len(draft.grids):,} ({draft.seeds_moved:,} seeds moved, {draft.seeds_removed:,} "
          f"removed, {draft.seeds_added:,} added), {len(city.fields):,} fields, "
          f"{len(f.open_requests):,} open requests, {branches} branches "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip

    stop_server = None
    server = None
    if not args.no_postgis:
        server, stop_server = postgres_url(args.postgres_url)
    try:
        if args.profile:
            db = None if server is None else create_postgis(server, "partitioned")
            for path in profile(f, db, city, draft, extras, n, args.profile):
                print(f"written {path}")
            return 0
        print("in memory: validate_plan and diff_plans vs geopandas", flush=True)
        steps, checks = run_pure(f, args.repeats)
        info: dict[str, Any] = {}
        loads["after in-memory steps"] = os.getloadavg()
        if server is not None:
            print("PostGIS: diff_in_db and activate_plan vs geopandas", flush=True)
            pg_steps, info["postgis"] = run_postgis(
                create_postgis(server, "partitioned"), city, draft, extras, n, args.repeats
            )
            steps += pg_steps
            loads["after PostGIS"] = os.getloadavg()
        if args.spatialite:
            sn, sg = args.spatialite_households, args.spatialite_grids
            small = nest_fields(make_city(households=sn, grids=sg, fields=3 * sg, seed=args.seed))
            small_draft = make_draft(small, grids=sg, seed=args.seed)
            small_extras = make_extras(small, households=sn, requests=max(100, sn // 50),
                                       closed=sn // 200, branches=max(1, sg * 3 // 100),
                                       seed=args.seed)  # fmt: skip
            print(f"SpatiaLite: {sn:,} households, {sg:,} grids", flush=True)
            sl_steps, info["spatialite"] = run_spatialite(
                small, small_draft, small_extras, sn, args.repeats
            )
            info["spatialite"]["size"] = {
                "households": sn,
                "grids": sg,
                "draft_grids": len(small_draft.grids),
                "fields": 3 * sg,
            }
            steps += sl_steps
            loads["after SpatiaLite"] = os.getloadavg()
    finally:
        if stop_server:
            stop_server()

    results = [s.to_dict() for s in steps]
    product = {s.name: s for s in steps if s.tool == "product"}
    baseline = {s.name: s for s in steps if s.tool == "baseline"}
    ratios = [pair(product[k], baseline[k]) for k in product if k in baseline]
    vd = product["validate_plan"].median + product["diff_plans"].median
    targets = [
        {
            "rule": f"validate + diff ≤ {TARGET_VALIDATE_DIFF_S:.0f} s",
            "measured_s": round(vd, 3),
            "met": vd <= TARGET_VALIDATE_DIFF_S,
            "baseline_s": round(
                baseline["validate_plan"].median + baseline["diff_plans"].median, 3
            ),
        }
    ]
    if "activate_plan" in product:
        a = product["activate_plan"].median
        targets.append(
            {
                "rule": f"activation on PostGIS ≤ {TARGET_ACTIVATE_S:.0f} s",
                "measured_s": round(a, 3),
                "met": a <= TARGET_ACTIVATE_S,
                "baseline_s": round(baseline["activate_plan"].median, 3),
            }
        )
    versions = measure.python_versions()
    for backend in ("postgis", "spatialite"):
        versions.update(info.get(backend, {}).pop("versions", {}))
    report = {
        "benchmark": "planning",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.planning " + " ".join(argv or sys.argv[1:]),
        "machine": measure.machine()
        | {
            "loadavg": loads | {"after": os.getloadavg()},
            "note": "2 vCPUs shared with other work: expect ±30 %; compare within a run",
        },
        "versions": versions,
        "code": code,
        "config": {
            "households": n,
            "grids": len(city.grids),
            "draft_grids": len(draft.grids),
            "draft": {
                "seeds_moved": draft.seeds_moved,
                "seeds_removed": draft.seeds_removed,
                "seeds_added": draft.seeds_added,
            },
            "fields": len(city.fields),
            "open_requests": int(extras.req_open.sum()),
            "closed_requests": int((~extras.req_open).sum()),
            "branches": branches,
            "branch_grids": len(extras.branch_grids),
            "members": extras.members,
            "repeats": args.repeats,
            "seed": args.seed,
            "community_code": COMMUNITY_CODE,
            "tolerance_m2": TOLERANCE_M2,
        },
        "targets": targets,
        "ratios": ratios,
        "checks": checks,
        "databases": info,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print()
    print(table(results, ratios))
    print()
    for t in targets:
        verdict = "met" if t["met"] else "MISSED"
        print(f"target: {t['rule']}: {t['measured_s']:.1f} s — {verdict} "
              f"(geopandas: {t['baseline_s']:.1f} s)")  # fmt: skip
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
