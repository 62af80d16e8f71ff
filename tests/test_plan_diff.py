"""The impact diff of a draft plan (pure, on hand-drawn squares whose answers are obvious)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from geogrid.planning.diff import diff_plans
from tests.factories import X0, Y0, D, square_grids

C = "441302011099"


def _frame(
    grids: list[tuple[str, object]], leads: dict[str, int] | None = None
) -> gpd.GeoDataFrame:
    leads = leads or {}
    return gpd.GeoDataFrame(
        {
            "code": [c for c, _ in grids],
            "name": [c[-3:] for c, _ in grids],
            "lead_member_id": [leads.get(c) for c, _ in grids],
        },
        geometry=[g for _, g in grids],
        crs="EPSG:4326",
    )


ACTIVE = _frame(square_grids(), {f"{C}001": 11, f"{C}002": 12, f"{C}004": 14})
#: The boundary between 001 (NW) and 002 (NE) moved 0.002° east: 001 grows, 002 shrinks.
SHIFT = X0 + D + 0.002


def _shifted() -> gpd.GeoDataFrame:
    return _frame(
        [
            (f"{C}001", box(X0, Y0 + D, SHIFT, Y0 + 2 * D)),
            (f"{C}002", box(SHIFT, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),
            (f"{C}003", box(X0, Y0, X0 + D, Y0 + D)),
            (f"{C}004", box(X0 + D, Y0, X0 + 2 * D, Y0 + D)),
        ]
    )


def _split() -> gpd.GeoDataFrame:
    """004 (SE) split 60/40 west/east into 004 and a new 005."""
    cut = X0 + D + 0.006
    return _frame(
        [
            *square_grids()[:3],
            (f"{C}004", box(X0 + D, Y0, cut, Y0 + D)),
            (f"{C}005", box(cut, Y0, X0 + 2 * D, Y0 + D)),
        ]
    )


def _points(xy: list[tuple[float, float]], **cols: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=[Point(x, y) for x, y in xy], crs="EPSG:4326")


def test_identical_plans_change_nothing() -> None:
    homes = _points([(X0 + 0.005, Y0 + 0.005)], address_id=["A"])
    d = diff_plans(ACTIVE, ACTIVE.copy(), households=homes)
    assert d.grids_unchanged == 4
    assert not (d.grids_added or d.grids_removed or d.grids_reshaped or d.households_moved)
    assert d.parents == {c: c for c in ACTIVE["code"]}
    assert d.leads == {f"{C}001": 11, f"{C}002": 12, f"{C}003": None, f"{C}004": 14}


def test_moved_boundary_moves_households_fields_members_and_requests() -> None:
    north = Y0 + 1.5 * D
    homes = _points(
        [
            (X0 + D + 0.0005, north),  # in the strip: 002 → 001
            (X0 + D + 0.0015, north + 0.001),  # in the strip and in the field: cut off
            (X0 + D + 0.003, north),  # in the field, on the side it keeps
            (X0 + 0.002, Y0 + 0.002),  # 003, untouched
        ],
        address_id=["H1", "H2", "H3", "H4"],
    )
    # A field across the new boundary: 1/3 west of it (now 001), 2/3 east (still 002).
    field = box(X0 + D + 0.001, north - 0.001, X0 + D + 0.004, north + 0.002)
    fields = gpd.GeoDataFrame(
        {"id": [7], "name": ["榕湖街责任田"], "member_id": [21]}, geometry=[field], crs="EPSG:4326"
    )
    requests = _points([(X0 + D + 0.0012, north - 0.002), (X0 + 0.001, Y0 + 0.001)], id=[1, 2])
    branches = pd.DataFrame({"branch_id": [3], "branch_name": ["第一支部"], "code": [f"{C}002"]})

    d = diff_plans(
        ACTIVE,
        _shifted(),
        households=homes,
        fields=fields,
        branches=branches,
        open_requests=requests,
    )

    assert [g["code"] for g in d.grids_reshaped] == [f"{C}001", f"{C}002"]
    grown = d.grids_reshaped[0]
    assert grown["area_after_m2"] > grown["area_before_m2"]
    # The strip is 0.002° × 0.01°: about 205 m × 1,107 m near 23.1°N, counted on both sides.
    assert grown["changed_m2"] == pytest.approx(0.002 * 102_400 * 0.01 * 110_700, rel=0.02)
    assert d.grids_unchanged == 2
    assert {(h["household"], h["from_code"], h["to_code"]) for h in d.households_moved} == {
        ("H1", f"{C}002", f"{C}001"),
        ("H2", f"{C}002", f"{C}001"),
    }
    (cut,) = d.fields_cut
    assert cut.field_id == 7 and cut.grid_code == f"{C}002"
    assert cut.cut_share == pytest.approx(1 / 3, abs=0.01)
    assert set(cut.pieces) == {f"{C}001", f"{C}002"}
    assert cut.cut_households == ["H2"] and cut.households_cut == 1
    # The field's holder keeps grid 002 (the field's larger part stays there): no change.
    assert all(m["member_id"] != 21 for m in d.members_changed)
    assert d.requests_rerouted == [{"request_id": 1, "from_code": f"{C}002", "to_code": f"{C}001"}]
    assert d.branches == {f"{C}001": [], f"{C}002": [3], f"{C}003": [], f"{C}004": []}
    assert d.branches_changed == []
    assert d.counts["households_moved"] == 2 and d.counts["fields_cut"] == 1
    # Both moved households now sit in a grid descending from 001: handed over.
    assert d.households_rehomed == 2
    json.dumps(d.to_dict())


def test_split_grid_added_lead_and_branch_follow_the_larger_child() -> None:
    branches = pd.DataFrame({"branch_id": [5], "branch_name": ["第二支部"], "code": [f"{C}004"]})
    homes = _points([(X0 + D + 0.008, Y0 + 0.005)], address_id=["E"])
    d = diff_plans(ACTIVE, _split(), households=homes, branches=branches)
    assert [g["code"] for g in d.grids_added] == [f"{C}005"]
    assert d.grids_added[0]["households"] == 1
    assert [g["code"] for g in d.grids_reshaped] == [f"{C}004"]
    assert d.parents[f"{C}005"] == f"{C}004"
    # The lead of 004 goes to the child overlapping it most (the western 60 %) and acts for
    # the other child until a lead is named; 003 had no lead and its child has none.
    assert d.leads[f"{C}004"] == 14 and d.leads[f"{C}005"] == 14
    assert d.acting_leads == {f"{C}005": 14}
    assert d.counts["grids_without_lead"] == 1 and d.counts["grids_with_acting_lead"] == 1
    # The branch on 004 now sits on both children, and says so.
    assert d.branches[f"{C}004"] == [5] and d.branches[f"{C}005"] == [5]
    assert d.branches_changed == [
        {
            "branch_id": 5,
            "branch_name": "第二支部",
            "from_codes": [f"{C}004"],
            "to_codes": [f"{C}004", f"{C}005"],
        }
    ]
    assert d.households_moved == [{"household": "E", "from_code": f"{C}004", "to_code": f"{C}005"}]
    # …but 005 descends from 004: the household changes code, not hands.
    assert d.households_rehomed == 0


def test_removed_grid_and_its_lead() -> None:
    merged = _frame(
        [
            (f"{C}001", box(X0, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),  # 001 ∪ 002
            *square_grids()[2:],
        ]
    )
    d = diff_plans(ACTIVE, merged)
    assert [g["code"] for g in d.grids_removed] == [f"{C}002"]
    # 001 keeps its own lead (its parent is itself, tie-broken by area: equal halves, and the
    # lead of 001 is kept first); 12 loses the grid it led.
    assert d.leads[f"{C}001"] in (11, 12)
    changed = {m["member_id"]: m for m in d.members_changed}
    loser = 12 if d.leads[f"{C}001"] == 11 else 11
    assert changed[loser]["to_codes"] == []
