"""The plan map served by the API (``/maps/plan``) in headless Chromium, both backends: a
draft over the active plan, with the households that would change grid — no console errors,
nothing fetched from outside, the layers drawn."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from geogrid.planning import store
from tests.browser_support import load_page
from tests.factories import X0, D
from tests.requests_factories import World, build_world, new_key
from tests.test_maps_browser import assert_offline, start_server, state
from tests.test_plan_store import _file, _shifted

pytestmark = pytest.mark.browser


def test_plan_map_served(
    browser: Browser, engine: Engine, db_url: str, backend: str, tmp_path: Path
) -> None:
    world: World = build_world(engine)
    with engine.begin() as conn:
        draft, _ = store.load_plan(
            conn,
            community_id=world.community_id,
            plan_file=store.read_plan_file(_file(tmp_path, _shifted(X0 + 1.6 * D))),
        )
    key = new_key(engine, "planner")
    base, stop = start_server(db_url)
    try:
        with load_page(
            browser,
            f"{base}/maps/plan?draft={draft}&lang=en",
            headers={"X-API-Key": key},
            wait_for="path.geogrid-draft",
            screenshot=f"maps_plan_served_{backend}",
        ) as report:
            assert_offline(report)
            s = state(report)
            assert s["paths"]["draft"] == 4 and s["paths"]["active"] == 4
            # The household in 002 west of the new boundary now belongs to 001.
            assert s["layers"]["moved_households"] == 1
        with load_page(browser, f"{base}/maps/plan?draft={draft}") as report:
            assert report.status == 401
    finally:
        stop()
