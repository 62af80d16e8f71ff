"""Headless Chromium for tests (pytest plugin: ``pytest_plugins = ["tests.browser_support"]``).

Playwright drives Debian's Chromium (``GEOGRID_CHROMIUM``, default ``/usr/bin/chromium``);
Playwright's own browser downloads are never used. Typical use::

    @pytest.mark.browser
    def test_map(browser, live_server_url):
        with load_page(browser, f"{live_server_url}/maps/x", wait_for=".leaflet-pane",
                       screenshot="map_x") as report:
            report.assert_clean()          # no console/page errors, nothing left the server
            assert report.page.locator(".leaflet-marker-icon").count() == 9

Requests to anything but loopback are blocked by default (an intranet has no internet, and a
test must not wait for a CDN) and still recorded, so ``report.external_requests`` tells a test
what the page tried to fetch from outside.

Without Chromium or Playwright the ``browser`` fixture skips, unless ``GEOGRID_REQUIRE_ALL=1``
(set by ``scripts/test.sh``, hence in CI): then it fails.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("GEOGRID_ARTIFACTS", REPO / "artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # needed as root (CI)
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: Schemes that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-error", "devtools"}
WaitUntil = Literal["commit", "domcontentloaded", "load", "networkidle"]


def require_all() -> bool:
    return os.environ.get("GEOGRID_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (with ``GEOGRID_REQUIRE_ALL=1``, i.e. in CI)."""
    if require_all():
        pytest.fail(f"{reason} (GEOGRID_REQUIRE_ALL=1: browser tests may not skip)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """The Chromium binary to use, or None when there is none."""
    configured = os.environ.get("GEOGRID_CHROMIUM", DEFAULT_CHROMIUM)
    if os.path.isfile(configured) and os.access(configured, os.X_OK):
        return configured
    return shutil.which(configured)


def is_external(url: str) -> bool:
    """Whether fetching ``url`` would leave this machine (anything but loopback)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return False
    return (parts.hostname or "") not in LOOPBACK_HOSTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test session."""
    executable = chromium_path()
    if executable is None:
        unavailable(
            f"Chromium not found at {os.environ.get('GEOGRID_CHROMIUM', DEFAULT_CHROMIUM)!r} "
            "(install Debian's chromium: scripts/setup.sh, or set GEOGRID_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"Playwright is not installed ({exc}); run scripts/setup.sh")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class PageReport:
    """What happened while a page loaded; ``page`` stays open inside ``load_page``."""

    url: str
    page: Page
    status: int | None = None
    console_messages: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    csp_violations: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        """Requested URLs that are not on loopback (blocked unless allowed)."""
        return [url for url in self.requests if is_external(url)]

    def problems(self) -> list[str]:
        """Everything that makes the page not clean, one line each."""
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"external request: {u}" for u in self.external_requests]
            + [f"failed request: {u}" for u in self.failed_requests]
            + [f"HTTP error: {u}" for u in self.bad_responses]
            + [f"CSP violation: {v}" for v in self.csp_violations]
        )

    def read_csp_violations(self) -> list[str]:
        """The page's Content-Security-Policy violations so far (also kept on the report)."""
        self.csp_violations = list(self.page.evaluate("window.__cspViolations || []"))
        return self.csp_violations

    def assert_clean(self) -> None:
        """No console or page errors, no failed or >= 400 responses, nothing left loopback,
        no Content-Security-Policy violation."""
        self.read_csp_violations()
        problems = self.problems()
        if problems:
            raise AssertionError(f"{self.url} is not clean:\n  " + "\n  ".join(problems))


def screenshot_path(name: str) -> Path:
    """``artifacts/screenshots/<name>.png`` (directory created)."""
    path = Path(name)
    if not path.is_absolute():
        path = SCREENSHOTS / path
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def load_page(
    browser: Browser,
    url: str,
    *,
    wait_for: str | None = None,
    screenshot: str | None = None,
    wait_until: WaitUntil = "load",
    allow_external: bool = False,
    timeout_ms: float = 30_000,
    viewport: tuple[int, int] = (1280, 800),
    headers: dict[str, str] | None = None,
) -> Iterator[PageReport]:
    """Open ``url`` in a fresh browser context and yield a :class:`PageReport`.

    ``wait_for``: a CSS selector to wait for (attached to the DOM) after the load event.
    ``screenshot``: a name (or path) under ``artifacts/screenshots``; taken after loading.
    ``wait_until``: Playwright's ``load``, ``domcontentloaded``, ``networkidle`` or ``commit``.
    ``allow_external``: let non-loopback requests through (they are recorded either way).
    ``headers``: extra HTTP headers on every request (e.g. ``X-API-Key``).
    The page and its context are closed when the ``with`` block ends.
    """
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        service_workers="block",
        extra_http_headers=headers,
    )
    context.set_default_timeout(timeout_ms)
    try:
        page = context.new_page()
        report = PageReport(url=url, page=page)

        def on_console(msg: Any) -> None:
            text = f"[{msg.type}] {msg.text}"
            location = msg.location or {}
            if location.get("url"):
                text += f" ({location['url']}:{location.get('lineNumber', '?')})"
            report.console_messages.append(text)
            if msg.type == "error":
                report.console_errors.append(text)

        def on_request_failed(request: Request) -> None:
            report.failed_requests.append(f"{request.url} ({request.failure})")

        def on_response(response: Response) -> None:
            if response.status >= 400:
                report.bad_responses.append(f"{response.status} {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
        page.on("request", lambda request: report.requests.append(request.url))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        if not allow_external:
            context.route(is_external, lambda route: route.abort("blockedbyclient"))

        # Every Content-Security-Policy violation of the page, whatever the console says.
        page.add_init_script(
            "window.__cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', e => window.__cspViolations"
            ".push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));"
        )
        response = page.goto(url, wait_until=wait_until)
        report.status = response.status if response is not None else None
        if wait_for is not None:
            page.wait_for_selector(wait_for, state="attached")
        report.read_csp_violations()
        if screenshot is not None:
            report.screenshot = screenshot_path(screenshot)
            page.screenshot(path=report.screenshot, full_page=True)
        yield report
    finally:
        context.close()


@contextlib.contextmanager
def serve_directory(directory: Path | str) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a free loopback port; yields the base URL (no slash).

    For exported standalone HTML (maps) and static test pages.
    """

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="serve_directory", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
