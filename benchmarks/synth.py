"""A synthetic city for the benchmarks: clustered households, grids, responsibility fields.

Everything is drawn from one seeded ``numpy.random.Generator`` so a run is reproducible, and
kept as numpy coordinate arrays (geometry objects are built only where a tool needs them).

* The territory is a 40 × 30 km box centred on 114.4E 23.1N (degrees, EPSG:4326).
* Households are a mixture of Gaussian "towns" of very different sizes (a few dense centres,
  many villages) over a thin uniform background, like a city seen from above.
* Grids are the Voronoi cells of 10,000 seeds, most drawn from the same mixture (grids are
  small where people live, as the 300–500 households-per-grid practice wants), clipped to the
  box: a tessellation with no gaps and no overlaps, neighbours sharing exact vertices.
* A small share of households sits exactly on grid vertices (shared by three grids) so the
  edge rule (lowest grid code wins) is exercised at scale, not just in the unit tests.
* Responsibility fields are the Voronoi cells of a denser seed set, 80 % of them kept, so they
  cover about 80 % of the territory and share edges with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

CENTRE = (114.4, 23.1)
WIDTH_KM, HEIGHT_KM = 40.0, 30.0
#: Degrees per km at 23.1N (WGS 84: 110.8 km per degree of latitude; cos φ for longitude).
KM_LAT = 1 / 110.8
KM_LON = 1 / (111.32 * np.cos(np.radians(CENTRE[1])))
X0 = CENTRE[0] - WIDTH_KM / 2 * KM_LON
X1 = CENTRE[0] + WIDTH_KM / 2 * KM_LON
Y0 = CENTRE[1] - HEIGHT_KM / 2 * KM_LAT
Y1 = CENTRE[1] + HEIGHT_KM / 2 * KM_LAT
#: 15-digit grid codes: 441302 (惠城区) + 011 (a subdistrict) + 6-digit sequence.
CODE_PREFIX = "441302011"


@dataclass(frozen=True)
class Towns:
    """The Gaussian mixture households (and grid seeds) are drawn from."""

    centres: npt.NDArray[np.float64]  # (k, 2) degrees
    sigmas_km: npt.NDArray[np.float64]  # (k,)
    weights: npt.NDArray[np.float64]  # (k,), sums to 1


@dataclass(frozen=True)
class City:
    seed: int
    hh_x: npt.NDArray[np.float64]
    hh_y: npt.NDArray[np.float64]
    #: Grid polygons in *insertion* order (shuffled, so ids do not follow codes).
    grids: npt.NDArray[np.object_]
    grid_codes: npt.NDArray[np.str_]
    fields: npt.NDArray[np.object_]
    #: How many households were put exactly on grid vertices.
    hh_on_vertices: int

    def households(self, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The first ``n`` households (every size is a prefix of the largest)."""
        return self.hh_x[:n], self.hh_y[:n]


def _towns(rng: np.random.Generator, k: int = 120) -> Towns:
    # Town sizes follow a heavy tail (a few cities, many villages); spread grows with size.
    weights = rng.pareto(1.2, k) + 0.05
    weights /= weights.sum()
    sigmas = 0.4 + 3.0 * np.sqrt(weights / weights.max())
    margin = 3.0
    cx = rng.uniform(X0 + margin * KM_LON, X1 - margin * KM_LON, k)
    cy = rng.uniform(Y0 + margin * KM_LAT, Y1 - margin * KM_LAT, k)
    return Towns(np.column_stack([cx, cy]), sigmas, weights)


def _draw(
    rng: np.random.Generator, towns: Towns, n: int, background: float
) -> npt.NDArray[np.float64]:
    """``n`` points inside the box: the town mixture plus a uniform ``background`` share."""
    out = np.empty((0, 2))
    while len(out) < n:
        m = int((n - len(out)) * 1.1) + 16
        which = rng.choice(len(towns.weights), m, p=towns.weights)
        pts = towns.centres[which] + rng.standard_normal((m, 2)) * (
            towns.sigmas_km[which, None] * np.array([KM_LON, KM_LAT])
        )
        uniform = rng.random(m) < background
        pts[uniform] = rng.uniform([X0, Y0], [X1, Y1], (uniform.sum(), 2))
        inside = (pts[:, 0] > X0) & (pts[:, 0] < X1) & (pts[:, 1] > Y0) & (pts[:, 1] < Y1)
        out = np.vstack([out, pts[inside]])
    return out[:n]


