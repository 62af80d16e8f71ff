"""geogrid.lookup: point lookups from memory, the same answers as the SQL assignment.

Pure tests build a :class:`LookupIndex` from frames; database tests (both backends) build the
:class:`LookupService` from the hand-drawn community of ``tests/lookup_factories.py`` and
change the data from outside (another engine, another process) while it runs.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, box
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from api.cli import app as cli_app
from geogrid import crs as gcrs
from geogrid.assign import assign_community
from geogrid.catalogue import ensure_default_catalogue
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.db.engine import make_engine
from geogrid.errors import CRSError, InvalidInput, NotFound
from geogrid.lookup import (
    MAX_BATCH,
    CommunityInfo,
    LookupIndex,
    LookupResult,
    LookupService,
    PlanInfo,
    mask_name,
)
from geogrid.spatial import assign_points
from tests.factories import X0, Y0, D, square_grids
from tests.lookup_factories import (
    EXPECTED,
    G1,
    G3,
    G4,
    HKI_CODE,
    HKI_LEAD,
    HKI_X0,
    HKI_Y0,
    MASKED,
    MEMBER_NAMES,
    LookupCommunity,
    make_helsinki,
    make_lookup_community,
)

GEOD = pyproj.Geod(ellps="WGS84")


def wait_for(check: Callable[[], bool], *, seconds: float = 5.0) -> float:
    """Poll ``check`` until it holds (bounded); return the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not true within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - start


# --- masked names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张小明", "张*明"),
        ("张明", "张*"),
        ("欧阳娜娜", "欧*娜"),
        ("张", "*"),
        (" 王 芳 ", "王*"),
        ("买买提·艾力", "买*力"),
        ("John Smith", "J*** S***"),
        ("Madonna", "M***"),
        ("Anna-Liisa Virtanen", "A*** L*** V***"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name: str | None, masked: str) -> None:
    assert mask_name(name) == masked


# --- the index alone (no database) -------------------------------------------------------------


def _square_index() -> LookupIndex:
    """The four squares, given in *reverse* code order: the index must sort by code."""
    grids = list(reversed(square_grids()))
    frame = gpd.GeoDataFrame(
        {
            "id": [10, 20, 30, 40],
            "code": [c for c, _ in grids],
            "name": [c[-3:] for c, _ in grids],
            "lead_member_id": [1, None, None, None],  # 004 (first here)
        },
        geometry=[g for _, g in grids],
        crs="EPSG:4326",
    )
    members = pd.DataFrame({"id": [1], "name": ["张小明"], "kind": ["resident"]})
    return LookupIndex(
        community=CommunityInfo(1, "441302011099", "测试社区"),
        plan=PlanInfo(1, 1),
        grids=frame,
        members=members,
    )


def _edge_points() -> tuple[np.ndarray, np.ndarray]:
    """A lattice over the squares and beyond (every edge, corner and outside), plus noise."""
    steps = X0 + np.arange(-1, 10) * (D / 4), Y0 + np.arange(-1, 10) * (D / 4)
    lx, ly = (a.ravel() for a in np.meshgrid(*steps))
    edges = np.array([X0, X0 + D, X0 + 2 * D])
    ex, ey = (a.ravel() for a in np.meshgrid(edges, Y0 + np.linspace(0, 2 * D, 9)))
    rng = np.random.default_rng(7)
    rx = X0 - D / 2 + rng.random(2000) * 3 * D
    ry = Y0 - D / 2 + rng.random(2000) * 3 * D
    return np.concatenate([lx, ex, ey * 0 + X0 + D, rx]), np.concatenate([ly, ey, ex - X0 + Y0, ry])


def test_edge_rule_in_memory_is_lowest_code() -> None:
    index = _square_index()
    codes = {
        (X0 + D, Y0 + 1.5 * D): "441302011099001",  # 001 | 002
        (X0 + 0.5 * D, Y0 + D): "441302011099001",  # 001 | 003
        (X0 + D, Y0 + D): "441302011099001",  # all four
        (X0 + 1.5 * D, Y0 + D): "441302011099002",  # 002 | 004
        (X0 + D, Y0 + 0.5 * D): "441302011099003",  # 003 | 004
        (X0 + 2 * D, Y0): "441302011099004",  # outer corner
    }
    for (x, y), code in codes.items():
        assert index.lookup_point(x, y).grid.code == code


