"""Grids and fields for batch assignment: read, converted to WGS 84, ranked, indexed.

The edge rule is the SQL assignment's (``geogrid.db.dialect.cover_select``): a point on a
shared edge or vertex goes to the grid with the lowest code, and to the field that comes
with the lowest id (fields get their ids in file order when imported).
Polygons are put in that order, so a polygon's position is its rank, and indexed by
:class:`~geogrid.lookup.fine.FineCells` — the bucket grid of the lookup service
(:class:`~geogrid.lookup.cells.Cells`), finer, checked equal to
:func:`geogrid.spatial.assign_points` in ``tests/test_batch.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import numpy.typing as npt
import shapely

from geogrid.crs import frame_to_wgs84
from geogrid.errors import InvalidInput
from geogrid.lookup.fine import FineCells

__all__ = ["AssignIndex", "IndexSpec", "Layer", "read_layer"]


@dataclass
class Layer:
    """One layer's polygons in rank order, the value written for each, and its index."""

    name: str  # the output column: "grid" or "field"
    keys: npt.NDArray[np.object_]  # str, in rank order
    cells: FineCells

    def find(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any:
        """A dictionary-encoded Arrow array of each point's key (null where none covers it)."""
        import pyarrow as pa

        pos = self.cells.find_many(x, y)
        indices = pa.array(pos.astype(np.int32), mask=pos < 0)
        return pa.DictionaryArray.from_arrays(indices, self._dictionary())

    def _dictionary(self) -> Any:
        import pyarrow as pa

        cached = self.__dict__.get("_dict")
        if cached is None:
            cached = self.__dict__["_dict"] = pa.array(self.keys.tolist(), pa.string())
        return cached


@dataclass
class AssignIndex:
    """What every partition is assigned against: the grids, and the fields if given."""

    grids: Layer
    fields: Layer | None = None

    @classmethod
    def empty(cls) -> AssignIndex:
        """An index of no grids (stands in when every part is already written)."""
        return cls(Layer("grid", np.array([], dtype=object), FineCells(np.array([], dtype=object))))

    @property
    def layers(self) -> list[Layer]:
        return [self.grids] + ([self.fields] if self.fields is not None else [])


def read_layer(
    path: str | Path, *, name: str, crs: str | None = None, layer: str | None = None
) -> Layer:
    """A polygon layer from GeoParquet, GeoPackage or GeoJSON, ranked and indexed.

    Grids (``name="grid"``) need a ``code`` column and are ranked by it. Fields with an ``id``
    column (``geogrid export``'s) are ranked and keyed by it, as the SQL ranks them; others
    are ranked in file order (the order an import gives them ids) and keyed by ``code``, else
    ``name``, else their 1-based position.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"no such file: {p}", field=f"{name}s")
    try:
        if p.suffix.lower() in (".parquet", ".geoparquet", ".pq"):
            gdf = geopandas.read_parquet(p)
        else:
            gdf = geopandas.read_file(p, layer=layer)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{p} cannot be read: {exc}", field=f"{name}s") from None
    gdf = frame_to_wgs84(gdf, crs)
    geoms = gdf.geometry.to_numpy()
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)))  # Polygon, MultiPolygon
    if len(bad):
        raise InvalidInput(
            f"{p}: feature {int(bad[0]) + 1} is not a polygon ({len(bad)} such features)",
            field=f"{name}s",
        )
    if name == "grid":
        if "code" not in gdf.columns:
            raise InvalidInput(f"{p} has no code column (the grid code)", field="grids")
        keys = gdf["code"].astype(str).to_numpy()
        order = np.argsort(keys, kind="stable")
    elif "id" in gdf.columns:
        # Fields exported by geogrid carry their database id: the SQL's lowest id wins.
        keys = gdf["id"].astype(str).to_numpy()
        order = np.argsort(gdf["id"].to_numpy(), kind="stable")
    else:
        col = next((c for c in ("code", "name") if c in gdf.columns), None)
        keys = (
            gdf[col].astype(str).to_numpy()
            if col
            else np.array([str(i + 1) for i in range(len(gdf))], dtype=object)
        )
        order = np.arange(len(gdf))
    return Layer(
        name=name,
        keys=np.asarray(keys[order], dtype=object),
        cells=FineCells(np.asarray(geoms[order], dtype=object)),
    )


@dataclass(frozen=True)
class IndexSpec:
    """Where an index comes from (a few hundred bytes): each Dask worker builds the index
    from it, reading the grids file itself, instead of being sent the built index (~50 MB for
    20,000 grids, once per worker from the client; see docs/scale.md)."""

    grids: str
    fields: str | None = None
    crs: str | None = None
    grids_layer: str | None = None
    fields_layer: str | None = None
    #: Size and modification time of each file: a worker keeps the index it built for the
    #: next run of the same spec, and a changed file must not find the old one.
    stamps: tuple[tuple[int, int], ...] = ()

    @classmethod
    def for_files(
        cls,
        grids: str | Path,
        fields: str | Path | None = None,
        *,
        crs: str | None = None,
        grids_layer: str | None = None,
        fields_layer: str | None = None,
    ) -> IndexSpec:
        """The spec of these files as they are now (absolute paths, stamped)."""
        paths = [Path(grids).resolve(), *([Path(fields).resolve()] if fields else [])]
        for p, name in zip(paths, ("grids", "fields"), strict=False):
            if not p.is_file():
                raise InvalidInput(f"no such file: {p}", field=name)
        return cls(
            grids=str(paths[0]),
            fields=str(paths[1]) if fields else None,
            crs=crs,
            grids_layer=grids_layer,
            fields_layer=fields_layer,
            stamps=tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths),
        )

    def build(self) -> AssignIndex:
        return AssignIndex(
            read_layer(self.grids, name="grid", crs=self.crs, layer=self.grids_layer),
            read_layer(self.fields, name="field", crs=self.crs, layer=self.fields_layer)
            if self.fields
            else None,
        )
