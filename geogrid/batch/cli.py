"""``geogrid batch assign``: households file → GeoParquet dataset, no database (registered by
``geogrid/cli.py``; the work is in :mod:`geogrid.batch`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from geogrid.clikit import JsonOpt, errors, out, print_json, progress_bar
from geogrid.errors import InvalidInput

batch_app = typer.Typer(
    help="Batch work from files, without the database (in this process or on Dask).",
    no_args_is_help=True,
)


@batch_app.command("assign")
def assign(
    households: Annotated[
        Path,
        typer.Option(help="GeoParquet (geoarrow points, WKB, or x/y columns) or GeoPackage."),
    ],
    grids: Annotated[Path, typer.Option(help="Grids (GeoParquet, GeoPackage, GeoJSON), `code`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the GeoParquet dataset.")],
    fields: Annotated[
        Path | None, typer.Option(help="Responsibility fields (ranked in file order).")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="CSV of refused rows (row, id, reason); default OUT/_rejects.csv."),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of the households' coordinates when the file does not say it (x/y "
            "columns) or cannot (gcj02, bd09)."
        ),
    ] = None,
    layers_crs: Annotated[
        str | None, typer.Option(help="CRS of the grids and fields files, if they cannot say it.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id", help="Id column (default household_id, id or fid).")
    ] = None,
    layer: Annotated[
        str | None, typer.Option(help="Households layer of a GeoPackage (default: the first).")
    ] = None,
    grids_layer: Annotated[str | None, typer.Option(help="Grids layer of a GeoPackage.")] = None,
    fields_layer: Annotated[str | None, typer.Option(help="Fields layer of a GeoPackage.")] = None,
    x: Annotated[str | None, typer.Option("--x", help="x/longitude column.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="y/latitude column.")] = None,
    partition_rows: Annotated[
        int, typer.Option(help="Rows per partition (whole Parquet row groups).", min=1)
    ] = 1_000_000,
    threads: Annotated[
        int, typer.Option(help="Partitions at once in this process (inprocess engine).", min=1)
    ] = 1,
    engine: Annotated[str, typer.Option(help="inprocess, or dask (needs --scheduler).")] = (
        "inprocess"
    ),
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (tcp://host:8786).")
    ] = None,
    index_on: Annotated[
        str,
        typer.Option(
            help="dask: build the index here and send it to every worker (client), or let "
            "each worker build it from the grids file (workers: nothing big on the network)."
        ),
    ] = "client",
    as_json: JsonOpt = False,
) -> None:
    """Assign every household of a file to its grid (and field) with the edge rule of
    ``geogrid assign``, and write a partitioned GeoParquet dataset. A run that was stopped
    resumes: parts already written are skipped."""
    from geogrid.batch import AssignIndex, Households, assign_files
    from geogrid.batch.layers import IndexSpec
    from geogrid.batch.run import fingerprint

    with errors():
        if engine not in ("inprocess", "dask"):
            raise InvalidInput(
                f"--engine must be inprocess or dask, not {engine!r}", field="engine"
            )
        if index_on not in ("client", "workers"):
            raise InvalidInput(
                f"--index-on must be client or workers, not {index_on!r}", field="index_on"
            )
        if (engine == "dask") != (scheduler is not None):
            raise InvalidInput("--engine dask goes with --scheduler ADDRESS", field="scheduler")
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        source = Households.open(households, crs=crs, id_column=id_column, x=x, y=y, layer=layer)
        seconds["open"] = time.perf_counter() - t
        with progress_bar() as progress:
            task = progress.add_task("reading grids", total=source.num_rows)

            spec = IndexSpec.for_files(
                grids, fields, crs=layers_crs, grids_layer=grids_layer, fields_layer=fields_layer
            )

            def index() -> AssignIndex:
                built = spec.build()
                progress.update(task, description="assigning")
                return built

            on_workers = engine == "dask" and index_on == "workers"
            if on_workers:
                progress.update(task, description="assigning")
            result = assign_files(
                source,
                spec if on_workers else index,
                out_dir,
                rejects=rejects,
                partition_rows=partition_rows,
                inputs={
                    "grids": fingerprint(grids, field="grids"),
                    "fields": fingerprint(fields, field="fields"),
                    "layers_crs": layers_crs,
                },
                scheduler=scheduler,
                threads=threads,
                progress=lambda done: progress.update(task, completed=done),
                seconds=seconds,
            )
        data = result.to_dict()
        if as_json:
            print_json(data)
            return
        table = Table(title=f"batch assign {households} → {out_dir}", show_header=False)
        for k in ("rows", "written", "grid_assigned", "field_assigned", "rejected"):
            if data[k] is not None:
                table.add_row(k, f"{data[k]:,}")
        table.add_row("partitions", f"{result.partitions} ({result.skipped} already written)")
        table.add_row("rejects", result.rejects)
        out.print(table)
