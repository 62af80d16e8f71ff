"""The ``geogrid`` command line (Typer + Rich).

Commands that change existing data are dry runs unless given ``--commit``; ``db init``,
``demo`` (into an empty database) and ``serve`` act directly. ``serve`` is added by
``api.cli`` (the console script's entry point), so the library never imports the app.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine

from geogrid.errors import GeogridError
from geogrid.settings import Settings

app = typer.Typer(
    help="geogrid: community grid governance (网格化服务管理).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create and upgrade the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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


def _settings(database: str | None) -> Settings:
    settings = Settings()
    if database:
        settings.database.database_url = database
    return settings


def _engine(database: str | None, *, require_schema: bool = True) -> Engine:
    from geogrid.db.engine import make_engine
    from geogrid.db.engine import require_schema as check

    engine = make_engine(settings=_settings(database).database)
    if require_schema:
        check(engine)
    return engine


@contextmanager
def _errors() -> Iterator[None]:
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
def _transaction(engine: Engine, *, commit: bool) -> Iterator[Connection]:
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


def _dry_run_note(commit: bool) -> None:
    if not commit:
        err.print("[yellow]dry run:[/] nothing was written; run again with --commit to apply.")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in data.items():
        table.add_row(str(k), ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    return table


# --- db ------------------------------------------------------------------------------------


@db_app.command("init")
def db_init(database: DatabaseOpt = None) -> None:
    """Create or upgrade the schema (Alembic) and load the default request catalogue."""
    from geogrid.catalogue import ensure_default_catalogue
    from geogrid.db import migrate

    with _errors():
        engine = _engine(database, require_schema=False)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            added = ensure_default_catalogue(conn)
        out.print(
            f"database ready at {engine.url.render_as_string(hide_password=True)} "
            f"(schema {migrate.current_revision(engine)}); catalogue added "
            f"{added['departments']} departments, {added['categories']} categories"
        )


# --- demo ----------------------------------------------------------------------------------


@app.command()
def demo(
    database: DatabaseOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed of the generator.")] = 20170701,
    today: Annotated[
        str | None,
        typer.Option(help="Last day of the synthetic recent year (default: today, Asia/Shanghai)."),
    ] = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (exit 0) when a community exists.")
    ] = False,
) -> None:
    """Generate the synthetic demo community (modelled on Jinyuan Community) and load it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from geogrid.db import models as m
    from geogrid.db import queries as q
    from geogrid.demo.generate import generate_demo
    from geogrid.demo.load import load_demo
    from geogrid.periods import parse_date

    with _errors():
        engine = _engine(database)
        with engine.connect() as conn:
            existing = q.count(conn, m.Community)
        if existing:
            if if_empty:
                out.print("the database already holds a community: demo not loaded again")
                return
            raise GeogridError(
                "the database is not empty: the demo loads into an empty database "
                "(use another --database, or --if-empty)"
            )
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("generating the synthetic community", total=None)
            data = generate_demo(seed=seed, today=parse_date(today, field="today"))

            def say(step: str) -> None:
                progress.update(task, description=f"loading {step}")

            with engine.begin() as conn:
                report = load_demo(conn, data, progress=say)
        out.print(_kv_table(f"demo community {report.community_code} loaded", report.counts))
        a = report.assignment
        out.print(
            f"assigned {a.households_in_grids} of {a.households} households to grids, "
            f"{a.households_in_fields} to responsibility fields; {a.households_outside} outside"
        )
        out.print("[dim]synthetic data: names are generated and fictional.[/]")


# --- import / export / assign --------------------------------------------------------------


@app.command("import")
def import_(
    layer: Annotated[
        str,
        typer.Argument(help="grids, households, buildings, streets, members, fields or requests"),
    ],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, CSV or .xlsx")],
    crs: Annotated[
        str | None,
        typer.Option(help="CRS of a file that declares none: wgs84, cgcs2000, gcj02, bd09, EPSG:…"),
    ] = None,
    community: CommunityOpt = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding (utf-8, gb18030, gbk); default: detected.")
    ] = None,
    source_layer: Annotated[
        str | None,
        typer.Option("--layer", help="GeoPackage layer or Excel sheet to read (default: LAYER)."),
    ] = None,
    plan_name: Annotated[
        str | None, typer.Option("--plan-name", help="Name of the boundary plan (grids only).")
    ] = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Import a layer from a file; refused whole, with every problem listed, on bad input."""
    from geogrid.io.importer import import_layer

    with _errors():
        engine = _engine(database)
        with _transaction(engine, commit=commit) as conn:
            report = import_layer(
                conn,
                layer=layer,
                path=file,
                crs=crs,
                community_code=community,
                encoding=encoding,
                plan_name=plan_name,
                source_layer=source_layer,
            )
        data = report.to_dict()
        if as_json:
            _print_json(data)
        else:
            out.print(_kv_table(f"import {layer} from {file}", _flat(data)))
        _dry_run_note(commit)


@app.command()
def export(
    out_file: Annotated[Path, typer.Option("--out", help="GeoPackage to write (.gpkg).")],
    community: CommunityOpt = None,
    include_personal: Annotated[
        bool,
        typer.Option(
            "--include-personal",
            help="Also write personal data (names, phones, care flags, full addresses).",
        ),
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Write every layer to one GeoPackage (QGIS opens it)."""
    from geogrid.io.export import export_geopackage

    with _errors():
        engine = _engine(database)
        with engine.connect() as conn:
            counts = export_geopackage(
                conn, out=out_file, community_code=community, include_personal=include_personal
            )
        out.print(_kv_table(f"exported to {out_file}", counts))
        if include_personal:
            err.print("[yellow]this file holds personal data: keep it to those entitled to it.[/]")


@app.command()
def assign(
    community: CommunityOpt = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Re-run the assignment of households, fields and open requests; print what changed."""
    from geogrid.assign import assign_community
    from geogrid.db import queries as q

    with _errors():
        engine = _engine(database)
        with _transaction(engine, commit=commit) as conn:
            row = q.community_row(conn, code=community)
            report = assign_community(conn, community_id=row.id)
        if as_json:
            _print_json(report.to_dict())
        else:
            out.print(_kv_table(f"assignment of {report.community_code}", report.to_dict()))
        _dry_run_note(commit)


# --- summary -----------------------------------------------------------------------


@app.command()
def summary(
    from_: Annotated[
        str | None, typer.Option("--from", help="First received date (inclusive).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last received date (inclusive).")] = None,
    community: CommunityOpt = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Headline figures per community (as ``GET /v1/summary``)."""
    from geogrid.periods import period
    from geogrid.rates import percent
    from geogrid.summary import summary as build

    with _errors():
        settings = _settings(database)
        engine = _engine(database)
        with engine.connect() as conn:
            data = build(
                conn,
                period=period(from_, to, tz=settings.service.timezone),
                community_code=community,
            )
        if as_json:
            _print_json(data)
            return
        for c in data["communities"]:
            flat = _flat(c)
            flat["requests.resolution_rate"] = percent(c["requests"]["resolution_rate"])
            p = data["period"]
            out.print(_kv_table(f"{c['name']} {c['code']} — {p['from']}…{p['to']}", flat))


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``a.b`` keys for a two-column table."""
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            flat.update(_flat(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat
