"""Rules of the layout that no linter states: settings are read once by the caller and passed
down (no library or app module reads the environment itself), and a library function given
no settings uses the built-in defaults, never the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from geogrid.settings import MapSettings, RequestsSettings, Section, Settings

ROOT = Path(__file__).resolve().parent.parent
#: Modules allowed to read the environment, and why.
ENVIRONMENT_READERS = {
    # The build hook's npm fetcher runs in setup.py, before geogrid's dependencies exist; it
    # reads npm's own NPM_CONFIG_REGISTRY, as npm does.
    "geogrid/maps/vendoring.py",
}


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that read ``os.environ`` or call ``os.getenv``/``getenv``. Setting a variable
    (``os.environ["X"] = …``) is passing settings down to child processes (``geogrid serve
    --workers N``: each worker builds its app from the environment), not reading them."""
    names = ("environ", "getenv", "environb")
    written = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names and id(node) not in written:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in names]
    return sorted(lines)


def test_no_module_reads_the_environment_but_settings() -> None:
    found = {}
    for package in ("geogrid", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ENVIRONMENT_READERS or "/migrations/versions/" in relative:
                continue
            lines = _reads_environment(ast.parse(path.read_text(encoding="utf-8")))
            if lines:
                found[relative] = lines
    assert found == {}, "read settings through geogrid.settings, passed down by the caller"


def test_the_check_sees_an_environment_read() -> None:
    tree = ast.parse(
        "import os\nx = os.environ.get('A')\nfrom os import getenv\n"
        "os.environ['B'] = x\ny = os.environ['C']\n"
    )
    assert _reads_environment(tree) == [2, 3, 5]  # line 4 sets a variable for a child


@pytest.mark.parametrize("section", [Settings, RequestsSettings, MapSettings])
def test_defaults_ignore_the_environment(
    section: type[Section], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOGRID_WEBHOOK_POLL_SECONDS", "0")
    monkeypatch.setenv("GEOGRID_MAP_TILES", "osm")
    monkeypatch.setenv("GEOGRID_CHROMIUM", "/opt/elsewhere/chrome")
    read = section()
    defaults = section.defaults()
    assert read != defaults
    for name, field in type(defaults).model_fields.items():
        value = getattr(defaults, name)
        if isinstance(value, Section):
            assert value == type(value).defaults()
        else:
            assert value == field.default, name


def test_one_settings_object_holds_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOGRID_WEBHOOK_POLL_SECONDS", "0")
    monkeypatch.setenv("GEOGRID_MAP_ASSETS_DIR", "/srv/leaflet")
    monkeypatch.setenv("SPATIALITE_LIBRARY_PATH", "/opt/mod_spatialite.so")
    settings = Settings()
    assert settings.requests.webhook_poll_seconds == 0
    assert settings.maps.map_assets_dir == Path("/srv/leaflet")
    assert settings.database.spatialite_library_path == "/opt/mod_spatialite.so"
