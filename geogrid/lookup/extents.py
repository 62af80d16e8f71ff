"""Which communities may cover a point: a bucket grid over the communities' extents.

A city holds ~1,000 communities; asking each community's index in turn costs ~1 µs per
community for a point it does not hold (the bounds test of its first layer), ~1 ms a lookup
in all. :class:`Extents` keeps a :class:`~geogrid.lookup.cells.Cells` over the bounding
boxes of the communities' grids and answers the few communities whose box covers a point,
in their order (the service's order: by code), so the first community whose grids cover the
point answers — exactly as the loop over every community did, since a community whose box
does not cover a point has no grid covering it. Boxes overlap (communities are not
rectangles), so every box of the point's bucket is a candidate, not only the first
(:meth:`Cells.find` answers the lowest-ranked one only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import shapely

from geogrid.lookup.cells import Cells, FloatArray, IntArray

__all__ = ["Extents"]

#: Metres per degree of latitude, the smallest on the WGS 84 ellipsoid (at the equator): a
#: distance in scaled degrees times this is a lower bound of the distance in metres.
_M_PER_DEGREE_MIN: Final = 110_574.0


class Extents:
    """The bounding boxes ``(xmin, ymin, xmax, ymax)`` of communities, in rank order."""

    def __init__(self, bounds: Sequence[tuple[float, float, float, float]]) -> None:
        self.size = len(bounds)
        b = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
        self._b = b
        self._boxes = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
        self.cells = Cells(self._boxes)
        cells = self.cells
        # Every box meeting a cell, in rank order (pure cells included: boxes overlap).
        self._lists: list[tuple[int, ...]] = [
            tuple(cells.cand[a : a + k].tolist()) if k else ()
            for a, k in zip(cells.start.tolist(), cells.count.tolist(), strict=True)
        ]
        self._bounds_list = [tuple(map(float, row)) for row in b]

    def candidates(self, x: float, y: float) -> list[int]:
        """Positions of the boxes covering (x, y), lowest rank first."""
        c = self.cells
        if not (c.xmin <= x <= c.xmax and c.ymin <= y <= c.ymax):
            return []  # also NaN
        i = min(int((x - c.xmin) / c.dx), c.nx - 1)
        j = min(int((y - c.ymin) / c.dy), c.ny - 1)
        out = []
        for p in self._lists[j * c.nx + i]:
            xmin, ymin, xmax, ymax = self._bounds_list[p]
            if xmin <= x <= xmax and ymin <= y <= ymax:
                out.append(p)
        return out

    def candidates_many(self, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray]:
        """Pairs (point, box) of every box covering each point, by box then point."""
        c = self.cells
        inb = np.flatnonzero((x >= c.xmin) & (x <= c.xmax) & (y >= c.ymin) & (y <= c.ymax))
        if len(inb) == 0 or self.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        i = np.minimum(((x[inb] - c.xmin) / c.dx).astype(np.int64), c.nx - 1)
        j = np.minimum(((y[inb] - c.ymin) / c.dy).astype(np.int64), c.ny - 1)
        cell = j * c.nx + i
        counts = c.count[cell]
        owner = np.repeat(inb, counts)
        ends = np.cumsum(counts)
        offset = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)
        box = c.cand[np.repeat(c.start[cell], counts) + offset]
        b = self._b[box]
        px, py = x[owner], y[owner]
        keep = (b[:, 0] <= px) & (px <= b[:, 2]) & (b[:, 1] <= py) & (py <= b[:, 3])
        owner, box = owner[keep], box[keep]
        order = np.lexsort((owner, box))
        return owner[order], box[order]

    def by_distance(self, x: float, y: float) -> list[tuple[float, int]]:
        """(lower bound of the distance in metres, position) of every box, nearest first.

        The distance is measured with x scaled by cos φ of the point (a local
        equirectangular frame) and converted with the fewest metres a degree holds, so it
        never exceeds the geodesic distance to anything inside the box by more than the
        frame's error (< 0.1 % across a city).
        """
        if self.size == 0:
            return []
        kx = math.cos(math.radians(y))
        b = self._b
        dx = np.maximum(np.maximum(b[:, 0] - x, x - b[:, 2]), 0.0) * kx
        dy = np.maximum(np.maximum(b[:, 1] - y, y - b[:, 3]), 0.0)
        dist = np.hypot(dx, dy) * _M_PER_DEGREE_MIN
        order = np.argsort(dist, kind="stable")
        return [(float(dist[p]), int(p)) for p in order]
