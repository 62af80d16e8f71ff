"""Batch assignment on an existing Dask cluster (``distributed``).

The index (grids and fields, ~40–100 MB for 20k grids) is sent once to every worker
(``Client.scatter(..., broadcast=True)``) and each task gets it by reference; each task reads
one partition of the households file, assigns it and writes its part (the same
:func:`geogrid.batch.run.run_partition` as the in-process engine), so the scheduler carries
only small counts back. Workers must see the input and output paths (a shared filesystem).
Parts already written are skipped before any task is submitted, so a run that was stopped
resumes where it was.

With ``index_on="workers"`` (an :class:`~geogrid.batch.layers.IndexSpec`) nothing big is
sent: each worker reads the grids file and builds the index once, in parallel with the
others, which scales to many workers where sending 50 MB to each would not.

Spatial repartitioning (``dask_geopandas``' Hilbert ``spatial_shuffle``) is not used: with
the whole index on every worker, any partition can be assigned anywhere, and households
files come in building or address order, already local enough for the bucket grid's caches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from geogrid.batch.layers import AssignIndex, IndexSpec
from geogrid.batch.partition import PartCounts, run_partition
from geogrid.batch.sources import Households, Partition

__all__ = ["run_on_dask"]


#: Indexes built on this worker from an :class:`IndexSpec`, by spec (``index_on="workers"``).
_BUILT: dict[IndexSpec, AssignIndex] = {}
_BUILDING = threading.Lock()


def _worker_index(spec: IndexSpec) -> AssignIndex:
    """The index of ``spec``, built once per worker process (threads wait for the first),
    and kept for the next run of the same spec (same files, same sizes and times)."""
    with _BUILDING:
        if spec not in _BUILT:
            _BUILT.clear()  # one run's index at a time
            _BUILT[spec] = spec.build()
        return _BUILT[spec]


def _run_with_spec(source: Households, part: Partition, spec: IndexSpec, out: str) -> PartCounts:
    return run_partition(source, part, _worker_index(spec), out)


def run_on_dask(
    scheduler: Any,
    source: Households,
    parts: list[Partition],
    index: AssignIndex | IndexSpec,
    out: str,
    seconds: dict[str, float],
) -> Iterator[PartCounts]:
    """Run ``parts`` on the cluster at ``scheduler`` (an address or a ``Client``); yield
    each partition's counts as it finishes. A built index is sent to every worker once
    (``seconds["send_index"]``); an :class:`IndexSpec` is built by each worker instead."""
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        if isinstance(index, IndexSpec):
            futures = [
                client.submit(_run_with_spec, source, p, index, out, pure=False, retries=1)
                for p in parts
            ]
        else:
            t = time.perf_counter()
            shared = client.scatter(index, broadcast=True, hash=False)
            seconds["send_index"] = time.perf_counter() - t
            futures = [
                client.submit(run_partition, source, p, shared, out, pure=False, retries=1)
                for p in parts
            ]
        for future in as_completed(futures):
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()
