"""Plan validation (geogrid.planning.validate) on hand-drawn plans whose faults are known.

The plans are 2 × 2 tilings of ~500 m squares near 114.4E 23.1N, drawn in metres east/north
of that point and mapped to degrees linearly, so every edge is straight in lon/lat as in a
GeoJSON file:

    001 | 002        community: 0..1000 m × 0..1000 m
    ----+----        numbering: west→east, north→south
    003 | 004
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import geopandas as gpd
import pytest
from shapely.geometry import LineString, MultiPolygon, Polygon

from geogrid.demo.generate import DemoData
from geogrid.planning.validate import CHECKS, PlanProblem, validate_plan

LON0, LAT0 = 114.4, 23.1
_PHI = math.radians(LAT0)
# Length of a degree on the WGS 84 ellipsoid (the usual series, e.g. Osborne, "The Mercator
# projections", 2013, §5): good to ~1 m per degree, far inside the tests' 1 %.
M_PER_DEG_LON = 111_412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)
M_PER_DEG_LAT = 111_132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)

CC = "441302011005"


def deg(x: float, y: float) -> tuple[float, float]:
    """Metres east/north of (LON0, LAT0) → (lon, lat)."""
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def metres(lon: float | None, lat: float | None) -> tuple[float, float]:
    """(lon, lat) → metres east/north of (LON0, LAT0)."""
    assert lon is not None and lat is not None
    return (lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT


def poly(coords: Sequence[tuple[float, float]]) -> Polygon:
    return Polygon([deg(x, y) for x, y in coords])


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


COMMUNITY = rect(0, 0, 1000, 1000)
SQUARES = [rect(0, 500, 500, 1000), rect(500, 500, 1000, 1000)]
SQUARES += [rect(0, 0, 500, 500), rect(500, 0, 1000, 500)]
CODES = [f"{CC}{i:03d}" for i in range(1, 5)]


def plan(geoms: Sequence[object] = SQUARES, codes: Sequence[object] = CODES) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": list(codes)}, geometry=list(geoms), crs="EPSG:4326")


def replaced(**changes: object) -> list[object]:
    """SQUARES with some grids replaced: ``g1=…`` for grid 001 and so on."""
    out: list[object] = list(SQUARES)
    for key, geom in changes.items():
        out[int(key[1:]) - 1] = geom
    return out


def only(problems: list[PlanProblem], check: str) -> list[PlanProblem]:
    return [p for p in problems if p.check == check]


def inside(p: PlanProblem, x0: float, y0: float, x1: float, y1: float) -> bool:
    x, y = metres(p.lon, p.lat)
    return x0 <= x <= x1 and y0 <= y <= y1


def test_checks_are_listed_in_report_order() -> None:
    assert CHECKS == (
        "empty",
        "missing_code",
        "duplicate_code",
        "code_format",
        "geometry_type",
        "invalid_geometry",
        "not_contiguous",
        "outside_community",
        "overlap",
        "gap",
        "numbering",
    )


def test_a_clean_tiling_is_valid_with_no_problems() -> None:
    report = validate_plan(plan(), COMMUNITY, community_code=CC)
    assert report.valid
    assert report.problems == []
    assert report.renumbering == {}
    assert (report.grids, report.errors, report.warnings) == (4, 0, 0)


def test_an_overlap_names_both_grids_its_area_and_a_point_inside_it() -> None:
    # 001 pushed 20 m east, over 002: a 20 m × 500 m overlap.
    report = validate_plan(plan(replaced(g1=rect(0, 500, 520, 1000))), COMMUNITY)
    assert not report.valid
    assert [p.check for p in report.problems] == ["overlap"]
    (p,) = report.problems
    assert p.codes == [CODES[0], CODES[1]]
    assert p.feature == 0
    assert p.severity == "error" and p.unit == "m²"
    assert p.size == pytest.approx(20 * 500, rel=0.01)
    assert inside(p, 500, 500, 520, 1000)
    assert CODES[0] in p.message and CODES[1] in p.message
    assert re.search(r"overlap by (9,9\d\d|10,0\d\d) m²", p.message)
    assert f"near {p.lon:.6f}, {p.lat:.6f}" in p.message


def test_each_gap_piece_is_reported_with_its_neighbouring_grids() -> None:
    # 001 stops 20 m short of the north edge, 004 20 m short of the south edge.
    grids = plan(replaced(g1=rect(0, 500, 500, 980), g4=rect(500, 20, 1000, 500)))
    report = validate_plan(grids, COMMUNITY)
    gaps = only(report.problems, "gap")
    assert len(gaps) == 2 and len(report.problems) == 2
    north = next(p for p in gaps if metres(p.lon, p.lat)[1] > 500)
    south = next(p for p in gaps if metres(p.lon, p.lat)[1] < 500)
    assert inside(north, 0, 980, 500, 1000)
    assert inside(south, 500, 0, 1000, 20)
    assert north.size == pytest.approx(500 * 20, rel=0.01)
    assert south.size == pytest.approx(500 * 20, rel=0.01)
    assert north.codes == [CODES[0], CODES[1]]  # 002 touches the strip's east end
    assert south.codes == [CODES[2], CODES[3]]
    assert north.feature == 0 and south.feature == 2
    assert re.match(r"gap of (9,9\d\d|10,0\d\d) m² between grids", north.message)


def test_a_grid_outside_the_community_is_reported_with_the_outside_area() -> None:
    report = validate_plan(plan(replaced(g2=rect(500, 500, 1100, 1000))), COMMUNITY)
    assert [p.check for p in report.problems] == ["outside_community"]
    (p,) = report.problems
    assert p.codes == [CODES[1]] and p.feature == 1
    assert p.size == pytest.approx(100 * 500, rel=0.01)
    assert inside(p, 1000, 500, 1100, 1000)
    assert "outside the community" in p.message


def test_a_grid_in_two_pieces_is_not_contiguous() -> None:
    # 003 also holds a 100 m square in 004's south-east corner, cut out of 004.
    far = rect(900, 0, 1000, 100)
    g3 = MultiPolygon([rect(0, 0, 500, 500), far])
    g4 = poly([(500, 0), (900, 0), (900, 100), (1000, 100), (1000, 500), (500, 500)])
    report = validate_plan(plan(replaced(g3=g3, g4=g4)), COMMUNITY)
    assert [p.check for p in report.problems] == ["not_contiguous"]
    (p,) = report.problems
    assert p.codes == [CODES[2]] and p.feature == 2
    assert p.size == pytest.approx(100 * 100, rel=0.01)
    assert inside(p, 900, 0, 1000, 100)
    assert "2 separate parts" in p.message


def test_a_bowtie_is_invalid_at_its_self_intersection() -> None:
    bowtie = poly([(0, 500), (500, 1000), (500, 500), (0, 1000)])
    report = validate_plan(plan(replaced(g1=bowtie)), COMMUNITY, community_code=CC)
    assert not report.valid
    (p,) = only(report.problems, "invalid_geometry")
    assert p.codes == [CODES[0]] and p.feature == 0
    assert "Self-intersection" in p.message
    x, y = metres(p.lon, p.lat)
    assert math.hypot(x - 250, y - 750) < 1.0
    assert p.size is None
    # The broken grid is left out of the overlap check and of the numbering.
    assert only(report.problems, "overlap") == [] and report.renumbering == {}


def test_duplicate_codes_list_every_row() -> None:
    report = validate_plan(plan(codes=[*CODES[:3], CODES[2]]), COMMUNITY, community_code=CC)
    assert [p.check for p in report.problems] == ["duplicate_code"]
    (p,) = report.problems
    assert p.codes == [CODES[2]] and p.feature == 2
    assert "features 2, 3" in p.message
    assert inside(p, 0, 0, 500, 500)  # a point inside the first of them


def test_codes_must_extend_a_12_digit_community_code() -> None:
    codes = [CODES[0], f"{CC}00X", "441302011006003", "12345"]
    report = validate_plan(plan(codes=codes), COMMUNITY, community_code=CC)
    bad = only(report.problems, "code_format")
    assert [p.feature for p in bad] == [1, 2, 3]
    assert [p.codes for p in bad] == [[c] for c in codes[1:]]
    assert all(CC in p.message for p in bad)
    assert report.renumbering == {}  # numbering needs well-formed codes
    # Without a community code any non-empty code will do.
    assert validate_plan(plan(codes=codes), COMMUNITY).problems == []


def test_missing_codes_are_reported_by_feature() -> None:
    report = validate_plan(plan(codes=[None, "", " ", CODES[3]]), COMMUNITY, community_code=CC)
    missing = only(report.problems, "missing_code")
    assert [p.feature for p in missing] == [0, 1, 2]
    assert all(p.codes == [] for p in missing)
    assert "feature 1" in missing[1].message
    assert inside(missing[0], 0, 500, 500, 1000)


def test_wrong_geometry_types_and_none_are_reported_and_skipped() -> None:
    line = LineString([deg(500, 0), deg(1000, 500)])
    report = validate_plan(
        plan(replaced(g2=Polygon(), g3=None, g4=line)), COMMUNITY, community_code=CC
    )
    wrong = only(report.problems, "geometry_type")
    assert [p.feature for p in wrong] == [1, 2, 3]
    assert "empty" in wrong[0].message
    assert "no geometry" in wrong[1].message and wrong[1].lon is None
    assert "LineString" in wrong[2].message
    # Their ground is a gap next to the one usable grid.
    (gap,) = only(report.problems, "gap")
    assert gap.size == pytest.approx(3 * 500 * 500, rel=0.01)
    assert gap.codes == [CODES[0]]


def test_slivers_up_to_the_tolerance_are_ignored() -> None:
    # 1 mm too wide (0.5 m² overlap) and 1 mm too short (0.5 m² gap).
    grids = plan(replaced(g1=rect(0, 500, 500.001, 1000), g4=rect(500, 0, 1000, 499.999)))
    assert validate_plan(grids, COMMUNITY, community_code=CC).problems == []
    fine = validate_plan(grids, COMMUNITY, tolerance_m2=0.1)
    assert sorted(p.check for p in fine.problems) == ["gap", "overlap"]
    assert all(p.size == pytest.approx(0.5, rel=0.05) for p in fine.problems)


def test_swapped_codes_give_a_numbering_warning_only() -> None:
    codes = [CODES[1], CODES[0], CODES[2], CODES[3]]
    report = validate_plan(plan(codes=codes), COMMUNITY, community_code=CC)
    assert report.valid and (report.errors, report.warnings) == (0, 1)
    (p,) = report.problems
    assert p.check == "numbering" and p.severity == "warning"
    assert report.renumbering == {CODES[1]: CODES[0], CODES[0]: CODES[1]}
    assert sorted(p.codes) == CODES[:2]
    assert f"{CODES[1]} → {CODES[0]}" in p.message
    assert p.message.startswith("2 grids are not numbered west→east, north→south")


def test_problems_are_ordered_errors_first_then_by_check_then_size() -> None:
    # Outside (50,000 m²), two overlaps of different sizes, and swapped codes.
    g1 = rect(0, 500, 510, 1000)  # 10 m × 500 m over 002
    g2 = rect(500, 500, 1100, 1000)  # outside by 100 m × 500 m
    g3 = rect(0, 0, 530, 500)  # 30 m × 500 m over 004
    codes = [CODES[1], CODES[0], CODES[2], CODES[3]]
    report = validate_plan(plan(replaced(g1=g1, g2=g2, g3=g3), codes), COMMUNITY, community_code=CC)
    checks = [p.check for p in report.problems]
    assert checks == ["outside_community", "overlap", "overlap", "numbering"]
    sizes = [p.size or 0.0 for p in report.problems[1:3]]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == pytest.approx(30 * 500, rel=0.01)


def test_without_a_community_outside_and_gaps_are_not_checked() -> None:
    grids = plan([*SQUARES[:3], rect(500, 0, 1200, 480)])
    assert validate_plan(grids, None, community_code=CC).problems == []
    assert not validate_plan(grids, COMMUNITY).valid


def test_an_empty_plan_is_invalid() -> None:
    report = validate_plan(plan([], []), COMMUNITY)
    assert not report.valid
    assert [p.check for p in report.problems] == ["empty"]


def test_the_report_is_json_ready() -> None:
    report = validate_plan(
        plan(replaced(g1=rect(0, 500, 520, 1000), g3=None), [None, *CODES[1:]]),
        COMMUNITY,
        community_code=CC,
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(data) == {
        "valid",
        "grids",
        "tolerance_m2",
        "errors",
        "warnings",
        "problems",
        "renumbering",
    }
    assert data["valid"] is False and data["errors"] == len(data["problems"])
    assert set(data["problems"][0]) == {
        "check",
        "severity",
        "message",
        "codes",
        "feature",
        "lon",
        "lat",
        "size",
        "unit",
    }


def test_the_demo_plan_is_valid_and_numbered(demo_data: DemoData) -> None:
    community = demo_data.community
    report = validate_plan(demo_data.grids, community["boundary"], community_code=community["code"])
    assert community["code"] == CC
    assert report.grids == 9
    assert report.valid, [p.message for p in report.problems]
    assert report.problems == [] and report.renumbering == {}
