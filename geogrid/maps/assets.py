"""The map pages' JavaScript and CSS, installed locally: no page ever loads them from a CDN.

Folium's pages load Leaflet, jQuery, Bootstrap and Font Awesome from public CDNs, which an
intranet cannot reach (../shared/DESIGN.md, "Known traps"). geogrid's maps use only what they
need — Leaflet, Leaflet.markercluster and Leaflet.heat; no jQuery, Bootstrap or icon fonts —
and take them from two places, never written into the repository by hand:

* ``leaflet`` and ``leaflet.markercluster`` from the npm registry, pinned by version and sha512
  (:mod:`geogrid.maps.vendoring`): the wheel's build hook puts them into the package, and
  ``python -m geogrid.maps.assets`` (run by ``scripts/setup.sh``) into a checkout;
* ``leaflet_heat.min.js`` from the installed ``folium`` package (folium's patched copy of
  Leaflet.heat 0.2.0, the file folium itself links to), read where folium keeps it.

:func:`assets_dir` holds the npm files with a ``manifest.json``; ``GEOGRID_MAP_ASSETS_DIR``
points elsewhere if wanted. The API serves them under ``/maps/assets/`` (cacheable: every path
carries its version); exported HTML files inline the same files (:func:`inline_assets`), images
in CSS as ``data:`` URIs, so they open anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Final

from geogrid.errors import ConfigurationError, InvalidInput
from geogrid.maps.vendoring import MANIFEST, NPM_PACKAGES, FetchError, vendor, wanted
from geogrid.settings import MapSettings

__all__ = [
    "ASSET_PREFIX",
    "CSS",
    "JS",
    "NPM_PACKAGES",
    "assets_dir",
    "check_assets",
    "inline_assets",
    "install_assets",
    "link_assets",
    "resolve_asset",
]

#: Placeholder prefix of asset URLs in a rendered page, replaced by :func:`link_assets` (a
#: URL prefix) or :func:`inline_assets` (the files' contents).
ASSET_PREFIX: Final = "geogrid-asset:"


def _folium_version() -> str:
    import folium

    return str(folium.__version__)


def _heat_folder() -> str:
    return f"folium-{_folium_version()}"


#: Folium's names of the links it would add (so ours replace them) → path under the assets
#: folder, in the order they must load. Nothing else is linked: no jQuery, no Bootstrap.
JS: Final[dict[str, str]] = {
    "leaflet": "leaflet-1.9.4/dist/leaflet.js",
    "leaflet.markercluster.js": "leaflet.markercluster-1.5.3/dist/leaflet.markercluster.js",
    "leaflet-heat.js": "{heat}/leaflet_heat.min.js",
}
CSS: Final[dict[str, str]] = {
    "leaflet_css": "leaflet-1.9.4/dist/leaflet.css",
    "markerclustercss": "leaflet.markercluster-1.5.3/dist/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster-1.5.3/dist/MarkerCluster.Default.css",
}

_DEFAULT_DIR = Path(__file__).resolve().parent / "vendor"


def resolve_asset(path: str) -> str:
    """A path of :data:`JS`/:data:`CSS` with its version placeholders filled in."""
    return path.replace("{heat}", _heat_folder())


def assets_dir(configured: Path | str | None = None) -> Path:
    """Where the assets are: ``configured`` (``MapSettings.map_assets_dir``, from
    ``GEOGRID_MAP_ASSETS_DIR``), else ``geogrid/maps/vendor``."""
    return Path(configured) if configured else _DEFAULT_DIR


def check_assets(directory: Path | None = None) -> Path:
    """The assets folder, after checking it holds what this version of geogrid links to.

    Raises :class:`ConfigurationError` saying how to install them when they are missing.
    """
    directory = directory or assets_dir()
    how = (
        "reinstall geogrid (its wheel carries them), or in a checkout run "
        "`python -m geogrid.maps.assets` (scripts/setup.sh does) on a machine that reaches the "
        "npm registry, or set GEOGRID_MAP_ASSETS_DIR to a copy of that folder"
    )
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigurationError(
            f"the map assets (Leaflet …) are not installed in {directory}: {how}",
            field="map_assets_dir",
        ) from None
    if manifest.get("packages") != wanted():
        raise ConfigurationError(
            f"the map assets in {directory} are {manifest.get('packages')}, this geogrid needs "
            f"{wanted()}: {how}",
            field="map_assets_dir",
        )
    return directory


def _heat_file() -> Path:
    return Path(str(resources.files("folium").joinpath("templates/leaflet_heat.min.js")))


def asset_path(relative: str, directory: Path | None = None) -> Path:
    """The file of an asset URL path (``leaflet-1.9.4/dist/leaflet.js``), checked to lie inside
    the assets folder; :class:`InvalidInput` (→ 404 by the route) for anything else."""
    if relative == resolve_asset(JS["leaflet-heat.js"]):
        return _heat_file()  # folium's own copy, where folium keeps it
    base = (directory or assets_dir()).resolve()
    target = (base / relative).resolve()
    if base not in target.parents or not target.is_file() or target.name == MANIFEST:
        raise InvalidInput(f"no map asset {relative!r}", field="path")
    return target


# --- installing ------------------------------------------------------------------------------


def install_assets(directory: Path | None = None, *, force: bool = False) -> dict[str, str]:
    """Install the npm assets into ``directory`` (default :func:`assets_dir`); return the versions.

    Does nothing when the folder already holds the wanted versions (unless ``force``). Each
    tarball must match its pinned sha512 integrity, or nothing is installed.
    """
    directory = directory or assets_dir()
    if not force:
        try:
            check_assets(directory)
            return wanted()
        except ConfigurationError:
            pass
    try:
        return vendor(directory)
    except FetchError as exc:
        raise ConfigurationError(str(exc), field="map_assets_dir") from None


# --- pages -----------------------------------------------------------------------------------

_SCRIPT_RE = re.compile(r'<script src="' + re.escape(ASSET_PREFIX) + r'([^"]+)"></script>')
_LINK_RE = re.compile(r'<link rel="stylesheet" href="' + re.escape(ASSET_PREFIX) + r'([^"]+)"/>')
_CSS_URL_RE = re.compile(r"url\((['\"]?)([^'\")]+)\1\)")
_SOURCE_MAP_RE = re.compile(r"^\s*//# sourceMappingURL=\S+\s*$", re.M)
#: ``<script>`` or ``<link>`` tags whose URL leaves the page's own server.
_EXTERNAL_RE = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", re.I
)


def link_assets(page: str, url_prefix: str, directory: Path | None = None) -> str:
    """Point the page's asset links at ``url_prefix`` (e.g. ``assets/`` or ``/maps/assets/``),
    after checking the assets are installed in ``directory`` (default :func:`assets_dir`)."""
    check_assets(directory)
    prefix = url_prefix if url_prefix.endswith("/") else url_prefix + "/"
    page = _SCRIPT_RE.sub(lambda mt: f'<script src="{prefix}{html.escape(mt[1])}"></script>', page)
    return _LINK_RE.sub(
        lambda mt: f'<link rel="stylesheet" href="{prefix}{html.escape(mt[1])}"/>', page
    )


def inline_assets(page: str, directory: Path | None = None) -> str:
    """Put the assets' contents (from ``directory``, default :func:`assets_dir`) into the page
    itself: one standalone file."""
    directory = check_assets(directory)

    def script(mt: re.Match[str]) -> str:
        code = _SOURCE_MAP_RE.sub("", asset_path(mt[1], directory).read_text(encoding="utf-8"))
        # "</script" inside the code would end the element early.
        code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.I)
        return f"<script>/* {mt[1]} */\n{code}\n</script>"

    def style(mt: re.Match[str]) -> str:
        css_file = asset_path(mt[1], directory)
        css = _SOURCE_MAP_RE.sub("", css_file.read_text(encoding="utf-8"))

        def data_uri(um: re.Match[str]) -> str:
            ref = um[2]
            if ref.startswith(("data:", "#")):
                return um[0]
            image = asset_path(
                str((css_file.parent / ref).resolve().relative_to(directory.resolve())), directory
            )
            encoded = base64.b64encode(image.read_bytes()).decode("ascii")
            return f'url("data:image/png;base64,{encoded}")'

        css = _CSS_URL_RE.sub(data_uri, css)
        css = re.sub(r"</(style)", r"<\\/\1", css, flags=re.I)
        return f"<style>/* {mt[1]} */\n{css}\n</style>"

    page = _SCRIPT_RE.sub(script, page)
    return _LINK_RE.sub(style, page)


def external_links(page: str) -> list[str]:
    """Tags of ``page`` that would fetch from another server (should be none but tiles)."""
    return _EXTERNAL_RE.findall(page)


def main(argv: list[str] | None = None) -> int:
    """``python -m geogrid.maps.assets [--force] [--check] [--dir DIR]``: install the assets."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m geogrid.maps.assets", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="target folder")
    parser.add_argument("--force", action="store_true", help="re-install even if present")
    parser.add_argument(
        "--check", action="store_true", help="only check they are installed (exit 1 if not)"
    )
    args = parser.parse_args(argv)
    # An entry point (like the CLI): it reads the settings, once.
    directory = args.dir or assets_dir(MapSettings().map_assets_dir)
    try:
        if args.check:
            check_assets(directory)
            versions = wanted()
        else:
            versions = install_assets(directory, force=args.force)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    print(f"map assets ready in {directory} ({listed})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
