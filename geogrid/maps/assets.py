"""The map pages' JavaScript and CSS, installed locally: no page ever loads them from a CDN.

Folium's pages load Leaflet, jQuery, Bootstrap and Font Awesome from public CDNs, which an
intranet cannot reach (../shared/DESIGN.md, "Known traps"). geogrid's maps use only what they
need — Leaflet, Leaflet.markercluster and Leaflet.heat; no jQuery, Bootstrap or icon fonts —
and take them from two places, both installed by the set-up, never written by hand:

* ``leaflet`` and ``leaflet.markercluster`` from the npm registry (``npm pack``, the exact
  versions and the registry's sha512 integrity pinned in :data:`NPM_PACKAGES`);
* ``leaflet_heat.min.js`` from the installed ``folium`` package (folium's patched copy of
  Leaflet.heat 0.2.0, the file folium itself links to).

``python -m geogrid.maps.assets`` (run by ``scripts/setup.sh``) puts them into
:func:`assets_dir` with a ``manifest.json``; an intranet machine gets a copy of that folder
(``GEOGRID_MAP_ASSETS_DIR`` says where it is). The API serves the folder under
``/maps/assets/`` (cacheable: every path carries its version); exported HTML files inline the
same files (:func:`inline_assets`), images in CSS as ``data:`` URIs, so they open anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from geogrid.errors import ConfigurationError, InvalidInput

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


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    #: ``dist.integrity`` of the registry (``npm view NAME@VERSION dist.integrity``).
    integrity: str
    license: str
    #: Files taken from the tarball (paths under ``package/``); the folder is ``NAME-VERSION``.
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


NPM_PACKAGES: Final[tuple[NpmPackage, ...]] = (
    NpmPackage(
        "leaflet",
        "1.9.4",
        "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        "BSD-2-Clause",
        (
            "LICENSE",
            "dist/leaflet.js",
            "dist/leaflet.js.map",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
        ),
    ),
    NpmPackage(
        "leaflet.markercluster",
        "1.5.3",
        "sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA==",
        "MIT",
        (
            "MIT-LICENCE.txt",
            "dist/leaflet.markercluster.js",
            "dist/leaflet.markercluster.js.map",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
        ),
    ),
)


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

MANIFEST = "manifest.json"
_DEFAULT_DIR = Path(__file__).resolve().parent / "vendor"


def resolve_asset(path: str) -> str:
    """A path of :data:`JS`/:data:`CSS` with its version placeholders filled in."""
    return path.replace("{heat}", _heat_folder())


def assets_dir() -> Path:
    """Where the assets are: ``$GEOGRID_MAP_ASSETS_DIR``, else ``geogrid/maps/vendor``."""
    configured = os.environ.get("GEOGRID_MAP_ASSETS_DIR")
    return Path(configured) if configured else _DEFAULT_DIR


def _wanted() -> dict[str, str]:
    want = {p.name: p.version for p in NPM_PACKAGES}
    want["folium"] = _folium_version()
    return want


def check_assets(directory: Path | None = None) -> Path:
    """The assets folder, after checking it holds what this version of geogrid links to.

    Raises :class:`ConfigurationError` saying how to install them when they are missing.
    """
    directory = directory or assets_dir()
    how = (
        "run `python -m geogrid.maps.assets` (scripts/setup.sh does) on a machine that reaches "
        "the npm registry, or set GEOGRID_MAP_ASSETS_DIR to a copy of that folder"
    )
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigurationError(
            f"the map assets (Leaflet …) are not installed in {directory}: {how}",
            field="map_assets_dir",
        ) from None
    if manifest.get("packages") != _wanted():
        raise ConfigurationError(
            f"the map assets in {directory} are {manifest.get('packages')}, this geogrid needs "
            f"{_wanted()}: {how}",
            field="map_assets_dir",
        )
    return directory


def asset_path(relative: str, directory: Path | None = None) -> Path:
    """The file of an asset URL path (``leaflet-1.9.4/dist/leaflet.js``), checked to lie inside
    the assets folder; :class:`InvalidInput` (→ 404 by the route) for anything else."""
    base = (directory or assets_dir()).resolve()
    target = (base / relative).resolve()
    if base not in target.parents or not target.is_file() or target.name == MANIFEST:
        raise InvalidInput(f"no map asset {relative!r}", field="path")
    return target


# --- installing ------------------------------------------------------------------------------


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _npm_pack(pkg: NpmPackage, work: Path, npm: str) -> Path:
    """Download ``pkg``'s tarball with ``npm pack`` (npm checks it against the registry)."""
    spec = f"{pkg.name}@{pkg.version}"
    try:
        done = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(work), "--json", "--silent"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except FileNotFoundError:
        raise ConfigurationError(
            f"npm is not installed ({npm!r}): install Node.js/npm (Debian: apt-get install npm)",
            field="npm",
        ) from None
    if done.returncode != 0:
        raise ConfigurationError(
            f"npm pack {spec} failed: {done.stderr.strip()[-500:]}", field="npm"
        )
    filename = json.loads(done.stdout)[0]["filename"]
    return work / filename