def test_bulk_equals_single_equals_assign_points() -> None:
    index = _square_index()
    x, y = _edge_points()
    bulk = index.lookup_points(x, y)
    single = [index.locate(float(a), float(b))[0] for a, b in zip(x, y, strict=True)]
    assert bulk.grid.tolist() == single
    grids = square_grids()
    ref = assign_points(
        gpd.points_from_xy(x, y), gpd.GeoSeries([g for _, g in grids]), key=[c for c, _ in grids]
    )
    codes = [c for c, _ in grids]
    assert bulk.grid_codes().tolist() == [codes[i] if i >= 0 else None for i in ref]
    assert (bulk.grid < 0).sum() > 100  # the lattice reaches outside
    # The member falls back to the lead of grid 004 only there; elsewhere there is none.
    in_004 = bulk.grid_codes() == "441302011099004"
    assert (bulk.member_id[in_004] == 1).all() and (bulk.member_id[~in_004] == -1).all()
    assert set(bulk.member_rules()[bulk.grid >= 0]) == {"grid_lead"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bucket_cells_equal_the_strtree_rule(seed: int) -> None:
    """The index's bucket grid answers exactly as an STRtree with the edge rule
    (``assign_points``): random Voronoi tilings plus overlapping discs, queried at random
    points, every vertex and points interpolated along every edge."""
    import shapely

    rng = np.random.default_rng(seed)
    frame = shapely.box(X0, Y0, X0 + 0.03, Y0 + 0.02)
    seeds = shapely.multipoints(np.c_[X0 + rng.random(40) * 0.03, Y0 + rng.random(40) * 0.02])
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    tiles = shapely.intersection(cells, frame)
    discs = shapely.buffer(
        shapely.points(X0 + rng.random(15) * 0.03, Y0 + rng.random(15) * 0.02), 0.002
    )
    polys = np.concatenate([tiles, discs])
    rank = rng.permutation(len(polys))  # the key of the edge rule, unrelated to position
    order = np.argsort(rank)
    sorted_polys = polys[order]
    boundary = shapely.boundary(sorted_polys)
    along = shapely.line_interpolate_point(
        np.repeat(boundary, 20), np.tile(np.linspace(0, 1, 20), len(boundary)), normalized=True
    )
    vertices = shapely.get_coordinates(sorted_polys)
    x = np.concatenate(
        [X0 - 0.005 + rng.random(20000) * 0.04, vertices[:, 0], shapely.get_x(along)]
    )
    y = np.concatenate(
        [Y0 - 0.005 + rng.random(20000) * 0.03, vertices[:, 1], shapely.get_y(along)]
    )
    from geogrid.lookup.cells import Cells as _Cells

    grid = _Cells(sorted_polys)
    want = assign_points(shapely.points(x, y), gpd.GeoSeries(sorted_polys))
    assert grid.find_many(x, y).tolist() == want.tolist()
    assert [grid.find(float(a), float(b)) for a, b in zip(x, y, strict=True)] == want.tolist()
    assert (want >= 0).sum() > 1000 and (want < 0).sum() > 1000


def test_non_finite_points_are_outside_in_bulk() -> None:
    res = _square_index().lookup_points([np.nan, np.inf, X0 + 0.001], [Y0 + 0.001, 0, np.nan])
    assert res.grid.tolist() == [-1, -1, -1]


def test_bulk_lookup_throughput() -> None:
    """≥ 300,000 points/s in process (benchmarks/lookup.py measures 1M on the demo)."""
    index = _square_index()
    rng = np.random.default_rng(1)
    n = 300_000
    x, y = X0 + rng.random(n) * 2 * D, Y0 + rng.random(n) * 2 * D
    best = min(_timed(lambda: index.lookup_points(x, y)) for _ in range(3))
    assert n / best >= 300_000, f"{n / best:,.0f} points/s"


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the service over a database (both backends) ---------------------------------------------


@pytest.fixture
def community(engine: Engine) -> LookupCommunity:
    with engine.begin() as conn:
        return make_lookup_community(conn)


@pytest.fixture
def service(engine: Engine, community: LookupCommunity) -> Iterator[LookupService]:
    svc = LookupService(engine, poll_interval=0)
    svc.start()
    yield svc
    svc.stop()


@pytest.mark.parametrize("case", list(EXPECTED))
def test_expected_answers(service: LookupService, community: LookupCommunity, case: str) -> None:
    (x, y), code, member, rule = EXPECTED[case]
    r = service.lookup(lon=x, lat=y)
    assert r.place.grid.code == code
    assert r.place.member_rule == rule
    if member is None:
        assert r.place.member is None
    else:
        assert r.place.member is not None
        assert r.place.member.id == community.members[member]
        assert r.place.member.display_name == MASKED[member]


def test_same_answers_as_the_sql_assignment(engine: Engine, community: LookupCommunity) -> None:
    """Requests at every lattice point (edges, corners, outside) and random points are
    assigned by SQL; the in-memory index gives the same grid, field, member and rule."""
    x, y = _edge_points()
    with engine.begin() as conn:
        ensure_default_catalogue(conn)
        category = conn.execute(select(m.Category.id, m.Category.programme).limit(1)).one()
        ids = q.insert_returning_ids(
            conn,
            m.Request,
            [
                {
                    "community_id": community.community_id,
                    "category_id": category.id,
                    "programme": category.programme,
                    "received_at": m.utcnow(),
                    "geom": q.geom_value(Point(a, b)),
                }
                for a, b in zip(x.tolist(), y.tolist(), strict=True)
            ],
        )
        assign_community(conn, community_id=community.community_id, all_requests=True)
        rows = {
            r.id: r
            for r in conn.execute(
                select(
                    m.Request.id,
                    m.Request.grid_id,
                    m.Request.field_id,
                    m.Request.member_id,
                    m.Request.assignment_rule,
                )
            )
        }
    svc = LookupService(engine, poll_interval=0, addresses=False)
    svc.refresh(force=True)
    index = svc.index()
    res = index.lookup_points(x, y)
    grid_ids = [index.grids[g].id if g >= 0 else None for g in res.grid]
    field_ids = [
        index.fields[f].id if f >= 0 and g >= 0 else None
        for f, g in zip(res.field, res.grid, strict=True)
    ]
    members = [int(v) if v >= 0 else None for v in res.member_id]
    rules = [r if r is not None else "none" for r in res.member_rules()]
    sql = [rows[i] for i in ids]
    assert grid_ids == [r.grid_id for r in sql]
    # SQL sets field_id for every covered request (also outside grids); compare inside ones.
    assert field_ids == [r.field_id if r.grid_id is not None else None for r in sql]
    assert members == [r.member_id for r in sql]
    assert rules == [r.assignment_rule for r in sql]
    assert sum(g is None for g in grid_ids) > 100 and len(set(rules)) == 3


def test_branch_group_and_street_grids(service: LookupService, community: LookupCommunity) -> None:
    in_building = service.lookup(lon=X0 + 0.0025, lat=Y0 + 0.0125).place
    assert in_building.group is not None
    assert in_building.group.name == "1号楼党小组"
    assert in_building.group.building.name == "1号楼"
    assert in_building.branch is not None and in_building.branch.name == "第一党支部"
    no_group = service.lookup(lon=X0 + 0.0125, lat=Y0 + 0.0125).place  # 2号楼, no group
    assert no_group.group is None and no_group.branch is not None
    no_branch = service.lookup(lon=X0 + 0.015, lat=Y0 + 0.005).place
    assert no_branch.grid.code == G4 and no_branch.branch is None
    crossings = service.index().street_grids[community.streets["长湖街"]]
    assert [(s.grid.code, s.share) for s in crossings] == [(G3, 0.5), (G4, 0.5)]


def test_answers_carry_no_full_name(service: LookupService) -> None:
    bodies = [service.lookup(lon=p[0], lat=p[1]).to_dict() for p, *_ in EXPECTED.values()]
    text = json.dumps(bodies, ensure_ascii=False)
    for name in MEMBER_NAMES.values():
        assert name not in text
    assert "13800000000" not in text
    assert set(MASKED.values()) <= {b["member"]["display_name"] for b in bodies if b["member"]}


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "GCJ-02", "baidu"])
def test_gcj02_and_bd09_in_and_out(service: LookupService, crs: str) -> None:
    lon, lat = X0 + 0.002, Y0 + 0.005  # F1, well inside
    name = gcrs.normalize_crs(crs)
    x, y = gcrs.from_wgs84(lon, lat, name)
    assert math.dist((x, y), (lon, lat)) > 0.003  # hundreds of metres off
    r = service.lookup(lon=x, lat=y, crs=crs)
    assert r.place.grid.code == G3 and r.place.field is not None
    assert r.place.lon == pytest.approx(lon, abs=1e-7)  # < 1 cm
    assert r.place.lat == pytest.approx(lat, abs=1e-7)
    body = r.to_dict()
    assert body["point"]["requested"] == {"crs": name, "lon": round(x, 7), "lat": round(y, 7)}
    assert body["point"]["wgs84"] == {"lon": round(lon, 7), "lat": round(lat, 7)}


