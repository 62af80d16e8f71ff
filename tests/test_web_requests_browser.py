"""The request pages in headless Chromium: the list and a request's page over the demo at 1280
and 375 px in Chinese and English (``tests.web_support.check_page``: clean console, axe-core,
no stray Chinese on English pages, no sideways scroll), and an official escalating a request
through its page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine

from tests.requests_factories import World, file_request, make_app, new_key
from tests.web_support import assert_page_ok, check_page, sign_in, start_server, web_context

pytestmark = pytest.mark.browser


def _first(web_url: str, key: str, query: str) -> int:
    r = httpx.get(f"{web_url}/v1/requests?limit=1&{query}", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return int(r.json()["items"][0]["id"])


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_list_and_detail_pages(
    browser: Browser, web_url: str, demo_engine: Engine, backend: str, lang: str, width: int
) -> None:
    key = new_key(demo_engine, "official")
    # A request of the demo with a history worth showing: resolved, with feedback.
    rid = _first(web_url, key, "status=resolved,closed")
    with check_page(
        browser,
        f"{web_url}/requests",
        lang=lang,
        width=width,
        key=key,
        screenshot=f"web_requests_{lang}_{width}_{backend}",
    ) as report:
        page = report.page
        assert page.locator("h1").inner_text() == ("诉求" if lang == "zh" else "Requests")
        rows = page.locator("tr[data-id]")
        assert rows.count() == 25  # a full first page of the demo's requests
        # Each row links to its page.
        href = rows.first.locator("a").first.get_attribute("href")
        assert href == f"/requests/{rows.first.get_attribute('data-id')}"

        page.goto(f"{web_url}/requests/{rid}")
        page.wait_for_selector("#request-map .leaflet-interactive", state="attached")
        page.wait_for_load_state("networkidle")
        page.screenshot(
            path=str(report.screenshot).replace("web_requests_", "web_request_detail_"),
            full_page=True,
        )
        assert_page_ok(report, lang=lang)
        assert page.locator(".timeline li").count() >= 4
        assert page.locator(".routing .grid").inner_text().strip() != ""


def test_filters_live_with_htmx(browser: Browser, web_url: str, demo_engine: Engine) -> None:
    key = new_key(demo_engine, "official")
    with check_page(browser, f"{web_url}/requests", lang="en", key=key, axe=False) as report:
        page = report.page
        page.select_option("#f-status", "resolved")
        page.wait_for_url("**/requests?*status=resolved*")  # hx-push-url: the URL follows
        expect(page.locator("tr[data-id] .badge").first).to_have_text("resolved")
        statuses = page.locator("tr[data-id] .badge:not(.overdue)").all_inner_texts()
        assert statuses and set(statuses) == {"resolved"}
        report.assert_clean()


@pytest.fixture
def escalation_server(db_url: str, world: World) -> Iterator[str]:
    url, stop = start_server(db_url)
    try:
        yield url
    finally:
        stop()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_official_escalates_through_the_page(
    browser: Browser, engine: Engine, db_url: str, escalation_server: str, lang: str
) -> None:
    """On a database of its own (the demo is shared): an official opens a dispatched
    request, escalates it to urban management with a reason, and sees it done."""
    official = new_key(engine, "official")
    from fastapi.testclient import TestClient

    with TestClient(make_app(db_url)) as api:
        rid = file_request(api, official).json()["id"]
        for version, action in enumerate(("register", "dispatch"), start=1):
            r = api.post(
                f"/v1/requests/{rid}/{action}",
                json={"version": version},
                headers={"X-API-Key": official},
            )
            assert r.status_code == 200, r.text
    with web_context(browser, escalation_server, lang=lang, width=375) as context:
        page = context.new_page()
        sign_in(page, official, next=f"/requests/{rid}")
        page.wait_for_url(f"**/requests/{rid}")
        page.click("details[data-action=escalate] summary")
        page.select_option("#escalate-department", "urban_management")
        page.fill("#escalate-note", "路面塌陷，需要城管处理")
        page.click("details[data-action=escalate] button[type=submit]")
        page.wait_for_url(f"**/requests/{rid}?done=escalate*")
        expect(page.locator("#done")).to_be_visible()
        status = page.locator(".state .badge").first
        assert status.get_attribute("data-status") == "escalated"
        escalations = page.locator("table.escalations").inner_text()
        assert "路面塌陷，需要城管处理" in escalations
        page.screenshot(path=f"artifacts/screenshots/web_request_escalated_{lang}.png")
