"""geogrid installed the ordinary Python way: the wheel serves working maps.

``scripts/test.sh`` builds the wheel from a copy of the tree (its build hook fetches Leaflet &
co. from the npm registry, pinned by sha512) and installs it into a fresh virtualenv outside
the checkout; ``GEOGRID_TEST_WHEEL`` and ``GEOGRID_TEST_WHEEL_VENV`` name them. Here that
install runs ``geogrid db init``, ``geogrid demo`` and ``geogrid serve`` in an empty folder,
and headless Chromium loads ``/maps/coverage`` from it. Without those variables the tests skip
(locally) or fail (``GEOGRID_REQUIRE_ALL=1``, as in CI).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from geogrid.maps.assets import CSS, JS, resolve_asset
from geogrid.maps.vendoring import NPM_PACKAGES
from tests.browser_support import REPO, load_page, unavailable


def _path_from_env(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        unavailable(f"{name} is not set: scripts/test.sh builds and installs the wheel")
    return Path(value)


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _path_from_env("GEOGRID_TEST_WHEEL")


@pytest.fixture(scope="module")
def wheel_venv() -> Path:
    return _path_from_env("GEOGRID_TEST_WHEEL_VENV")


def _clean_env() -> dict[str, str]:
    """The environment of a user's shell: none of the test run's GEOGRID_ settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}


def test_the_wheel_carries_the_map_assets_and_their_licences(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("geogrid/maps/vendor/manifest.json"))
    for pkg in NPM_PACKAGES:
        assert manifest["packages"][pkg.name] == pkg.version
        for file in pkg.files:  # the licence file is one of them
            assert f"geogrid/maps/vendor/{pkg.folder}/{file}" in names
    assert "geogrid/maps/vendor/leaflet-1.9.4/LICENSE" in names
    # Only the two packages: no tests, scripts or benchmarks in what users install.
    assert {n.split("/", 1)[0] for n in names if "/" in n} <= {
        "geogrid",
        "api",
        wheel.name.split("-py3")[0] + ".dist-info",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served_wheel(wheel_venv: Path, tmp_path: Path) -> Iterator[str]:
    """``geogrid db init``, ``demo`` and ``serve`` of the installed wheel, in an empty folder."""
    bin_dir = wheel_venv / "bin"
    env = _clean_env()
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import geogrid, api; print(geogrid.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert REPO not in Path(where).parents, f"geogrid was imported from the checkout: {where}"
    for command in (["db", "init"], ["demo"]):
        subprocess.run(
            [str(bin_dir / "geogrid"), *command], cwd=tmp_path, env=env, check=True, timeout=300
        )
    assert (tmp_path / "var" / "geogrid.sqlite").is_file()
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(bin_dir / "geogrid"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the wheel's `geogrid serve` did not answer /health:\n"
                    + (tmp_path / "serve.log").read_text()
                )
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_installed_wheel_serves_working_maps(browser: Browser, served_wheel: str) -> None:
    with load_page(
        browser,
        f"{served_wheel}/maps/coverage",
        wait_for="path.geogrid-grid",
        screenshot="wheel_maps_coverage",
    ) as report:
        report.assert_clean()  # no console errors, nothing failed, nothing left loopback
        assert report.status == 200
        assert report.page.locator("path.geogrid-grid").count() == 9
        assert report.page.locator("path.geogrid-field").count() == 138
        assets = [u for u in report.requests if "/maps/assets/" in u]
        assert any(u.endswith("/leaflet-1.9.4/dist/leaflet.js") for u in assets), assets
        # Every asset a map may link to is served by the installed package (the heat plugin
        # from folium's own copy), not only those this page uses.
        for path in [*JS.values(), *CSS.values()]:
            answer = report.page.request.get(f"{served_wheel}/maps/assets/{resolve_asset(path)}")
            assert answer.status == 200 and len(answer.body()) > 500, path

    # The pages too (one server: the demo takes a while): templates, styles and the Chinese
    # catalogue are package data, and the workbench's scripts are served.
    with load_page(browser, f"{served_wheel}/", screenshot="wheel_home") as report:
        report.assert_clean()
        assert report.page.locator("h1").inner_text() == "网格化服务管理"
        report.page.goto(f"{served_wheel}/?lang=en")
        assert report.page.locator("h1").inner_text() == "Community grid service"
        for pkg in NPM_PACKAGES:
            for name in pkg.files:
                if name.endswith(".js"):
                    url = f"{served_wheel}/maps/assets/{pkg.folder}/{name}"
                    assert report.page.request.get(url).status == 200, url
