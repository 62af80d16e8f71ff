"""Browser assets from the npm registry (geogrid.maps.vendoring): clear failures, nothing
half-written. The successful fetch runs in every ``scripts/test.sh``: the wheel's build hook
fetches them (tests/test_wheel.py checks what it carries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geogrid.maps import vendoring
from tests.browser_support import serve_directory


def test_an_unreachable_registry_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "vendor"
    with pytest.raises(vendoring.FetchError) as caught:
        vendoring.vendor(target, registry="http://127.0.0.1:9/")
    message = str(caught.value)
    assert "could not fetch leaflet@1.9.4 from the npm registry" in message
    assert "http://127.0.0.1:9/leaflet/-/leaflet-1.9.4.tgz" in message
    assert "NPM_CONFIG_REGISTRY" in message
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def test_a_tarball_that_is_not_the_pinned_one_installs_nothing(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    (registry / "leaflet" / "-").mkdir(parents=True)
    (registry / "leaflet" / "-" / "leaflet-1.9.4.tgz").write_bytes(b"not leaflet")
    target = tmp_path / "vendor"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    with serve_directory(registry) as url, pytest.raises(vendoring.FetchError) as caught:
        vendoring.vendor(target, registry=url)
    assert "does not match its pinned integrity" in str(caught.value)
    assert [p.name for p in target.iterdir()] == ["manifest.json"]  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry", "vendor"]


def test_the_registry_is_npm_s_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("npm_config_registry", raising=False)
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    assert vendoring.registry_url() == "https://registry.npmjs.org/"
    monkeypatch.setenv("npm_config_registry", "http://mirror.example/npm/")
    assert vendoring.registry_url() == "http://mirror.example/npm/"
    pkg = vendoring.NPM_PACKAGES[1]
    assert pkg.tarball_url("http://mirror.example/npm/") == (
        "http://mirror.example/npm/leaflet.markercluster/-/leaflet.markercluster-1.5.3.tgz"
    )
