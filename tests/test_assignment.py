"""Set-based assignment in SQL: edge rule, outside points, both backends agree with Python."""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Engine

from geogrid.assign import assign_community
from geogrid.db import dialect
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.spatial import assign_points
from tests.factories import X0, Y0, D, add_households, make_community, square_grids

# Interior points, points on shared edges, the shared corner, the outer boundary, outside.
POINTS = [
    (X0 + 0.5 * D, Y0 + 1.5 * D),  # inside 001
    (X0 + 1.5 * D, Y0 + 0.5 * D),  # inside 004
    (X0 + D, Y0 + 1.5 * D),  # on the 001|002 edge → 001
    (X0 + 1.5 * D, Y0 + D),  # on the 002|004 edge → 002
    (X0 + 0.5 * D, Y0 + D),  # on the 001|003 edge → 001
    (X0 + D, Y0 + 0.5 * D),  # on the 003|004 edge → 003
    (X0 + D, Y0 + D),  # the corner shared by all four → 001
    (X0, Y0 + 0.5 * D),  # on the outer boundary of 003 → 003
    (X0 - 0.001, Y0 + 0.5 * D),  # outside every grid
    (X0 + 3 * D, Y0 + 3 * D),  # far outside
]
EXPECTED = ["001", "004", "001", "002", "001", "003", "001", "003", None, None]


def test_edge_rule_and_outside_points(engine: Engine) -> None:
    with engine.begin() as conn:
        cid, plan_id, grid_ids = make_community(conn)
        hids = add_households(conn, cid, POINTS)
        report = assign_community(conn, community_id=cid)
    with engine.connect() as conn:
        got = q.household_assignments(conn, plan_id=plan_id)
    code_of = {v: k[-3:] for k, v in grid_ids.items()}
    assert [code_of[got[h][0]] if h in got else None for h in hids] == EXPECTED
    assert report.households == len(POINTS)
    assert report.households_in_grids == 8
    assert report.households_outside == 2
    assert report.outside_address_ids == ["T-00008", "T-00009"]


def test_python_rule_matches_sql() -> None:
    grids = square_grids()
    # Shuffle the polygon order: the rule must follow the code, not the position.
    order = [3, 1, 0, 2]
    polys = [grids[i][1] for i in order]
    codes = np.array([grids[i][0] for i in order])
    idx = assign_points(shapely.points(POINTS), polys, key=codes)
    assert [codes[i][-3:] if i >= 0 else None for i in idx] == EXPECTED


def test_fields_lowest_id_wins_and_rerun_reports_no_change(engine: Engine) -> None:
    with engine.begin() as conn:
        cid, plan_id, _ = make_community(conn)
        hids = add_households(conn, cid, POINTS)
        # Two fields sharing the edge x = X0 + D/2 inside grid 001.
        left = shapely.box(X0, Y0 + D, X0 + D / 2, Y0 + 2 * D)
        right = shapely.box(X0 + D / 2, Y0 + D, X0 + D, Y0 + 2 * D)
        f1, f2 = q.insert_returning_ids(
            conn,
            m.ResponsibilityField,
            [
                {
                    "community_id": cid,
                    "name": "L",
                    "geom": q.geom_value(shapely.MultiPolygon([left])),
                },
                {
                    "community_id": cid,
                    "name": "R",
                    "geom": q.geom_value(shapely.MultiPolygon([right])),
                },
            ],
        )
        first = assign_community(conn, community_id=cid)
        again = assign_community(conn, community_id=cid)
        got = q.household_assignments(conn, plan_id=plan_id)
    # POINTS[0] (x = X0 + D/2) lies on the shared field edge: the lower id wins.
    assert got[hids[0]][1] == min(f1, f2)
    # POINTS[2] (x = X0 + D) is on the right field's east edge.
    assert got[hids[2]][1] == f2
    assert got[hids[1]][1] is None
    assert first.households_in_fields == 4  # 0, 2, 4 (on L's south edge), 6 (corner of R)
    assert first.fields_regridded == 2
    assert again.households_changed_grid == 0
    assert again.households_changed_field == 0
    assert again.fields_regridded == 0


