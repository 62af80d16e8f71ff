"""A synthetic district: communities, grids, streets, buildings, households, fields.

``make_district`` draws a whole district (200 communities by default) for the import benchmark
(``benchmarks.imports``) from one seeded ``numpy.random.Generator``, in the box of
``benchmarks.synth`` (40 × 30 km at 114.4E 23.1N, EPSG:4326). Everything is fictional: place
names are drawn from a small table of syllables, and there are no people's names or phones.

* **Communities**: Voronoi cells of a jittered lattice of seeds clipped to the box — a
  tessellation without gaps or overlaps, every cell convex. Codes are Chinese 12-digit codes:
  ``441302`` (惠城区) + a 3-digit subdistrict (the cells are grouped into ``subdistricts``
  by the nearest of as many subdistrict seeds) + a 3-digit community, numbered west→east in
  north→south bands within the subdistrict.
* **Grids**: the Voronoi cells of ``grids_per_community`` seeds drawn inside each community,
  clipped to it (a tessellation of the community); 15-digit codes = community code + a 3-digit
  sequence numbered west→east, north→south (DB11 practice).
* **Streets**: a lattice of roads per community (east–west 路, north–south 街 …) clipped to the
  community shrunk by :data:`INSET_M`, so every road lies inside one community; names unique
  within a community (``长湖街``), repeated between communities as in life.
* **Buildings**: rectangles centred in distinct cells of a 60 m lattice, so they never overlap,
  drawn from the Gaussian "towns" of ``benchmarks.synth`` (dense centres, villages, a thin
  background); 5 % are MultiPolygons (two blocks with a passage). Kept only when inside one
  community shrunk by :data:`INSET_M`. Most sit in compounds (``name`` ``3栋`` + ``compound``
  ``长湖花园``), the rest are houses named by their address (``长湖街12号``).
* **Households**: points strictly inside their building (a building's count ∝ its floors ×
  area), with a unique ``address_id``, the building's street, house number, name and compound,
  a unit and a room, and a ``community`` column holding the community code.
* **Responsibility fields**: ``fields_per_grid`` Voronoi cells of seeds inside each grid, each
  clipped to its seed's grid (so fields never cross a grid edge or overlap; they cover most of
  each grid, not all); ``member`` is empty (vacant fields).

The work is vectorised over numpy/shapely arrays; loops run over communities and grids (a few
thousand iterations), never over buildings or households.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from benchmarks.synth import KM_LAT, KM_LON, X0, X1, Y0, Y1, _draw, _towns

DISTRICT_CODE = "441302"
DISTRICT_NAME = "惠城区"
WGS84 = "EPSG:4326"
#: Streets and buildings stay this far (m) inside their community: a line's representative
#: point is one of its vertices, and the importer's spread gives a row on a shared edge (with
#: its 1 m tolerance) to the lowest code.
INSET_M = 15.0
#: Building sites are distinct cells of a lattice this wide (m): buildings never overlap.
SITE_M = 60.0

# Syllables for fictional place names (two of them make a name: 长湖, 金源 …).
_SYLLABLES = list("长金源湖东西南北新华安康福和兴平丰乐宁泰祥瑞锦绣春秋明月桂竹梅松云山江河")
_STREET_KINDS = ("路", "街", "巷", "大道")
_COMPOUND_KINDS = ("花园", "小区", "苑", "新村", "家园", "公寓")
_NUMERALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class District:
    """The layers of a synthetic district, each a GeoDataFrame in EPSG:4326."""

    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    fields: gpd.GeoDataFrame

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The layers in import order (communities → streets → buildings → grids → fields →
        households)."""
        return {
            "communities": self.communities,
            "streets": self.streets,
            "buildings": self.buildings,
            "grids": self.grids,
            "fields": self.fields,
            "households": self.households,
        }


