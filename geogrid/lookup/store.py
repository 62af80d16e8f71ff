"""Point indexes shared by the processes of one server through memory-mapped files.

``geogrid serve --workers N`` runs N processes, each with its own
:class:`~geogrid.lookup.service.LookupService`. The bulk of a community's point index is its
bucket grids (:class:`~geogrid.lookup.cells.Cells`: ``answer``/``start``/``count``/``cand``,
one per layer); :class:`CellsStore` keeps them in a folder, one ``.npy`` file per community,
counter and layer, plus a small ``.json`` of the grid's scalars. The first process that needs
a grid builds it and writes it (under an exclusive ``flock``, into a temporary name renamed
into place: readers never see half a file); every process, the builder included, then maps
it read-only (``np.load(mmap_mode="r")``), so the kernel holds one copy of the pages for all
workers and each worker's PSS counts a share of them. The polygons stay per process (GEOS
objects cannot be shared); the per-cell Python lists that speed up single lookups are not
made for shared grids (:meth:`Cells.find` reads the arrays).

Files of a community's older counters are removed when a newer one is written (a process
still mapping them keeps its pages until it lets go). The arrays are written as ``int32``
(half the pages of ``int64``; positions and offsets of one community's layer fit easily).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from geogrid.lookup.cells import Cells

__all__ = ["CellsStore"]

_LAYOUT: Final = ("answer", "start", "count", "cand")
_SAFE: Final = re.compile(r"[^0-9A-Za-z_.-]")


class CellsStore:
    """A folder of bucket grids shared by processes (see the module docstring)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.folder / ".lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _stem(self, code: str, counter: tuple[int, int], layer: str) -> str:
        return f"{_SAFE.sub('_', code)}-{counter[0]}-{counter[1]}-{layer}"

    def factory(
        self,
        code: str,
        counter: tuple[int, int],
        *,
        replaces: tuple[int, int] | None = None,
        max_side: int | None = None,
    ) -> Callable[[str, npt.NDArray[np.object_]], Cells]:
        """``make(layer, geoms)`` for :class:`~geogrid.lookup.index.LookupIndex`: the layer's
        grid of community ``code`` at ``counter``, mapped from the folder (built, with at most
        ``max_side`` cells a side, and written first when no process has). ``replaces``: the
        counter whose files it supersedes."""

        def make(layer: str, geoms: npt.NDArray[np.object_]) -> Cells:
            return self.cells(code, counter, layer, geoms, replaces=replaces, max_side=max_side)

        return make

    def cells(
        self,
        code: str,
        counter: tuple[int, int],
        layer: str,
        geoms: npt.NDArray[np.object_],
        *,
        replaces: tuple[int, int] | None = None,
        max_side: int | None = None,
    ) -> Cells:
        stem = self._stem(code, counter, layer)
        meta, data = self.folder / f"{stem}.json", self.folder / f"{stem}.npy"
        for _ in range(3):
            if not meta.exists():
                with self._locked():
                    if not meta.exists():  # another process may have written it meanwhile
                        cells = Cells(geoms, max_side=max_side)
                        self._write(stem, cells)
                        if replaces is not None and replaces != counter:
                            # No process asks for the older counter's grid any more (one
                            # still mapping it keeps its pages until it lets go).
                            old = self._stem(code, replaces, layer)
                            for suffix in (".npy", ".json"):
                                (self.folder / f"{old}{suffix}").unlink(missing_ok=True)
            try:
                params = json.loads(meta.read_text())
                flat = np.load(data, mmap_mode="r")
                break
            except FileNotFoundError:  # removed meanwhile by a process at a newer counter
                continue
        else:
            return Cells(geoms, max_side=max_side)  # not shared, but right
        arrays = {}
        for name in _LAYOUT:
            a, b = params["offsets"][name]
            arrays[name] = flat[a:b]
        return Cells.from_arrays(geoms, params["params"], arrays)

    def _write(self, stem: str, cells: Cells) -> None:
        arrays = cells.arrays()
        offsets: dict[str, tuple[int, int]] = {}
        at = 0
        for name in _LAYOUT:
            offsets[name] = (at, at + len(arrays[name]))
            at += len(arrays[name])
        flat = np.concatenate([arrays[name].astype(np.int32) for name in _LAYOUT])
        pid = os.getpid()
        tmp_data = self.folder / f".{stem}.{pid}.npy"
        np.save(tmp_data, flat)
        os.replace(tmp_data, self.folder / f"{stem}.npy")
        tmp_meta = self.folder / f".{stem}.{pid}.json"
        tmp_meta.write_text(json.dumps({"params": cells.params(), "offsets": offsets}))
        os.replace(tmp_meta, self.folder / f"{stem}.json")  # last: the data is complete
