"""A synthetic prefecture city modelled on Huizhou: ~2M households in ~1,000 communities.

    python -m benchmarks.city write --out DIR [--households 2000000] [--seed 20261206]
    python -m benchmarks.city write --out DIR --households-only --households 50000000
    python -m benchmarks.city load --url DATABASE_URL [--households 2000000] [--seed …]

The city is five districts of ``benchmarks.district`` side by side (``make_district``, each
with its own seed drawn from ``--seed``), each moved to its own 40 × 30 km box (a 3 × 2
layout, 120 × 60 km, around 114.4E 23.1N) and given its own district code (441302, 441303,
441322, 441323, 441324, the GB/T 2260 codes of Huizhou's districts and counties; every
other name is fictional). At the default size (``city_sizes(2_000_000)``):

=================  =========================================================================
communities        1,000 (200 per district, 12 subdistricts each: 60 subdistricts), 12-digit
                   codes ``<district 6><subdistrict 3><community 3>``
grids              20,000 (20 per community, tiling it: no gaps, no overlaps), 15-digit codes
buildings          300,000 (rectangles, 5 % MultiPolygons), never overlapping
households         2,000,000 doors, each strictly inside its building (1 m from its walls),
                   with a unique ``address_id`` and a structured address
streets            ~10,000 (a lattice of named roads per community)
fields             ~60,000 vacant responsibility fields (3 per grid, inside their grid)
=================  =========================================================================

Smaller ``--households`` scale every count with it (``city_sizes``); the draw is fully
determined by the seed and the sizes. Everything is in EPSG:4326.

Files written by ``write`` (stable column names: other benchmarks read them)
-----------------------------------------------------------------------------
All GeoParquet 1.1, geometry column ``geometry``, CRS EPSG:4326.

``communities.parquet`` (WKB)
    ``code`` (12 digits), ``name``, ``subdistrict``, ``district``, ``city``, ``province``.
``grids.parquet`` (WKB)
    ``code`` (15 digits), ``name``, ``community`` (12-digit code).
``fields.parquet`` (WKB)
    ``name`` (unique), ``member`` (empty: vacant), ``community``.
``streets.parquet`` (WKB)
    ``name``, ``kind``, ``community``.
``buildings.parquet`` (WKB)
    ``building_id`` (int64, 0-based row number), ``name``, ``compound``, ``house_number``,
    ``street_name``, ``floors``, ``community``.
``households.parquet`` (geoarrow ``point`` encoding: a ``struct<x: double, y: double>``
column, so readers get coordinates without WKB), in building order, row groups of
:data:`ROW_GROUP` rows
    ``household_id`` (int64, 1…N in file order), ``building_id`` (int64, a row of
    buildings.parquet), ``address_id`` (unique, ``<community>-<7 digits>``), ``street_name``,
    ``house_number``, ``building_name``, ``compound``, ``unit``, ``room``, ``community``.

``write --households-only --households N`` writes only ``households.parquet`` (or
``--name``), N households drawn in the buildings of the full-size city of the same seed (the
buildings of ``write`` at the default size), in building order, in chunks of
:data:`ROW_GROUP` rows (one row group each; memory stays bounded, ~0.3 GB, at any N): columns
``household_id``, ``building_id``, ``community`` (dictionary-encoded 12-digit code) and the
geoarrow ``geometry``: no address strings at that size.

Loading into a database (``load``)
----------------------------------
``load`` migrates the database (``geogrid.db.migrate.upgrade``) and, district by district,
writes that district's layers as import files (``benchmarks.imports.write_files``: one
GeoPackage, households as CSV with ``lon``/``lat`` to 7 decimals, ~1 cm) and imports them
with the product's own importer, ``geogrid.io.importer.import_layer`` — the path of ``geogrid
import`` and ``docs/onboarding.md`` — one transaction per layer, in the order communities →
streets → buildings → grids → fields → households. Each community's grids become its first
plan, activated at once; fields and households are assigned as they arrive, and households
are linked to their street and building (the lookup gazetteer's addresses). Why this path:
it is the one a city would use, and it is fast enough — the import benchmark measured 8,600
households/s on PostGIS (``benchmarks/README.md``, "Imports"), so ~2M take ~4 min — and going
district by district keeps each file at ~400k households (~1 GB in the importer) instead
of 2M (~4 GB). A bulk COPY of households (``dialect.copy_households``) would be faster but
skips the importer's links to streets and buildings, which the gazetteer needs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from benchmarks.district import DISTRICT_CODE, WGS84, District, make_district
from benchmarks.synth import KM_LAT, KM_LON, X0, X1, Y0, Y1

#: The districts, in draw order: GB/T 2260 code and name. Only these are real names.
DISTRICTS: tuple[tuple[str, str], ...] = (
    ("441302", "惠城区"),
    ("441303", "惠阳区"),
    ("441322", "博罗县"),
    ("441323", "惠东县"),
    ("441324", "龙门县"),
)
#: Layout of the district boxes: columns of the 3 × 2 arrangement.
LAYOUT_COLUMNS = 3
FULL_HOUSEHOLDS = 2_000_000
SEED = 20261206
#: Rows per row group of households.parquet (and per chunk of ``--households-only``).
ROW_GROUP = 1_000_000
LAYERS = ("communities", "grids", "fields", "streets", "buildings")


# --- sizes and the draw -----------------------------------------------------------------------


def city_sizes(
    households: int = FULL_HOUSEHOLDS, districts: int = len(DISTRICTS)
) -> dict[str, int]:
    """Sizes of the city with ``households`` households: the full city's counts (1,000
    communities, 20 grids each, 300,000 buildings) scaled with it, at least two communities
    per district and 10 buildings per community."""
    scale = households / FULL_HOUSEHOLDS
    per_district = max(2, round(200 * scale))
    return {
        "households": households,
        "districts": districts,
        "communities_per_district": per_district,
        "grids_per_community": 20,
        "buildings": max(10 * per_district * districts, round(300_000 * scale)),
    }


def _offset(index: int) -> tuple[float, float]:
    """Where district ``index``'s box goes (degrees), moved from synth's box."""
    col, row = index % LAYOUT_COLUMNS, index // LAYOUT_COLUMNS
    return ((col - 1) * (X1 - X0), -row * (Y1 - Y0))


def _district_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _moved(frame: gpd.GeoDataFrame, dx: float, dy: float) -> gpd.GeoDataFrame:
    geoms = shapely.transform(frame.geometry.to_numpy(), lambda c: c + np.array([dx, dy]))
    frame = frame.copy()
    frame[frame.geometry.name] = gpd.GeoSeries(geoms, crs=WGS84, index=frame.index)
    return frame


def _recoded(column: pd.Series, code: str) -> pd.Series:
    """Values starting with ``benchmarks.district``'s district code, given ``code``."""
    if code == DISTRICT_CODE:
        return column
    assert column.str.startswith(DISTRICT_CODE).all()
    return code + column.str.slice(len(DISTRICT_CODE))


