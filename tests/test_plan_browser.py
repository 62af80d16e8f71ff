"""The plan map served by the API (``/maps/plan``) in headless Chromium, both backends: a
draft over the active plan, with the households that would really change grid — no console
errors, nothing fetched from outside, the layers drawn; a real move and a renumbering told
apart as the plan diff tells them (``households_rehomed``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from geogrid.planning import store
from tests.browser_support import load_page
from tests.factories import X0, D, square_grids
from tests.requests_factories import World, build_world, new_key
from tests.test_maps_browser import assert_offline, start_server, state
from tests.test_plan_store import _file, _shifted
from tests.web_support import check_page

pytestmark = pytest.mark.browser


def test_plan_map_served(
    browser: Browser, engine: Engine, db_url: str, backend: str, tmp_path: Path
) -> None:
    world: World = build_world(engine)
    (nw, geom_nw), (ne, geom_ne), *south = square_grids()
    with engine.begin() as conn:
        moved, _ = store.load_plan(
            conn,
            community_id=world.community_id,
            plan_file=store.read_plan_file(_file(tmp_path, _shifted(X0 + 1.6 * D))),
        )
        # The northern grids swap codes: the same territory, new codes — nobody moves.
        renumbered, _ = store.load_plan(
            conn,
            community_id=world.community_id,
            plan_file=store.read_plan_file(
                _file(tmp_path, [(ne, geom_nw), (nw, geom_ne), *south], name="renumbered")
            ),
        )
    key = new_key(engine, "planner")
    base, stop = start_server(db_url)
    try:

        def rehomed(plan: int) -> int:
            r = httpx.get(f"{base}/v1/plans/{plan}/diff", headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
            return int(r.json()["counts"]["households_rehomed"])

        # Signed in (a session), in English: no Chinese outside data values.
        with check_page(
            browser,
            f"{base}/maps/plan?draft={moved}&lang=en",
            lang="en",
            key=key,
            wait_for="path.geogrid-draft",
            screenshot=f"maps_plan_served_{backend}",
        ) as report:
            assert_offline(report)
            s = state(report)
            assert s["paths"]["draft"] == 4 and s["paths"]["active"] == 4
            # The household in 002 west of the new boundary now belongs to 001.
            assert s["layers"]["moved_households"] == 1
            assert s["meta"]["moved_households"] == rehomed(moved) == 1
            assert "Households really changing grid (new territory): 1" in s["title"]
            assert "Under 300 households" in s["legend"]
        with load_page(
            browser,
            f"{base}/maps/plan?draft={renumbered}",
            headers={"X-API-Key": key},
            wait_for="path.geogrid-draft",
        ) as report:
            assert_offline(report)
            s = state(report)
            assert s["meta"]["moved_households"] == rehomed(renumbered) == 0
            assert s["meta"]["households_by_code"] > 0  # every code changed, nobody moved
            assert s["meta"]["renumbered"] == {nw: ne, ne: nw}
            assert "moved_households" not in s["layers"]
            assert "仅重新编码的网格（范围不变、编码改变）" in s["title"]
        # Without a session a browser is sent to sign in, and comes back to the map.
        with load_page(browser, f"{base}/maps/plan?draft={moved}") as report:
            assert report.page.url == f"{base}/login?next=/maps/plan%3Fdraft%3D{moved}"
    finally:
        stop()