def install_assets(
    directory: Path | None = None, *, npm: str = "npm", force: bool = False
) -> dict[str, str]:
    """Install the assets into ``directory`` (default :func:`assets_dir`); return the versions.

    Does nothing when the folder already holds the wanted versions (unless ``force``). Each
    npm tarball must match the pinned sha512 integrity, or nothing is installed.
    """
    directory = directory or assets_dir()
    if not force:
        try:
            check_assets(directory)
            return _wanted()
        except ConfigurationError:
            pass
    staging = Path(tempfile.mkdtemp(prefix="geogrid-assets-"))
    try:
        out = staging / "assets"
        out.mkdir()
        files: dict[str, str] = {}
        for pkg in NPM_PACKAGES:
            tarball = _npm_pack(pkg, staging, npm)
            data = tarball.read_bytes()
            if _sri(data) != pkg.integrity:
                raise ConfigurationError(
                    f"{tarball.name} does not match its pinned integrity {pkg.integrity}",
                    field="npm",
                )
            with tarfile.open(tarball, "r:gz") as tar:
                for name in pkg.files:
                    member = tar.extractfile(f"package/{name}")
                    if member is None:
                        raise ConfigurationError(f"{tarball.name} has no {name}", field="npm")
                    dest = out / pkg.folder / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(member.read())
                    files[f"{pkg.folder}/{name}"] = hashlib.sha256(dest.read_bytes()).hexdigest()
        heat = resources.files("folium").joinpath("templates/leaflet_heat.min.js").read_bytes()
        dest = out / _heat_folder() / "leaflet_heat.min.js"
        dest.parent.mkdir(parents=True)
        dest.write_bytes(heat)
        files[f"{_heat_folder()}/leaflet_heat.min.js"] = hashlib.sha256(heat).hexdigest()
        # Installed files, not sources: keep them out of git wherever the folder is.
        (out / ".gitignore").write_text("*\n", encoding="utf-8")
        manifest = {
            "packages": _wanted(),
            "licenses": {p.name: p.license for p in NPM_PACKAGES} | {"folium": "MIT"},
            "files": files,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), str(directory))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _wanted()


# --- pages -----------------------------------------------------------------------------------

_SCRIPT_RE = re.compile(r'<script src="' + re.escape(ASSET_PREFIX) + r'([^"]+)"></script>')
_LINK_RE = re.compile(r'<link rel="stylesheet" href="' + re.escape(ASSET_PREFIX) + r'([^"]+)"/>')
_CSS_URL_RE = re.compile(r"url\((['\"]?)([^'\")]+)\1\)")
_SOURCE_MAP_RE = re.compile(r"^\s*//# sourceMappingURL=\S+\s*$", re.M)
#: ``<script>`` or ``<link>`` tags whose URL leaves the page's own server.
_EXTERNAL_RE = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", re.I
)


def link_assets(page: str, url_prefix: str) -> str:
    """Point the page's asset links at ``url_prefix`` (e.g. ``assets/`` or ``/maps/assets/``)."""
    check_assets()
    prefix = url_prefix if url_prefix.endswith("/") else url_prefix + "/"
    page = _SCRIPT_RE.sub(lambda mt: f'<script src="{prefix}{html.escape(mt[1])}"></script>', page)
    return _LINK_RE.sub(
        lambda mt: f'<link rel="stylesheet" href="{prefix}{html.escape(mt[1])}"/>', page
    )


def inline_assets(page: str) -> str:
    """Put the assets' contents into the page itself: one standalone file."""
    directory = check_assets()

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
    """``python -m geogrid.maps.assets [--force] [--dir DIR]``: install the map assets."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m geogrid.maps.assets", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="target folder")
    parser.add_argument("--force", action="store_true", help="re-install even if present")
    parser.add_argument("--npm", default="npm", help="npm executable")
    args = parser.parse_args(argv)
    directory = args.dir or assets_dir()
    try:
        versions = install_assets(directory, npm=args.npm, force=args.force)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    print(f"map assets ready in {directory} ({listed})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
