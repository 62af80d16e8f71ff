"""The web workbench's pages in headless Chromium: a live server, sign-in, and the checks every
page must pass (a pytest plugin, registered by ``tests/conftest.py``).

``check_page`` opens a page at a width (1280 or 375 px) in a language and asserts:

* no console or page error, no failed request, nothing leaving loopback, no CSP violation
  (``tests.browser_support.PageReport.assert_clean``);
* no serious or critical accessibility violation found by axe-core (vendored from npm like the
  maps' Leaflet, loaded from the service: ``/maps/assets/axe-core-…/axe.min.js``);
* on an English page, no CJK text outside data values. Data values — names, addresses,
  descriptions, anything that comes from the database as it was typed — are marked in the
  templates with ``translate="no"`` (the HTML attribute that tells translators to leave them),
  and are the only place Chinese may appear on an English page;
* nothing wider than the viewport (no sideways scrolling at 375 px).

Typical use::

    def test_dashboard(browser, web_url, official_key):
        with check_page(browser, f"{web_url}/dashboard", lang="en", width=375,
                        key=official_key, screenshot="web_dashboard_en_375") as report:
            assert report.page.locator("h1").inner_text() == "Dashboard"
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page

from api import create_app
from geogrid.maps.vendoring import NPM_PACKAGES
from geogrid.settings import DatabaseSettings, Settings
from tests.browser_support import CHROMIUM_ARGS, PageReport, is_external, screenshot_path

__all__ = ["CHROMIUM_ARGS", "check_page", "sign_in", "start_server", "web_context"]

_AXE = next(f"{p.folder}/{p.files[-1]}" for p in NPM_PACKAGES if p.name == "axe-core")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
WIDTHS = {1280: 800, 375: 740}

#: Text of the page outside ``[translate=no]`` elements (and outside scripts and styles).
_TEXT_JS = """() => {
    const out = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const el = n.parentElement;
        if (!el || el.closest('[translate="no"], script, style, noscript')) continue;
        if (el.closest('[hidden]') || getComputedStyle(el).display === 'none') continue;
        const t = n.textContent.trim();
        if (t) out.push(t);
    }
    for (const el of document.querySelectorAll('[title], [aria-label], [placeholder], [alt]')) {
        if (el.closest('[translate="no"]')) continue;
        for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
            const v = el.getAttribute(a);
            if (v) out.push(v);
        }
    }
    out.push(document.title);
    return out;
}"""

_AXE_JS = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — '
             + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
}"""


def start_server(url: str, **overrides: Any) -> tuple[str, Callable[[], None]]:
    """The app over database ``url`` in uvicorn on a free loopback port: (base URL, stop).
    ``overrides`` are settings sections (``http=HttpSettings(...)``)."""
    app = create_app(Settings(database=DatabaseSettings(database_url=url), **overrides))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=15)

    return f"http://127.0.0.1:{port}", stop


@contextlib.contextmanager
def web_context(
    browser: Browser, base_url: str, *, lang: str = "zh", width: int = 1280
) -> Iterator[BrowserContext]:
    """A fresh browser (cookies empty) at ``width`` px, in ``lang``; non-loopback blocked."""
    context = browser.new_context(
        viewport={"width": width, "height": WIDTHS.get(width, 800)},
        locale="zh-CN" if lang == "zh" else "en-GB",
        timezone_id="Asia/Shanghai",
        service_workers="block",
        base_url=base_url,
    )
    context.set_default_timeout(30_000)
    context.add_cookies([{"name": "geogrid_lang", "value": lang, "url": base_url}])
    context.route(is_external, lambda route: route.abort("blockedbyclient"))
    try:
        yield context
    finally:
        context.close()


def sign_in(page: Page, key: str, *, next: str = "/") -> None:
    """Sign in through the sign-in form, as a person would."""
    page.goto(f"/login?next={next}")
    page.fill("#api_key", key)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")


def watch(page: Page, url: str) -> PageReport:
    """A report that records what ``page`` does from now on (console, failures, CSP)."""
    report = PageReport(url=url, page=page)
    page.on(
        "console", lambda m: report.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
    page.on("request", lambda r: report.requests.append(r.url))
    page.on("requestfailed", lambda r: report.failed_requests.append(f"{r.url} ({r.failure})"))
    page.on(
        "response",
        lambda r: report.bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__cspViolations"
        ".push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));"
    )
    return report


def assert_page_ok(report: PageReport, *, lang: str, axe: bool = True) -> None:
    """The checks of every page (module docstring) on the page as it is now."""
    page = report.page
    report.assert_clean()
    if lang == "en":
        stray = [t for t in page.evaluate(_TEXT_JS) if CJK.search(t)]
        assert not stray, f"{page.url}: Chinese on an English page outside data values: {stray[:8]}"
    width = page.viewport_size["width"] if page.viewport_size else 1280
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width + 1, f"{page.url}: {scroll} px wide in a {width} px viewport"
    if axe:
        page.add_script_tag(url=f"/maps/assets/{_AXE}")
        violations = page.evaluate(_AXE_JS)
        assert not violations, f"{page.url}: accessibility:\n  " + "\n  ".join(violations)


@contextlib.contextmanager
def check_page(
    browser: Browser,
    url: str,
    *,
    lang: str = "zh",
    width: int = 1280,
    key: str | None = None,
    screenshot: str | None = None,
    wait_for: str | None = None,
    axe: bool = True,
) -> Iterator[PageReport]:
    """Open ``url`` (absolute) signed in with ``key`` (if any) and assert the checks of every
    page; the report's page stays open in the ``with`` block."""
    base = re.match(r"https?://[^/]+", url)
    assert base, url
    with web_context(browser, base.group(0), lang=lang, width=width) as context:
        page = context.new_page()
        if key is not None:
            sign_in(page, key)
        report = watch(page, url)
        response = page.goto(url)
        report.status = response.status if response is not None else None
        if wait_for:
            page.wait_for_selector(wait_for, state="attached")
        page.wait_for_load_state("networkidle")
        if screenshot:
            report.screenshot = screenshot_path(screenshot)
            page.screenshot(path=report.screenshot, full_page=True)
        assert_page_ok(report, lang=lang, axe=axe)
        yield report


@pytest.fixture(scope="module")
def _web_servers() -> Iterator[dict[str, tuple[str, Callable[[], None]]]]:
    servers: dict[str, tuple[str, Callable[[], None]]] = {}
    yield servers
    for _, stop in servers.values():
        stop()


@pytest.fixture
def web_url(demo_engine: Any, backend: str, _web_servers: dict[str, Any]) -> str:
    """Base URL of the app over the demo database of ``backend`` (one server per module)."""
    if backend not in _web_servers:
        _web_servers[backend] = start_server(demo_engine.url.render_as_string(hide_password=False))
    return str(_web_servers[backend][0])
