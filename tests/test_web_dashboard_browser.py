"""The dashboard in headless Chromium at 1280 and 375 px, in Chinese and English: the checks
of every page (``tests.web_support.check_page``), the charts drawn by ECharts, the maps'
frames loaded, and a chart saved as a PNG."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from geogrid.demo.generate import COMMUNITY_CODE
from tests.browser_support import screenshot_path
from tests.requests_factories import new_key
from tests.web_support import check_page

pytestmark = pytest.mark.browser

ARTICLE = "from=2017-07-01&to=2018-04-18"


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_dashboard_page(
    browser: Browser, web_url: str, demo_engine: Engine, backend: str, lang: str, width: int
) -> None:
    key = new_key(demo_engine, "official", community_code=COMMUNITY_CODE)
    with check_page(
        browser,
        f"{web_url}/dashboard?{ARTICLE}",
        lang=lang,
        width=width,
        key=key,
        screenshot=f"web_dashboard_{lang}_{width}_{backend}",
        wait_for="#chart-rates canvas",
    ) as report:
        page = report.page
        assert page.locator("h1").inner_text().startswith("驾驶舱" if lang == "zh" else "Dashboard")
        figures = page.locator(".figures [data-figure=received] .value").inner_text()
        assert figures == "86"
        assert page.locator(".figures [data-figure=resolution_rate] .value").inner_text() == "97.7%"
        # Each chart drew on a canvas as wide as its box (it follows the page's width).
        for chart in ("#chart-volume", "#chart-rates"):
            box = page.locator(chart).bounding_box()
            canvas = page.locator(f"{chart} canvas").first.bounding_box()
            assert box and canvas and canvas["width"] > 0.9 * (box["width"] - 2), chart
            assert box["width"] <= width
        # The maps' frames loaded their map pages (Leaflet running inside).
        for name in ("coverage", "hotspots"):
            frame = page.frame_locator(f"#map-{name}")
            frame.locator(".leaflet-container").first.wait_for(state="attached")
        if width == 1280 and lang == "zh":  # the screen as an official first sees it, and below
            page.screenshot(path=screenshot_path(f"web_dashboard_zh_1280_top_{backend}"))
            page.locator("#chart-volume").scroll_into_view_if_needed()
            page.screenshot(path=screenshot_path(f"web_dashboard_zh_1280_charts_{backend}"))
        if width == 375 and lang == "zh":
            page.locator("#table-grids").scroll_into_view_if_needed()
            page.screenshot(path=screenshot_path(f"web_dashboard_zh_375_table_{backend}"))
        # Wide tables scroll inside their box, not the page (check_page: no sideways scroll).
        assert page.locator(".table-wrap #table-grids").count() == 1


def test_chart_saves_as_png(browser: Browser, web_url: str, demo_engine: Engine) -> None:
    key = new_key(demo_engine, "official", community_code=COMMUNITY_CODE)
    with check_page(
        browser,
        f"{web_url}/dashboard?{ARTICLE}",
        lang="en",
        width=1280,
        key=key,
        wait_for="#chart-volume canvas",
        axe=False,
    ) as report:
        page = report.page
        # ECharts' toolbox button (top right of the chart) downloads the chart as a PNG.
        chart = page.locator("#chart-volume")
        chart.scroll_into_view_if_needed()
        title = chart.evaluate(
            "el => echarts.getInstanceByDom(el).getOption().toolbox[0].feature.saveAsImage.title"
        )
        assert title == "Save as PNG"
        box = chart.bounding_box()
        assert box is not None
        with page.expect_download() as download:
            page.mouse.click(box["x"] + box["width"] - 33, box["y"] + 30)
        got = download.value
        assert got.suggested_filename == "requests_by_month.png"
        path = got.path()
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
