"""The bucket grid: which polygon of a layer covers a point, without making Point objects.

:class:`Cells` answers as an STRtree query with the edge rule would (lowest rank wins on
shared edges; ``tests/test_lookup.py`` checks it on random tilings, every vertex and edge),
in ~0.5 µs a point instead of ~3 µs, and in bulk without Point objects. Pure numpy and
shapely; :class:`~geogrid.lookup.index.LookupIndex` keeps one per layer.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["Cells", "FloatArray", "IntArray", "first_covering"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Cells per side of a layer's bucket grid: √(polygons) × 16, within these bounds.
_CELLS_MIN: Final = 32
_CELLS_MAX: Final = 256
#: Cell boxes are widened by this (degrees, ~0.1 mm) against rounding of the cell index.
_CELL_PAD: Final = 1e-9
_MIXED: Final = -2


class Cells:
    """A uniform bucket grid over one layer's polygons, for lookups without Point objects.

    Each cell of an ``n × n`` grid over the layer's bounds holds the polygons that intersect
    the cell's closed box, widened by :data:`_CELL_PAD` so that a point rounded into a
    neighbouring cell still finds every polygon covering it. A cell is *pure* when its
    lowest-ranked polygon contains the widened box properly: every point in it is answered
    with that polygon, no geometry test at all; *empty* cells answer −1;
    only points in *mixed* cells (along edges) are tested, candidates in rank order, first
    hit wins: the edge rule (positions are ranks). With ~0.5 µs per single lookup instead of
    ~3 µs for an STRtree query through shapely's Python layer (+ 2.6 µs to make the Point),
    and no Point objects in bulk (``shapely.points`` alone costs ~0.35 s per million), this
    is the "bucket grid" of ../shared/PERF_NOTES.md in numpy. The predicate is the same as
    the STRtree's and the SQL's: ``intersects`` ≡ ``ST_Covers`` for a point and a polygon.
    """

    def __init__(self, geoms: npt.NDArray[np.object_], *, max_side: int | None = None) -> None:
        # ``max_side`` caps the cells per side below :data:`_CELLS_MAX` (a city's ~1,000
        # communities × 3 layers: 256² cells each would be ~7 GB and ~30 min to build).
        self.geoms = geoms
        self._geom_list = list(geoms)
        self.size = len(geoms)
        if self.size == 0:
            self.xmin = self.ymin = 1.0
            self.xmax = self.ymax = 0.0  # contains nothing
            self.nx = self.ny = 1
            self.dx = self.dy = 1.0
            self.answer = np.full(1, -1, dtype=np.int64)
            self.start = np.zeros(1, dtype=np.int64)
            self.count = np.zeros(1, dtype=np.int64)
            self.cand = np.zeros(0, dtype=np.int64)
            self._answer_list: list[int] | None = [-1]
            self._cand_lists: list[tuple[int, ...]] = [()]
            return
        xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(geoms))
        n = int(min(_CELLS_MAX, max(_CELLS_MIN, math.ceil(math.sqrt(self.size) * 16))))
        n = min(n, max_side) if max_side else n
        self.nx = self.ny = n
        self.xmin, self.ymin, self.xmax, self.ymax = xmin, ymin, xmax, ymax
        self.dx = (xmax - xmin) / n or 1e-9
        self.dy = (ymax - ymin) / n or 1e-9
        i = np.tile(np.arange(n), n)  # cell c = j * n + i
        j = np.repeat(np.arange(n), n)
        boxes = shapely.box(
            xmin + i * self.dx - _CELL_PAD,
            ymin + j * self.dy - _CELL_PAD,
            xmin + (i + 1) * self.dx + _CELL_PAD,
            ymin + (j + 1) * self.dy + _CELL_PAD,
        )
        cell, poly = shapely.STRtree(geoms).query(boxes, predicate="intersects")
        order = np.lexsort((poly, cell))  # by cell, then rank
        cell, poly = cell[order].astype(np.int64), poly[order].astype(np.int64)
        self.count = np.bincount(cell, minlength=n * n).astype(np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        self.cand = poly
        answer = np.full(n * n, -1, dtype=np.int64)
        has = np.flatnonzero(self.count > 0)
        first = poly[self.start[has]]
        pure = shapely.contains_properly(geoms[first], boxes[has])
        answer[has] = np.where(pure, first, _MIXED)
        self.answer = answer
        self._answer_list = answer.tolist()
        self._cand_lists = [
            tuple(poly[a : a + k].tolist()) if k and ans == _MIXED else ()
            for a, k, ans in zip(
                self.start.tolist(), self.count.tolist(), self._answer_list, strict=True
            )
        ]

    def find(self, x: float, y: float) -> int:
        """Position (= rank) of the lowest-ranked polygon covering (x, y); −1 if none."""
        if not (self.xmin <= x <= self.xmax and self.ymin <= y <= self.ymax):
            return -1  # also NaN
        i = min(int((x - self.xmin) / self.dx), self.nx - 1)
        j = min(int((y - self.ymin) / self.dy), self.ny - 1)
        c = j * self.nx + i
        if self._answer_list is None:  # arrays shared from a file (from_arrays)
            return self._find_in_arrays(c, x, y)
        answer = self._answer_list[c]
        if answer != _MIXED:
            return answer
        for g in self._cand_lists[c]:
            if shapely.lib.intersects_xy(self._geom_list[g], x, y):
                return g
        return -1

    def _find_in_arrays(self, c: int, x: float, y: float) -> int:
        answer = int(self.answer[c])
        if answer != _MIXED:
            return answer
        a = int(self.start[c])
        for g in self.cand[a : a + int(self.count[c])].tolist():
            if shapely.lib.intersects_xy(self._geom_list[g], x, y):
                return int(g)
        return -1

    # --- shared through a file (geogrid.lookup.store) -----------------------------------------

    def params(self) -> dict[str, float | int]:
        """The grid's scalars: with :meth:`arrays`, all :meth:`from_arrays` needs."""
        return {
            "size": self.size,
            **{k: getattr(self, k) for k in ("xmin", "ymin", "xmax", "ymax", "dx", "dy")},
            **{k: getattr(self, k) for k in ("nx", "ny")},
        }

    def arrays(self) -> dict[str, npt.NDArray[np.int64]]:
        return {"answer": self.answer, "start": self.start, "count": self.count, "cand": self.cand}

    @classmethod
    def from_arrays(
        cls,
        geoms: npt.NDArray[np.object_],
        params: dict[str, float | int],
        arrays: dict[str, npt.NDArray[np.integer]],
    ) -> Cells:
        """A grid over ``geoms`` from :meth:`params` and :meth:`arrays` of one built over the
        same polygons in the same order — e.g. arrays memory-mapped from a file that several
        processes share. It keeps no per-cell Python lists: :meth:`find` reads the arrays."""
        self = cls.__new__(cls)
        self.geoms = geoms
        self._geom_list = list(geoms)
        self.size = int(params["size"])
        if self.size != len(geoms):
            raise ValueError(f"arrays of {self.size} polygons for {len(geoms)}")
        self.xmin, self.ymin = float(params["xmin"]), float(params["ymin"])
        self.xmax, self.ymax = float(params["xmax"]), float(params["ymax"])
        self.dx, self.dy = float(params["dx"]), float(params["dy"])
        self.nx, self.ny = int(params["nx"]), int(params["ny"])
        self.answer, self.start = arrays["answer"], arrays["start"]  # type: ignore[assignment]
        self.count, self.cand = arrays["count"], arrays["cand"]  # type: ignore[assignment]
        self._answer_list = None
        self._cand_lists = []
        return self

    def find_many(self, x: FloatArray, y: FloatArray) -> IntArray:
        """:meth:`find` over arrays (non-finite coordinates find nothing)."""
        out = np.full(len(x), -1, dtype=np.int64)
        inb = np.flatnonzero(
            (x >= self.xmin) & (x <= self.xmax) & (y >= self.ymin) & (y <= self.ymax)
        )
        if len(inb) == 0:
            return out
        i = np.minimum(((x[inb] - self.xmin) / self.dx).astype(np.int64), self.nx - 1)
        j = np.minimum(((y[inb] - self.ymin) / self.dy).astype(np.int64), self.ny - 1)
        cell = j * self.nx + i
        answer = self.answer[cell]
        out[inb] = np.where(answer == _MIXED, -1, answer)
        mixed = answer == _MIXED
        if not mixed.any():
            return out
        pts, cells = inb[mixed], cell[mixed]
        first_covering(
            self.geoms, self.cand, self.start[cells], self.count[cells], pts, x, y, out=out
        )
        return out


