"""``geogrid check``: the data-quality report, one test per finding, on both backends.

Each test starts from :func:`clean`, a small community with nothing to report, and spoils one
thing; the finding it expects fails without that check.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from shapely.geometry import MultiLineString, MultiPolygon, Point, box
from sqlalchemy import Connection, Engine, delete, func, update
from typer.testing import CliRunner

from api.cli import app
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.io import importer
from geogrid.quality import CHECKS, QualityReport, check_data
from tests.factories import X0, Y0, D, make_community

runner = CliRunner()

CODE = "441302011099"
#: Degrees per metre near the test community (23.1° N): the check's local frame.
LAT_M = 1 / 110_574.0


class World(NamedTuple):
    community_id: int
    plan_id: int
    grids: dict[str, int]
    street_id: int
    branch_id: int
    member_id: int


def _square(x: float, y: float, half_m: float = 10.0) -> MultiPolygon:
    """A building about ``2 × half_m`` metres wide centred on ``x, y``."""
    h = half_m * LAT_M
    return MultiPolygon([box(x - h, y - h, x + h, y + h)])


def add_building(conn: Connection, w: World, x: float, y: float, **values: Any) -> int:
    row = {"community_id": w.community_id, "street_id": w.street_id, "aliases": []}
    row |= {"name": "1栋", "compound": "长湖花园", "house_number": "1号"} | values
    return q.insert_returning_ids(conn, m.Building, [row | {"geom": q.geom_value(_square(x, y))}])[
        0
    ]


def add_household(
    conn: Connection, w: World, address_id: str, x: float, y: float, **values: Any
) -> int:
    row: dict[str, Any] = {"community_id": w.community_id, "address_id": address_id, "size": 1}
    row |= {"street_name": "长湖街", "house_number": "1号", "compound": "长湖花园"}
    row |= {"building_name": "1栋"} | values
    return q.insert_returning_ids(conn, m.Household, [row | {"geom": q.geom_value(Point(x, y))}])[0]


def clean(conn: Connection, *, code: str = CODE) -> World:
    """A community with four grids (all led), one field over its northern half (held), a street,
    a branch, one member in it, one building and one household at its door: nothing to report.
    """
    cid, plan_id, grids = make_community(conn, code=code)
    branch = q.insert_returning_ids(conn, m.Branch, [{"community_id": cid, "name": "第一支部"}])[0]
    member = q.insert_returning_ids(
        conn,
        m.Member,
        [{"community_id": cid, "name": "张三", "kind": "resident", "branch_id": branch}],
    )[0]
    q.set_grid_leads(conn, leads=dict.fromkeys(grids.values(), member))
    north = MultiPolygon([box(X0, Y0 + D, X0 + 2 * D, Y0 + 2 * D)])
    q.insert_returning_ids(
        conn,
        m.ResponsibilityField,
        [{"community_id": cid, "member_id": member, "geom": q.geom_value(north)}],
    )
    street = q.insert_returning_ids(
        conn,
        m.Street,
        [
            {
                "community_id": cid,
                "name": "长湖街",
                "geom": q.geom_value(MultiLineString([[(X0, Y0 + D), (X0 + 2 * D, Y0 + D)]])),
            }
        ],
    )[0]
    w = World(cid, plan_id, grids, street, branch, member)
    x, y = X0 + 0.5 * D, Y0 + 1.5 * D
    add_building(conn, w, x, y)
    add_household(conn, w, "A-1", x, y)
    return w


def report(engine: Engine, **kw: Any) -> QualityReport:
    with engine.connect() as conn:
        return check_data(conn, **kw)


def only(r: QualityReport, check: str) -> dict[str, Any]:
    """The one finding of ``check`` (failing when there is none or several)."""
    found = [f for f in r.findings if f.check == check]
    assert len(found) == 1, r.to_dict()
    return found[0].to_dict()


def checks(r: QualityReport) -> set[str]:
    return {f.check for f in r.findings}


@pytest.fixture
def world(engine: Engine) -> World:
    with engine.begin() as conn:
        return clean(conn)


def test_a_clean_community_has_nothing_to_report(engine: Engine, db_url: str, world: World) -> None:
    assert report(engine).to_dict() == {
        "ok": True,
        "errors": 0,
        "warnings": 0,
        "communities": [{"code": CODE, "errors": 0, "warnings": 0, "findings": []}],
    }
    r = runner.invoke(app, ["check", "--database", db_url])
    assert r.exit_code == 0, r.output
    assert f"{CODE}: no problems found" in r.stdout
    assert "0 errors, 0 warnings in 1 community" in r.stderr


def test_tolerances_are_the_importers() -> None:
    from geogrid import quality

    assert quality.TOLERANCE_M == importer.TOLERANCE_M
    assert quality.SLIVER_M2 == importer.SLIVER_M2


def test_a_household_outside_every_community_is_an_error_and_exits_1(
    engine: Engine, db_url: str, world: World
) -> None:
    with engine.begin() as conn:
        # 5 m west of the boundary: out; 0.5 m west: inside the importer's 1 m tolerance.
        add_household(conn, world, "OUT-5M", X0 - 5 * LAT_M, Y0 + 1.5 * D, street_name=None)
        add_household(conn, world, "IN-05M", X0 - 0.5 * LAT_M, Y0 + 1.5 * D, street_name=None)
    f = only(report(engine), "households_outside_communities")
    assert (f["severity"], f["count"], f["ids"]) == ("error", 1, ["OUT-5M"])
    r = runner.invoke(app, ["check", "--database", db_url])
    assert r.exit_code == 1, r.output
    assert "households_outside_communities" in r.stdout
    assert "OUT-5M" in r.stdout
    assert "1 errors" in r.stderr


def test_a_building_outside_every_community_is_an_error(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        b = add_building(conn, world, X0 - 0.001, Y0 + 1.5 * D, name="9栋", house_number="9号")
    r = report(engine)
    f = only(r, "buildings_outside_communities")
    assert (f["severity"], f["count"], f["ids"]) == ("error", 1, [b])
    assert not r.ok


def test_overlapping_communities_are_an_error_naming_both(
    engine: Engine, db_url: str, world: World
) -> None:
    with engine.begin() as conn:
        # Another community overlapping the first by 0.001° × 0.02° (about 2 km²) …
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": "441302011098",
                    "name": "邻社区",
                    "boundary": q.geom_value(
                        MultiPolygon([box(X0 + 2 * D - 0.001, Y0, X0 + 4 * D, Y0 + 2 * D)])
                    ),
                },
                # … and one touching it only along an edge, which is no overlap.
                {
                    "code": "441302011097",
                    "name": "接壤社区",
                    "boundary": q.geom_value(MultiPolygon([box(X0 - 2 * D, Y0, X0, Y0 + 2 * D)])),
                },
            ],
        )
    r = report(engine)
    found = {f.community: f.to_dict() for f in r.findings if f.check == "communities_overlap"}
    assert set(found) == {CODE, "441302011098"}
    assert found[CODE]["ids"] == ["441302011098"]
    assert found["441302011098"]["ids"] == [CODE]
    assert found[CODE]["severity"] == "error"
    assert "m² around 114.4" in found[CODE]["message"]
    # One community checked: its overlap with the unchecked neighbour is still found.
    one = report(engine, community_codes=["441302011098"])
    assert [f.community for f in one.findings if f.check == "communities_overlap"] == [
        "441302011098"
    ]
    r2 = runner.invoke(app, ["check", "--database", db_url, "--community", "441302011097"])
    assert r2.exit_code == 0, r2.output  # touching only: no error (it has no plan: a warning)


def test_households_outside_grids_and_fields_are_warnings(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        # South-east: in a grid, but the field covers only the north half.
        add_household(conn, world, "SE", X0 + 1.5 * D, Y0 + 0.5 * D, street_name=None)
        # South-west, once its grid is gone: in no grid either.
        add_household(conn, world, "SW", X0 + 0.5 * D, Y0 + 0.5 * D, street_name=None)
        conn.execute(delete(m.Grid).where(m.Grid.id == world.grids["441302011099003"]))
    r = report(engine)
    assert r.ok
    grids, fields = only(r, "households_outside_grids"), only(r, "households_outside_fields")
    assert (grids["severity"], grids["ids"]) == ("warning", ["SW"])
    assert (fields["count"], fields["ids"]) == (2, ["SE", "SW"])


def test_a_household_on_a_grid_edge_is_inside(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        add_household(conn, world, "EDGE", X0 + D, Y0 + 1.5 * D, street_name=None)
    assert "households_outside_grids" not in checks(report(engine))


def test_buildings_without_address(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        b1 = add_building(conn, world, X0 + 0.3 * D, Y0 + 1.2 * D, name="2栋", house_number=None)
        b2 = add_building(conn, world, X0 + 0.6 * D, Y0 + 1.2 * D, name="3栋", street_id=None)
    f = only(report(engine), "buildings_without_address")
    assert (f["severity"], f["count"], f["ids"]) == ("warning", 2, [b1, b2])


def test_duplicate_building_addresses(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        x, y = X0 + 0.5 * D, Y0 + 1.5 * D
        # The compound's 2栋 shares its gate number 1号 with 1栋: a different address.
        add_building(conn, world, x + 0.001, y, name="2栋")
        # A second 长湖街1号 长湖花园 1栋 (full-width digit: the same text after NFKC).
        dup = add_building(conn, world, x + 0.002, y, house_number="１号")
    f = only(report(engine), "duplicate_building_addresses")
    assert f["count"] == 2
    assert dup in f["ids"]


def test_duplicate_household_addresses_in_different_buildings(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        x, y = X0 + 0.5 * D, Y0 + 1.5 * D
        b1 = add_building(conn, world, x + 0.002, y, name="5栋", house_number="5号")
        b2 = add_building(conn, world, x + 0.004, y, name="6栋", house_number="6号")
        same = {"building_name": "5栋", "house_number": "5号"}
        add_household(conn, world, "H-1", x + 0.002, y, building_id=b1, **same)
        add_household(conn, world, "H-2", x + 0.002, y, building_id=b1, **same)  # same building
        add_household(conn, world, "H-3", x + 0.004, y, building_id=b2, **same)  # another one
    f = only(report(engine), "duplicate_household_addresses")
    assert (f["count"], f["ids"]) == (3, ["H-1", "H-2", "H-3"])


def test_a_household_80_m_from_its_building_is_reported_30_m_is_not(
    engine: Engine, world: World
) -> None:
    with engine.begin() as conn:
        x, y = X0 + 0.5 * D, Y0 + 1.5 * D
        add_building(conn, world, x, y - 0.002, name="7栋", house_number="7号")  # 10 m half-width
        # Due north of the building's northern wall (y − 0.002 + 10 m): 30 m and 80 m from it.
        wall = y - 0.002 + 10 * LAT_M
        near = {"building_name": "7栋", "house_number": "7号"}
        add_household(conn, world, "NEAR-30", x, wall + 30 * LAT_M, **near)
        add_household(conn, world, "FAR-80", x, wall + 80 * LAT_M, **near)
        # Same street and number but another building name: finds no building, no warning.
        add_household(conn, world, "OTHER", x, wall + 80 * LAT_M, building_name="8栋")
    f = only(report(engine), "households_far_from_building")
    assert (f["severity"], f["count"], f["ids"]) == ("warning", 1, ["FAR-80"])
    assert "the farthest 80 m" in f["message"]


def test_grids_without_lead_fields_without_holder_members_without_branch(
    engine: Engine, world: World
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(m.Grid)
            .where(m.Grid.id == world.grids["441302011099002"])
            .values(lead_member_id=None)
        )
        south = MultiPolygon([box(X0, Y0, X0 + 2 * D, Y0 + D)])
        vacant = q.insert_returning_ids(
            conn,
            m.ResponsibilityField,
            [{"community_id": world.community_id, "member_id": None, "geom": q.geom_value(south)}],
        )[0]
        members = q.insert_returning_ids(
            conn,
            m.Member,
            [
                {
                    "community_id": world.community_id,
                    "name": "李四",
                    "kind": "duty_post",
                    "active": True,
                },
                {
                    "community_id": world.community_id,
                    "name": "王五",
                    "kind": "resident",
                    "active": False,
                },
            ],
        )
    r = report(engine)
    assert only(r, "grids_without_lead")["ids"] == ["441302011099002"]
    assert only(r, "fields_without_holder")["ids"] == [vacant]
    f = only(r, "members_without_branch")
    assert (f["count"], f["ids"]) == (1, [members[0]])  # the inactive one needs no branch
    assert "李四" not in json.dumps(r.to_dict(), ensure_ascii=False)


def test_a_community_without_an_active_plan(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(m.BoundaryPlan)
            .where(m.BoundaryPlan.id == world.plan_id)
            .values(status=m.PlanStatus.RETIRED.value)
        )
    r = report(engine)
    f = only(r, "community_without_active_plan")
    assert (f["count"], f["ids"]) == (1, [CODE])
    # Without a plan there are no grids to be outside of, nor leads to miss.
    assert "households_outside_grids" not in checks(r)
    assert "grids_without_lead" not in checks(r)


def test_json_shape_and_the_subdistrict_option(engine: Engine, db_url: str, world: World) -> None:
    with engine.begin() as conn:
        # A community of another subdistrict, east of the first, with a household outside it.
        other = q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": "441302012001",
                    "name": "东社区",
                    "boundary": q.geom_value(
                        MultiPolygon([box(X0 + 3 * D, Y0, X0 + 5 * D, Y0 + 2 * D)])
                    ),
                }
            ],
        )[0]
        conn.execute(
            update(m.Community).values(subdistrict_code=func.substr(m.Community.code, 1, 9))
        )
        add_household(
            conn, world._replace(community_id=other), "OUT", X0 + 6 * D, Y0, street_name=None
        )
        conn.execute(  # a warning in the first community
            update(m.Grid).where(m.Grid.plan_id == world.plan_id).values(lead_member_id=None)
        )
    r = runner.invoke(app, ["check", "--database", db_url, "--subdistrict", "441302011", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data == {
        "ok": True,
        "errors": 0,
        "warnings": 1,
        "communities": [
            {
                "code": CODE,
                "errors": 0,
                "warnings": 1,
                "findings": [
                    {
                        "check": "grids_without_lead",
                        "severity": "warning",
                        "count": 4,
                        "ids": [
                            "441302011099001",
                            "441302011099002",
                            "441302011099003",
                            "441302011099004",
                        ],
                        "message": "4 grids of the active plan without a lead",
                    }
                ],
            }
        ],
    }
    both = json.loads(runner.invoke(app, ["check", "--database", db_url, "--json"]).stdout)
    assert [c["code"] for c in both["communities"]] == [CODE, "441302012001"]
    assert (both["ok"], both["errors"]) == (False, 1)
    # Errors come first in a community's findings.
    assert both["communities"][1]["findings"][0]["check"] == "households_outside_communities"
    unknown = runner.invoke(app, ["check", "--database", db_url, "--subdistrict", "441302099"])
    assert unknown.exit_code == 1
    assert "no community in subdistrict '441302099'" in unknown.stderr


def test_ids_are_capped_at_ten_and_the_count_is_whole(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        for i in range(12):
            add_household(
                conn, world, f"Z-{i:02d}", X0 + 1.5 * D, Y0 + 0.1 * D + i * 1e-4, street_name=None
            )
    f = only(report(engine), "households_outside_fields")
    assert f["count"] == 12
    assert f["ids"] == [f"Z-{i:02d}" for i in range(10)]


def test_every_check_code_is_snake_case_with_a_severity() -> None:
    for code, spec in CHECKS.items():
        assert code.replace("_", "").isalpha() and code.islower()
        assert spec.severity in ("error", "warning")


def test_the_demo_community_has_no_errors(demo_engine: Engine, demo_url: str) -> None:
    r = report(demo_engine)
    assert r.ok, r.to_dict()
    # The demo's 665 households of the unfielded compound (金湖苑) and its 558 members whose
    # membership is elsewhere (no branch here) are the only warnings.
    assert checks(r) == {"households_outside_fields", "members_without_branch"}
    assert only(r, "households_outside_fields")["count"] == 665
    cli = runner.invoke(app, ["check", "--database", demo_url, "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["errors"] == 0


def test_an_import_dry_run_ends_with_the_check_of_what_it_would_leave(
    engine: Engine, db_url: str, world: World, tmp_path: Any
) -> None:
    """The dry run checks the data as the import would leave it (read before the rollback):
    a household without building address is found; after the rollback nothing is left."""
    path = tmp_path / "h.csv"
    path.write_text(
        f"address_id,lon,lat,street_name,house_number\nDRY-1,{X0 + 0.0005},{Y0 + 0.0005},,\n",
        encoding="utf-8",
    )
    r = runner.invoke(
        app, ["import", "households", str(path), "--crs", "wgs84", "--database", db_url, "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["inserted"] == 1 and "check" in data
    checked = data["check"]["communities"][0]
    assert checked["code"] == data["community_code"]
    assert {f["check"] for f in checked["findings"]} >= {"households_outside_fields"}
    with engine.connect() as conn:
        assert q.count(conn, m.Household, m.Household.address_id == "DRY-1") == 0
    args = ["import", "households", str(path), "--crs", "wgs84", "--database", db_url]
    committed = runner.invoke(app, [*args, "--json", "--commit"])
    assert "check" not in json.loads(committed.stdout)
