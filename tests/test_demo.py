"""The demo community loaded into each backend reproduces the article's figures."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api import create_app
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.io.export import export_geopackage
from geogrid.io.readers import gdal_without_spatialite
from geogrid.settings import DatabaseSettings, Settings


def test_summary_reproduces_the_article(demo_engine: Engine, demo_url: str) -> None:
    app = create_app(Settings(database=DatabaseSettings(database_url=demo_url)))
    with TestClient(app) as client:
        r = client.get("/v1/summary", params={"from": "2017-07-01", "to": "2018-04-18"})
    assert r.status_code == 200, r.text
    (c,) = r.json()["communities"]
    assert c["synthetic"] is True
    assert (c["grids"], c["branches"], c["branches_on_grids"]) == (9, 6, 4)
    assert c["members"]["total"] == 696
    assert c["members"]["by_kind"]["resident"] == 138
    assert c["members"]["by_kind"]["duty_post"] == 368
    assert c["members"]["membership_elsewhere"] == 558
    assert 12_000 <= c["households"] <= 13_000
    assert 34_900 <= c["residents"] <= 37_100
    assert c["responsibility_fields"] == 138
    assert c["requests"] == {"received": 86, "resolved": 84, "resolution_rate": 0.977}


def test_every_household_is_assigned_and_the_street_field_holds_126(demo_engine: Engine) -> None:
    with demo_engine.connect() as conn:
        cid = q.community_row(conn).id
        plan = q.require_active_plan(conn, community_id=cid)
        households = q.count(conn, m.Household, m.Household.community_id == cid)
        assigned = q.count(conn, m.HouseholdAssignment, m.HouseholdAssignment.plan_id == plan.id)
        per_field = dict(
            conn.execute(
                select(m.ResponsibilityField.name, func.count())
                .join(
                    m.HouseholdAssignment,
                    m.HouseholdAssignment.field_id == m.ResponsibilityField.id,
                )
                .where(m.HouseholdAssignment.plan_id == plan.id)
                .group_by(m.ResponsibilityField.name)
            ).all()
        )
        open_unrouted = q.count(
            conn,
            m.Request,
            m.Request.status.in_(m.OPEN_STATUSES),
            m.Request.member_id.is_(None),
        )
    assert assigned == households
    assert sum(1 for n in per_field.values() if n == 126) >= 1
    assert per_field["长湖街责任田"] == 126
    assert open_unrouted == 0


def test_exported_households_lie_in_their_grid(demo_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "demo.gpkg"
    with demo_engine.connect() as conn:
        counts = export_geopackage(conn, out=out)
    with gdal_without_spatialite():
        layers = {name for name, _ in pyogrio.list_layers(out)}
        grids = gpd.read_file(out, layer="grids", engine="pyogrio")
        households = gpd.read_file(out, layer="households", engine="pyogrio")
    assert {"communities", "grids", "households", "requests", "members"} <= layers
    assert counts["households"] == len(households) == 12_500
    joined = gpd.sjoin(households, grids[["code", "geometry"]], predicate="within")
    # Every household is strictly inside exactly one grid polygon, and it is its grid_code.
    assert len(joined) == len(households)
    assert (joined["grid_code"] == joined["code"]).all()
    assert "head_name" not in households.columns
