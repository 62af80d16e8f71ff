"""Files in and out: import layers from GeoJSON, GeoPackage, Shapefile, CSV and Excel files
(``readers`` reads and converts, ``importer`` validates and writes) and export every layer to
one GeoPackage (``export``).

The names below are imported lazily, so ``import geogrid.io`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["ImportReport", "export_geopackage", "import_layer", "mask_name", "read_layer"]

_WHERE = {
    "ImportReport": "geogrid.io.importer",
    "import_layer": "geogrid.io.importer",
    "export_geopackage": "geogrid.io.export",
    "mask_name": "geogrid.io.export",
    "read_layer": "geogrid.io.readers",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'geogrid.io' has no attribute {name!r}")
