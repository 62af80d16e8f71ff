"""An official's journey, end to end in headless Chromium (issue 15): signs in, reads the
dashboard, opens an overdue request from the hot-spot map and escalates it.

On a demo database of its own (the journey writes), once per backend: SpatiaLite in Chinese,
PostGIS in English. Screenshots of each step: ``artifacts/screenshots/journey_official_*``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from geogrid.db import models as m
from geogrid.db.engine import make_engine
from geogrid.demo.generate import COMMUNITY_CODE, DemoData
from geogrid.demo.load import load_demo
from tests.browser_support import screenshot_path
from tests.conftest import fresh_database
from tests.requests_factories import new_key
from tests.web_support import assert_page_ok, sign_in, start_server, watch, web_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Opens the request ``id``'s marker on the map (out of its cluster), then its popup's link.
OPEN_FROM_MAP = """([id]) => new Promise((done, fail) => {
    const g = window.geogrid, group = g.layers.requests;
    const marker = group.getLayers().find(l => String(l.options.row[2]) === String(id));
    if (!marker) { fail(new Error('no marker for request ' + id)); return; }
    if (!g.map.hasLayer(group)) g.map.addLayer(group);  // the layer control's tick
    let opened = false;
    const open = () => { if (!opened) { opened = true; marker.openPopup(); done(true); } };
    group.zoomToShowLayer(marker, open);
    // Headless Chromium may not finish the cluster's zoom animation: then take the marker
    // out of its cluster onto the map, as a click on the spiderfied cluster would show it.
    setTimeout(() => { if (!opened) { group.removeLayer(marker); marker.addTo(g.map); open(); } },
               3000);
})"""


@pytest.fixture
def journey(
    backend: str,
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: DemoData,
) -> Iterator[tuple[str, Engine]]:
    """The app over a fresh demo database of ``backend``: (base URL, engine)."""
    url, drop = fresh_database(backend, _templates, tmp_path_factory)
    engine = make_engine(url)
    with engine.begin() as conn:
        load_demo(conn, demo_data)
    base, stop = start_server(url)
    try:
        yield base, engine
    finally:
        stop()
        engine.dispose()
        drop()


def test_official_journey(browser: Browser, journey: tuple[str, Engine], backend: str) -> None:
    base, engine = journey
    lang = "zh" if backend == "spatialite" else "en"
    words = {
        "zh": {"dashboard": "驾驶舱", "done": "已上报", "escalated": "上报"},
        "en": {"dashboard": "Dashboard", "done": "Escalated", "escalated": "escalat"},
    }[lang]
    key = new_key(engine, "official", community_code=COMMUNITY_CODE, name="社区书记")

    def shot(step: str) -> None:
        page.screenshot(
            path=screenshot_path(f"journey_official_{step}_{lang}_{backend}"), full_page=True
        )

    with web_context(browser, base, lang=lang, width=1280) as context:
        page = context.new_page()
        report = watch(page, base)
        # 1. Signs in at /login and lands on the dashboard, named in the header.
        sign_in(page, key)
        page.wait_for_url(f"{base}/dashboard")
        page.wait_for_selector("#chart-rates canvas")
        assert page.locator("h1").inner_text().startswith(words["dashboard"])
        assert "社区书记" in page.locator(".signed-in").inner_text()
        shot("1_dashboard")
        # 2. Reads it: the figures are there, and there are overdue requests to see to.
        overdue = int(page.locator(".figures [data-figure=overdue] .value").inner_text())
        assert overdue > 0
        listed = [int(a) for a in page.locator("#list-overdue tbody tr a").all_inner_texts()]
        # The first on the list that a grid member is still working on (not yet escalated).
        with engine.connect() as conn:
            t = m.table(m.Request)
            working = {
                int(r.id)
                for r in conn.execute(
                    t.select().where(
                        t.c.id.in_(listed), t.c.status.in_(["dispatched", "in_progress"])
                    )
                )
            }
        request_id = next(i for i in listed if i in working)
        assert_page_ok(report, lang=lang)
        # 3. Opens that overdue request from the hot-spot map (officials' map: the session's
        #    audience, no ?audience= typed), through its marker's popup.
        page.goto("/maps/hotspots")
        page.wait_for_selector(".leaflet-marker-pane, .marker-cluster", state="attached")
        page.evaluate(OPEN_FROM_MAP, [request_id])
        link = page.locator(".leaflet-popup-content a[href*='/requests/']")
        link.wait_for()
        shot("2_map_popup")
        with page.expect_navigation():
            link.click()
        assert page.url == f"{base}/requests/{request_id}"
        status = page.locator("[data-status]").first
        assert status.get_attribute("data-status") != "escalated"
        shot("3_request")
        # 4. Escalates it to a department with a reason, and sees it done.
        page.click("details[data-action=escalate] summary")
        page.select_option("#escalate-department", "urban_management")
        page.fill("#escalate-note", "超期未结，请城管部门处理")
        page.click("details[data-action=escalate] button[type=submit]")
        page.wait_for_url(f"**/requests/{request_id}?done=escalate*")
        assert page.locator("[data-status]").first.get_attribute("data-status") == "escalated"
        assert "超期未结，请城管部门处理" in page.locator("table.escalations").inner_text()
        shot("4_escalated")
        assert_page_ok(report, lang=lang)
    # The database agrees: escalated to urban management, by this official's key.
    with engine.connect() as conn:
        row = conn.execute(
            m.table(m.Request).select().where(m.table(m.Request).c.id == request_id)
        ).one()
    assert row.status == "escalated"
