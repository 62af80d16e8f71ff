"""The residents' pages in headless Chromium (issue 15, items 5 and 8): ``/report``,
``/track/{token}`` and ``/find`` at 1280 and 375 px in Chinese and English, with the checks of
every page (``tests.web_support.check_page``), and the resident's journey: file a request by
tapping the map, get the token, follow it on the status page as it moves on.

The pages run over a demo database of their own (the shared demo must not be written to):
the journey files requests in it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select

from geogrid.access import Actor
from geogrid.db import models as m
from geogrid.db.engine import make_engine
from geogrid.db.queries import requests as request_queries
from geogrid.demo.generate import DemoData
from geogrid.requests import intake
from geogrid.requests.workflow import ActionInput, act
from geogrid.settings import RequestsSettings
from tests.conftest import fresh_database
from tests.web_support import assert_page_ok, check_page, start_server, watch, web_context

pytestmark = pytest.mark.browser

REPORTER_NAME = "陈报告人"
REPORTER_PHONE = "13912345678"


@pytest.fixture(scope="module")
def _intake_servers() -> Iterator[dict[str, tuple[str, str, list[Callable[[], None]]]]]:
    servers: dict[str, tuple[str, str, list[Callable[[], None]]]] = {}
    yield servers
    for _, _, stops in servers.values():
        for stop in stops:
            stop()


@pytest.fixture
def intake_site(
    backend: str,
    _intake_servers: dict[str, Any],
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: DemoData,
) -> tuple[str, str]:
    """(base URL, database URL) of the app over a demo database of this module's own."""
    if backend not in _intake_servers:
        from geogrid.demo.load import load_demo

        url, drop = fresh_database(backend, _templates, tmp_path_factory)
        engine = make_engine(url)
        with engine.begin() as conn:
            load_demo(conn, demo_data)
        engine.dispose()
        base, stop = start_server(url)
        _intake_servers[backend] = (base, url, [stop, drop])
    base, url, _ = _intake_servers[backend]
    return base, url


def _advance(engine: Engine, request_id: int, *actions: str) -> None:
    """Move a request on as the community's office would."""
    for action in actions:
        with engine.begin() as conn:
            version = conn.execute(
                select(m.Request.version).where(m.Request.id == request_id)
            ).scalar_one()
            params = ActionInput(version=version, note="已安排处理" if action == "reject" else None)
            act(
                conn,
                request_id=request_id,
                action=action,
                actor=Actor.system("office"),
                params=params,
            )


