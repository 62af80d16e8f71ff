"""Batch assignment of households to grids and fields without the database.

``geogrid batch assign`` reads a households file (GeoParquet or GeoPackage) in partitions,
finds each point's grid (and field) with the edge rule of the SQL assignment, and writes a
GeoParquet dataset: in this process, or on a Dask cluster (``cluster``). Read in this order:
``sources`` (the households file), ``layers`` (grids and fields, the index), ``partition``
(one part, written whole), ``run`` (the dataset, rejects, resuming), ``cluster`` (Dask).
"""

from geogrid.batch.layers import AssignIndex, IndexSpec, Layer, read_layer
from geogrid.batch.partition import PartCounts, run_partition
from geogrid.batch.run import BatchResult, assign_files
from geogrid.batch.sources import Households, Partition, Points

__all__ = [
    "AssignIndex",
    "BatchResult",
    "Households",
    "IndexSpec",
    "Layer",
    "PartCounts",
    "Partition",
    "Points",
    "assign_files",
    "read_layer",
    "run_partition",
]