def _buildings(rng: np.random.Generator, towns: Towns, n: int) -> npt.NDArray[np.float64]:
    """``n`` households in buildings, in register order: a building's households are
    consecutive (address order: compound, building, unit, room), buildings in random order.

    Building sizes are log-normal (median 12, long tail to 300: village houses to towers);
    each household's door is within a few metres of its building's.
    """
    sizes = np.clip(rng.lognormal(np.log(12), 1.0, n // 4 + 16).astype(np.int64), 1, 300)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sites = _draw(rng, towns, len(sizes), background=0.1)
    pts = np.repeat(sites, sizes, axis=0)[:n]
    pts += rng.uniform(-5, 5, (n, 2)) / 1000 * np.array([KM_LON, KM_LAT])
    np.clip(pts, [X0 + 1e-9, Y0 + 1e-9], [X1 - 1e-9, Y1 - 1e-9], out=pts)
    return pts


def _tessellate(seeds: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    """Voronoi cells of ``seeds`` clipped to the box, in seed order."""
    box = shapely.box(X0, Y0, X1, Y1)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True)
    return shapely.intersection(np.asarray(shapely.get_parts(cells)), box)


def _codes(polys: npt.NDArray[np.object_]) -> npt.NDArray[np.str_]:
    """Grid codes numbered west→east within 100 north→south bands (DB11 practice)."""
    c = shapely.centroid(polys)
    x, y = shapely.get_x(c), shapely.get_y(c)
    band = np.minimum(((Y1 - y) / (Y1 - Y0) * 100).astype(int), 99)
    order = np.lexsort((x, band))
    seq = np.empty(len(polys), dtype=np.int64)
    seq[order] = np.arange(1, len(polys) + 1)
    return np.array([f"{CODE_PREFIX}{s:06d}" for s in seq])


def make_city(
    *,
    households: int,
    grids: int = 10_000,
    fields: int = 30_000,
    field_cover: float = 0.8,
    on_vertex_share: float = 0.001,
    seed: int = 20240611,
    order: str = "building",
) -> City:
    """Draw the synthetic city (about 5 s for 1M households on the reference machine)."""
    rng = np.random.default_rng(seed)
    towns = _towns(rng)
    grid_polys = _tessellate(_draw(rng, towns, grids, background=0.3))
    codes = _codes(grid_polys)
    shuffle = rng.permutation(len(grid_polys))
    grid_polys, codes = grid_polys[shuffle], codes[shuffle]

    field_polys = _tessellate(_draw(rng, towns, int(fields / field_cover), background=0.3))
    keep = np.sort(rng.choice(len(field_polys), fields, replace=False))
    field_polys = field_polys[keep]

    pts = _buildings(rng, towns, households)
    # Exact grid vertices (each shared by 3 grids, or 2 on the box edge): the edge rule's cases.
    verts = np.unique(shapely.get_coordinates(grid_polys), axis=0)
    n_on = int(households * on_vertex_share)
    on = rng.choice(households, n_on, replace=False)
    pts[on] = verts[rng.choice(len(verts), n_on)]
    if order == "random":
        pts = pts[rng.permutation(households)]
    elif order == "hilbert":
        import geopandas

        key = geopandas.GeoSeries(shapely.points(pts)).hilbert_distance().to_numpy()
        pts = pts[np.argsort(key, kind="stable")]
    elif order != "building":
        raise ValueError(f"order must be building, random or hilbert, not {order!r}")
    return City(
        seed=seed,
        hh_x=np.ascontiguousarray(pts[:, 0]),
        hh_y=np.ascontiguousarray(pts[:, 1]),
        grids=grid_polys,
        grid_codes=codes,
        fields=field_polys,
        hh_on_vertices=n_on,
    )
