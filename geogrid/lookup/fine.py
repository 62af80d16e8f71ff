"""A fine bucket grid for tens of thousands of polygons, built by rasterising their rings.

:class:`~geogrid.lookup.cells.Cells` asks an STRtree which polygons touch each of at most
256 × 256 cells. With 20,000 grids that leaves ~80 % of the cells *mixed* (measured on the
synthetic city of ``benchmarks/synth.py``) and 5M households take ~10 s, nearly all of it in
point-in-polygon tests. :class:`FineCells` answers the same (same edge rule: candidates in
rank order, first hit wins; ``tests/test_batch.py`` checks it against
:func:`geogrid.spatial.assign_points` on every vertex and edge) with millions of cells, so
few points land in a mixed cell. An STRtree query per cell would take seconds at that size,
so the grid is built from the polygons' own coordinates instead, in numpy:

1. *Mixed cells* are the cells whose closed box, widened by :data:`_PAD` of a cell, a ring
   segment touches (an exact supercover: per column the segment crosses, the rows its
   clipped piece spans). Their candidates are those segments' polygons…
2. …plus the polygons covering the cell's centre, from a scanline fill of cell centres
   (even–odd crossings of each row's centre line). A polygon that covers part of a cell
   either has a ring segment in it or covers all of it, centre included, so the candidates
   are complete even when polygons overlap.
3. Every other cell is *pure*: no boundary crosses it, so every point in it is covered by
   the same polygons as its centre; its answer is the lowest rank among them (−1 if none).
   A pure centre is at least half a cell from every ring, so the fill's rounding cannot
   matter there.

Memory: one int32 per cell (~64 MB for 4096²) plus the mixed cells' candidate lists.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from geogrid.lookup.cells import Cells, FloatArray, IntArray, first_covering

__all__ = ["FineCells"]

#: Cells per polygon aimed at, and the bounds on cells per side. On benchmarks/city.py's
#: 20,000 grids (4161 × 1923 cells, 11 % of them mixed) 400 gave the least build + find for
#: 5M households (~1 s + ~0.9 s on a loaded 2-core VM; 100: 0.6 + 2.0 s, 200: 1.1 + 1.3 s).
CELLS_PER_POLYGON: Final = 400
_SIDE_MIN: Final = 32
_SIDE_MAX: Final = 8192
#: Widening of every cell box, in cells, against rounding of a point's cell index.
_PAD: Final = 1e-4


def _segments(
    geoms: npt.NDArray[np.object_],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Every ring segment of every polygon: x0, y0, x1, y1 and the polygon's position."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    same = coord_of[1:] == coord_of[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    poly = part_of[ring_of[coord_of[:-1][same]]].astype(np.int64)
    return a[:, 0], a[:, 1], b[:, 0], b[:, 1], poly


def _expand(lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray]:
    """For ranges [lo, hi] (inclusive; empty when hi < lo): (range number, value) pairs."""
    n = np.maximum(hi - lo + 1, 0)
    owner = np.repeat(np.arange(len(lo)), n)
    ends = np.cumsum(n)
    value = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - n, n) + lo[owner]
    return owner, value


class FineCells(Cells):
    """:class:`Cells` with millions of cells for large layers (``find``/``find_many`` alike).

    ``cells_per_polygon`` sets the resolution (cells are square in the layer's units).
    """

    def __init__(
        self, geoms: npt.NDArray[np.object_], *, cells_per_polygon: int = CELLS_PER_POLYGON
    ) -> None:
        self.geoms = geoms
        self._geom_list = list(geoms)
        self.size = len(geoms)
        xmin, ymin, xmax, ymax = (
            (float(v) for v in shapely.total_bounds(geoms)) if self.size else (1.0, 1.0, 0.0, 0.0)
        )
        if not self.size:
            xmin = ymin = 1.0
            xmax = ymax = 0.0
        w, h = max(xmax - xmin, 1e-9), max(ymax - ymin, 1e-9)
        side = math.sqrt(w * h / max(self.size * cells_per_polygon, 1))
        self.nx = int(min(_SIDE_MAX, max(_SIDE_MIN, math.ceil(w / side))))
        self.ny = int(min(_SIDE_MAX, max(_SIDE_MIN, math.ceil(h / side))))
        self.xmin, self.ymin, self.xmax, self.ymax = xmin, ymin, xmax, ymax
        self.dx, self.dy = w / self.nx, h / self.ny
        ncell = self.nx * self.ny
        if not self.size:
            self.answer = np.full(ncell, -1, dtype=np.int32)
            self.mstart = self.mcount = self.cand = np.zeros(0, dtype=np.int64)
            return
        x0, y0, x1, y1, seg_poly = _segments(geoms)
        u0, u1 = (x0 - xmin) / self.dx, (x1 - xmin) / self.dx
        v0, v1 = (y0 - ymin) / self.dy, (y1 - ymin) / self.dy
        edge_cell, edge_poly = self._supercover(u0, v0, u1, v1, seg_poly)
        fill_cell, fill_poly = self._fill(u0, v0, u1, v1, seg_poly)

        mixed = np.zeros(ncell, dtype=bool)
        mixed[edge_cell] = True
        # Pure cells: the lowest rank covering the centre (polygon positions are ranks).
        best = np.full(ncell, self.size, dtype=np.int64)
        np.minimum.at(best, fill_cell, fill_poly)
        answer = np.where(best == self.size, -1, best).astype(np.int32)
        # Mixed cells: candidates = polygons with a segment in the cell ∪ covering its centre.
        centre = mixed[fill_cell]
        key = np.sort(
            np.concatenate([edge_cell, fill_cell[centre]]) * self.size
            + np.concatenate([edge_poly, fill_poly[centre]])
        )  # np.unique's hash path took 4.5 s here for 2M keys; sorting takes 0.15 s
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
        cell, cand = np.divmod(key, self.size)
        new = np.concatenate([[True], cell[1:] != cell[:-1]])
        mstart = np.flatnonzero(new)
        # int32 halves what Dask sends to every worker (65 → 50 MB for 20k grids).
        self.cand = cand.astype(np.int32)
        self.mstart = mstart.astype(np.int32)
        self.mcount = np.diff(np.append(mstart, len(cell))).astype(np.int32)
        answer[cell[new]] = -2 - np.arange(len(self.mstart), dtype=np.int32)
        self.answer: npt.NDArray[np.int32] = answer  # type: ignore[assignment]
        # Prepared polygons answer intersects_xy ~3.7× faster (0.15 s for 1.7M pairs).
        shapely.prepare(geoms)

    def __setstate__(self, state: dict[str, object]) -> None:
        # Pickles (Dask sends the index to workers) carry WKB: prepare again on arrival.
        self.__dict__.update(state)
        shapely.prepare(self.geoms)

    def _supercover(
        self, u0: FloatArray, v0: FloatArray, u1: FloatArray, v1: FloatArray, poly: IntArray
    ) -> tuple[IntArray, IntArray]:
        """(cell, polygon) for every cell whose widened box a segment touches."""
        ulo, uhi = np.minimum(u0, u1), np.maximum(u0, u1)
        i_lo = np.clip(np.floor(ulo - _PAD), 0, self.nx - 1).astype(np.int64)
        i_hi = np.clip(np.floor(uhi + _PAD), 0, self.nx - 1).astype(np.int64)
        seg, i = _expand(i_lo, i_hi)
        # The piece of the segment over column i's widened strip, as a v range.
        a = np.maximum(ulo[seg], i - _PAD)
        b = np.minimum(uhi[seg], i + 1 + _PAD)
        du = u1[seg] - u0[seg]
        steep = du == 0
        t_a = np.where(steep, 0.0, (a - u0[seg]) / np.where(steep, 1.0, du))
        t_b = np.where(steep, 1.0, (b - u0[seg]) / np.where(steep, 1.0, du))
        dv = v1[seg] - v0[seg]
        va, vb = v0[seg] + t_a * dv, v0[seg] + t_b * dv
        # Rounding of the interpolation is far below _PAD (coordinates are exact at the ends).
        j_lo = np.clip(np.floor(np.minimum(va, vb) - _PAD), 0, self.ny - 1).astype(np.int64)
        j_hi = np.clip(np.floor(np.maximum(va, vb) + _PAD), 0, self.ny - 1).astype(np.int64)
        col, j = _expand(j_lo, j_hi)
        return j * self.nx + i[col], poly[seg[col]]

    def _fill(
        self, u0: FloatArray, v0: FloatArray, u1: FloatArray, v1: FloatArray, poly: IntArray
    ) -> tuple[IntArray, IntArray]:
        """(cell, polygon) for every cell whose centre a polygon covers (scanline, even–odd)."""
        vlo, vhi = np.minimum(v0, v1), np.maximum(v0, v1)
        # Rows whose centre line v = j + 0.5 crosses the segment, half-open [vlo, vhi).
        j_lo = np.maximum(np.ceil(vlo - 0.5), 0).astype(np.int64)
        j_hi = np.minimum(np.ceil(vhi - 0.5) - 1, self.ny - 1).astype(np.int64)
        seg, j = _expand(j_lo, j_hi)
        vc = j + 0.5
        u = u0[seg] + (vc - v0[seg]) * (u1[seg] - u0[seg]) / (v1[seg] - v0[seg])
        # Each (polygon, row) has an even number of crossings; sorted along the row they pair
        # up into the spans inside (even–odd rule). Most groups are the 2 crossings of a convex
        # polygon: those need only a min and a max; only the rest are sorted by u (a full
        # lexsort of ~1M crossings took 0.4 s of the 1 s build).
        key = poly[seg] * self.ny + j
        order = np.argsort(key, kind="stable")
        key, u = key[order], u[order]
        start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        size = np.diff(np.append(start, len(key)))
        two = start[size == 2]
        lo = np.minimum(u[two], u[two + 1])
        hi = np.maximum(u[two], u[two + 1])
        gkey = key[two]
        many = np.repeat(size > 2, size)
        if many.any():
            mk, mu = key[many], u[many]
            o = np.lexsort((mu, mk))
            mk, mu = mk[o], mu[o]
            lo = np.concatenate([lo, mu[0::2]])
            hi = np.concatenate([hi, mu[1::2]])
            gkey = np.concatenate([gkey, mk[0::2]])
        i_lo = np.maximum(np.ceil(lo - 0.5), 0).astype(np.int64)
        i_hi = np.minimum(np.floor(hi - 0.5), self.nx - 1).astype(np.int64)
        span, i = _expand(i_lo, i_hi)
        p, j = np.divmod(gkey[span], self.ny)
        return j * self.nx + i, p

    def find(self, x: float, y: float) -> int:
        """Position (= rank) of the lowest-ranked polygon covering (x, y); −1 if none."""
        if not (self.xmin <= x <= self.xmax and self.ymin <= y <= self.ymax):
            return -1  # also NaN
        i = min(int((x - self.xmin) / self.dx), self.nx - 1)
        j = min(int((y - self.ymin) / self.dy), self.ny - 1)
        answer = int(self.answer[j * self.nx + i])
        if answer >= -1:
            return answer
        m = -2 - answer
        start = int(self.mstart[m])
        for g in self.cand[start : start + int(self.mcount[m])].tolist():
            if shapely.lib.intersects_xy(self._geom_list[g], x, y):
                return int(g)
        return -1

    def find_many(self, x: FloatArray, y: FloatArray) -> IntArray:
        """:meth:`find` over arrays (non-finite coordinates find nothing)."""
        out = np.full(len(x), -1, dtype=np.int64)
        inb = np.flatnonzero(
            (x >= self.xmin) & (x <= self.xmax) & (y >= self.ymin) & (y <= self.ymax)
        )
        if len(inb) == 0:
            return out
        xi, yi = x[inb], y[inb]
        i = np.minimum(((xi - self.xmin) / self.dx).astype(np.int64), self.nx - 1)
        j = np.minimum(((yi - self.ymin) / self.dy).astype(np.int64), self.ny - 1)
        answer = self.answer[j * self.nx + i]
        mixed = answer < -1
        out[inb] = np.where(mixed, -1, answer)
        if not mixed.any():
            return out
        pts = inb[mixed]
        m = -2 - answer[mixed].astype(np.int64)
        first_covering(self.geoms, self.cand, self.mstart[m], self.mcount[m], pts, x, y, out=out)
        return out