def _names(rng: np.random.Generator, n: int, suffix: str) -> list[str]:
    """``n`` distinct two-syllable names with ``suffix`` (up to len(_SYLLABLES)² of them)."""
    k = len(_SYLLABLES)
    if n > k * k:
        raise ValueError(f"at most {k * k} distinct names, asked for {n}")
    picks = rng.choice(k * k, n, replace=False)
    return [f"{_SYLLABLES[p // k]}{_SYLLABLES[p % k]}{suffix}" for p in picks]


def _band_order(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bands: int
) -> npt.NDArray[np.int64]:
    """Rank of each point numbered west→east within ``bands`` north→south bands (from 0)."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(y.min()), float(y.max())
    band = np.minimum(((hi - y) / max(hi - lo, 1e-12) * bands).astype(np.int64), bands - 1)
    order = np.lexsort((x, band))
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x))
    return rank


def _points_in(
    rng: np.random.Generator,
    polys: npt.NDArray[np.object_],
    per: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``per`` uniform random points inside each of ``polys``: (points (n·per, 2), owner)."""
    shapely.prepare(polys)
    bounds = shapely.bounds(polys)
    out_pts, out_owner = [], []
    need = np.full(len(polys), per)
    while need.any():
        which = np.repeat(np.flatnonzero(need), need[need > 0] * 3)
        lo, hi = bounds[which, :2], bounds[which, 2:]
        pts = lo + rng.random((len(which), 2)) * (hi - lo)
        inside = shapely.contains_xy(polys[which], pts[:, 0], pts[:, 1])
        pts, which = pts[inside], which[inside]
        # Keep at most `need` per polygon (the first ones drawn).
        order = np.argsort(which, kind="stable")
        pts, which = pts[order], which[order]
        starts = np.searchsorted(which, which, side="left")
        rank = np.arange(len(which)) - starts
        keep = rank < need[which]
        out_pts.append(pts[keep])
        out_owner.append(which[keep])
        need -= np.bincount(which[keep], minlength=len(polys))
    pts = np.vstack(out_pts)
    owner = np.concatenate(out_owner)
    order = np.argsort(owner, kind="stable")
    return pts[order], owner[order]


def _clipped_voronoi(
    seeds: npt.NDArray[np.float64], owner: npt.NDArray[np.int64], polys: npt.NDArray[np.object_]
) -> npt.NDArray[np.object_]:
    """Each seed's Voronoi cell (among all ``seeds``) clipped to its owner polygon: no overlaps,
    and most of each polygon covered (not the parts nearer to a neighbour's seeds)."""
    cells = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.box(X0, Y0, X1, Y1), ordered=True
    )
    return shapely.intersection(np.asarray(shapely.get_parts(cells)), polys[owner])


def _tessellate_each(
    seeds: npt.NDArray[np.float64], owner: npt.NDArray[np.int64], polys: npt.NDArray[np.object_]
) -> npt.NDArray[np.object_]:
    """A tessellation of each polygon: the Voronoi cells of its own seeds, clipped to it."""
    out = np.empty(len(seeds), dtype=object)
    starts = np.searchsorted(owner, np.arange(len(polys) + 1))
    for p in range(len(polys)):
        a, b = starts[p], starts[p + 1]
        if b - a == 1:
            out[a] = polys[p]
            continue
        poly = polys[p]
        cells = shapely.voronoi_polygons(
            shapely.multipoints(seeds[a:b]), extend_to=poly, ordered=True
        )
        out[a:b] = shapely.intersection(np.asarray(shapely.get_parts(cells)), poly)
    return out


