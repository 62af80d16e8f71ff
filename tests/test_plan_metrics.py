"""Plan metrics (geogrid.planning.metrics) on hand-made plans and on the demo community.

The hand-made plan is a 2 × 2 tiling of ~500 m squares near 114.4E 23.1N, drawn in metres
and mapped to degrees linearly (see tests/test_plan_validate.py):

    001 | 002
    ----+----
    003 | 004
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from geogrid.demo.generate import DemoData
from geogrid.errors import InvalidInput
from geogrid.planning.metrics import GRID_COLUMNS, measure_plan
from tests.test_plan_validate import CODES, SQUARES, deg, rect

CENTRES = [(250, 750), (750, 750), (250, 250), (750, 250)]


def grids(**extra: object) -> gpd.GeoDataFrame:
    data = {"code": CODES, "name": [f"Grid {i}" for i in range(1, 5)], **extra}
    return gpd.GeoDataFrame(data, geometry=SQUARES, crs="EPSG:4326")


def points(counts: list[int], **columns: object) -> gpd.GeoDataFrame:
    """``counts[i]`` points at the centre of grid i."""
    pts = [Point(deg(*CENTRES[i])) for i, k in enumerate(counts) for _ in range(k)]
    return gpd.GeoDataFrame(columns or None, geometry=pts, crs="EPSG:4326")


def by_code(frame: pd.DataFrame, column: str) -> dict[str, object]:
    return dict(zip(frame["code"], frame[column], strict=True))


def test_households_are_counted_against_the_target_worst_first() -> None:
    homes = points([100, 350, 600, 0])
    metrics = measure_plan(grids(), households=homes, target=(300, 500))
    table = metrics.grids
    assert list(table.columns) == list(GRID_COLUMNS)
    # 004 lacks 300, 001 lacks 200, 003 has 100 too many, 002 is in range.
    assert list(table["code"]) == [CODES[3], CODES[0], CODES[2], CODES[1]]
    assert list(table["target_gap"]) == [-300, -200, 100, 0]
    assert list(table["in_target"]) == [False, False, False, True]
    assert by_code(table, "households") == dict(zip(CODES, [100, 350, 600, 0], strict=True))
    mean = 1050 / 4
    assert by_code(table, "deviation")[CODES[2]] == pytest.approx(600 / mean - 1)
    plan = metrics.plan
    assert plan["households"] == 1050 and plan["households_outside"] == 0
    assert plan["mean_households"] == pytest.approx(mean)
    assert plan["median_households"] == pytest.approx(225)
    assert (plan["min_households"], plan["max_households"]) == (0, 600)
    assert plan["std_households"] == pytest.approx(np.std([100, 350, 600, 0]))
    assert plan["cv_households"] == pytest.approx(np.std([100, 350, 600, 0]) / mean)
    assert (plan["in_target"], plan["in_target_share"]) == (1, 0.25)
    assert plan["max_abs_deviation"] == pytest.approx(600 / mean - 1)
    assert metrics.target == (300, 500)


def test_ties_in_the_gap_are_broken_by_deviation_then_compactness_then_code() -> None:
    metrics = measure_plan(grids(), households=points([400, 300, 500, 450]))
    # All in 300..500; mean 412.5: |deviation| 0.03, 0.27, 0.21, 0.09.
    assert list(metrics.grids["code"]) == [CODES[1], CODES[2], CODES[3], CODES[0]]
    # Equal counts: the long grid (less compact) comes first, then by code.
    long = gpd.GeoDataFrame(
        {"code": ["B", "A", "C"]},
        geometry=[rect(0, 0, 400, 400), rect(400, 0, 1200, 200), rect(0, 400, 400, 800)],
        crs="EPSG:4326",
    )
    homes = gpd.GeoDataFrame(
        geometry=[Point(deg(200, 200))] * 350
        + [Point(deg(800, 100))] * 350
        + [Point(deg(200, 600))] * 350,
        crs="EPSG:4326",
    )
    assert list(measure_plan(long, households=homes).grids["code"]) == ["A", "B", "C"]


def test_residents_members_fields_and_open_requests() -> None:
    homes = points([3, 2, 1, 0])
    homes.loc[len(homes), "geometry"] = Point(deg(1500, 1500))  # outside every grid
    homes["size"] = [4, 4, 1, 2, 3, 5, 9]
    fields = gpd.GeoDataFrame(
        {"member_id": pd.array([1, 2, 1, None, 7], dtype="Int64")},
        geometry=[
            rect(0, 500, 200, 700),
            rect(200, 500, 500, 700),
            rect(0, 700, 500, 1000),
            rect(500, 500, 1000, 1000),
            rect(1200, 0, 1300, 100),  # outside every grid
        ],
        crs="EPSG:4326",
    )
    leads = pd.array([3, None, 1, None], dtype="Int64")
    requests = points([0, 2, 0, 1])
    requests.loc[len(requests), "geometry"] = Point(deg(-50, 0))  # outside
    metrics = measure_plan(
        grids(lead_member_id=leads), households=homes, fields=fields, open_requests=requests
    )
    table = metrics.grids.set_index("code")
    assert table.loc[CODES[0], "residents"] == 4 + 4 + 1
    assert table.loc[CODES[1], "residents"] == 2 + 3
    assert table.loc[CODES[2], "residents"] == 5
    assert table.loc[CODES[0], "members"] == 3  # fields of 1 and 2, lead 3
    assert table.loc[CODES[1], "members"] == 0  # one field with nobody on it
    assert table.loc[CODES[2], "members"] == 1  # lead 1 (also in 001)
    assert table.loc[CODES[0], "fields"] == 3 and table.loc[CODES[1], "fields"] == 1
    assert table.loc[CODES[0], "households_per_member"] == pytest.approx(1)
    assert math.isnan(table.loc[CODES[1], "households_per_member"])
    assert list(table.loc[CODES, "open_requests"]) == [0, 2, 0, 1]
    plan = metrics.plan
    assert (plan["households"], plan["households_outside"], plan["residents"]) == (6, 1, 19)
    assert plan["members"] == 3  # 1, 2 and 3; 7's field lies outside the plan
    assert plan["households_per_member"] == pytest.approx(6 / 3)
    assert (plan["fields"], plan["open_requests"]) == (4, 3)
    assert table.loc[CODES[0], "name"] == "Grid 1"


def test_a_household_on_a_shared_edge_goes_to_the_lowest_code() -> None:
    edge = gpd.GeoDataFrame(geometry=[Point(deg(500, 750))], crs="EPSG:4326")
    table = measure_plan(grids(), households=edge).grids
    assert by_code(table, "households")[CODES[0]] == 1
    assert table["households"].sum() == 1


def test_compactness_of_squares_and_of_a_long_rectangle() -> None:
    table = measure_plan(grids()).grids
    assert table["polsby_popper"].to_numpy() == pytest.approx(math.pi / 4, rel=1e-3)
    assert table["reock"].to_numpy() == pytest.approx(2 / math.pi, rel=1e-3)
    assert table["area_km2"].to_numpy() == pytest.approx(0.25, rel=0.01)
    strip = gpd.GeoDataFrame({"code": ["S"]}, geometry=[rect(0, 0, 1000, 250)], crs=4326)
    row = measure_plan(strip).grids.iloc[0]
    # A 4:1 rectangle (4 × 1): 4π·4/10², and 4 / (π·(4² + 1²)/4) for the circle on its
    # diagonal.
    assert row["polsby_popper"] == pytest.approx(4 * math.pi * 4 / 100, rel=1e-3)
    assert row["reock"] == pytest.approx(16 / (math.pi * 17), rel=1e-3)
    plan = measure_plan(grids()).plan
    assert plan["min_polsby_popper"] == pytest.approx(math.pi / 4, rel=1e-3)
    assert plan["mean_reock"] == pytest.approx(2 / math.pi, rel=1e-3)
    assert plan["area_km2"] == pytest.approx(1.0, rel=0.01)


def test_to_dict_is_json_ready_with_none_for_undefined_figures() -> None:
    metrics = measure_plan(grids(lead_member_id=pd.array([5, None, None, None], dtype="Int64")))
    data = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert data["target"] == [300, 500]
    assert len(data["grids"]) == 4 and set(data["grids"][0]) == set(GRID_COLUMNS)
    per_member = {g["code"]: g["households_per_member"] for g in data["grids"]}
    assert per_member == {CODES[0]: 0.0, CODES[1]: None, CODES[2]: None, CODES[3]: None}
    assert all(g["deviation"] is None for g in data["grids"])  # mean 0
    assert data["plan"]["households_per_member"] == 0.0
    assert data["plan"]["cv_households"] is None
    assert type(data["grids"][0]["in_target"]) is bool


def test_a_wrong_target_is_refused() -> None:
    with pytest.raises(InvalidInput):
        measure_plan(grids(), target=(500, 300))


def test_demo_counts_match_an_independent_spatial_join(demo_data: DemoData) -> None:
    homes = demo_data.households
    fields = demo_data.fields.rename(columns={"member_key": "member_id"})
    metrics = measure_plan(demo_data.grids, households=homes, fields=fields)
    table = metrics.grids.set_index("code")
    assert table["households"].sum() == 12_500 == metrics.plan["households"]
    assert metrics.plan["households_outside"] == 0
    joined = gpd.sjoin(homes, demo_data.grids[["code", "geometry"]], predicate="within")
    expected = joined.groupby("code").size()
    assert table["households"].to_dict() == expected.to_dict()
    assert table["residents"].sum() == homes["size"].sum() == metrics.plan["residents"]
    assert table["residents"].to_dict() == joined.groupby("code")["size"].sum().to_dict()
    assert metrics.plan["fields"] == len(fields) and metrics.plan["grids"] == 9
    assert metrics.plan["members"] == fields["member_id"].nunique()