def first_covering(
    geoms: npt.NDArray[np.object_],
    cand: npt.NDArray[np.integer],
    starts: npt.NDArray[np.integer],
    counts: npt.NDArray[np.integer],
    pts: IntArray,
    x: FloatArray,
    y: FloatArray,
    *,
    out: IntArray,
) -> None:
    """The edge rule over candidate lists: ``out[pts[k]]`` = the first of
    ``cand[starts[k] : starts[k] + counts[k]]`` (in rank order) whose polygon covers point
    ``pts[k]``; left as it is when none does. One vectorised GEOS call for every pair, no
    Point objects (:class:`Cells` and :class:`~geogrid.lookup.fine.FineCells` share it)."""
    counts = counts.astype(np.int64)
    if len(pts) == 0 or int(counts.sum()) == 0:
        return
    owner = np.repeat(np.arange(len(pts)), counts)  # pair → its point (non-decreasing)
    ends = np.cumsum(counts)
    offset = np.arange(int(ends[-1])) - np.repeat(ends - counts, counts)
    pair = cand[np.repeat(starts.astype(np.int64), counts) + offset].astype(np.int64)
    hit = shapely.intersects_xy(geoms[pair], x[pts[owner]], y[pts[owner]])
    owner, pair = owner[hit], pair[hit]
    if len(owner):
        # Candidates of a cell are in rank order: the first hit of a point is the lowest.
        first = np.ones(len(owner), dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        out[pts[owner[first]]] = pair[first]
