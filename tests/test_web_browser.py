"""The web workbench's frame in headless Chromium: the landing page, sign-in, language switch,
at 1280 and 375 px in Chinese and English, with the checks of every page
(``tests.web_support.check_page``: clean console, axe-core, no stray Chinese on English pages).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine

from tests.requests_factories import new_key
from tests.web_support import check_page

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_landing_page(browser: Browser, web_url: str, backend: str, lang: str, width: int) -> None:
    with check_page(
        browser,
        f"{web_url}/",
        lang=lang,
        width=width,
        screenshot=f"web_home_{lang}_{width}_{backend}",
    ) as report:
        page = report.page
        title = "网格化服务管理" if lang == "zh" else "Community grid service"
        assert page.locator("h1").inner_text() == title
        links = page.locator(".tiles a").evaluate_all("xs => xs.map(a => a.getAttribute('href'))")
        assert links == ["/report", "/track", "/maps/coverage", "/maps/hotspots", "/find"]
        assert page.locator(".sign-in").count() == 1 and page.locator(".signed-in").count() == 0


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sign_in_shows_who(browser: Browser, web_url: str, demo_engine: Engine, lang: str) -> None:
    key = new_key(demo_engine, "planner")
    with check_page(browser, f"{web_url}/", lang=lang, width=375, key=key) as report:
        who = report.page.locator(".signed-in")
        assert who.get_attribute("data-role") == "planner"
        assert ("规划人员" if lang == "zh" else "planner") in who.inner_text()
        # Sign out is a form with its CSRF token: after it the page is anonymous again.
        report.page.click("form[action='/logout'] button")
        report.page.wait_for_url("**/login")
        report.page.goto("/")
        assert report.page.locator(".signed-in").count() == 0


def test_language_switch(browser: Browser, web_url: str) -> None:
    with check_page(browser, f"{web_url}/", lang="zh", axe=False) as report:
        page = report.page
        page.click("a.lang")
        page.wait_for_url(f"{web_url}/")
        assert page.locator("h1").inner_text() == "Community grid service"
        assert page.locator("html").get_attribute("lang") == "en"
        page.click("a.lang")
        assert page.locator("h1").inner_text() == "网格化服务管理"
