"""propose_plan: an automatic balanced redraw (pure; no database).

A hand-drawn 4 × 4 town whose right answer is obvious, then the demo community, then every
infeasible case with the constraint its message must name. Responsibility fields are measured
as the product measures them: :func:`geogrid.planning.diff.diff_plans`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from geogrid.demo.generate import DemoData
from geogrid.errors import InfeasiblePlan, InvalidInput
from geogrid.planning.common import local_crs, number_grids, to_local
from geogrid.planning.diff import diff_plans
from geogrid.planning.propose import GRIDS_TOLERANCE, Proposal, propose_plan
from geogrid.planning.validate import validate_plan

CODE = "441302011005"
#: ReCom steps in the demo tests: enough to move the plan, few enough to keep the file fast.
STEPS = 150
UTM = "EPSG:32650"  # Huizhou's UTM zone: the hand-drawn towns are drawn in metres there
X0, Y0 = 500_000.0, 2_560_000.0


# --------------------------------------------------------------------------------------------
# A hand-drawn town: 4 × 4 blocks of 100 m, one 20 m building in each
# --------------------------------------------------------------------------------------------


def _to_wgs84(geoms: list[Any]) -> list[Any]:
    return list(gpd.GeoSeries(geoms, crs=UTM).to_crs("EPSG:4326").values)


def _town(per_building: int = 10, *, loose_block: int | None = None) -> dict[str, Any]:
    """Community, streets, buildings, households and a 2-grid current plan (west | east).

    Block (i, j) is column i (west→east), row j (south→north); its building has id
    ``1 + i + 4j`` and ``per_building`` households whose doors are 0.5 m south of it. The
    households of ``loose_block`` have no building (their own units).
    """
    community = box(X0, Y0, X0 + 400, Y0 + 400)
    streets = [LineString([(X0 + d, Y0), (X0 + d, Y0 + 400)]) for d in (100, 200, 300)]
    streets += [LineString([(X0, Y0 + d), (X0 + 400, Y0 + d)]) for d in (100, 200, 300)]
    buildings, households = [], []
    for j in range(4):
        for i in range(4):
            bid = 1 + i + 4 * j
            cx, cy = X0 + 100 * i + 50, Y0 + 100 * j + 50
            buildings.append({"id": bid, "geometry": box(cx - 10, cy - 10, cx + 10, cy + 10)})
            for h in range(per_building):
                door = shapely.Point(cx - 9 + 2 * (h % 10), cy - 10.5)
                households.append(
                    {"building_id": None if bid == loose_block else bid, "geometry": door}
                )
    west, east = box(X0, Y0, X0 + 200, Y0 + 400), box(X0 + 200, Y0, X0 + 400, Y0 + 400)
    return {
        "community": _to_wgs84([community])[0],
        "streets": gpd.GeoDataFrame(geometry=_to_wgs84(streets), crs="EPSG:4326"),
        "buildings": gpd.GeoDataFrame(
            {"id": [b["id"] for b in buildings]},
            geometry=_to_wgs84([b["geometry"] for b in buildings]),
            crs="EPSG:4326",
        ),
        "households": gpd.GeoDataFrame(
            {"building_id": pd_int([h["building_id"] for h in households])},
            geometry=_to_wgs84([h["geometry"] for h in households]),
            crs="EPSG:4326",
        ),
        "current": gpd.GeoDataFrame(
            {"code": [f"{CODE}001", f"{CODE}002"]},
            geometry=_to_wgs84([west, east]),
            crs="EPSG:4326",
        ),
    }


def pd_int(values: list[int | None]) -> Any:
    """A nullable integer column, as the database gives ``building_id``."""
    import pandas as pd

    return pd.array(values, dtype="Int64")


def _areas_m2(frame: gpd.GeoDataFrame, crs: Any) -> np.ndarray:
    return np.asarray(shapely.area(np.asarray(to_local(frame, crs).geometry.values)))


def _community_area(community: Any, crs: Any) -> float:
    return float(_areas_m2(gpd.GeoDataFrame(geometry=[community], crs="EPSG:4326"), crs)[0])


def test_town_splits_along_streets_into_equal_nested_grids() -> None:
    town = _town()
    p = propose_plan(
        town["community"],
        town["buildings"],
        town["households"],
        community_code=CODE,
        community_name="样板社区",
        streets=town["streets"],
        current=town["current"],
        target=(30, 50),
        seed=1,
        steps=30,
    )
    # 160 households at 30–50 a grid: K = round(160 / 40) = 4; each half of the current plan
    # (80 households) holds exactly 2 of them, so every household stays in its current grid.
    assert p.k == 4 and len(p.grids) == 4
    assert p.households == 160
    assert p.grids["households"].tolist() == [40, 40, 40, 40]
    assert p.kept_households == 160
    assert p.report["start"] == "nested"
    # One building per block: the cells are the blocks, so every grid is 4 whole blocks whose
    # boundaries run along the streets.
    # (UTM's 0.9996 scale makes a "100 m" block a little larger in true metres.)
    crs = local_crs(town["community"])
    block = _community_area(town["community"], crs) / 16
    assert _areas_m2(p.grids, crs) == pytest.approx([4 * block] * 4, abs=1.0)
    assert p.grids["name"].tolist() == [f"样板社区第{n}网格" for n in range(1, 5)]
    assert p.grids["code"].tolist() == [f"{CODE}{n:03d}" for n in range(1, 5)]
    assert p.target == (30, 50)


def _west_field() -> gpd.GeoDataFrame:
    """One field over blocks (0, 1) and (0, 2): 20 households across the street at y = 200."""
    return gpd.GeoDataFrame(
        {"id": [7], "name": ["样板街责任田"], "member_id": [21]},
        geometry=_to_wgs84([box(X0, Y0 + 100, X0 + 100, Y0 + 300)]),
        crs="EPSG:4326",
    )


def test_town_keeps_a_field_that_straddles_the_obvious_split() -> None:
    town = _town()
    field = _west_field()
    args = (town["community"], town["buildings"], town["households"])
    kwargs: dict[str, Any] = {
        "community_code": CODE,
        "streets": town["streets"],
        "current": town["current"],
        "target": (30, 50),
        "seed": 1,
        "steps": 30,
    }
    # Without fields: each half of the current plan splits into two 2 × 2 squares, along the
    # street at y = 200, which cuts the field in two.
    plain = propose_plan(*args, **kwargs)
    cut = diff_plans(town["current"], plain.grids, households=town["households"], fields=field)
    assert cut.counts["fields_cut"] == 1 and cut.counts["households_cut_from_fields"] == 10
    assert plain.report["fields"] == 0 and plain.report["fields_cut_after"] is None

    # With it: the west half splits 50 | 30 around the field instead (still nested).
    p = propose_plan(*args, **kwargs, fields=field)
    d = diff_plans(town["current"], p.grids, households=town["households"], fields=field)
    assert d.counts["fields_cut"] == 0 and d.counts["households_cut_from_fields"] == 0
    crs = local_crs(town["community"])
    inside = shapely.area(
        shapely.intersection(
            np.asarray(to_local(p.grids, crs).geometry.values),
            to_local(field, crs).geometry.iloc[0],
        )
    )
    assert np.count_nonzero(inside > 1.0) == 1  # the whole field lies in one grid (± 1 m²)
    assert p.grids["households"].between(30, 50).all() and p.grids["households"].sum() == 160
    assert p.kept_households == 160
    r = p.report
    assert (r["fields"], r["households_in_fields"]) == (1, 20)
    assert (r["fields_cut_after"], r["households_cut_from_fields_after"]) == (0, 0)
    assert r["fields_still_cut"] == []
    assert r["surcharge"]["field"] > 0 and r["field_weight"] > 0
    assert "responsibility fields" in p.method

    # A stored assignment (``field_id``, as the database gives it) counts like the door points.
    stored = town["households"].assign(
        field_id=pd_int([7 if b in (5, 9) else None for b in town["households"]["building_id"]])
    )
    again = propose_plan(town["community"], town["buildings"], stored, **kwargs, fields=field)
    assert again.report["households_in_fields"] == 20
    assert [g.wkb for g in again.grids.geometry] == [g.wkb for g in p.grids.geometry]


def test_fields_need_an_id() -> None:
    town = _town()
    with pytest.raises(InvalidInput, match="'id'") as info:
        propose_plan(
            town["community"],
            town["buildings"],
            town["households"],
            community_code=CODE,
            target=(30, 50),
            fields=_west_field().drop(columns="id"),
        )
    assert info.value.field == "fields"


def test_town_households_without_a_building_are_units_of_their_own() -> None:
    town = _town(loose_block=16)
    p = propose_plan(
        town["community"],
        town["buildings"],
        town["households"],
        community_code=CODE,
        streets=town["streets"],
        target=(30, 50),
        steps=20,
    )
    # Ten doors without a building: ten units of one household, which may go separate ways.
    assert p.report["point_units"] == 10
    assert p.grids["households"].between(30, 50).all() and p.grids["households"].sum() == 160
    assert p.grids["name"].isna().all()
    # No current plan: nothing can be kept, and the report says why.
    assert p.kept_households == 0
    assert any("no current plan" in w for w in p.report["warnings"])


def test_town_grid_count_balances_within_tolerance() -> None:
    town = _town()
    p = propose_plan(
        town["community"],
        town["buildings"],
        town["households"],
        community_code=CODE,
        streets=town["streets"],
        current=town["current"],
        grids=2,
        steps=20,
    )
    assert p.k == 2 and p.target is None
    assert p.report["tolerance"] == GRIDS_TOLERANCE
    assert (p.report["low"], p.report["high"]) == (68, 92)  # 80 ± 15 %
    assert p.grids["households"].tolist() == [80, 80]


def test_town_without_streets_still_tiles() -> None:
    town = _town()
    p = propose_plan(
        town["community"],
        town["buildings"],
        town["households"],
        community_code=CODE,
        target=(30, 50),
        steps=20,
    )
    crs = local_crs(town["community"])
    area = _community_area(town["community"], crs)
    assert _areas_m2(p.grids, crs).sum() == pytest.approx(area, abs=1.0)
    assert sorted(p.grids["households"]) == [40, 40, 40, 40]


# --------------------------------------------------------------------------------------------
# The demo community
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_data: DemoData) -> dict[str, Any]:
    """The demo's frames under the database's column names."""
    return {
        "community": demo_data.community["boundary"],
        "code": demo_data.community["code"],
        "name": demo_data.community["name"],
        "buildings": demo_data.buildings.rename(columns={"building_key": "id"}),
        "households": demo_data.households.rename(columns={"building_key": "building_id"}),
        "streets": demo_data.streets,
        "current": demo_data.grids,
        "fields": demo_data.fields.rename(columns={"field_key": "id", "member_key": "member_id"}),
    }


def _propose(demo: dict[str, Any], **kwargs: Any) -> Proposal:
    kwargs.setdefault("steps", STEPS)
    return propose_plan(
        demo["community"],
        demo["buildings"],
        demo["households"],
        community_code=demo["code"],
        community_name=demo["name"],
        streets=demo["streets"],
        current=demo["current"],
        **kwargs,
    )


@pytest.fixture(scope="module")
def proposal(demo: dict[str, Any]) -> Proposal:
    return _propose(demo, seed=0)


def test_demo_every_grid_holds_300_to_500_households(
    demo: dict[str, Any], proposal: Proposal
) -> None:
    # Counted independently: a spatial join of the door points on the output polygons.
    joined = gpd.sjoin(demo["households"], proposal.grids[["code", "geometry"]], predicate="within")
    counts = joined.groupby("code").size()
    assert len(joined) == len(demo["households"]) == proposal.households == 12_500
    assert counts.reindex(proposal.grids["code"]).tolist() == proposal.grids["households"].tolist()
    assert counts.between(300, 500).all()
    # 12,500 households at 300–500: K = round(12,500 / 400) = 31.
    assert proposal.k == len(proposal.grids) == 31
    assert proposal.target == (300, 500)
    r = proposal.report
    assert (r["min_households"], r["max_households"]) == (counts.min(), counts.max())


def test_demo_grids_tile_the_community(demo: dict[str, Any], proposal: Proposal) -> None:
    crs = local_crs(demo["community"])
    grids = np.asarray(to_local(proposal.grids, crs).geometry.values)
    community = to_local(gpd.GeoDataFrame(geometry=[demo["community"]], crs=4326), crs)
    area = float(community.area.iloc[0])
    assert all(isinstance(g, Polygon) and g.is_valid for g in proposal.grids.geometry)
    assert shapely.area(shapely.union_all(grids)) == pytest.approx(area, abs=1.0)
    left, right = shapely.STRtree(grids).query(grids, predicate="intersects")
    pairs = left < right
    overlaps = shapely.area(shapely.intersection(grids[left[pairs]], grids[right[pairs]]))
    assert (overlaps < 1.0).all()
    # The project's own plan validator agrees.
    report = validate_plan(proposal.grids, demo["community"], community_code=demo["code"])
    assert report.valid, report.problems


def test_demo_never_splits_a_building(demo: dict[str, Any], proposal: Proposal) -> None:
    crs = local_crs(demo["community"])
    grids = np.asarray(to_local(proposal.grids, crs).geometry.values)
    buildings = np.asarray(to_local(demo["buildings"], crs).geometry.values)
    b, g = shapely.STRtree(grids).query(buildings, predicate="intersects")
    inside = shapely.area(shapely.intersection(buildings[b], grids[g]))
    most = np.zeros(len(buildings))
    np.maximum.at(most, b, inside)
    assert (shapely.area(buildings) - most <= 0.01).all()


def test_demo_codes_names_and_report(demo: dict[str, Any], proposal: Proposal) -> None:
    grids = proposal.grids
    assert all(re.fullmatch(rf"{demo['code']}\d{{3}}", c) for c in grids["code"])
    assert grids["code"].tolist() == number_grids(grids, demo["code"])
    assert grids["name"].tolist() == [f"金源社区第{n}网格" for n in range(1, 32)]
    assert grids.crs.to_epsg() == 4326
    assert grids["households"].dtype.kind == "i"
    r = proposal.report
    assert r["units"] >= 1_172 and r["blocks"] > 9 and r["steps"] == STEPS
    assert "ReCom" in proposal.method and "DeFord" in proposal.method
    assert r["grids_with_holes_after"] == 0
    json.dumps(proposal.to_dict())  # JSON-ready, grids as GeoJSON
    assert proposal.to_dict()["grids"]["type"] == "FeatureCollection"


def test_demo_keeps_households_in_their_current_grid(proposal: Proposal) -> None:
    # Every current demo grid holds 836–2,093 households, each a whole number of 300–500
    # grids, so the start is nested: each new grid lies inside one current grid, and the
    # chain's spanning trees surcharge edges across current lines and it pays for every
    # household moved. Hence every household is kept.
    assert proposal.report["start"] == "nested"
    assert proposal.kept_households / proposal.households > 0.9
    assert proposal.kept_households == proposal.households
    assert proposal.report["kept_share"] == 1.0


def test_demo_same_seed_same_plan_other_seed_other_plan(
    demo: dict[str, Any], proposal: Proposal
) -> None:
    again = _propose(demo, seed=0)
    assert again.grids["code"].tolist() == proposal.grids["code"].tolist()
    assert again.grids["households"].tolist() == proposal.grids["households"].tolist()
    assert [g.wkb for g in again.grids.geometry] == [g.wkb for g in proposal.grids.geometry]
    other = _propose(demo, seed=1)
    assert [g.wkb for g in other.grids.geometry] != [g.wkb for g in proposal.grids.geometry]


@pytest.fixture(scope="module")
def fielded(demo: dict[str, Any]) -> Proposal:
    return _propose(demo, seed=0, fields=demo["fields"])


def _field_counts(demo: dict[str, Any], p: Proposal) -> dict[str, int]:
    d = diff_plans(demo["current"], p.grids, households=demo["households"], fields=demo["fields"])
    return d.counts


def test_demo_keeps_responsibility_fields_whole(
    demo: dict[str, Any], proposal: Proposal, fielded: Proposal
) -> None:
    # Measured as the product does (the impact diff against the active plan).
    without = _field_counts(demo, proposal)
    with_fields = _field_counts(demo, fielded)
    assert without["fields_cut"] >= 40  # most grid lines of a plain redraw cross some field
    assert with_fields["fields_cut"] * 2 <= without["fields_cut"]
    assert with_fields["fields_cut"] <= 10
    hh_cut = with_fields["households_cut_from_fields"]
    assert hh_cut * 2 <= without["households_cut_from_fields"]
    # The report agrees with the diff, and the chain did not make the start worse.
    r = fielded.report
    assert r["fields"] == len(demo["fields"]) == 138
    assert (r["fields_cut_after"], r["households_cut_from_fields_after"]) == (
        with_fields["fields_cut"],
        hh_cut,
    )
    assert len(r["fields_still_cut"]) == r["fields_cut_after"]
    assert r["fields_cut_after"] <= r["fields_cut_before"]
    assert r["households_cut_from_fields_after"] <= r["households_cut_from_fields_before"]
    assert r["field_weight"] > 0 and r["field_cut_penalty"] > 0 and "field" in r["surcharge"]
    assert "138 responsibility fields" in fielded.method


def test_demo_with_fields_stays_valid_nested_and_in_range(
    demo: dict[str, Any], fielded: Proposal
) -> None:
    counts = fielded.grids["households"]
    assert fielded.k == len(fielded.grids) == 31
    assert counts.between(300, 500).all() and counts.sum() == 12_500
    joined = gpd.sjoin(demo["households"], fielded.grids[["code", "geometry"]], predicate="within")
    assert joined.groupby("code").size().reindex(fielded.grids["code"]).tolist() == list(counts)
    report = validate_plan(fielded.grids, demo["community"], community_code=demo["code"])
    assert report.valid, report.problems
    assert fielded.report["start"] == "nested"
    assert fielded.kept_households == fielded.households
    assert fielded.report["grids_with_holes_after"] == 0


def test_demo_with_fields_same_seed_same_plan(demo: dict[str, Any], fielded: Proposal) -> None:
    again = _propose(demo, seed=0, fields=demo["fields"])
    assert [g.wkb for g in again.grids.geometry] == [g.wkb for g in fielded.grids.geometry]
    assert again.grids["households"].tolist() == fielded.grids["households"].tolist()
    assert again.report["fields_still_cut"] == fielded.report["fields_still_cut"]


def test_demo_grid_count(demo: dict[str, Any]) -> None:
    p = _propose(demo, grids=25, steps=40)
    assert p.k == len(p.grids) == 25 and p.target is None
    # 500 a grid on average, each within ±15 %.
    assert (p.report["low"], p.report["high"]) == (425, 575)
    assert p.grids["households"].between(425, 575).all()
    assert p.grids["households"].sum() == 12_500


# --------------------------------------------------------------------------------------------
# Infeasible and invalid requests
# --------------------------------------------------------------------------------------------


def test_range_with_no_whole_number_of_grids(demo: dict[str, Any]) -> None:
    # 12,500 / 495 = 25.25 and 12,500 / 490 = 25.51: no whole number of grids in between.
    with pytest.raises(InfeasiblePlan, match="no whole number of grids") as info:
        _propose(demo, target=(490, 495))
    assert "490:495" in info.value.message and "12,500 households" in info.value.message
    assert info.value.details["constraint"] == "range"
    assert info.value.field == "households_per_grid"


def test_building_with_more_households_than_the_upper_bound(demo: dict[str, Any]) -> None:
    per_building = demo["households"].groupby("building_id").size()
    biggest = int(per_building.idxmax())
    assert per_building.max() == 108
    with pytest.raises(InfeasiblePlan, match="at most 100") as info:
        _propose(demo, target=(50, 100))
    assert f"building {biggest} holds 108 households" in info.value.message
    assert info.value.details["units"][0] == {"building_id": biggest, "households": 108}


def test_disconnected_community() -> None:
    west, east = box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 200, Y0, X0 + 300, Y0 + 100)
    community = _to_wgs84([MultiPolygon([west, east])])[0]
    buildings = gpd.GeoDataFrame(
        {"id": [1, 2]},
        geometry=_to_wgs84(
            [box(X0 + 40, Y0 + 40, X0 + 60, Y0 + 60), box(X0 + 240, Y0 + 40, X0 + 260, Y0 + 60)]
        ),
        crs="EPSG:4326",
    )
    doors = [shapely.Point(X0 + 50, Y0 + 39.5)] * 10 + [shapely.Point(X0 + 250, Y0 + 39.5)] * 10
    households = gpd.GeoDataFrame(
        {"building_id": [1] * 10 + [2] * 10}, geometry=_to_wgs84(doors), crs="EPSG:4326"
    )
    with pytest.raises(InfeasiblePlan, match="separate pieces") as info:
        propose_plan(community, buildings, households, community_code=CODE, target=(5, 15))
    assert "2 separate pieces" in info.value.message and "10, 10 households" in info.value.message
    assert info.value.details["constraint"] == "contiguity"


def test_town_range_and_building_checks() -> None:
    town = _town()
    args = (town["community"], town["buildings"], town["households"])
    # 160 / 45 = 3.56 and 160 / 41 = 3.90: no whole number of grids.
    with pytest.raises(InfeasiblePlan, match="no whole number"):
        propose_plan(*args, community_code=CODE, target=(41, 45))
    with pytest.raises(InfeasiblePlan, match="building 1 holds 10 households"):
        propose_plan(*args, community_code=CODE, target=(5, 9))
    # More grids than ±15 % can fill with whole households.
    with pytest.raises(InfeasiblePlan, match="number of grids"):
        propose_plan(*args, community_code=CODE, grids=200)


def test_range_and_count_together_are_invalid_input() -> None:
    town = _town()
    with pytest.raises(InvalidInput, match="not both") as info:
        propose_plan(
            town["community"],
            town["buildings"],
            town["households"],
            community_code=CODE,
            target=(30, 50),
            grids=4,
        )
    assert not isinstance(info.value, InfeasiblePlan)