def test_backends_give_identical_rows(engine: Engine) -> None:
    """The dialect's per-backend SELECT returns the same pairs as Python on random points."""
    rng = np.random.default_rng(7)
    pts = rng.uniform([X0 - D / 2, Y0 - D / 2], [X0 + 2.5 * D, Y0 + 2.5 * D], size=(500, 2))
    # Put a fifth of them exactly onto the grid lines (the very floats the boxes use) so the
    # edge rule is exercised often.
    lines_x, lines_y = np.array([X0, X0 + D, X0 + 2 * D]), np.array([Y0, Y0 + D, Y0 + 2 * D])
    on_x, on_y = rng.random(500) < 0.1, rng.random(500) < 0.1
    pts[on_x, 0] = rng.choice(lines_x, on_x.sum())
    pts[on_y, 1] = rng.choice(lines_y, on_y.sum())
    with engine.begin() as conn:
        cid, plan_id, grid_ids = make_community(conn)
        hids = add_households(conn, cid, [tuple(p) for p in pts])
        pairs = dialect.cover_pairs(
            conn,
            target="grids",
            point_table="households",
            point_where="1 = 1",
            params={"plan_id": plan_id},
        )
    grids = square_grids()
    idx = assign_points(shapely.points(pts), [g for _, g in grids], key=[c for c, _ in grids])
    expected = {h: grid_ids[grids[i][0]] for h, i in zip(hids, idx, strict=True) if i >= 0}
    assert pairs == expected
    assert len(expected) > 250


def test_changes_bump_the_data_versions(engine: Engine) -> None:
    """Plans and grids bump `spatial`, households bump `gazetteer`, each only its own."""
    with engine.connect() as conn:
        v0 = q.data_versions(conn)
    with engine.begin() as conn:
        cid, _, _ = make_community(conn)
    with engine.connect() as conn:
        v1 = q.data_versions(conn)
    assert v1["spatial"] > v0["spatial"]
    assert v1["gazetteer"] == v0["gazetteer"]
    with engine.begin() as conn:
        add_households(conn, cid, [(114.405, 23.105)])
    with engine.connect() as conn:
        v2 = q.data_versions(conn)
    assert v2["gazetteer"] > v1["gazetteer"]
    assert v2["spatial"] == v1["spatial"]


def test_households_leave_and_join_a_field_that_is_redrawn(engine: Engine) -> None:
    with engine.begin() as conn:
        cid, plan_id, _ = make_community(conn)
        hids = add_households(conn, cid, POINTS[:2])  # one in grid 001, one in grid 004
        whole_001 = shapely.box(X0, Y0 + D, X0 + D, Y0 + 2 * D)
        whole_004 = shapely.box(X0 + D, Y0, X0 + 2 * D, Y0 + D)
        (fid,) = q.insert_returning_ids(
            conn,
            m.ResponsibilityField,
            [{"community_id": cid, "geom": q.geom_value(shapely.MultiPolygon([whole_001]))}],
        )
        assign_community(conn, community_id=cid)
        before = q.household_assignments(conn, plan_id=plan_id)
        conn.execute(
            m.table(m.ResponsibilityField)
            .update()
            .values(geom=q.geom_value(shapely.MultiPolygon([whole_004])))
        )
        again = assign_community(conn, community_id=cid)
        after = q.household_assignments(conn, plan_id=plan_id)
    assert [before[h][1] for h in hids] == [fid, None]
    assert [after[h][1] for h in hids] == [None, fid]
    assert again.households_changed_field == 2
    assert again.households_changed_grid == 0
    assert again.households_in_fields == 1
    assert again.fields_regridded == 1
