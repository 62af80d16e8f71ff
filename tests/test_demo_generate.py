"""The synthetic demo community: published figures, geometry rules, consistency, determinism.

No database: the generator is pure. It runs once per module (a fixed ``today``); the checks
count and test the way the database will (a household belongs to the field that covers it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geogrid.catalogue import read_default
from geogrid.crs import transform_geometry
from geogrid.demo import DemoData, generate_demo
from geogrid.demo.generate import (
    ARTICLE_END,
    ARTICLE_START,
    COMMUNITY_CODE,
    MEMBERS_BY_KIND,
    grid_order,
)
from geogrid.errors import InvalidInput

TODAY = dt.date(2026, 11, 1)  # the suite's fixed "today" (as tests/conftest.py DEMO_TODAY)
END_OF_TODAY = pd.Timestamp(TODAY + dt.timedelta(days=1), tz="Asia/Shanghai")
DISTRICT = (
    Path(__file__).resolve().parents[1] / "boundaries/huicheng/huicheng_district_gcj02.geojson"
)
TIMES = ["received_at", "registered_at", "dispatched_at", "resolved_at", "closed_at"]
RESOLVED = {"resolved", "closed"}
OPEN = {"received", "registered", "dispatched", "in_progress", "escalated"}


@pytest.fixture(scope="module")
def run() -> tuple[DemoData, float]:
    t0 = time.perf_counter()
    data = generate_demo(today=TODAY)
    return data, time.perf_counter() - t0


@pytest.fixture(scope="module")
def demo(run: tuple[DemoData, float]) -> DemoData:
    return run[0]


@pytest.fixture(scope="module")
def utm(demo: DemoData) -> Any:
    """A metric CRS for areas and distances (UTM zone of the community)."""
    return demo.grids.estimate_utm_crs()


def metric(gdf: gpd.GeoDataFrame, crs: Any) -> np.ndarray:
    return np.asarray(gdf.to_crs(crs).geometry.values)


def field_of_households(demo: DemoData) -> np.ndarray:
    """Per household, the position of the field covering its door (-1: none), as ST_Covers."""
    tree = shapely.STRtree(np.asarray(demo.fields.geometry.values))
    pt, poly = tree.query(np.asarray(demo.households.geometry.values), predicate="covered_by")
    assert np.bincount(pt, minlength=len(demo.households)).max() <= 1, "a door in two fields"
    out = np.full(len(demo.households), -1)
    out[pt] = poly
    return out


def recent(demo: DemoData) -> pd.DataFrame:
    r = demo.requests
    return r[r["received_at"].dt.date > ARTICLE_END]


# --- community, placement, area --------------------------------------------------------------


def test_community_record(demo: DemoData) -> None:
    c = demo.community
    assert c["code"] == COMMUNITY_CODE == "441302011005"
    assert c["code"].startswith("441302") and len(c["code"]) == 12
    assert (c["name"], c["name_en"]) == ("金源社区", "Jinyuan Community")
    assert (c["subdistrict"], c["district"], c["city"], c["province"]) == (
        "小金口街道",
        "惠城区",
        "惠州市",
        "广东省",
    )
    assert c["timezone"] == "Asia/Shanghai"
    assert c["synthetic"] is True
    assert "synthetic" in c["note"].lower()
    assert isinstance(c["boundary"], MultiPolygon) and c["boundary"].is_valid


def test_area_about_9_km2(demo: DemoData, utm: Any) -> None:
    area = gpd.GeoSeries([demo.community["boundary"]], crs=4326).to_crs(utm).area.iloc[0]
    assert 9e6 * 0.85 <= area <= 9e6 * 1.15
    # Irregular: clearly not its own bounding rectangle.
    rect = gpd.GeoSeries([demo.community["boundary"].envelope], crs=4326).to_crs(utm).area.iloc[0]
    assert area / rect < 0.98


def test_every_geometry_inside_huicheng(demo: DemoData) -> None:
    raw = gpd.read_file(DISTRICT).geometry.iloc[0]
    district = transform_geometry(raw, "gcj02", "wgs84")  # the file is GCJ-02
    shapely.prepare(district)
    frames = [demo.streets, demo.grids, demo.buildings, demo.households, demo.members]
    frames += [demo.fields, demo.requests]
    for frame in frames:
        assert frame.crs.to_epsg() == 4326
        assert shapely.contains(district, np.asarray(frame.geometry.values)).all()
    assert district.contains(demo.community["boundary"])
    lon, lat = demo.community["boundary"].centroid.coords[0]
    assert 114.39 <= lon <= 114.43 and 23.12 <= lat <= 23.16


def test_households_and_requests_inside_community(demo: DemoData, utm: Any) -> None:
    boundary = gpd.GeoSeries([demo.community["boundary"]], crs=4326).to_crs(utm).iloc[0]
    for frame in (demo.households, demo.requests, demo.buildings, demo.fields):
        assert shapely.covered_by(metric(frame, utm), boundary).all()


# --- grids ------------------------------------------------------------------------------------


def test_nine_grids_tile_the_community(demo: DemoData, utm: Any) -> None:
    grids = metric(demo.grids, utm)
    assert len(grids) == 9
    assert all(isinstance(g, Polygon) and g.is_valid for g in grids)
    boundary = gpd.GeoSeries([demo.community["boundary"]], crs=4326).to_crs(utm).iloc[0]
    union = shapely.union_all(grids)
    # No gap: union == boundary up to float noise.
    assert union.symmetric_difference(boundary).area / boundary.area < 1e-6
    # No overlap: the areas add up, and no pair shares more than an edge.
    assert abs(sum(g.area for g in grids) - boundary.area) / boundary.area < 1e-6
    for i in range(9):
        for j in range(i + 1, 9):
            assert grids[i].intersection(grids[j]).area < 1e-3  # m²


def test_grid_codes_numbered_west_east_north_south(demo: DemoData) -> None:
    g = demo.grids
    assert list(g["code"]) == [f"{COMMUNITY_CODE}{k:03d}" for k in range(1, 10)]
    assert all(re.fullmatch(r"\d{15}", c) for c in g["code"])
    assert list(g["name"]) == [f"金源社区第{k}网格" for k in range(1, 10)]
    reps = g.geometry.representative_point()
    lon, lat = reps.x.to_numpy(), reps.y.to_numpy()
    rows = [slice(0, 3), slice(3, 6), slice(6, 9)]
    for r in rows:
        assert (np.diff(lon[r]) > 0).all()  # west → east within a row
    for upper, lower in itertools.pairwise(rows):
        assert lat[upper].min() > lat[lower].max()  # rows north → south
    # The documented rule reproduces the order from the points alone.
    heights = np.sqrt(g.to_crs(g.estimate_utm_crs()).area.to_numpy())
    assert grid_order(list(lon), list(lat), list(heights / 111_000)) == list(range(9))


def test_grid_order_rule_on_a_hand_drawn_layout() -> None:
    # Two rows, the second slightly staggered; positions given out of order.
    x = [2.0, 0.0, 1.0, 0.1, 1.2]
    y = [10.1, 10.0, 9.8, 0.2, -0.1]
    assert grid_order(x, y, [10.0] * 5) == [1, 2, 0, 3, 4]


# --- streets, buildings -----------------------------------------------------------------------


def test_street_network(demo: DemoData) -> None:
    s = demo.streets
    assert list(s["street_key"]) == list(range(1, len(s) + 1))
    assert s["name"].is_unique
    assert set(s["kind"]) == {"路", "街", "巷"}
    counts = s["kind"].value_counts()
    assert counts["路"] >= 4 and counts["街"] >= 6 and counts["巷"] >= 20
    assert all(n.endswith(k) for n, k in zip(s["name"], s["kind"], strict=True))
    assert (s.geometry.geom_type == "LineString").all()


def test_buildings(demo: DemoData, utm: Any) -> None:
    b = demo.buildings
    assert 1000 <= len(b) <= 1500
    assert list(b["building_key"]) == list(range(1, len(b) + 1))
    assert set(b["street_key"]) <= set(demo.streets["street_key"])
    assert (b.geometry.geom_type == "Polygon").all() and b.geometry.is_valid.all()
    assert (b["floors"] >= 1).all()
    compound = b["compound"].notna()
    assert compound.sum() >= 50 and (~compound).sum() >= 500
    assert b.loc[compound, "name"].notna().all()
    assert all(isinstance(a, list) for a in b["aliases"])
    assert b["house_number"].str.fullmatch(r"\d+号").all()
    geoms, grids = metric(b, utm), metric(demo.grids, utm)
    # Never across a grid boundary: each building is covered by exactly one grid …
    inside = np.array([shapely.covered_by(geoms, g) for g in grids])
    assert (inside.sum(axis=0) == 1).all()
    # … and never across (or on) a street.
    streets = metric(demo.streets, utm)
    tree = shapely.STRtree(streets)
    assert len(tree.query(geoms, predicate="intersects")[0]) == 0
    # Set back from streets by at least a couple of metres.
    assert len(tree.query(geoms, predicate="dwithin", distance=2.5)[0]) == 0


# --- households ---------------------------------------------------------------------------------


def test_households_and_residents(demo: DemoData) -> None:
    h = demo.households
    assert 12_000 <= len(h) <= 13_000
    assert h["address_id"].is_unique
    assert h["address_id"].str.fullmatch(rf"{COMMUNITY_CODE}-B\d{{4}}(-U\d)?-\d{{4}}").all()
    assert (h["size"] >= 1).all()
    residents = h["size"].sum()
    registered = h.loc[h["registered"], "size"].sum()
    assert abs(residents - 36_000) <= 0.03 * 36_000
    assert abs(registered - 10_000) <= 0.03 * 10_000
    assert abs((residents - registered) - 26_000) <= 0.03 * 26_000
    assert set(h["building_key"]) <= set(demo.buildings["building_key"])
    flags = {f for fl in h["care_flags"] for f in fl}
    assert flags == {"elderly_alone", "disabled", "low_income", "left_behind_child"}
    assert h["head_name"].notna().all()
    # Doors are shared: several households behind one stair-unit entrance.
    assert h.geometry.to_wkb().nunique() < len(h) / 2
    # Address parts agree with the building.
    b = demo.buildings.set_index("building_key")
    assert (
        h["compound"].fillna("") == b.loc[h["building_key"], "compound"].fillna("").values
    ).all()
    assert (h["street_key"].values == b.loc[h["building_key"], "street_key"].values).all()
    names = demo.streets.set_index("street_key")["name"]
    assert (h["street_name"].values == names.loc[h["street_key"]].values).all()
    compound = h["compound"].notna()
    assert h.loc[compound, "unit"].str.fullmatch(r"\d单元").all()
    assert h.loc[~compound, "unit"].isna().all()


def test_household_doors_are_outside_buildings_and_streets(demo: DemoData, utm: Any) -> None:
    doors = metric(demo.households, utm)
    tree = shapely.STRtree(metric(demo.buildings, utm))
    assert len(tree.query(doors, predicate="intersects")[0]) == 0
    own = metric(demo.buildings, utm)[demo.households["building_key"].to_numpy() - 1]
    assert (shapely.distance(doors, own) < 1.0).all()  # at the building's entrance


# --- catalogue --------------------------------------------------------------------------------


def test_catalogue_is_the_shipped_csv(demo: DemoData) -> None:
    deps = pd.DataFrame(read_default("departments"))
    cats = pd.DataFrame(read_default("categories"))
    assert list(demo.departments["code"]) == list(deps["code"])
    assert list(demo.categories["code"]) == list(cats["code"])
    assert list(demo.categories.columns) == [
        "code",
        "name",
        "name_en",
        "programme",
        "class",
        "subclass",
        "sla_hours",
        "department_code",
    ]
    assert list(demo.departments.columns) == ["code", "name", "name_en"]
    assert len(demo.departments) >= 8
    assert 15 <= len(demo.categories) <= 25
    c = demo.categories
    assert set(c["programme"]) == {"convenience", "integration", "care", "mediation", "safety"}
    assert set(c["class"]) == {"component", "event"}
    assert set(c["department_code"]) <= set(demo.departments["code"])
    assert (c["sla_hours"] > 0).all()
    assert c["code"].is_unique and demo.departments["code"].is_unique


# --- party organisation -------------------------------------------------------------------------


def test_branches_and_groups(demo: DemoData) -> None:
    br = demo.branches
    assert len(br) == 6
    on_grids = br[br["grid_codes"].map(len) > 0]
    assert len(on_grids) == 4
    codes = [c for cs in on_grids["grid_codes"] for c in cs]
    assert sorted(codes) == sorted(demo.grids["code"])  # 4 branches cover the 9 grids once
    assert (br["grid_codes"].map(len) == 0).sum() == 2
    g = demo.groups
    assert 20 <= len(g) <= 60
    assert set(g["branch_key"]) == set(br["branch_key"])
    assert set(g["building_key"]) <= set(demo.buildings["building_key"])
    assert g["name"].is_unique and g["building_key"].is_unique


def test_resident_units(demo: DemoData) -> None:
    u = demo.resident_units
    assert len(u) == 18 and u["name"].is_unique
    assert list(u["unit_key"]) == list(range(1, 19))


def test_members(demo: DemoData) -> None:
    m = demo.members
    assert len(m) == 696
    assert m["kind"].value_counts().to_dict() == MEMBERS_BY_KIND
    assert MEMBERS_BY_KIND["resident"] == 138 and MEMBERS_BY_KIND["duty_post"] == 368
    assert sum(MEMBERS_BY_KIND.values()) - 138 == 558
    assert m["name"].is_unique
    duty = m[m["kind"] == "duty_post"]
    assert set(duty["home_unit"]) == set(demo.resident_units["name"])  # spread over all 18
    assert m.loc[m["kind"] != "duty_post", "home_unit"].isna().all()
    residents = m[m["kind"] == "resident"]
    assert residents["branch_key"].notna().all()
    assert set(residents["branch_key"]) <= set(demo.branches["branch_key"])
    assert set(m["group_key"].dropna()) <= set(demo.groups["group_key"])
    assert m["age"].between(18, 100).all()


def test_one_resident_lead_per_grid(demo: DemoData, utm: Any) -> None:
    m = demo.members
    leads = m[m["lead_grid_code"].notna()]
    assert sorted(leads["lead_grid_code"]) == sorted(demo.grids["code"])
    assert (leads["kind"] == "resident").all()
    # The lead's own field lies in the grid they lead, and they belong to its branch.
    fields = demo.fields.set_index("member_key")
    grids = demo.grids.set_index("code")
    branch_of = {
        c: k
        for k, cs in zip(demo.branches["branch_key"], demo.branches["grid_codes"], strict=True)
        for c in cs
    }
    for r in leads.itertuples():
        rep = fields.loc[r.member_key, "geometry"].representative_point()
        assert grids.loc[r.lead_grid_code, "geometry"].covers(rep)
        assert branch_of[r.lead_grid_code] == r.branch_key


# --- responsibility fields ----------------------------------------------------------------------


def test_one_field_per_resident_member(demo: DemoData) -> None:
    f = demo.fields
    residents = demo.members.loc[demo.members["kind"] == "resident", "member_key"]
    assert len(f) == 138
    assert sorted(f["member_key"]) == sorted(residents)
    assert list(f["field_key"]) == list(range(1, 139))
    assert (f.geometry.geom_type == "Polygon").all() and f.geometry.is_valid.all()
    assert set(f["street_key"].dropna()) <= set(demo.streets["street_key"])


def test_fields_inside_one_grid_and_disjoint(demo: DemoData, utm: Any) -> None:
    fields, grids = metric(demo.fields, utm), metric(demo.grids, utm)
    for geom in fields:
        shares = np.array([geom.intersection(g).area for g in grids]) / geom.area
        assert np.sort(shares)[-1] > 1 - 1e-9 and np.sort(shares)[-2] < 1e-9
    tree = shapely.STRtree(fields)
    a, b = tree.query(fields, predicate="intersects")
    for i, j in zip(a, b, strict=True):
        if i < j:
            assert fields[i].intersection(fields[j]).area < 1e-3  # at most a shared edge


def test_fields_cover_most_households(demo: DemoData) -> None:
    where = field_of_households(demo)
    uncovered = (where < 0).mean()
    assert 0.01 <= uncovered <= 0.08  # most, not all: maps show the gaps
    counts = np.bincount(where[where >= 0], minlength=len(demo.fields))
    retiree = retiree_field(demo)
    others = np.delete(counts, retiree)
    assert others.min() >= 40 and others.max() <= 160
    assert ((others >= 60) & (others <= 120)).mean() >= 0.85


def retiree_field(demo: DemoData) -> int:
    m = demo.members.set_index("member_key")
    ages = m.loc[demo.fields["member_key"], "age"].to_numpy()
    (pos,) = np.flatnonzero(ages == 61)
    return int(pos)


def test_retiree_field_follows_one_street_of_126_households(demo: DemoData) -> None:
    m = demo.members
    assert (m.loc[m["kind"] == "resident", "age"] == 61).sum() == 1
    pos = retiree_field(demo)  # exactly one field belongs to a 61-year-old (raises otherwise)
    member = m.set_index("member_key").loc[demo.fields["member_key"].iat[pos]]
    assert member["kind"] == "resident"
    assert (
        member["branch_key"]
        == demo.branches.loc[demo.branches["name"].str.contains("离退休"), "branch_key"].iat[0]
    )
    where = field_of_households(demo)
    assert (where == pos).sum() == 126
    street_key = demo.fields["street_key"].iat[pos]
    street = demo.streets.set_index("street_key").loc[street_key]
    assert street["kind"] in ("路", "街")
    # The 126 households are that street's households, all of them.
    on_street = demo.households["street_key"].to_numpy() == street_key
    assert on_street.sum() == 126 and (where[on_street] == pos).all()


# --- requests -----------------------------------------------------------------------------------


def test_article_period_86_received_84_resolved(demo: DemoData) -> None:
    r = demo.requests
    day = r["received_at"].dt.date
    period = r[(day >= ARTICLE_START) & (day <= ARTICLE_END)]
    assert len(period) == 86
    assert period["status"].isin(RESOLVED).sum() == 84
    assert round(84 / 86, 3) == 0.977
    others = period[~period["status"].isin(RESOLVED)]
    assert set(others["status"]) <= {"escalated", "rejected"} | OPEN
    assert period["escalated_to"].notna().sum() >= 2  # some went to departments
    assert (r["received_at"].dt.date < ARTICLE_START).sum() == 0


def test_recent_year(demo: DemoData) -> None:
    rec = recent(demo)
    assert 1500 <= len(rec) <= 3000
    start = TODAY - dt.timedelta(days=364)
    assert (rec["received_at"].dt.date >= start).all()
    assert (rec["received_at"].dt.date <= TODAY).all()
    # Nothing between the article's period and the recent year.
    assert len(rec) + 86 == len(demo.requests)
    open_share = rec["status"].isin(OPEN).mean()
    assert 0.10 <= open_share <= 0.15
    sla = demo.categories.set_index("code")["sla_hours"]
    due = rec["dispatched_at"] + pd.to_timedelta(rec["category_code"].map(sla), unit="h")
    late_open = rec["status"].isin(OPEN) & (due < END_OF_TODAY)
    late_done = rec["resolved_at"] > due
    assert late_open.sum() >= 20 and late_done.sum() >= 20
    assert set(rec["source"]) == {"hotline", "app", "member", "walk_in", "open311"}


def test_request_fields(demo: DemoData) -> None:
    r = demo.requests
    assert list(r["request_key"]) == list(range(1, len(r) + 1))
    assert set(r["category_code"]) <= set(demo.categories["code"])
    programme = demo.categories.set_index("code")["programme"]
    assert (r["programme"].values == programme.loc[r["category_code"]].values).all()
    assert set(r["status"]) <= RESOLVED | OPEN | {"rejected"}
    assert set(r["escalated_to"].dropna()) <= set(demo.departments["code"])
    assert set(r["satisfaction"].dropna()) <= {"satisfied", "unsatisfied"}
    assert r["description"].str.len().between(4, 40).all()
    # Household requests sit at that household's door.
    hh = demo.households.set_index("address_id")
    with_addr = r[r["address_id"].notna()]
    assert len(with_addr) > 100
    assert set(with_addr["address_id"]) <= set(hh.index)
    doors = hh.loc[with_addr["address_id"], "geometry"].values
    assert shapely.equals(np.asarray(with_addr.geometry.values), np.asarray(doors)).all()


def test_timestamps_ordered_and_consistent_with_status(demo: DemoData) -> None:
    r = demo.requests
    for c in TIMES:
        assert str(r[c].dt.tz) == "Asia/Shanghai"
        assert (r[c].dropna() < END_OF_TODAY).all()
    assert r["received_at"].notna().all()
    for a, b in itertools.pairwise(TIMES):
        both = r[a].notna() & r[b].notna()
        assert (r.loc[both, a] <= r.loc[both, b]).all()
        assert not (r[a].isna() & r[b].notna()).any()  # no step skipped
    s = r["status"]
    assert r.loc[s == "closed", "closed_at"].notna().all()
    assert r.loc[s == "resolved", "closed_at"].isna().all()
    assert r.loc[s.isin(OPEN), "resolved_at"].isna().all()
    assert r.loc[s == "rejected", "registered_at"].isna().all()
    assert r.loc[s == "escalated", "escalated_to"].notna().all()
    assert r.loc[s.isin(RESOLVED), "resolved_at"].notna().all()
    assert r.loc[r["satisfaction"].notna(), "status"].eq("closed").all()


def test_events_consistent_with_requests(demo: DemoData) -> None:
    ev = demo.request_events
    r = demo.requests.set_index("request_key")
    assert set(ev["request_key"]) == set(r.index)
    assert str(ev["at"].dt.tz) == "Asia/Shanghai"
    column = {
        "received": "received_at",
        "registered": "registered_at",
        "dispatched": "dispatched_at",
        "resolved": "resolved_at",
        "closed": "closed_at",
    }
    for key, rows in ev.groupby("request_key", sort=False):
        req = r.loc[key]
        assert rows["from_status"].iat[0] is None and rows["to_status"].iat[0] == "received"
        assert (rows["from_status"].iloc[1:].values == rows["to_status"].iloc[:-1].values).all()
        assert rows["at"].is_monotonic_increasing
        assert rows["to_status"].iat[-1] == req["status"]
        for status, col in column.items():
            hit = rows.loc[rows["to_status"] == status, "at"]
            if pd.isna(req[col]):
                assert hit.empty
            else:
                assert list(hit) == [req[col]]
        assert ("escalated" in set(rows["to_status"])) == pd.notna(req["escalated_to"])
    assert (ev["at"] < END_OF_TODAY).all()
    assert ev["actor"].notna().all()


def gi_star(counts: np.ndarray) -> np.ndarray:
    """Getis-Ord Gi* z-scores on a 2-D lattice, queen neighbours plus the cell itself."""
    x = counts.astype(float)
    n = x.size
    mean, s = x.mean(), x.std()
    pad = np.pad(x, 1)
    ones = np.pad(np.ones_like(x), 1)
    local = sum(
        pad[1 + i : 1 + i + x.shape[0], 1 + j : 1 + j + x.shape[1]]
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
    )
    w = sum(
        ones[1 + i : 1 + i + x.shape[0], 1 + j : 1 + j + x.shape[1]]
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
    )
    denom = s * np.sqrt((n * w - w**2) / (n - 1))
    return (local - mean * w) / denom


def test_open_requests_form_hot_spots(demo: DemoData, utm: Any) -> None:
    rec = recent(demo)
    pts = metric(rec[rec["status"].isin(OPEN)], utm)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    minx, miny, maxx, maxy = (
        gpd.GeoSeries([demo.community["boundary"]], crs=4326).to_crs(utm).total_bounds
    )
    cell = 150.0
    counts, _, _ = np.histogram2d(
        x, y, bins=[np.arange(minx, maxx + cell, cell), np.arange(miny, maxy + cell, cell)]
    )
    z = gi_star(counts)
    hot = z > 2.58  # p < 0.01, two-sided
    # Distinct hot spots: connected groups of hot cells (8-neighbourhood), flood-filled.
    seen = np.zeros_like(hot)
    groups = 0
    for start in zip(*np.nonzero(hot), strict=True):
        if seen[start]:
            continue
        groups += 1
        stack = [start]
        while stack:
            i, j = stack.pop()
            if not (0 <= i < hot.shape[0] and 0 <= j < hot.shape[1]) or seen[i, j] or not hot[i, j]:
                continue
            seen[i, j] = True
            stack += [(i + a, j + b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    assert groups >= 3


# --- visits -------------------------------------------------------------------------------------


def test_visits_in_own_field_and_uneven(demo: DemoData) -> None:
    v = demo.visits
    assert len(v) > 1000
    assert set(v["kind"]) == {"routine", "care", "follow_up"}
    residents = set(demo.members.loc[demo.members["kind"] == "resident", "member_key"])
    assert set(v["member_key"]) <= residents
    where = field_of_households(demo)
    field_key = pd.Series(
        demo.fields["field_key"].to_numpy()[where], index=demo.households["address_id"]
    )
    field_key[where < 0] = -1
    holder = demo.fields.set_index("field_key")["member_key"]
    own = holder.loc[field_key.loc[v["address_id"]].to_numpy()].to_numpy()
    assert (own == v["member_key"].to_numpy()).all()
    start = pd.Timestamp(TODAY - dt.timedelta(days=364), tz="Asia/Shanghai")
    assert (v["visited_at"] >= start).all() and (v["visited_at"] < END_OF_TODAY).all()
    # Coverage = households visited ÷ households of the field: uneven across members.
    size = np.bincount(where[where >= 0], minlength=len(demo.fields))
    visited = v.groupby("member_key")["address_id"].nunique()
    coverage = visited.reindex(holder.to_numpy(), fill_value=0).to_numpy() / size
    assert coverage.max() == 1.0 and coverage.min() < 0.3
    assert (coverage > 0.8).sum() >= 5 and (coverage < 0.4).sum() >= 5
    assert coverage[retiree_field(demo)] == 1.0


# --- privacy, determinism, speed -------------------------------------------------------------

CODE_COLUMNS = {"address_id", "code", "lead_grid_code", "grid_codes"}
PHONE_OR_ID = re.compile(r"\d{7,}|1[3-9]\d[ -]?\d{4}[ -]?\d{4}|0\d{2,3}-\d{7,8}")


def test_no_phone_or_id_numbers_anywhere(demo: DemoData) -> None:
    frames = {k: v for k, v in vars(demo).items() if isinstance(v, pd.DataFrame)}
    checked = 0
    for name, frame in frames.items():
        for col in frame.columns:
            if col in CODE_COLUMNS:
                continue
            for value in frame[col]:
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, str):
                        checked += 1
                        assert not PHONE_OR_ID.search(item), (name, col, item)
        assert not any(
            "phone" in c.lower() or c.lower() in {"id_number", "idcard"} for c in frame.columns
        )
    assert checked > 50_000
    assert not PHONE_OR_ID.search(demo.community["note"])
    # Codes are codes: address ids carry only the community code and short numbers.
    assert (
        demo.households["address_id"].str.replace(COMMUNITY_CODE, "").str.contains(r"\d{5,}").sum()
        == 0
    )


def frames_equal(a: DemoData, b: DemoData, names: list[str]) -> None:
    for name in names:
        fa, fb = getattr(a, name), getattr(b, name)
        if isinstance(fa, gpd.GeoDataFrame):
            assert (fa.geometry.to_wkb() == fb.geometry.to_wkb()).all(), name
            fa, fb = (
                pd.DataFrame(fa.drop(columns="geometry")),
                pd.DataFrame(fb.drop(columns="geometry")),
            )
        pd.testing.assert_frame_equal(fa, fb, obj=name)


ALL_FRAMES = [
    "streets",
    "grids",
    "buildings",
    "households",
    "departments",
    "categories",
    "branches",
    "groups",
    "resident_units",
    "members",
    "fields",
    "requests",
    "request_events",
    "visits",
]
COMMUNITY_FRAMES = ["streets", "grids", "buildings", "households", "branches", "groups"]
COMMUNITY_FRAMES += ["resident_units", "members", "fields"]


def test_deterministic(demo: DemoData) -> None:
    again = generate_demo(today=TODAY)
    frames_equal(demo, again, ALL_FRAMES)
    assert shapely.equals_exact(demo.community["boundary"], again.community["boundary"], 0.0)
    assert {k: v for k, v in demo.community.items() if k != "boundary"} == {
        k: v for k, v in again.community.items() if k != "boundary"
    }


def test_community_does_not_depend_on_today(demo: DemoData) -> None:
    later = generate_demo(today=TODAY + dt.timedelta(days=100))
    frames_equal(demo, later, COMMUNITY_FRAMES)
    day = later.requests["received_at"].dt.date
    # Same article period, a recent year shifted with today.
    cols = ["category_code", "description", "source", "status", "address_id"]
    pd.testing.assert_frame_equal(demo.requests.iloc[:86][cols], later.requests.iloc[:86][cols])
    assert day.max() <= TODAY + dt.timedelta(days=100)


def test_other_seed_other_community_same_figures() -> None:
    other = generate_demo(seed=7, today=TODAY)
    assert len(other.members) == 696 and len(other.fields) == 138 and len(other.grids) == 9
    assert other.households["size"].sum() == pytest.approx(36_000, rel=0.03)
    where = field_of_households(other)
    assert (where == retiree_field(other)).sum() == 126
    r = other.requests
    period = r[r["received_at"].dt.date <= ARTICLE_END]
    assert len(period) == 86 and period["status"].isin(RESOLVED).sum() == 84
    base = generate_demo(today=TODAY)
    assert not (other.households.geometry.to_wkb() == base.households.geometry.to_wkb()).all()


def test_today_default_and_validation() -> None:
    data = generate_demo()  # today in Asia/Shanghai
    now = pd.Timestamp.now(tz="Asia/Shanghai").normalize() + pd.Timedelta(days=1)
    assert (data.requests["received_at"] < now).all()
    with pytest.raises(InvalidInput):
        generate_demo(today=dt.date(2018, 12, 31))  # the recent year would overlap 2017–18


def test_runs_in_a_few_seconds(run: tuple[DemoData, float]) -> None:
    assert run[1] < 10.0
