"""The maps in headless Chromium, served by a real API server (uvicorn in a thread, on a free
port) over the demo database on both backends, and as exported standalone files.

Every page must load with no console or page errors and, with ``tiles=none``, without a single
request leaving loopback; the expected layers and grid shapes must be drawn. Screenshots go to
``artifacts/screenshots/maps_*.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from playwright.sync_api import Browser
from shapely.geometry import Point, box
from sqlalchemy import Engine
from typer.testing import CliRunner

from geogrid.maps.base import render_html
from geogrid.maps.cli import map_app
from geogrid.maps.plan import plan_map
from tests.browser_support import PageReport, load_page, serve_directory
from tests.requests_factories import new_key
from tests.web_support import check_page, start_server

pytestmark = pytest.mark.browser

#: Layer sizes and drawn SVG paths, read from the page's window.geogrid registry.
STATE_JS = """() => {
    const g = window.geogrid, out = {layers: {}, shown: {}, meta: g.meta};
    for (const [k, l] of Object.entries(g.layers)) {
        out.layers[k] = l.getLayers ? l.getLayers().length : null;
        out.shown[k] = g.map.hasLayer(l);
    }
    out.paths = {};
    for (const c of ["grid", "field", "cell", "uncovered", "draft", "active"]) {
        out.paths[c] = document.querySelectorAll("path.geogrid-" + c).length;
    }
    out.hot = [...document.querySelectorAll("path.geogrid-cell")]
        .filter(p => p.getAttribute("fill") === "#d7191c").length;
    out.clusters = document.querySelectorAll(".marker-cluster").length;
    out.legend = (document.getElementById("geogrid-legend") || {}).innerText || "";
    out.title = (document.querySelector(".geogrid-title") || {}).innerText || "";
    out.notice = (document.getElementById("geogrid-notice") || {}).innerText || "";
    const t = performance.getEntriesByType("navigation")[0];
    out.load_ms = t ? t.loadEventEnd - t.startTime : null;
    return out;
}"""


@pytest.fixture(scope="module")
def _servers() -> Iterator[dict[str, tuple[str, Callable[[], None]]]]:
    servers: dict[str, tuple[str, Callable[[], None]]] = {}
    yield servers
    for _, stop in servers.values():
        stop()


@pytest.fixture
def live_url(demo_engine: Engine, backend: str, _servers: dict[str, Any]) -> str:
    """Base URL of a running API over the demo database of ``backend`` (one per module)."""
    if backend not in _servers:
        _servers[backend] = start_server(demo_engine.url.render_as_string(hide_password=False))
    return str(_servers[backend][0])


def state(report: PageReport) -> dict[str, Any]:
    return report.page.evaluate(STATE_JS)


def assert_offline(report: PageReport) -> None:
    report.assert_clean()
    assert report.external_requests == []
    assert report.status == 200


def test_coverage_map_served(browser: Browser, live_url: str, backend: str) -> None:
    with load_page(
        browser,
        f"{live_url}/maps/coverage",
        wait_for="path.geogrid-grid",
        screenshot=f"maps_coverage_public_{backend}",
    ) as report:
        assert_offline(report)
        s = state(report)
        assert s["paths"]["grid"] == 9 == s["layers"]["grids"]
        assert s["layers"]["grid_labels"] == 9
        assert s["layers"]["fields"] == 138 == s["paths"]["field"]
        assert s["layers"]["uncovered"] > 0 and s["paths"]["uncovered"] == s["layers"]["uncovered"]
        assert "members" not in s["layers"]  # public
        assert s["meta"]["audience"] == "public" and s["meta"]["tiles"] == "none"
        assert "每名党员联系户数" in s["legend"] and "金源社区 · 网格覆盖图" in s["title"]
        assert s["load_ms"] < 3000, s["load_ms"]
        # The layer control lists the layers; unticking one removes its shapes.
        control = report.page.locator(".leaflet-control-layers-overlays label")
        assert control.count() >= 6
        report.page.get_by_text("责任田（按党员）").click()
        assert report.page.locator("path.geogrid-field").count() == 0
        # A grid's tooltip shows its figures.
        report.page.locator("path.geogrid-grid").first.hover()
        tip = report.page.locator(".leaflet-tooltip").first.inner_text()
        assert "441302011005" in tip and "每名党员联系户数" in tip


def test_official_english_coverage_map_served(
    browser: Browser, live_url: str, backend: str, demo_engine: Engine
) -> None:
    """Signed in as an official (a session, no ?audience=), the coverage map is the officials'
    map; in English there is no Chinese outside data values; every layer is in the legend and
    the orange circles say they count households, not requests."""
    url = f"{live_url}/maps/coverage?lang=en&measure=visit_coverage"
    key = new_key(demo_engine, "official")
    with check_page(
        browser,
        url,
        lang="en",
        key=key,
        wait_for="path.geogrid-grid",
        screenshot=f"maps_coverage_official_en_{backend}",
    ) as report:
        assert_offline(report)
        s = state(report)
        assert s["paths"]["grid"] == 9 and s["meta"]["audience"] == "official"
        assert s["layers"]["members"] > 600 and not s["shown"]["members"]
        assert "Visit coverage" in s["legend"] and "officials" in s["title"]
        assert "< 20%" in s["legend"] and "≥ 80%" in s["legend"]  # rates as percentages
        assert (
            "Households outside every field: the number in an orange circle counts households, "
            "not requests" in s["legend"]
        )
        assert "Vacant responsibility field (red dashes)" in s["legend"]
        badge = report.page.locator(".geogrid-uncovered-cluster div").first
        assert badge.get_attribute("title", timeout=5000).endswith("households outside every field")
        report.page.get_by_text("Members' positions").first.click()
        report.page.wait_for_selector(".marker-cluster")
        assert state(report)["clusters"] > 0
        report.assert_clean()


def test_hotspot_map_served(browser: Browser, live_url: str, backend: str) -> None:
    with load_page(
        browser,
        f"{live_url}/maps/hotspots",
        wait_for="path.geogrid-cell",
        screenshot=f"maps_hotspots_{backend}",
    ) as report:
        assert_offline(report)
        s = state(report)
        assert s["paths"]["cell"] == s["meta"]["cells"] == s["layers"]["hotspots"]
        assert s["hot"] >= 9 and s["meta"]["hot"] >= 9 and s["meta"]["status"] == "ok"
        assert s["paths"]["grid"] == 9
        assert s["clusters"] > 0  # open requests, clustered
        assert s["layers"]["heat"] is None and not s["shown"]["heat"]  # heat: off until ticked
        assert s["notice"] == "" and s["meta"]["audience"] == "public"
        assert "热点 99%：这片未结诉求的聚集极不可能是偶然" in s["legend"]
        assert "Benjamini-Hochberg" in s["legend"]
        # The blue halos say what they are.
        assert "未结诉求密度（热力图层，默认关闭）" in s["legend"]
        report.page.get_by_text("未结诉求密度", exact=True).click()
        assert report.page.locator("canvas.leaflet-heatmap-layer").count() == 1
        # Public: a request's popup links nowhere (no popup at all), and no request number.
        assert report.page.evaluate(OPEN_A_REQUEST) == {"popup": None}
        report.assert_clean()


#: Opens the first request's marker (out of its cluster) and reads its tooltip and popup.
OPEN_A_REQUEST = """() => new Promise(done => {
    const group = window.geogrid.layers.requests, marker = group.getLayers()[0];
    group.zoomToShowLayer(marker, () => {
        if (!marker.getPopup()) { done({popup: null}); return; }
        marker.openPopup();
        const el = marker.getPopup().getElement();
        const a = el.querySelector("a");
        done({popup: el.innerText, href: a && a.getAttribute("href"),
              target: a && a.getAttribute("target"), id: marker.options.row[2],
              grid: marker.options.row[3],
              data: [...el.querySelectorAll('[translate="no"]')].map(e => e.innerText)});
    });
})"""


def test_official_hotspot_map_embedded(
    browser: Browser, live_url: str, backend: str, demo_engine: Engine
) -> None:
    """As the dashboard embeds it: signed in as an official, ?embed=1, in English at 375 px —
    the officials' map without a title box; a request's popup gives its number and grid and
    links to its page in the whole window."""
    key = new_key(demo_engine, "official")
    with check_page(
        browser,
        f"{live_url}/maps/hotspots?community=441302011005&embed=1&lang=en",
        lang="en",
        width=375,
        key=key,
        wait_for="path.geogrid-cell",
        screenshot=f"maps_hotspots_embed_en_375_{backend}",
    ) as report:
        s = state(report)
        assert s["meta"]["audience"] == "official" and s["meta"]["embed"] is True
        assert s["title"] == "" and s["hot"] >= 9
        # On a phone the legend starts closed (the map stays in view); a tap opens it.
        assert "Hot spot" not in s["legend"]
        report.page.locator("#geogrid-legend summary").click()
        s = state(report)
        assert (
            "Hot spot 99%: this cluster of unresolved requests is very unlikely to be chance"
            in s["legend"]
        )
        popup = report.page.evaluate(OPEN_A_REQUEST)
        assert popup["href"] == f"../requests/{popup['id']}" and popup["target"] == "_top"
        assert "Request: " in popup["popup"] and f"Grid: {popup['grid']}" in popup["popup"]
        assert "Open the request's page" in popup["popup"]
        assert popup["grid"] in popup["data"]
        # The link, resolved against /maps/hotspots, is the request's page.
        href = report.page.evaluate("() => document.querySelector('.leaflet-popup a').href")
        assert href == f"{live_url}/requests/{popup['id']}"
        # In an <iframe> of a page of the same origin (the dashboard): the coverage map loads.
        report.page.evaluate(
            """() => { const f = document.createElement('iframe'); f.name = 'embedded';
            f.title = 'map'; f.src = '/maps/coverage?community=441302011005&embed=1&lang=en';
            document.body.appendChild(f); }"""
        )
        frame = report.page.wait_for_selector("iframe[name=embedded]").content_frame()
        assert frame is not None
        frame.wait_for_selector("path.geogrid-grid", state="attached")
        assert frame.evaluate("window.geogrid.meta.audience") == "official"
        assert frame.locator(".geogrid-title").count() == 0
        report.assert_clean()


def test_hotspot_map_by_grid_says_too_few(browser: Browser, live_url: str, backend: str) -> None:
    with load_page(
        browser,
        f"{live_url}/maps/hotspots?unit=grids&lang=en",
        wait_for="#geogrid-notice",
        screenshot=f"maps_hotspots_grids_{backend}",
    ) as report:
        assert_offline(report)
        s = state(report)
        assert "Too few features (9; at least 30 are needed)" in s["notice"]
        assert s["hot"] == 0 and s["meta"]["status"] == "too_few_features"


def test_tiles_come_only_from_the_tile_server(
    browser: Browser, live_url: str, backend: str
) -> None:
    """tiles=osm: the only requests leaving the server are OpenStreetMap tiles (blocked here)."""
    with load_page(
        browser, f"{live_url}/maps/coverage?tiles=osm", wait_for="path.geogrid-grid"
    ) as report:
        report.page.wait_for_timeout(300)
        assert report.external_requests, "the base map should ask for tiles"
        assert all(
            u.startswith("https://tile.openstreetmap.org/") and u.endswith(".png")
            for u in report.external_requests
        )
        assert report.page_errors == []
        assert all(
            "tile.openstreetmap.org" in m or "ERR_BLOCKED" in m for m in report.console_errors
        )
        assert state(report)["paths"]["grid"] == 9


def test_exported_files_work_offline(
    browser: Browser, demo_engine: Engine, backend: str, tmp_path: Path
) -> None:
    url = demo_engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    for name in ("coverage", "hotspots"):
        r = runner.invoke(
            map_app, [name, "--out", str(tmp_path / f"{name}.html"), "--database", url]
        )
        assert r.exit_code == 0, r.output
    with serve_directory(tmp_path) as base:
        with load_page(
            browser,
            f"{base}/coverage.html",
            wait_for="path.geogrid-grid",
            screenshot=f"maps_export_coverage_{backend}",
        ) as report:
            assert_offline(report)
            assert state(report)["paths"]["grid"] == 9
        with load_page(browser, f"{base}/hotspots.html", wait_for="path.geogrid-cell") as report:
            assert_offline(report)
            assert state(report)["hot"] >= 9


def test_png_print_through_chromium(tmp_path: Path) -> None:
    from geogrid.maps.coverage import coverage_map
    from geogrid.maps.png import render_png

    grids = gpd.GeoDataFrame(
        {
            "code": ["441302011005001", "441302011005002"],
            "name": ["第1网格", "第2网格"],
            "households": [10, 20],
            "members": [1, 2],
        },
        geometry=[box(114.40, 23.14, 114.41, 23.15), box(114.41, 23.14, 114.42, 23.15)],
        crs="EPSG:4326",
    )
    page = render_html(coverage_map(grids, title="金源社区 · 网格覆盖图"))
    out = render_png(page, tmp_path / "map.png", size=(800, 600))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plan_map_in_the_browser(browser: Browser, tmp_path: Path) -> None:
    x0, y0, d = 114.40, 23.14, 0.01
    active = gpd.GeoDataFrame(
        {"code": ["A", "B"], "name": ["甲", "乙"]},
        geometry=[box(x0, y0, x0 + d, y0 + d), box(x0 + d, y0, x0 + 2 * d, y0 + d)],
        crs="EPSG:4326",
    )
    draft = gpd.GeoDataFrame(
        {"code": ["A", "B"], "name": ["甲", "乙"]},
        geometry=[box(x0, y0, x0 + 1.5 * d, y0 + d), box(x0 + 1.5 * d, y0, x0 + 2 * d, y0 + d)],
        crs="EPSG:4326",
    )
    homes = gpd.GeoSeries(
        [Point(x0 + 0.001 * (k + 0.5), y0 + 0.005) for k in range(20)], crs="EPSG:4326"
    )
    (tmp_path / "plan.html").write_text(
        render_html(plan_map(active, draft, households=homes, title="方案对比")), encoding="utf-8"
    )
    with (
        serve_directory(tmp_path) as base,
        load_page(
            browser, f"{base}/plan.html", wait_for="path.geogrid-draft", screenshot="maps_plan"
        ) as report,
    ):
        assert_offline(report)
        s = state(report)
        assert s["paths"]["draft"] == 2 and s["paths"]["active"] == 2
        assert s["layers"]["moved_households"] == 5
        assert "实际调整网格（归属新的片区）的住户：5 户" in s["title"]
        assert "少于 300 户" in s["legend"] and "300–500 户（目标）" in s["legend"]


def test_openapi_page_works_offline(browser: Browser, live_url: str, backend: str) -> None:
    """The API's docs page (Swagger UI) loads from the server itself and shows the lookup."""
    with load_page(
        browser,
        f"{live_url}/docs",
        wait_for=".swagger-ui .opblock",
        screenshot=f"openapi_docs_{backend}",
    ) as report:
        assert_offline(report)
        paths = report.page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
        assert any(p.startswith("/v1/lookup") for p in paths)
        assert any(p.startswith("/open311/v2/") for p in paths)


@pytest.mark.parametrize("path", ["/", "/login", "/logout", "/redoc", "/maps/hotspots"])
def test_pages_hold_their_content_security_policy(
    browser: Browser, live_url: str, backend: str, path: str
) -> None:
    """Each page runs under its CSP without a violation, and the policy is enforced: a script
    without the page's nonce is refused (and seen as a violation)."""
    with load_page(browser, f"{live_url}{path}", wait_until="networkidle") as report:
        assert report.read_csp_violations() == []
        report.page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }"
        )
        assert report.page.evaluate("window.__injected") is None
        assert any("script-src" in v for v in report.read_csp_violations())