def make_district(
    n_communities: int = 200,
    grids_per_community: int = 10,
    buildings: int = 50_000,
    households: int = 500_000,
    *,
    subdistricts: int = 12,
    fields_per_grid: int = 3,
    multipolygon_share: float = 0.05,
    seed: int = 20261205,
) -> District:
    """Draw a synthetic district (about 10–20 s at the default size on the reference machine).

    Every layer is a GeoDataFrame in EPSG:4326 with the columns ``geogrid import`` reads.
    """
    rng = np.random.default_rng(seed)
    box = shapely.box(X0, Y0, X1, Y1)
    width_km, height_km = (X1 - X0) / KM_LON, (Y1 - Y0) / KM_LAT
    m_deg = np.array([KM_LON, KM_LAT]) / 1000  # degrees per metre (lon, lat)

    # --- communities: Voronoi cells of a jittered lattice --------------------------------
    cols = max(1, round(np.sqrt(n_communities * width_km / height_km)))
    rows = int(np.ceil(n_communities / cols))
    cell = np.array([(X1 - X0) / cols, (Y1 - Y0) / rows])
    ij = np.array([(i, j) for j in range(rows) for i in range(cols)], dtype=float)
    ij = ij[rng.permutation(len(ij))[:n_communities]]
    seeds = np.array([X0, Y0]) + (ij + 0.5 + rng.uniform(-0.35, 0.35, ij.shape)) * cell
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True)
    comm = shapely.intersection(np.asarray(shapely.get_parts(cells)), box)
    centre = shapely.centroid(comm)
    cx, cy = shapely.get_x(centre), shapely.get_y(centre)
    # Subdistricts: the communities nearest to each of `subdistricts` seeds.
    sub_seeds = seeds[rng.choice(len(seeds), min(subdistricts, len(seeds)), replace=False)]
    sub = np.argmin(
        (cx[:, None] - sub_seeds[None, :, 0]) ** 2 + (cy[:, None] - sub_seeds[None, :, 1]) ** 2,
        axis=1,
    )
    # Subdistrict numbers west→east, north→south by their seeds; communities likewise within.
    sub_rank = _band_order(sub_seeds[:, 0], sub_seeds[:, 1], 3)
    sub_no = sub_rank[sub] + 1
    seq = np.zeros(len(comm), dtype=np.int64)
    for s in np.unique(sub):
        members = np.flatnonzero(sub == s)
        seq[members] = _band_order(cx[members], cy[members], 4) + 1
    codes = np.array([f"{DISTRICT_CODE}{s:03d}{q:03d}" for s, q in zip(sub_no, seq, strict=True)])
    order = np.argsort(codes)  # communities in code order
    comm, codes, sub_no = comm[order], codes[order], sub_no[order]
    sub_names = _names(rng, int(sub_no.max()), "街道")
    communities = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": _names(rng, len(comm), "社区"),
            "subdistrict": [sub_names[s - 1] for s in sub_no],
            "district": DISTRICT_NAME,
            "city": "惠州市",
            "province": "广东省",
        },
        geometry=gpd.GeoSeries(comm, crs=WGS84),
        crs=WGS84,
    )

    # --- grids: a Voronoi tessellation of each community ---------------------------------
    g_seeds, g_owner = _points_in(rng, comm, grids_per_community)
    grid_polys = _tessellate_each(g_seeds, g_owner, comm)
    gc = shapely.centroid(grid_polys)
    g_seq = np.zeros(len(grid_polys), dtype=np.int64)
    starts = np.searchsorted(g_owner, np.arange(len(comm) + 1))
    for p in range(len(comm)):
        a, b = starts[p], starts[p + 1]
        g_seq[a:b] = _band_order(shapely.get_x(gc[a:b]), shapely.get_y(gc[a:b]), 3) + 1
    grid_codes = np.array(
        [f"{codes[o]}{q:03d}" for o, q in zip(g_owner, g_seq, strict=True)], dtype=object
    )
    grids = gpd.GeoDataFrame(
        {"code": grid_codes, "name": [f"第{q}网格" for q in g_seq], "community": codes[g_owner]},
        geometry=gpd.GeoSeries(grid_polys, crs=WGS84),
        crs=WGS84,
    )

    # --- streets: a lattice of roads per community, inside the community shrunk -----------
    inset = INSET_M * float(m_deg.max())
    inner = shapely.buffer(comm, -inset)
    ib = shapely.bounds(inner)
    s_geoms: list[object] = []
    s_names: list[str] = []
    s_kinds: list[str] = []
    s_owner: list[int] = []
    for p in range(len(comm)):
        lines = []
        x0, y0, x1, y1 = ib[p]
        nx = max(2, round((x1 - x0) / KM_LON / 0.5))  # a road about every 500 m
        ny = max(2, round((y1 - y0) / KM_LAT / 0.5))
        for t in (np.arange(1, nx) / nx) * (x1 - x0) + x0:
            lines.append(shapely.LineString([(t, y0), (t, y1)]))
        for t in (np.arange(1, ny) / ny) * (y1 - y0) + y0:
            lines.append(shapely.LineString([(x0, t), (x1, t)]))
        clipped = shapely.intersection(np.asarray(lines, dtype=object), inner[p])
        clipped = clipped[
            (shapely.get_type_id(clipped) == 1) & (shapely.length(clipped) > 0.001 * KM_LON)
        ]
        names = _names(rng, len(clipped), "")
        kinds = rng.choice(_STREET_KINDS, len(clipped), p=[0.45, 0.35, 0.15, 0.05])
        s_geoms.extend(clipped.tolist())
        s_names.extend(n + k for n, k in zip(names, kinds, strict=True))
        s_kinds.extend(kinds.tolist())
        s_owner.extend([p] * len(clipped))
    s_owner_a = np.asarray(s_owner, dtype=np.int64)
    street_geoms = np.asarray(s_geoms, dtype=object)
    # Densify so each road has interior vertices (the representative point is one of them).
    street_geoms = shapely.segmentize(street_geoms, 0.1 * KM_LON)
    streets = gpd.GeoDataFrame(
        {"name": s_names, "kind": s_kinds, "community": codes[s_owner_a]},
        geometry=gpd.GeoSeries(street_geoms, crs=WGS84),
        crs=WGS84,
    )

    # --- buildings: distinct lattice cells, drawn from the towns, inside one community -----
    towns = _towns(rng)
    site = SITE_M * m_deg
    tree = shapely.STRtree(inner)
    sites = np.empty((0, 2))
    b_owner = np.empty(0, dtype=np.int64)
    seen: set[tuple[int, int]] = set()
    while len(sites) < buildings:
        want = int((buildings - len(sites)) * 1.3) + 64
        pts = _draw(rng, towns, want, background=0.15)
        cell_ij = np.floor((pts - [X0, Y0]) / site).astype(np.int64)
        _, first = np.unique(cell_ij, axis=0, return_index=True)
        first = np.sort(first)
        fresh = np.array([(int(a), int(b)) not in seen for a, b in cell_ij[first]], dtype=bool)
        first = first[fresh]
        centres = (cell_ij[first] + 0.5) * site + [X0, Y0]
        hit_pt, hit_poly = tree.query(shapely.points(centres), predicate="within")
        # A site's block (up to 50 × 50 m) must lie inside the community's inner part.
        blocks = shapely.box(
            centres[hit_pt, 0] - 25 * m_deg[0],
            centres[hit_pt, 1] - 25 * m_deg[1],
            centres[hit_pt, 0] + 25 * m_deg[0],
            centres[hit_pt, 1] + 25 * m_deg[1],
        )
        ok = shapely.within(blocks, inner[hit_poly])
        hit_pt, hit_poly = hit_pt[ok], hit_poly[ok]
        seen.update((int(a), int(b)) for a, b in cell_ij[first[hit_pt]])
        sites = np.vstack([sites, centres[hit_pt]])
        b_owner = np.concatenate([b_owner, hit_poly])
    sites, b_owner = sites[:buildings], b_owner[:buildings]
    order = np.lexsort((sites[:, 0], -sites[:, 1], b_owner))  # community, north→south, west→east
    sites, b_owner = sites[order], b_owner[order]
    nb = len(sites)
    half_w = rng.uniform(8, 24, nb) * m_deg[0]
    half_h = rng.uniform(6, 20, nb) * m_deg[1]
    multi = rng.random(nb) < multipolygon_share
    # Two blocks with a 6 m passage between them, side by side.
    gap = 3 * m_deg[0]
    left = shapely.box(
        sites[:, 0] - half_w, sites[:, 1] - half_h, sites[:, 0] - gap, sites[:, 1] + half_h
    )
    right = shapely.box(
        sites[:, 0] + gap, sites[:, 1] - half_h, sites[:, 0] + half_w, sites[:, 1] + half_h
    )
    whole = shapely.box(
        sites[:, 0] - half_w, sites[:, 1] - half_h, sites[:, 0] + half_w, sites[:, 1] + half_h
    )
    parts = np.column_stack([left, right])[multi].ravel()
    mp = shapely.multipolygons(parts, indices=np.repeat(np.arange(int(multi.sum())), 2))
    b_geoms = whole.copy()
    b_geoms[multi] = mp
    floors = np.where(rng.random(nb) < 0.3, rng.integers(1, 4, nb), rng.integers(6, 34, nb)).astype(
        np.int64
    )

    # Each building's street: the nearest road of its own community.
    b_street = np.empty(nb, dtype=object)
    b_starts = np.searchsorted(b_owner, np.arange(len(comm) + 1))
    s_order = np.argsort(s_owner_a, kind="stable")
    s_starts = np.searchsorted(s_owner_a[s_order], np.arange(len(comm) + 1))
    s_names_a = np.asarray(s_names, dtype=object)
    for p in range(len(comm)):
        a, b = b_starts[p], b_starts[p + 1]
        own = s_order[s_starts[p] : s_starts[p + 1]]
        if b == a:
            continue
        if len(own) == 0:
            b_street[a:b] = None
            continue
        d = shapely.distance(shapely.points(sites[a:b])[:, None], street_geoms[own][None, :])
        b_street[a:b] = s_names_a[own[np.argmin(d, axis=1)]]
    # House numbers along each street: 1, 2, 3 … in building order.
    street_key = pd.Series(list(zip(b_owner.tolist(), b_street.tolist(), strict=True)))
    house_no = street_key.groupby(street_key).cumcount().to_numpy() + 1
    house_number = np.array([f"{n}号" for n in house_no], dtype=object)
    # Compounds: runs of up to 12 neighbouring buildings (in lattice order) of one community;
    # 15 % of buildings are houses on their own, named by their address.
    in_compound = rng.random(nb) >= 0.15
    run = np.zeros(nb, dtype=np.int64)
    b_name = np.empty(nb, dtype=object)
    b_compound = np.empty(nb, dtype=object)
    for p in range(len(comm)):
        a, b = b_starts[p], b_starts[p + 1]
        idx = np.arange(a, b)[in_compound[a:b]]
        size = 12
        run[idx] = np.arange(len(idx)) // size
        n_comp = int(run[idx].max()) + 1 if len(idx) else 0
        kinds = rng.choice(_COMPOUND_KINDS, n_comp)
        names = _names(rng, n_comp, "")
        cnames = np.array([n + k for n, k in zip(names, kinds, strict=True)], dtype=object)
        b_compound[idx] = cnames[run[idx]] if n_comp else None
        b_name[idx] = [f"{k % size + 1}栋" for k in range(len(idx))]
        alone = np.arange(a, b)[~in_compound[a:b]]
        b_name[alone] = [
            f"{b_street[i] or ''}{house_number[i]}" for i in alone
        ]  # (street, number) is unique
        b_compound[alone] = None
    buildings_gdf = gpd.GeoDataFrame(
        {
            "name": b_name,
            "compound": b_compound,
            "house_number": house_number,
            "street_name": b_street,
            "floors": floors,
            "community": codes[b_owner],
        },
        geometry=gpd.GeoSeries(b_geoms, crs=WGS84),
        crs=WGS84,
    )

    # --- households: points strictly inside their building --------------------------------
    area = 4 * half_w * half_h
    weight = floors * area
    counts = (
        rng.multinomial(households - nb, weight / weight.sum()) + 1
        if households >= nb
        else (np.bincount(rng.choice(nb, households, replace=False), minlength=nb))
    )
    hb = np.repeat(np.arange(nb), counts)  # building of each household (building order)
    nh = len(hb)
    # Uniform inside the building's block, 1 m from its walls; in a MultiPolygon, one side.
    margin = m_deg
    u = rng.random((nh, 2))
    hx0 = sites[hb, 0] - half_w[hb] + margin[0]
    hx1 = sites[hb, 0] + half_w[hb] - margin[0]
    hy0 = sites[hb, 1] - half_h[hb] + margin[1]
    hy1 = sites[hb, 1] + half_h[hb] - margin[1]
    side = rng.random(nh) < 0.5
    m = multi[hb]
    hx0 = np.where(m & ~side, sites[hb, 0] + gap + margin[0], hx0)
    hx1 = np.where(m & side, sites[hb, 0] - gap - margin[0], hx1)
    hx = hx0 + u[:, 0] * (hx1 - hx0)
    hy = hy0 + u[:, 1] * (hy1 - hy0)
    k = np.arange(nh) - np.repeat(np.cumsum(counts) - counts, counts)  # 0.. within building
    units = np.maximum(1, np.minimum(4, counts // 24 + 1))[hb]
    per_unit = np.ceil(counts[hb] / units).astype(np.int64)
    unit_no = k // per_unit + 1
    in_unit = k % per_unit
    doors = 4
    storey = np.minimum(in_unit // doors + 1, np.maximum(floors[hb], 1) * 4)
    room_no = storey * 100 + in_unit % doors + 1
    h_codes = codes[b_owner[hb]]
    address = (
        pd.Series(h_codes, dtype=object)
        + "-"
        + pd.Series(np.arange(1, nh + 1)).map("{:07d}".format)
    )
    households_gdf = gpd.GeoDataFrame(
        {
            "address_id": address.to_numpy(),
            "street_name": b_street[hb],
            "house_number": house_number[hb],
            "building_name": b_name[hb],
            "compound": b_compound[hb],
            "unit": pd.Series(unit_no).map("{}单元".format).to_numpy(),
            "room": room_no.astype(str),
            "community": h_codes,
        },
        geometry=gpd.GeoSeries(shapely.points(hx, hy), crs=WGS84),
        crs=WGS84,
    )

    # --- responsibility fields: Voronoi cells of seeds per grid, clipped to their grid ----
    f_seeds, f_owner = _points_in(rng, grid_polys, fields_per_grid)
    f_polys = _clipped_voronoi(f_seeds, f_owner, grid_polys)
    # Keep one polygon per field: the part holding its seed (the cell is convex and so is the
    # grid, so the intersection is one polygon unless GEOS returns a degenerate collection).
    f_polys = np.where(shapely.get_type_id(f_polys) == 3, f_polys, None)
    keep = np.flatnonzero(
        (f_polys != None) & (shapely.area(f_polys) > 100 * m_deg[0] * m_deg[1])  # noqa: E711
    )
    f_seq = np.arange(len(f_owner)) - np.searchsorted(f_owner, f_owner) + 1
    fields_gdf = gpd.GeoDataFrame(
        {
            "name": [f"{grid_codes[f_owner[i]]}-{f_seq[i]}号责任田" for i in keep],
            "member": "",
            "community": codes[g_owner[f_owner[keep]]],
        },
        geometry=gpd.GeoSeries(f_polys[keep], crs=WGS84),
        crs=WGS84,
    )
    return District(
        communities=communities,
        grids=grids,
        streets=streets,
        buildings=buildings_gdf,
        households=households_gdf,
        fields=fields_gdf,
    )


def scaled(scale: float, **kw: int) -> dict[str, int]:
    """``make_district`` sizes at ``scale`` of the full district (at least 2 communities)."""
    full = {"n_communities": 200, "buildings": 50_000, "households": 500_000}
    out = {k: max(2 if k == "n_communities" else 10, round(v * scale)) for k, v in full.items()}
    out["grids_per_community"] = 10
    return {**out, **kw}
