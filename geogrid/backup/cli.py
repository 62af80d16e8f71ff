"""``geogrid backup`` and ``geogrid restore`` (registered as top-level commands by
``geogrid.cli``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geogrid.backup.service import RestoreReport
from geogrid.clikit import (
    CommitOpt,
    DatabaseOpt,
    Fit,
    JsonOpt,
    cli_actor,
    dry_run_note,
    err,
    errors,
    open_engine,
    out,
    print_json,
    settings_for,
)
from geogrid.db.backup import Progress


@contextmanager
def _progress() -> Iterator[Progress]:
    """A spinner on stderr whose line says the current step."""
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with Bar(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("starting", total=None)

        def say(step: str) -> None:
            bar.update(task, description=step)

        yield say


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def backup(
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File to write (replaced once the new copy is whole): a SpatiaLite file, or "
            "on PostGIS a pg_dump custom-format file.",
        ),
    ],
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Write a consistent copy of the whole database to one file, safely while the service
    runs; print every table's rows and checksum.

    SpatiaLite: SQLite's online backup API. PostGIS: pg_dump -Fc of the server's major
    version or newer (GEOGRID_PG_BINDIR names their folder). Restore it with `geogrid
    restore FILE`."""
    from geogrid.backup.service import backup_database

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with _progress() as say:
            report = backup_database(engine, out=out_file, settings=settings.database, progress=say)
        if as_json:
            print_json(report.to_dict())
            return
        table = Table(title=f"backup of {report.backend} to {report.file}")
        for column in ("table", "rows", "checksum"):
            table.add_column(column, justify="right" if column == "rows" else "left")
        for t in report.tables:
            table.add_row(t.name, f"{t.rows:,}", t.checksum[:16])
        out.print(Fit(table))
        out.print(
            f"schema revision {report.revision}, {_size(report.bytes)}, {report.seconds:.1f} s",
            highlight=False,
        )


def restore(
    file: Annotated[
        Path, typer.Argument(help="A file written by `geogrid backup` (or pg_dump -Fc).")
    ],
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Replace the whole database with a backup; without --commit a dry run that checks the
    file and lists what it holds.

    The file must be of this backend's kind and at this geogrid's schema revision or older (a
    newer one is refused); an older one is upgraded after the restore. The restore is one
    transaction: all or nothing. Afterwards the data-version counters move, so running
    servers rebuild their lookup indexes.

    Restoring under a running `geogrid serve` is allowed: it sees the old data or the
    restored data, never a mix. But whatever is written meanwhile is lost, and on PostGIS
    requests in flight at that moment may fail: stop the writers first (the server, cron jobs
    such as `geogrid webhooks deliver`, imports), restore, then start them again."""
    from geogrid import audit
    from geogrid.backup.service import restore_database

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings, require_schema=False)
        with _progress() as say:
            report = restore_database(
                engine, path=file, commit=commit, settings=settings.database, progress=say
            )
        if commit:
            # The restore replaced the audit log with the backup's: the restored log says so.
            with engine.begin() as conn:
                audit.record(
                    conn,
                    actor=cli_actor(),
                    action="restore",
                    subject="database",
                    details={"file": file.name, "revision": report.revision, **report.source},
                )
        if as_json:
            print_json(report.to_dict())
        else:
            _print_restore(report)
        dry_run_note(commit)


def _print_restore(report: RestoreReport) -> None:
    verb = "restored" if report.commit else "would restore"
    table = Table(title=f"{verb} {report.file} into {report.backend}")
    columns = ["table", "rows", "rows before"]
    if not report.commit:
        columns.append("checksum")
    for column in columns:
        table.add_column(column, justify="left" if column in ("table", "checksum") else "right")

    def n(value: Any) -> str:
        return "—" if value is None else f"{value:,}"

    for t in report.tables:
        row = [t["name"], n(t["rows"]), n(t["rows_before"])]
        if not report.commit:
            row.append((t["checksum"] or "—")[:16])
        table.add_row(*row)
    out.print(Fit(table))
    source = ", ".join(f"{k} {v}" for k, v in report.source.items() if v is not None)
    out.print(f"backup: {source}", highlight=False)
    schema = f"schema revision {report.revision} (this geogrid: {report.head}"
    schema += f"; the database: {report.database_revision})"
    if report.revision != report.head:
        schema += f"; {'upgraded' if report.commit else 'will be upgraded'} to {report.head}"
    out.print(schema, highlight=False)
    if report.commit:
        counters = ", ".join(f"{k} {v}" for k, v in report.data_versions.items())
        out.print(
            f"done in {report.seconds:.1f} s; data versions now {counters or '—'} "
            "(running servers rebuild their lookup indexes)",
            highlight=False,
        )
    else:
        err.print(
            "before --commit, stop the writers (geogrid serve, cron jobs, imports): what they "
            "write during the restore is lost (geogrid restore --help)",
            highlight=False,
        )