def draw_district(
    index: int,
    *,
    seed: int = SEED,
    households: int,
    communities_per_district: int,
    grids_per_community: int,
    buildings: int,
    districts: int = len(DISTRICTS),
    fields_per_grid: int = 3,
) -> District:
    """District ``index`` of the city: ``make_district`` moved to its box, with its codes."""
    if not 0 <= index < districts <= len(DISTRICTS):
        raise ValueError(f"district index {index} out of range (districts={districts})")
    share = households // districts + (households % districts if index == districts - 1 else 0)
    b_share = buildings // districts + (buildings % districts if index == districts - 1 else 0)
    d = make_district(
        n_communities=communities_per_district,
        grids_per_community=grids_per_community,
        buildings=b_share,
        households=share,
        fields_per_grid=fields_per_grid,
        subdistricts=12,
        seed=_district_seed(seed, index),
    )
    code, name = DISTRICTS[index]
    dx, dy = _offset(index)
    layers = {k: _moved(v, dx, dy) for k, v in d.layers().items()}
    c = layers["communities"]
    c["code"] = _recoded(c["code"], code)
    c["district"] = name
    layers["grids"]["code"] = _recoded(layers["grids"]["code"], code)
    layers["fields"]["name"] = _recoded(layers["fields"]["name"], code)
    layers["households"]["address_id"] = _recoded(layers["households"]["address_id"], code)
    for layer in ("grids", "streets", "buildings", "households", "fields"):
        layers[layer]["community"] = _recoded(layers[layer]["community"], code)
    return District(**layers)


def districts(
    households: int = FULL_HOUSEHOLDS, *, seed: int = SEED, **sizes: int
) -> Iterator[District]:
    """The city's districts one at a time (so a caller holds one district's households)."""
    s = {**city_sizes(households, sizes.pop("districts", len(DISTRICTS))), **sizes}
    s.pop("households")
    for i in range(s["districts"]):
        yield draw_district(i, seed=seed, households=households, **s)