def test_cgcs2000_and_a_projected_crs(service: LookupService) -> None:
    lon, lat = X0 + 0.015, Y0 + 0.015
    assert service.lookup(lon=lon, lat=lat, crs="EPSG:4490").place.grid.code == "441302011099002"
    # EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E), a city survey grid.
    x, y = pyproj.Transformer.from_crs(4326, 4547, always_xy=True).transform(lon, lat)
    r = service.lookup(lon=x, lat=y, crs="EPSG:4547")
    assert r.place.grid.code == "441302011099002"
    assert r.place.lon == pytest.approx(lon, abs=1e-7)
    with pytest.raises(CRSError) as err:
        service.lookup(lon=lon, lat=lat, crs="nonsense")
    assert err.value.field == "crs"


@pytest.mark.parametrize(
    ("lon", "lat", "field", "says"),
    [
        (float("nan"), 23.1, "lon", "finite"),
        (114.4, float("nan"), "lat", "finite"),
        ("inf", 23.1, "lon", "finite"),
        (200.0, 23.1, "lon", "between -180 and 180"),
        (114.4, -91.0, "lat", "between -90 and 90"),
        ("abc", 23.1, "lon", "must be a number"),
        (114.4, "23,1", "lat", "must be a number"),
        (None, 23.1, "lon", "missing"),
        (114.4, None, "lat", "missing"),
        ("", 23.1, "lon", "missing"),
    ],
)
def test_bad_coordinates_name_the_parameter(
    service: LookupService, lon: Any, lat: Any, field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        service.lookup(lon=lon, lat=lat)
    assert err.value.field == field
    assert says in err.value.message


def test_swapped_lon_lat_out_of_range_says_so(service: LookupService) -> None:
    lon, lat = X0 + 0.002, Y0 + 0.005
    with pytest.raises(InvalidInput) as err:
        service.lookup(lon=lat, lat=lon)
    assert err.value.field == "lat"
    assert "swapped" in err.value.message and "测试社区" in err.value.message
    assert err.value.details["swapped_inside"]["grid"] == G3


def test_swapped_lon_lat_in_range_says_so(engine: Engine) -> None:
    """Helsinki swapped (lon 60.17, lat 24.95) is a valid point — in no grid: 422, not 404."""
    with engine.begin() as conn:
        make_helsinki(conn)
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    with pytest.raises(InvalidInput) as err:
        svc.lookup(lon=HKI_Y0 + 0.005, lat=HKI_X0 + 0.01)
    assert err.value.field == "lon"
    assert "swapped" in err.value.message
    assert err.value.details["swapped_inside"]["community"] == HKI_CODE
    r = svc.lookup(lon=HKI_X0 + 0.01, lat=HKI_Y0 + 0.005)
    assert r.place.member is not None and r.place.member.display_name == "M*** M***"
    assert HKI_LEAD not in json.dumps(r.to_dict(), ensure_ascii=False)


def test_outside_names_the_nearest_grid_and_distance(service: LookupService) -> None:
    lon, lat = X0 + 0.03, Y0 + 0.005
    with pytest.raises(NotFound) as err:
        service.lookup(lon=lon, lat=lat)
    nearest = err.value.details["nearest_grid"]
    assert nearest["code"] == G4
    _, _, expected = GEOD.inv(lon, lat, X0 + 2 * D, lat)  # due west to the east edge
    assert nearest["distance_m"] == pytest.approx(expected, abs=0.5)
    assert 1000 < nearest["distance_m"] < 1050
    assert "outside every grid" in err.value.message


def test_several_communities(engine: Engine, community: LookupCommunity) -> None:
    with engine.begin() as conn:
        make_helsinki(conn)
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    assert svc.lookup(lon=HKI_X0 + 0.01, lat=HKI_Y0 + 0.005).place.community.code == HKI_CODE
    assert svc.lookup(lon=X0 + 0.002, lat=Y0 + 0.005).place.community.code == "441302011099"
    with pytest.raises(NotFound) as err:
        svc.lookup(lon=X0 + 0.002, lat=Y0 + 0.005, community=HKI_CODE)
    assert err.value.details["nearest_grid"]["community"] == HKI_CODE
    with pytest.raises(NotFound) as err:
        svc.lookup(lon=X0, lat=Y0, community="000000000000")
    assert err.value.field == "community"


def test_a_community_without_active_plan_is_not_found(engine: Engine) -> None:
    with engine.begin() as conn:
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": "441302011098",
                    "name": "空社区",
                    "boundary": q.geom_value(MultiPolygon([box(X0, Y0, X0 + D, Y0 + D)])),
                    "created_at": m.utcnow(),
                }
            ],
        )
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    with pytest.raises(NotFound) as err:
        svc.lookup(lon=X0 + 0.001, lat=Y0 + 0.001)
    assert "no active boundary plan" in err.value.message