def _filed(db_url: str) -> str:
    """A request filed as the page files it, dispatched and started: its token."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        some = conn.execute(
            select(m.Request.id).where(m.Request.grid_id.is_not(None)).limit(1)
        ).scalar_one()
        where = request_queries.request_row(conn, request_id=some)
        assert where is not None
        lon, lat = where.lon, where.lat
        out = intake.file_report(
            conn,
            intake.Report(
                category="street_light",
                description="路灯不亮，晚上很黑",
                lon=str(lon),
                lat=str(lat),
                name=REPORTER_NAME,
                phone=REPORTER_PHONE,
            ),
            client="192.0.2.10",
            now=m.utcnow(),
            settings=RequestsSettings(),
        )
    _advance(engine, out.request_id, "register", "dispatch", "start")
    engine.dispose()
    assert out.token is not None
    return out.token


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_residents_pages(
    browser: Browser, intake_site: tuple[str, str], backend: str, lang: str, width: int
) -> None:
    base, db_url = intake_site
    tag = f"{lang}_{width}_{backend}"
    with check_page(
        browser, f"{base}/report", lang=lang, width=width, screenshot=f"web_report_{tag}"
    ) as report:
        page = report.page
        assert page.locator("h1").inner_text() == (
            "我要反映" if lang == "zh" else "Report a problem"
        )
        # the map: Leaflet running, the grids drawn (offline: no base map by default)
        page.wait_for_selector("#intake-map .leaflet-interactive")
        assert page.locator("#intake-map path.leaflet-interactive").count() >= 9
    token = _filed(db_url)
    with check_page(
        browser, f"{base}/track/{token}", lang=lang, width=width, screenshot=f"web_track_{tag}"
    ) as report:
        text = report.page.locator("main").inner_text()
        assert REPORTER_NAME not in text and REPORTER_PHONE not in text
        done = report.page.locator(".steps li.done").evaluate_all(
            "xs => xs.map(x => x.dataset.step)"
        )
        assert done == ["received", "dispatched", "in_progress"]
    with check_page(
        browser,
        f"{base}/find?address=%E9%95%BF%E6%B9%96%E8%A1%9712%E5%8F%B7",  # 长湖街12号
        lang=lang,
        width=width,
        screenshot=f"web_find_{tag}",
    ) as report:
        assert re.fullmatch(r"\d{15}", report.page.locator("#grid-code").inner_text())


def _jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (180, 120, 60)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_resident_journey(
    browser: Browser, intake_site: tuple[str, str], backend: str, lang: str
) -> None:
    """A resident on a phone: the landing page → report (category, words, a photo, a tap on
    the map, a phone number) → the token → the status page, again after it moved on."""
    base, db_url = intake_site
    shot = f"journey_resident_{lang}_{backend}"
    with web_context(browser, base, lang=lang, width=375) as context:
        page: Page = context.new_page()
        report = watch(page, f"{base}/")
        page.goto("/")
        page.click(".tiles a[href='/report']")
        page.wait_for_url("**/report")
        page.wait_for_selector("#intake-map .leaflet-interactive")
        page.select_option("#category", "sewer_blocked")
        page.fill("#description", "小区门口下水道堵了，污水漫到路上")
        page.set_input_files(
            "#photo",
            files=[{"name": "drain.jpg", "mimeType": "image/jpeg", "buffer": _jpeg(3000, 2000)}],
        )
        # wider than 2,560 px: made smaller in the browser before it is sent
        page.locator("#photo[data-resized-bytes]").wait_for(state="attached")
        box = page.locator("#intake-map").bounding_box()
        assert box is not None
        page.locator("#intake-map").click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        assert page.locator("#lon").input_value() and page.locator("#lat").input_value()
        assert page.locator("#map-status").inner_text().strip()
        page.fill("#name", REPORTER_NAME)
        page.fill("#phone", REPORTER_PHONE)
        page.screenshot(path=_path(f"{shot}_1_form"), full_page=True)
        assert_page_ok(report, lang=lang)
        with page.expect_navigation():
            page.click("#report-form button[type=submit]")
        assert re.search(r"/track/[A-Za-z0-9_-]+\?filed=1$", page.url), page.url
        token = page.locator("#token").inner_text()
        assert token and token in page.url
        page.screenshot(path=_path(f"{shot}_2_token"), full_page=True)
        assert_page_ok(report, lang=lang)

        engine = make_engine(db_url)
        with engine.connect() as conn:
            row = conn.execute(
                select(m.Request.id, m.Request.grid_id, m.Request.member_id, m.Request.source)
                .where(m.Request.token == token)
            ).one()  # fmt: skip
            media = (
                conn.execute(select(m.RequestMedia.size).where(m.RequestMedia.request_id == row.id))
                .scalars()
                .all()
            )
        assert row.grid_id is not None and row.source == "web"  # routed at once
        assert len(media) == 1 and media[0] < 5_000_000
        _advance(engine, row.id, "register", "dispatch", "start")
        engine.dispose()

        # Later: the resident follows it with the token.
        page.goto("/")
        page.click(".tiles a[href='/track']")
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert page.url.endswith(f"/track/{token}")
        done = page.locator(".steps li.done").evaluate_all("xs => xs.map(x => x.dataset.step)")
        assert done == ["received", "dispatched", "in_progress"]
        text = page.locator("main").inner_text()
        assert REPORTER_NAME not in text and REPORTER_PHONE not in text
        page.screenshot(path=_path(f"{shot}_3_status"), full_page=True)
        assert_page_ok(report, lang=lang)


def _path(name: str) -> str:
    from tests.browser_support import screenshot_path

    return str(screenshot_path(name))
