"""Browser assets from the npm registry, pinned by version and sha512: fetched, checked, unpacked.

The one mechanism by which geogrid gets third-party JavaScript and CSS (Leaflet and its plugins
today; every browser asset added later goes into :data:`NPM_PACKAGES` too):

* the wheel's build hook (``setup.py``) puts them into the package, so ``pip install geogrid``
  serves working maps with no other step;
* ``python -m geogrid.maps.assets`` (run by ``scripts/setup.sh``) puts them into a checkout.

Tarballs come over HTTPS from the registry (``$NPM_CONFIG_REGISTRY``, else the public npm
registry), not through the ``npm`` program, so neither building nor installing needs Node.js.
Each tarball must match the ``dist.integrity`` pinned here (what ``npm view NAME@VERSION
dist.integrity`` prints), or nothing is written.

Standard library only: the build hook loads this file by path, before any of geogrid's
dependencies are installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["MANIFEST", "NPM_PACKAGES", "FetchError", "NpmPackage", "vendor", "wanted"]

DEFAULT_REGISTRY: Final = "https://registry.npmjs.org/"
MANIFEST: Final = "manifest.json"


class FetchError(RuntimeError):
    """The registry could not be reached, or a tarball is not what was pinned."""


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    #: ``dist.integrity`` of the registry (``npm view NAME@VERSION dist.integrity``).
    integrity: str
    license: str
    #: Files taken from the tarball (paths under ``package/``), licence file first; the
    #: folder is ``NAME-VERSION``.
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"

    def tarball_url(self, registry: str) -> str:
        # The registry's tarball path: /NAME/-/BASENAME-VERSION.tgz (BASENAME drops a @scope/).
        basename = self.name.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.name}/-/{basename}-{self.version}.tgz"


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
    # The web workbench (api/web): charts of the dashboard, and htmx for its forms and filters.
    NpmPackage(
        "echarts",
        "6.1.0",
        "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==",
        "Apache-2.0",
        ("LICENSE", "NOTICE", "dist/echarts.min.js"),
    ),
    NpmPackage(
        "htmx.org",
        "2.0.11",
        "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        "0BSD",
        ("LICENSE", "dist/htmx.min.js"),
    ),
    # The accessibility check of the browser tests (tests/test_web_browser.py) runs axe-core in
    # the page; vendored like the rest so that the tests need no internet either.
    NpmPackage(
        "axe-core",
        "4.14.1",
        "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        "MPL-2.0",
        ("LICENSE", "axe.min.js"),
    ),
)


def wanted() -> dict[str, str]:
    """Package → version that this geogrid links to (what a manifest must list)."""
    return {p.name: p.version for p in NPM_PACKAGES}


def registry_url() -> str:
    """The registry to fetch from: npm's own setting when exported, else the public one."""
    for var in ("NPM_CONFIG_REGISTRY", "npm_config_registry"):
        if os.environ.get(var):
            return os.environ[var]
    return DEFAULT_REGISTRY


def sri(data: bytes) -> str:
    """Subresource-integrity form of a sha512 digest, as npm's ``dist.integrity``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch(pkg: NpmPackage, registry: str, *, timeout: float = 60.0) -> bytes:
    """The package's tarball, checked against its pinned integrity."""
    url = pkg.tarball_url(registry)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(
            f"could not fetch {pkg.name}@{pkg.version} from the npm registry ({url}): {reason}. "
            "geogrid's maps need Leaflet's files, which are fetched when geogrid is built or set "
            "up: reach the registry, or point NPM_CONFIG_REGISTRY at a mirror that this machine "
            "reaches, and run again"
        ) from None
    if sri(data) != pkg.integrity:
        raise FetchError(
            f"{url} does not match its pinned integrity {pkg.integrity} (got {sri(data)}); "
            "nothing was installed"
        )
    return data


def vendor(directory: Path, *, registry: str | None = None) -> dict[str, str]:
    """Fetch every package into ``directory`` (replaced whole, or left as it was on failure).

    Writes the pinned files of each package under ``NAME-VERSION/`` and a ``manifest.json``
    with the versions, licences and the files' sha256. Returns the versions.
    """
    registry = registry or registry_url()
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".geogrid-assets-", dir=directory.parent))
    try:
        files: dict[str, str] = {}
        for pkg in NPM_PACKAGES:
            data = fetch(pkg, registry)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for name in pkg.files:
                    try:
                        member = tar.extractfile(f"package/{name}")
                    except KeyError:
                        member = None
                    if member is None:
                        raise FetchError(f"{pkg.name}@{pkg.version} has no file {name}")
                    content = member.read()
                    dest = staging / pkg.folder / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(content)
                    files[f"{pkg.folder}/{name}"] = hashlib.sha256(content).hexdigest()
        # Installed files, not sources: keep them out of git wherever the folder is.
        (staging / ".gitignore").write_text("*\n", encoding="utf-8")
        manifest = {
            "packages": wanted(),
            "licenses": {p.name: p.license for p in NPM_PACKAGES},
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return wanted()