def test_batch_keeps_order_and_errors_per_item(service: LookupService) -> None:
    (x1, y1), code1, *_ = EXPECTED["F1 in 003"]
    gx, gy = gcrs.from_wgs84(x1, y1, "gcj02")
    items: list[Any] = [
        {"lon": x1, "lat": y1},
        {"lon": "abc", "lat": y1},
        {"lon": X0 + 0.03, "lat": Y0 + 0.005},
        42,
        {"lon": gx, "lat": gy, "crs": "gcj02"},
        {"lon": x1, "lat": y1, "crs": "nonsense"},
        {"lon": x1, "lat": y1, "address": "长湖街"},
        {},
        {"lon": y1, "lat": x1},
    ]
    out = service.lookup_many(items)
    assert len(out) == len(items)
    first, bad, outside, not_obj, gcj, bad_crs, both, empty, swapped = out
    assert isinstance(first, LookupResult) and first.place.grid.code == code1
    assert isinstance(bad, InvalidInput) and bad.field == "lon"
    assert isinstance(outside, NotFound) and outside.details["nearest_grid"]["code"] == G4
    assert isinstance(not_obj, InvalidInput) and not_obj.field == "items"
    assert isinstance(gcj, LookupResult) and gcj.place.lon == pytest.approx(x1, abs=1e-7)
    assert isinstance(bad_crs, CRSError) and bad_crs.field == "crs"
    assert isinstance(both, InvalidInput) and both.field == "address"
    assert isinstance(empty, InvalidInput)
    assert isinstance(swapped, InvalidInput) and "swapped_inside" in swapped.details
    with pytest.raises(InvalidInput) as err:
        service.lookup_many([{}] * (MAX_BATCH + 1))
    assert err.value.field == "items"


