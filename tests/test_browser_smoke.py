"""Smoke tests of the headless-browser harness (tests/browser_support.py).

They prove Chromium starts, runs a page's JavaScript, writes a screenshot, and that the harness
can fail: console errors, uncaught exceptions and requests leaving loopback are all caught.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser_support import load_page, serve_directory

pytestmark = pytest.mark.browser

CLEAN_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>geogrid smoke</title><link rel="icon" href="data:,"></head>
<body>
<h1>金源社区 网格 smoke test</h1>
<div id="out">JavaScript did not run</div>
<script>
  const out = document.getElementById("out");
  out.textContent = "JS ran: " + (6 * 7) + " 金源社区";
  out.dataset.ran = "1";
  console.log("smoke page ready");
</script>
</body>
</html>
"""

BROKEN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>broken</title><link rel="icon" href="data:,"></head>
<body><div id="out">before</div>
<script>console.error("console boom from smoke page");</script>
<script>
  document.getElementById("out").dataset.ran = "1";
  throw new Error("uncaught boom from smoke page");
</script>
</body></html>
"""

EXTERNAL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>external</title><link rel="icon" href="data:,">
<script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"></script>
</head>
<body><div id="out" data-ran="1">static</div></body></html>
"""


def _site(tmp_path: Path, **pages: str) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    for name, html in pages.items():
        (site / f"{name}.html").write_text(html, encoding="utf-8")
    return site


def test_page_runs_javascript_cleanly_and_is_screenshotted(browser, tmp_path: Path) -> None:
    site = _site(tmp_path, index=CLEAN_PAGE)
    started = time.time()
    with serve_directory(site) as base:
        url = f"{base}/index.html"
        with load_page(
            browser, url, wait_for="#out[data-ran='1']", screenshot="browser_smoke"
        ) as report:
            assert report.status == 200
            assert report.page.text_content("#out") == "JS ran: 42 金源社区"
            assert report.console_errors == []
            assert report.page_errors == []
            assert any("smoke page ready" in m for m in report.console_messages)
            assert report.requests, "the browser made no request at all"
            assert report.requests[0] == url
            assert all(u.startswith(f"{base}/") for u in report.requests), report.requests
            assert report.external_requests == []
            report.assert_clean()
            shot = report.screenshot
    assert shot is not None
    assert shot.is_file()
    assert shot.parent.name == "screenshots"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000
    assert shot.stat().st_mtime >= started - 1


def test_harness_catches_console_and_page_errors(browser, tmp_path: Path) -> None:
    site = _site(tmp_path, broken=BROKEN_PAGE)
    with (
        serve_directory(site) as base,
        load_page(browser, f"{base}/broken.html", wait_for="#out[data-ran='1']") as report,
    ):
        assert any("console boom from smoke page" in m for m in report.console_errors)
        assert any("uncaught boom from smoke page" in m for m in report.page_errors)
        with pytest.raises(AssertionError, match="uncaught boom"):
            report.assert_clean()


def test_harness_blocks_and_reports_external_requests(browser, tmp_path: Path) -> None:
    site = _site(tmp_path, external=EXTERNAL_PAGE)
    with serve_directory(site) as base, load_page(browser, f"{base}/external.html") as report:
        assert report.external_requests == [
            "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"
        ]
        assert any("cdn.jsdelivr.net" in f for f in report.failed_requests)
        with pytest.raises(AssertionError, match="external request"):
            report.assert_clean()
