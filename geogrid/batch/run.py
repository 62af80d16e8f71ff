"""Batch assignment from file to file: partitions, the output dataset, rejects, resuming.

The output folder is a GeoParquet dataset, one file per partition of the input
(``part-00000.parquet`` …, rows in input order), readable as one table by pyarrow
(``pyarrow.dataset``/``pq.read_table(DIR)``), geopandas (``read_parquet(DIR)``) or Dask.
Columns: the input's id column (``row``, the 1-based row of the input, if it has none),
``grid`` (the grid code, dictionary-encoded; null where no grid covers the point), ``field``
(with fields) and ``geometry`` (the point in WGS 84, a geoarrow ``point`` struct: GeoParquet
1.1).

A part is written under a temporary name and renamed when complete (its rejects are written
before), so a part that exists is whole: a run that was interrupted and started again with
the same inputs skips the parts already written. ``_batch.json`` records the inputs; a run
into a folder holding another run's parts is refused. Files starting with ``_`` are ignored
by Parquet dataset readers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from geogrid.batch.layers import AssignIndex, IndexSpec
from geogrid.batch.partition import REJECTS_DIR, PartCounts, done_counts, part_path, run_partition
from geogrid.batch.sources import Households, Partition
from geogrid.errors import InvalidInput

__all__ = ["BatchResult", "assign_files", "fingerprint"]

MANIFEST: Final = "_batch.json"
#: Rows per partition by default: ~40 MB of output and ~0.3 s of work each.
PARTITION_ROWS: Final = 1_000_000


@dataclass
class BatchResult:
    """Totals of a run and where its time went (seconds per phase)."""

    rows: int
    written: int
    rejected: int
    grid_assigned: int
    field_assigned: int | None
    partitions: int
    skipped: int
    out: str
    rejects: str
    seconds: dict[str, float] = field(default_factory=dict)
    parts: list[PartCounts] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("parts")
        return d


def fingerprint(path: str | Path | None, *, field: str = "file") -> dict[str, Any] | None:
    """Path, size and time of an input: a resumed run must have the same inputs."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise InvalidInput(f"no such file: {path}", field=field)
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write the run's manifest, or refuse a folder that holds another run's parts."""
    path = out / MANIFEST
    if path.exists():
        before = json.loads(path.read_text())
        if before.get("inputs") != manifest["inputs"]:
            raise InvalidInput(
                f"{out} holds the output of another run (other inputs or settings, see "
                f"{MANIFEST}); give a new --out or delete it",
                field="out",
            )
        return
    if any(out.glob("part-*.parquet")):
        raise InvalidInput(f"{out} holds parts of an unknown run; give a new --out", field="out")
    path.write_text(json.dumps(manifest, indent=2))


def assign_files(
    source: Households,
    index: AssignIndex | IndexSpec | Callable[[], AssignIndex],
    out: str | Path,
    *,
    rejects: str | Path | None = None,
    partition_rows: int = PARTITION_ROWS,
    inputs: dict[str, Any] | None = None,
    scheduler: Any = None,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
    seconds: dict[str, float] | None = None,
) -> BatchResult:
    """Assign every household of ``source`` and write the dataset ``out`` (see module doc).

    ``index`` may be a function that builds it, called only when a part is left to do, or
    an :class:`IndexSpec`, which Dask workers build themselves (``geogrid.batch.cluster``).
    ``scheduler`` (a Dask scheduler address or a ``distributed.Client``) runs the
    partitions on that cluster, else they run here, ``threads`` at a time. ``progress`` is
    called with the rows done so far. ``inputs`` (paths and settings) goes into the
    manifest that guards resuming.
    """
    timings = dict(seconds or {})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = source.partitions(partition_rows)
    manifest = {
        "inputs": {
            "households": fingerprint(source.path),
            "partitions": [[p.start, p.stop] for p in parts],
            "crs": source.crs,
            "id_column": source.id_column,
            **(inputs or {}),
        }
    }
    _check_manifest(out, manifest)
    counts: list[PartCounts] = []
    todo: list[Partition] = []
    for p in parts:
        done = done_counts(out, p.number)
        if done is None:
            todo.append(p)
        else:
            counts.append(done)
    rows_done = sum(c.rows for c in counts)
    if progress:
        progress(rows_done)
    if isinstance(index, IndexSpec) and scheduler is None:
        index = index.build
    if callable(index):
        # Built only when a part is left to do: resuming a finished run reads no grids.
        t = time.perf_counter()
        index = index() if todo else AssignIndex.empty()
        timings["index"] = time.perf_counter() - t
    t = time.perf_counter()
    if scheduler is None:
        assert isinstance(index, AssignIndex)
        # Threads, not processes: pyarrow's reading and writing, numpy's array work and
        # shapely's vectorised predicates release the GIL, and threads share the index.
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            jobs = [pool.submit(run_partition, source, p, index, str(out)) for p in todo]
            for job in as_completed(jobs):
                c = job.result()
                counts.append(c)
                rows_done += c.rows
                if progress:
                    progress(rows_done)
    else:
        from geogrid.batch.cluster import run_on_dask

        for c in run_on_dask(scheduler, source, todo, index, str(out), timings):
            counts.append(c)
            rows_done += c.rows
            if progress:
                progress(rows_done)
    timings["partitions"] = time.perf_counter() - t
    t = time.perf_counter()
    counts.sort(key=lambda c: c.number)
    rejects_path = Path(rejects) if rejects is not None else out / "_rejects.csv"
    _merge_rejects(out, [c.number for c in counts if c.rejected], rejects_path)
    timings["finish"] = time.perf_counter() - t
    return BatchResult(
        rows=sum(c.rows for c in counts),
        written=sum(c.written for c in counts),
        rejected=sum(c.rejected for c in counts),
        grid_assigned=sum(c.grid_assigned for c in counts),
        field_assigned=(
            None
            if all(c.field_assigned is None for c in counts)
            else sum(c.field_assigned or 0 for c in counts)
        ),
        partitions=len(counts),
        skipped=sum(c.skipped for c in counts),
        out=str(out),
        rejects=str(rejects_path),
        seconds=timings,
        parts=counts,
    )


def _merge_rejects(out: Path, numbers: Iterable[int], path: Path) -> None:
    """Every partition's rejects, in row order, as one CSV (row, id, reason)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    tables = [pq.read_table(out / REJECTS_DIR / part_path(out, n).name) for n in numbers]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not tables:
        path.write_text('"row","reason"\n', encoding="utf-8")
        return
    table = pa.concat_tables(tables)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pcsv.write_csv(table, tmp)
    os.replace(tmp, path)