def test_bulk_batch_of_points_equals_single_lookups(service: LookupService) -> None:
    x, y = _edge_points()
    items = [{"lon": a, "lat": b} for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    batch = service.lookup_many(items)
    for item, got in zip(items, batch, strict=True):
        try:
            want: Any = service.lookup(**item).to_dict()
        except (NotFound, InvalidInput) as exc:
            want = exc.to_dict()
        assert (got.to_dict()) == want


def test_refresh_reads_one_counter_when_nothing_changed(service: LookupService) -> None:
    state = service._state
    assert service.refresh() is False
    assert service._state is state


# --- changes made from outside ---------------------------------------------------------------


def test_change_from_another_connection_is_answered_within_5_s(
    db_url: str, community: LookupCommunity
) -> None:
    """A running service (poller at the default 1 s) sees another engine's commits: a field
    falls vacant, then a new plan is activated."""
    engine = make_engine(db_url)
    svc = LookupService(engine)  # default poll_interval: 1 s
    svc.start()
    other = make_engine(db_url)  # "another process": its own engine and connections
    try:
        (x, y), *_ = EXPECTED["F1 in 003"]
        assert svc.lookup(lon=x, lat=y).place.member_rule == "field"
        with other.begin() as conn:
            conn.execute(
                update(m.ResponsibilityField)
                .where(m.ResponsibilityField.id == community.fields["F1"])
                .values(member_id=None)
            )
        took = wait_for(lambda: svc.lookup(lon=x, lat=y).place.member_rule == "grid_lead")
        assert svc.lookup(lon=x, lat=y).place.member is not None
        assert took < 5

        with other.begin() as conn:
            plan_id = q.create_plan(conn, community_id=community.community_id, name="v2")
            q.insert_returning_ids(
                conn,
                m.Grid,
                [
                    {
                        "plan_id": plan_id,
                        "code": "441302011099005",
                        "name": "合并网格",
                        "geom": q.geom_value(
                            MultiPolygon([box(X0 - D, Y0 - D, X0 + 3 * D, Y0 + 3 * D)])
                        ),
                    }
                ],
            )
            q.mark_plan_active(conn, community_id=community.community_id, plan_id=plan_id)
        wait_for(lambda: svc.lookup(lon=x, lat=y).place.plan.version == 2)
        r = svc.lookup(lon=X0 + 0.03, lat=Y0 + 0.005)  # outside before, inside now
        assert r.place.grid.code == "441302011099005" and r.place.member_rule == "grid_lead"
    finally:
        svc.stop()
        engine.dispose()
        other.dispose()


# --- the command line --------------------------------------------------------------------------

runner = CliRunner()


def test_cli_point_lookup(db_url: str, community: LookupCommunity) -> None:
    (x, y), code, member, rule = EXPECTED["F3 in 002"]
    r = runner.invoke(
        cli_app, ["lookup", "--lon", str(x), "--lat", str(y), "--json", "--database", db_url]
    )
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["grid"]["code"] == code and body["member_rule"] == rule
    assert body["member"]["display_name"] == MASKED[member]
    gx, gy = gcrs.from_wgs84(x, y, "gcj02")
    r = runner.invoke(
        cli_app,
        ["lookup", "--lon", str(gx), "--lat", str(gy), "--crs", "gcj02", "--database", db_url],
    )
    assert r.exit_code == 0, r.output
    assert code in r.stdout and "J*** S***" in r.stdout and "John Smith" not in r.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--lon", "abc", "--lat", "23.1"], "lon"),
        (["--lon", "114.4"], "lat"),
        (["--lon", "23.105", "--lat", "114.402"], "lat"),
        ([], "address"),
    ],
)
def test_cli_bad_points_exit_1_naming_the_field(
    db_url: str, community: LookupCommunity, args: list[str], field: str
) -> None:
    r = runner.invoke(cli_app, ["lookup", *args, "--database", db_url])
    assert r.exit_code == 1
    assert f"field: {field}" in r.stderr


def test_cli_outside_names_the_nearest_grid(db_url: str, community: LookupCommunity) -> None:
    r = runner.invoke(
        cli_app, ["lookup", "--lon", str(X0 + 0.03), "--lat", str(Y0 + 0.005), "--database", db_url]
    )
    assert r.exit_code == 1
    assert "nearest grid is 441302011099004" in r.stderr