def make_city(households: int = FULL_HOUSEHOLDS, *, seed: int = SEED, **sizes: int) -> District:
    """The whole city in memory (each layer concatenated over the districts); buildings get
    ``building_id`` and households ``household_id`` and ``building_id`` as in the files."""
    parts = list(districts(households, seed=seed, **sizes))
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in parts[0].layers():
        layers[name] = gpd.GeoDataFrame(
            pd.concat([p.layers()[name] for p in parts], ignore_index=True), crs=WGS84
        )
    layers["buildings"].insert(0, "building_id", np.arange(len(layers["buildings"])))
    hh = layers["households"]
    hh.insert(0, "building_id", building_of(hh, layers["buildings"]))
    hh.insert(0, "household_id", np.arange(1, len(hh) + 1))
    return District(**layers)


def building_of(households: pd.DataFrame, buildings: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Row of ``buildings`` each household names (community + compound + name is a
    building's key in ``make_district``)."""
    key = pd.MultiIndex.from_frame(buildings[["community", "compound", "name"]].astype(object))
    want = pd.MultiIndex.from_frame(
        households[["community", "compound", "building_name"]].astype(object)
    )
    pos = key.get_indexer(want)
    if (pos < 0).any():
        raise ValueError(f"{int((pos < 0).sum())} households name no building")
    return np.asarray(pos, dtype=np.int64)


# --- GeoParquet with geoarrow points ---------------------------------------------------------


def _point_schema(columns: list[Any], bbox: list[float]) -> Any:
    """An Arrow schema: ``columns`` (pyarrow fields) + a geoarrow ``point`` column
    ``geometry``, with the GeoParquet 1.1 metadata geopandas writes for
    ``geometry_encoding="geoarrow"`` (checked: ``geopandas.read_parquet`` reads it back)."""
    import pyarrow as pa
    import pyproj

    projjson = pyproj.CRS.from_epsg(4326).to_json_dict()
    geom = pa.field(
        "geometry",
        pa.struct([pa.field("x", pa.float64(), False), pa.field("y", pa.float64(), False)]),
        nullable=True,
        metadata={
            "ARROW:extension:name": "geoarrow.point",
            "ARROW:extension:metadata": json.dumps({"crs": projjson}),
        },
    )
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "point",
                "geometry_types": ["Point"],
                "crs": projjson,
                "bbox": bbox,
            }
        },
        "creator": {"library": "benchmarks.city"},
    }
    return pa.schema([*columns, geom], metadata={"geo": json.dumps(geo)})


