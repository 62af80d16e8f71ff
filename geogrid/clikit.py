"""Shared pieces of the command line: options, engine, errors, transactions, output.

Used by ``geogrid.cli`` and the command groups of ``geogrid.requests`` and ``geogrid.maps``,
so every command reports errors, dry runs and JSON the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Connection, Engine

from geogrid.errors import GeogridError
from geogrid.settings import Settings

out = Console()
err = Console(stderr=True)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="GEOGRID_DATABASE_URL",
        help="SQLAlchemy URL: sqlite:///FILE (SpatiaLite, default var/geogrid.sqlite) or "
        "postgresql+psycopg://… (PostGIS).",
        show_default=False,
    ),
]
CommitOpt = Annotated[
    bool, typer.Option("--commit", help="Write the changes (without it: a dry run).")
]
CommunityOpt = Annotated[
    str | None,
    typer.Option("--community", help="Community code (default: the only one in the database)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def settings_for(database: str | None) -> Settings:
    settings = Settings()
    if database:
        settings.database.database_url = database
    return settings


def open_engine(database: str | None, *, require_schema: bool = True) -> Engine:
    from geogrid.db.engine import make_engine
    from geogrid.db.engine import require_schema as check

    engine = make_engine(settings=settings_for(database).database)
    if require_schema:
        check(engine)
    return engine


@contextmanager
def errors() -> Iterator[None]:
    """Print geogrid errors as a clear message (and every problem) and exit 1."""
    try:
        yield
    except GeogridError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        if exc.field:
            err.print(f"  field: {exc.field}", highlight=False)
        for p in exc.details.get("problems", []):
            where = ", ".join(
                f"{k} {p[k]}" for k in ("file", "feature", "line", "field") if p.get(k) is not None
            )
            err.print(f"  - {where}: {p.get('message')}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def transaction(engine: Engine, *, commit: bool) -> Iterator[Connection]:
    """One transaction; rolled back unless ``commit`` (a dry run)."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        except BaseException:
            trans.rollback()
            raise
        if commit:
            trans.commit()
        else:
            trans.rollback()


def dry_run_note(commit: bool) -> None:
    if not commit:
        err.print("[yellow]dry run:[/] nothing was written; run again with --commit to apply.")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