def test_cli_file_of_points(db_url: str, community: LookupCommunity, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out" / "out.csv"
    rows = [
        {"name": "a", "lon": str(X0 + 0.002), "lat": str(Y0 + 0.005), "crs": ""},
        {"name": "b", "lon": "abc", "lat": str(Y0), "crs": ""},
        {"name": "c", "lon": str(X0 + 0.03), "lat": str(Y0 + 0.005), "crs": ""},
        {"name": "d", "lon": "", "lat": str(Y0), "crs": ""},
    ]
    gx, gy = gcrs.from_wgs84(X0 + 0.015, Y0 + 0.015, "gcj02")
    rows.append({"name": "e", "lon": str(gx), "lat": str(gy), "crs": "gcj02"})
    with src.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["name", "lon", "lat", "crs"])
        w.writeheader()
        w.writerows(rows)
    r = runner.invoke(
        cli_app,
        ["lookup", "--file", str(src), "--out", str(dst), "--json", "--database", db_url],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"rows": 5, "found": 2, "errors": 3, "out": str(dst)}
    with dst.open(encoding="utf-8-sig", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [g["name"] for g in got] == ["a", "b", "c", "d", "e"]
    a, b, c, d, e = got
    assert (a["grid_code"], a["member_rule"], a["member_display_name"]) == (G3, "field", "欧*娜")
    assert a["error"] == "" and a["member_id"] != ""
    assert b["error"].startswith("invalid_input") and b["grid_code"] == ""
    assert c["error"].startswith("not_found") and "441302011099004" in c["error"]
    assert "lon is missing" in d["error"]
    assert e["grid_code"] == "441302011099002" and e["member_display_name"] == "J*** S***"
    assert "John Smith" not in dst.read_text(encoding="utf-8-sig")


def test_cli_file_needs_address_or_lon_lat_columns(
    db_url: str, community: LookupCommunity, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("name,x\na,1\n", encoding="utf-8")
    r = runner.invoke(
        cli_app,
        ["lookup", "--file", str(src), "--out", str(tmp_path / "o.csv"), "--database", db_url],
    )
    assert r.exit_code == 1
    assert "needs an address column, or lon and lat" in r.stderr


# --- addresses (geogrid.lookup.address's gazetteer, answered with the index) ---------------


@pytest.mark.parametrize(
    ("text", "level", "grid", "member", "rule", "group"),
    [
        ("长湖街5号", "door", G3, "field_f1", "field", None),
        ("广东省惠州市惠城区小金口街道测试社区长湖街5号", "door", G3, "field_f1", "field", None),
        ("长湖街５号", "door", G3, "field_f1", "field", None),
        ("长湖街五号", "door", G3, "field_f1", "field", None),
        ("长湖街18号", "door", G4, None, "grid_lead", None),
        # The doors lie outside 1号楼's footprint: the group comes from the matched building.
        ("金源花园1号楼", "building", G1, "lead_001", "grid_lead", "1号楼党小组"),
        ("金源花园一栋", "building", G1, "lead_001", "grid_lead", "1号楼党小组"),
        ("金源花园1栋1单元102室", "door", G1, "lead_001", "grid_lead", "1号楼党小组"),
        ("长糊街5号", "fuzzy", G3, "field_f1", "field", None),
    ],
)
def test_address_lookups(
    service: LookupService,
    community: LookupCommunity,
    text: str,
    level: str,
    grid: str,
    member: str | None,
    rule: str,
    group: str | None,
) -> None:
    r = service.lookup(address=text)
    assert r.match is not None and r.match.level == level
    assert r.place.grid.code == grid and r.place.member_rule == rule
    assert (r.place.member.id if r.place.member else None) == (
        community.members[member] if member else None
    )
    assert (r.place.group.name if r.place.group else None) == group
    body = r.to_dict()
    assert body["match"]["level"] == level and 0 < body["match"]["confidence"] <= 1
    assert body["match"]["street_grids"] is None


def test_a_street_alone_lists_the_grids_it_crosses(service: LookupService) -> None:
    body = service.lookup(address="长湖街").to_dict()
    assert body["match"]["level"] == "street"
    assert body["match"]["street_grids"] == [
        {"code": G3, "name": "003", "share": 0.5},
        {"code": G4, "name": "004", "share": 0.5},
    ]
    assert body["grid"]["code"] in (G3, G4)


def test_an_ambiguous_address_lists_candidates_without_units_or_rooms(
    service: LookupService,
) -> None:
    body = service.lookup(address="金源花园").to_dict()
    cands = body["match"]["candidates"]
    assert [c["label"] for c in cands] == ["金源花园1号楼", "金源花园2号楼"]
    assert [c["grid"]["code"] for c in cands] == [G1, "441302011099002"]
    assert body["match"]["confidence"] < 1
    text = json.dumps(body, ensure_ascii=False)
    assert "101" not in text and "102" not in text and "T-H-" not in text


def test_an_unknown_address_is_404_with_suggestions(service: LookupService) -> None:
    with pytest.raises(NotFound) as err:
        service.lookup(address="金源小区9栋")
    assert err.value.field == "address"
    assert [s["label"] for s in err.value.details["suggestions"]] == ["金源花园"]
    with pytest.raises(InvalidInput) as bad:
        service.lookup(address="  ")
    assert bad.value.field == "address"
    with pytest.raises(InvalidInput) as both:
        service.lookup(address="长湖街5号", lon=X0, lat=Y0)
    assert both.value.field == "address"


def test_an_address_answers_in_the_requested_crs(service: LookupService) -> None:
    wgs = service.lookup(address="长湖街5号").to_dict()["point"]
    for crs in ("gcj02", "bd09"):
        got = service.lookup(address="长湖街5号", crs=crs).to_dict()["point"]
        assert got["wgs84"] == wgs["wgs84"]
        x, y = gcrs.from_wgs84(wgs["wgs84"]["lon"], wgs["wgs84"]["lat"], crs)
        assert got["requested"]["crs"] == crs
        assert got["requested"]["lon"] == pytest.approx(x, abs=1e-6)
        assert got["requested"]["lat"] == pytest.approx(y, abs=1e-6)


def test_latin_script_addresses(engine: Engine, community: LookupCommunity) -> None:
    with engine.begin() as conn:
        make_helsinki(conn)
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    for text, level in [
        ("Unioninkatu 29", "door"),
        ("unioninkatu 29, Helsinki", "door"),
        ("Unionikatu 29", "fuzzy"),
        ("Unioninkatu", "street"),
    ]:
        r = svc.lookup(address=text)
        assert r.match is not None and r.match.level == level, text
        assert r.place.community.code == HKI_CODE and r.place.grid.code == "KLUUVI-1"
        assert r.place.member is not None and r.place.member.display_name == "M*** M***"
    # The Chinese community still answers its own addresses.
    assert svc.lookup(address="长湖街5号").place.grid.code == G3


def test_roster_addresses_whose_street_is_not_in_the_streets_layer(
    engine: Engine, community: LookupCommunity
) -> None:
    """As in an OpenStreetMap town: the roster's Kaisaniementie and Iso Roobertinkatu have no
    street rows (their buildings no street_id), a street of a close name has one. Each
    household's own address is found at its door; a number inside a range at the range's."""
    with engine.begin() as conn:
        cid, _ = make_helsinki(conn)
        q.insert_returning_ids(
            conn,
            m.Street,
            [
                {
                    "community_id": cid,
                    "name": "Kaisaniemenkatu",
                    "kind": None,
                    "geom": q.geom_value(
                        MultiLineString(
                            [
                                LineString(
                                    [
                                        (HKI_X0 + 0.002, HKI_Y0 + 0.008),
                                        (HKI_X0 + 0.018, HKI_Y0 + 0.008),
                                    ]
                                )
                            ]
                        )
                    ),
                }
            ],
        )
        b6, b35 = q.insert_returning_ids(
            conn,
            m.Building,
            [
                {
                    "community_id": cid,
                    "name": None,
                    "compound": None,
                    "aliases": [],
                    "street_id": None,
                    "house_number": number,
                    "geom": q.geom_value(
                        MultiPolygon([box(x, HKI_Y0 + 0.002, x + 0.001, HKI_Y0 + 0.003)])
                    ),
                }
                for number, x in (("6", HKI_X0 + 0.002), ("3-5", HKI_X0 + 0.015))
            ],
        )
        q.insert_returning_ids(
            conn,
            m.Household,
            [
                {
                    "community_id": cid,
                    "address_id": f"FI-HKI-R{i}",
                    "street_name": street,
                    "street_id": None,
                    "house_number": number,
                    "compound": None,
                    "building_name": None,
                    "building_id": building,
                    "unit": None,
                    "room": None,
                    "size": 2,
                    "geom": q.geom_value(Point(x, HKI_Y0 + 0.0019)),
                }
                for i, (street, number, building, x) in enumerate(
                    [
                        ("Kaisaniementie", "6", b6, HKI_X0 + 0.0025),
                        ("Iso Roobertinkatu", "3-5", b35, HKI_X0 + 0.0155),
                    ]
                )
            ],
        )
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    for text, address_id, level in [
        ("Kaisaniementie 6", "FI-HKI-R0", "door"),
        ("Iso Roobertinkatu 3-5", "FI-HKI-R1", "door"),
        ("Iso Roobertinkatu 3", "FI-HKI-R1", "door"),
        ("Iso Roobertinkatu 4", None, "street"),  # across the street from 3-5
    ]:
        r = svc.lookup(address=text)
        assert r.match is not None and r.match.level == level, text
        assert r.match.address_id == address_id, text
        assert r.place.community.code == HKI_CODE and r.place.grid.code == "KLUUVI-1"
        assert r.to_dict()["match"]["street_grids"] is None


def test_batch_of_addresses_and_points(service: LookupService) -> None:
    items: list[Any] = [
        {"address": "长湖街5号"},
        {"address": "金源小区9栋"},
        {"lon": X0 + 0.015, "lat": Y0 + 0.015},
        {"address": ""},
        {"address": "金源花园1号楼", "crs": "gcj02"},
    ]
    out = service.lookup_many(items)
    assert isinstance(out[0], LookupResult) and out[0].place.grid.code == G3
    assert isinstance(out[1], NotFound) and out[1].details["suggestions"]
    assert isinstance(out[2], LookupResult) and out[2].match is None
    assert isinstance(out[3], InvalidInput) and out[3].field == "address"
    assert isinstance(out[4], LookupResult) and out[4].crs == "gcj02"


def test_a_batch_of_10000_addresses_within_5_s(service: LookupService) -> None:
    texts = [
        "长湖街5号",
        "金源花园1号楼1单元101",
        "长糊街5号",
        "金源花园",
        "不存在路99号",
        "长湖街",
    ]
    items = [{"address": texts[i % len(texts)]} for i in range(MAX_BATCH)]
    took = _timed(lambda: service.lookup_many(items))
    assert took <= 5.0


def test_gazetteer_change_from_outside_is_answered_within_5_s(
    db_url: str, community: LookupCommunity
) -> None:
    engine = make_engine(db_url)
    svc = LookupService(engine)
    svc.start()
    other = make_engine(db_url)
    try:
        before = svc.lookup(address="长湖街7号").match
        assert before is not None and before.level == "street"  # no such door yet
        with other.begin() as conn:
            q.insert_returning_ids(
                conn,
                m.Household,
                [
                    {
                        "community_id": community.community_id,
                        "address_id": "T-H-NEW",
                        "street_name": "长湖街",
                        "street_id": community.streets["长湖街"],
                        "house_number": "7",
                        "compound": None,
                        "building_name": None,
                        "building_id": None,
                        "unit": None,
                        "room": None,
                        "size": 1,
                        "geom": q.geom_value(Point(X0 + 0.015, Y0 + 0.0052)),
                    }
                ],
            )

        def door() -> bool:
            match = svc.lookup(address="长湖街7号").match
            return match is not None and match.level == "door"

        wait_for(door)
        assert svc.lookup(address="长湖街7号").place.grid.code == G4
    finally:
        svc.stop()
        engine.dispose()
        other.dispose()


def test_cli_address_and_file_of_addresses(
    db_url: str, community: LookupCommunity, tmp_path: Path
) -> None:
    r = runner.invoke(cli_app, ["lookup", "长湖街5号", "--json", "--database", db_url])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["match"]["level"] == "door" and body["grid"]["code"] == G3
    r = runner.invoke(cli_app, ["lookup", "金源小区9栋", "--database", db_url])
    assert r.exit_code == 1 and "field: address" in r.stderr
    src, dst = tmp_path / "roster.csv", tmp_path / "roster-out.csv"
    # A GB18030 roster, as spreadsheets from offices often are.
    src.write_bytes(
        "姓名,address\n甲,长湖街5号\n乙,金源花园1号楼\n丙,金源小区9栋\n".encode("gb18030")
    )
    r = runner.invoke(
        cli_app,
        [
            "lookup",
            "--file",
            str(src),
            "--out",
            str(dst),
            "--encoding",
            "gb18030",
            "--database",
            db_url,
        ],
    )
    assert r.exit_code == 0, r.output
    with dst.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["姓名"] for r in rows] == ["甲", "乙", "丙"]
    assert [r["grid_code"] for r in rows] == [G3, G1, ""]
    assert [r["match_level"] for r in rows] == ["door", "building", ""]
    assert rows[0]["member_display_name"] == "欧*娜" and rows[0]["match_confidence"] == "1.0"
    assert rows[2]["error"].startswith("not_found")


# --- the demo community (both backends) ------------------------------------------------------


def _demo_households(engine: Engine) -> tuple[pd.DataFrame, dict[int, tuple[int, int | None]]]:
    with engine.connect() as conn:
        row = q.community_row(conn)
        frame = q.address_households_frame(conn, community_id=row.id).astype(object)
        plan = q.require_active_plan(conn, community_id=row.id)
        assigned = q.household_assignments(conn, plan_id=plan.id)
    return frame.where(frame.notna(), None), assigned


def test_demo_every_household_as_in_sql(demo_engine: Engine) -> None:
    """Every door of the demo community: the index gives the grid and field of the SQL
    assignment (household_assignments)."""
    households, assigned = _demo_households(demo_engine)
    svc = LookupService(demo_engine, poll_interval=0, addresses=False)
    svc.refresh(force=True)
    index = svc.index()
    res = index.lookup_points(households["lon"].to_numpy(float), households["lat"].to_numpy(float))
    got = [
        (index.grids[g].id if g >= 0 else None, index.fields[f].id if f >= 0 else None)
        for g, f in zip(res.grid, res.field, strict=True)
    ]
    assert got == [assigned.get(int(h), (None, None)) for h in households["id"]]
    assert len(index.grids) == 9 and len(index.fields) == 138


def test_demo_addresses_find_their_households(demo_engine: Engine) -> None:
    """A sample of the demo's household addresses, written as a resident would: each
    matches its own door, in the grid SQL assigned it to."""
    households, assigned = _demo_households(demo_engine)
    sample = households.sample(400, random_state=3)

    def text(h: Any) -> str:
        if h.compound:
            return f"{h.compound}{h.building_name or ''}{h.unit or ''}{h.room or ''}室"
        return f"{h.street_name}{h.house_number}{h.room or ''}"

    svc = LookupService(demo_engine, poll_interval=0)
    svc.refresh(force=True)
    index = svc.index()
    grid_code = {g.id: g.code for g in index.grids}
    results = svc.lookup_many([{"address": text(h)} for h in sample.itertuples()])
    for h, r in zip(sample.itertuples(), results, strict=True):
        assert isinstance(r, LookupResult), (text(h), r)
        assert r.match is not None and r.match.level == "door", text(h)
        assert r.match.household_id == h.id
        assert r.place.grid.code == grid_code[assigned[h.id][0]]
        assert r.place.member is not None
    body = json.dumps([r.to_dict() for r in results if isinstance(r, LookupResult)])
    assert '"room"' not in body and "address_id" not in body


def test_demo_the_retirees_street(demo_engine: Engine) -> None:
    """长湖街, the street of 126 households one member holds: a street-level answer naming
    the grids it crosses and its field holder."""
    svc = LookupService(demo_engine, poll_interval=0)
    svc.refresh(force=True)
    body = svc.lookup(address="长湖街").to_dict()
    assert body["match"]["level"] == "street"
    assert body["match"]["street_grids"]
    assert body["grid"]["code"] in {g["code"] for g in body["match"]["street_grids"]}
    assert body["member"]["display_name"].count("*") == 1
    prefixed = svc.lookup(address="广东省惠州市惠城区小金口街道金源社区长湖街").to_dict()
    assert prefixed["grid"] == body["grid"] and prefixed["match"]["level"] == "street"


def test_to_json_is_the_json_of_to_dict(service: LookupService) -> None:
    """The fast serialisation (cached place part) writes exactly what json.dumps would."""
    results = [service.lookup(lon=p[0], lat=p[1]) for p, *_ in EXPECTED.values()]
    gx, gy = gcrs.from_wgs84(X0 + 0.002, Y0 + 0.005, "gcj02")
    results.append(service.lookup(lon=gx, lat=gy, crs="gcj02"))
    for text in ("长湖街5号", "金源花园", "长湖街", "金源花园1号楼", "长糊街5号"):
        results.append(service.lookup(address=text, crs="bd09"))
    for r in results:
        assert r.to_json() == json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":"))