def _points(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any:
    import pyarrow as pa

    return pa.StructArray.from_arrays(
        [pa.array(x, pa.float64()), pa.array(y, pa.float64())],
        fields=[pa.field("x", pa.float64(), False), pa.field("y", pa.float64(), False)],
    )


def _city_bbox(n_districts: int) -> list[float]:
    boxes = [_offset(i) for i in range(n_districts)]
    return [
        X0 + min(b[0] for b in boxes),
        Y0 + min(b[1] for b in boxes),
        X1 + max(b[0] for b in boxes),
        Y1 + max(b[1] for b in boxes),
    ]


_ADDRESS = (
    "address_id",
    "street_name",
    "house_number",
    "building_name",
    "compound",
    "unit",
    "room",
    "community",
)


class _HouseholdWriter:
    """households.parquet written a district (or a chunk) at a time."""

    def __init__(self, path: Path, *, full: bool, bbox: list[float]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        ids = [pa.field("household_id", pa.int64(), False), pa.field("building_id", pa.int64())]
        if full:
            cols = ids + [pa.field(c, pa.string()) for c in _ADDRESS]
        else:
            cols = [*ids, pa.field("community", pa.dictionary(pa.int32(), pa.string()))]
        self.schema = _point_schema(cols, bbox)
        self.path = path
        self.tmp = path.with_name(path.name + ".part")
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        self.rows = 0

    def write(
        self, columns: dict[str, Any], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> None:
        import pyarrow as pa

        arrays = [columns[f.name] for f in self.schema if f.name != "geometry"]
        arrays.append(_points(x, y))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.writer.write_table(table, row_group_size=ROW_GROUP)
        self.rows += len(table)

    def close(self) -> None:
        self.writer.close()
        self.tmp.replace(self.path)


# --- write -----------------------------------------------------------------------------------


def write_city(
    out: Path,
    households: int = FULL_HOUSEHOLDS,
    *,
    seed: int = SEED,
    progress: Callable[[str], None] = print,
    **sizes: int,
) -> dict[str, Any]:
    """Write the city's six files into ``out``; households are written district by district
    (one district's households in memory at a time). Returns counts and seconds."""
    import pyarrow as pa

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_districts = sizes.get("districts", len(DISTRICTS))
    writer = _HouseholdWriter(out / "households.parquet", full=True, bbox=_city_bbox(n_districts))
    kept: dict[str, list[gpd.GeoDataFrame]] = {k: [] for k in LAYERS}
    n_buildings = 0
    try:
        for i, d in enumerate(districts(households, seed=seed, **sizes)):
            b = d.buildings
            b.insert(0, "building_id", np.arange(n_buildings, n_buildings + len(b)))
            hh = d.households
            building = building_of(hh, b) + n_buildings
            n_buildings += len(b)
            cols: dict[str, Any] = {
                "household_id": pa.array(
                    np.arange(writer.rows + 1, writer.rows + len(hh) + 1), pa.int64()
                ),
                "building_id": pa.array(building, pa.int64()),
            }
            for c in _ADDRESS:
                cols[c] = pa.array(hh[c].to_numpy(dtype=object), pa.string(), from_pandas=True)
            xy = shapely.get_coordinates(hh.geometry.to_numpy())
            writer.write(cols, xy[:, 0], xy[:, 1])
            for k in LAYERS:
                kept[k].append(d.layers()[k])
            progress(
                f"district {i + 1}/{n_districts} {DISTRICTS[i][0]}: "
                f"{len(d.communities):,} communities, {len(d.grids):,} grids, {len(b):,} "
                f"buildings, {len(hh):,} households ({time.perf_counter() - t0:.1f} s)"
            )
            del d, hh, cols, xy
            gc.collect()
        writer.close()
    except BaseException:
        writer.writer.close()
        writer.tmp.unlink(missing_ok=True)
        raise
    counts = {"households": writer.rows}
    for k, frames in kept.items():
        frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=WGS84)
        frame.to_parquet(out / f"{k}.parquet", index=False)
        counts[k] = len(frame)
    seconds = time.perf_counter() - t0
    progress(f"written {out}: {counts} in {seconds:.1f} s")
    return {"counts": counts, "seconds": seconds}


def write_households_only(
    path: Path,
    households: int,
    *,
    seed: int = SEED,
    chunk: int = ROW_GROUP,
    progress: Callable[[str], None] = print,
    **sizes: int,
) -> dict[str, Any]:
    """Write ``households`` households drawn in the buildings of the city of ``seed`` (its
    full size unless ``sizes`` say otherwise), in building order, ``chunk`` rows at a time.

    A building's share is ∝ floors × area, at least one household each (as in
    ``make_district``); a door is uniform in its block 1 m from the walls (one of the two
    blocks of a MultiPolygon). No string is made per row.
    """
    import pyarrow as pa

    t0 = time.perf_counter()
    # The buildings do not depend on the household count: draw the districts with one
    # household per building (cheap) and keep only the buildings.
    base = city_sizes(FULL_HOUSEHOLDS, sizes.get("districts", len(DISTRICTS)))
    base.update({k: v for k, v in sizes.items() if k != "households"})
    base["households"] = base["buildings"]
    geoms_l, floors_l, comm_l = [], [], []
    for d in districts(seed=seed, **base):
        geoms_l.append(d.buildings.geometry.to_numpy())
        floors_l.append(d.buildings["floors"].to_numpy())
        comm_l.append(d.buildings["community"].to_numpy(dtype=object))
        del d
    geoms = np.concatenate(geoms_l)
    floors = np.concatenate(floors_l).astype(np.float64)
    codes, comm_idx = np.unique(np.concatenate(comm_l).astype(str), return_inverse=True)
    nb = len(geoms)
    progress(f"{nb:,} buildings drawn ({time.perf_counter() - t0:.1f} s)")
    parts, owner = shapely.get_parts(geoms, return_index=True)
    first = np.searchsorted(owner, np.arange(nb))
    last = np.searchsorted(owner, np.arange(nb), side="right") - 1
    pb = shapely.bounds(parts)
    bounds = np.stack([pb[first], pb[last]])  # (2, nb, 4): the block(s) of each building
    area = shapely.area(geoms)
    rng = np.random.default_rng([seed, 2])
    weight = floors * area
    if households >= nb:
        counts = rng.multinomial(households - nb, weight / weight.sum()) + 1
    else:
        counts = np.bincount(rng.choice(nb, households, replace=False), minlength=nb)
    ends = np.cumsum(counts)
    margin = np.array([KM_LON, KM_LAT]) / 1000  # 1 m in degrees
    writer = _HouseholdWriter(path, full=False, bbox=_city_bbox(len(geoms_l)))
    dictionary = pa.array(codes, pa.string())
    try:
        b0 = 0
        while b0 < nb:
            # Buildings [b0, b1) hold about `chunk` households.
            b1 = int(np.searchsorted(ends, (ends[b0 - 1] if b0 else 0) + chunk, side="right"))
            b1 = max(b1, b0 + 1)
            hb = np.repeat(np.arange(b0, b1), counts[b0:b1])
            side = (rng.random(len(hb)) < 0.5).astype(np.int64)
            box = bounds[side, hb]
            u = rng.random((len(hb), 2))
            x = box[:, 0] + margin[0] + u[:, 0] * (box[:, 2] - box[:, 0] - 2 * margin[0])
            y = box[:, 1] + margin[1] + u[:, 1] * (box[:, 3] - box[:, 1] - 2 * margin[1])
            cols = {
                "household_id": pa.array(
                    np.arange(writer.rows + 1, writer.rows + len(hb) + 1), pa.int64()
                ),
                "building_id": pa.array(hb, pa.int64()),
                "community": pa.DictionaryArray.from_arrays(
                    pa.array(comm_idx[hb].astype(np.int32)), dictionary
                ),
            }
            writer.write(cols, x, y)
            progress(
                f"{writer.rows:,} / {households:,} households ({time.perf_counter() - t0:.1f} s)"
            )
            b0 = b1
        writer.close()
    except BaseException:
        writer.writer.close()
        writer.tmp.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    return {"households": writer.rows, "buildings": nb, "seconds": seconds}


# --- load ------------------------------------------------------------------------------------


def load_city(
    url: str,
    households: int = FULL_HOUSEHOLDS,
    *,
    seed: int = SEED,
    progress: Callable[[str], None] = print,
    **sizes: int,
) -> dict[str, Any]:
    """Migrate the database at ``url`` and import the city into it with
    ``geogrid.io.importer.import_layer``, district by district, one transaction per layer.
    Returns each import's rows and seconds."""
    from sqlalchemy.pool import NullPool

    from benchmarks.imports import ORDER, write_files
    from geogrid.db import migrate
    from geogrid.db.engine import make_engine
    from geogrid.io.importer import import_layer

    engine = make_engine(url, poolclass=NullPool)
    steps: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    try:
        migrate.upgrade(engine)
        with tempfile.TemporaryDirectory(prefix="city_load_") as tmp:
            for i, d in enumerate(districts(households, seed=seed, **sizes)):
                paths = write_files(d, Path(tmp) / f"d{i}")
                rows = {k: len(v) for k, v in d.layers().items()}
                del d
                gc.collect()
                for layer in ORDER:
                    t0 = time.perf_counter()
                    with engine.begin() as conn:
                        report = import_layer(
                            conn,
                            layer=layer,
                            path=paths[layer],
                            crs=WGS84 if paths[layer].suffix == ".csv" else None,
                        )
                    seconds = time.perf_counter() - t0
                    steps.append(
                        {
                            "district": DISTRICTS[i][0],
                            "layer": layer,
                            "rows": rows[layer],
                            "inserted": report.inserted,
                            "seconds": round(seconds, 2),
                        }
                    )
                    progress(
                        f"district {DISTRICTS[i][0]} {layer:11} {rows[layer]:>8,} rows "
                        f"{seconds:7.1f} s (total {time.perf_counter() - t_all:.0f} s)"
                    )
                    if report.warnings:
                        progress(f"  warnings: {report.warnings[:3]}")
    finally:
        engine.dispose()
    return {"steps": steps, "seconds": time.perf_counter() - t_all}


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.city",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the city as GeoParquet files")
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--households", type=int, default=FULL_HOUSEHOLDS)
    w.add_argument("--seed", type=int, default=SEED)
    w.add_argument(
        "--households-only",
        action="store_true",
        help="only households (ids, building, community, point) in the full city's buildings",
    )
    w.add_argument("--name", default="households.parquet", help="file name with --households-only")
    ld = sub.add_parser("load", help="import the city into a geogrid database")
    ld.add_argument("--url", required=True, help="database URL (PostGIS or SpatiaLite)")
    ld.add_argument("--households", type=int, default=FULL_HOUSEHOLDS)
    ld.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)

    def progress(msg: str) -> None:
        print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)

    if args.command == "write":
        if args.households_only:
            args.out.mkdir(parents=True, exist_ok=True)
            res = write_households_only(
                args.out / args.name, args.households, seed=args.seed, progress=progress
            )
        else:
            res = write_city(args.out, args.households, seed=args.seed, progress=progress)
    else:
        res = load_city(args.url, args.households, seed=args.seed, progress=progress)
    print(json.dumps({k: v for k, v in res.items() if k != "steps"}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
