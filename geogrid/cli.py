"""The ``geogrid`` command line (Typer + Rich).

Commands that change existing data are dry runs unless given ``--commit``; ``db init``,
``demo`` (into an empty database) and ``serve`` act directly. ``serve`` is added by
``api.cli`` (the console script's entry point), so the library never imports the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from geogrid.backup.cli import backup, restore
from geogrid.batch.cli import batch_app
from geogrid.clikit import (
    CommitOpt,
    CommunityOpt,
    DatabaseOpt,
    DistrictOpt,
    Fit,
    JsonOpt,
    SubdistrictOpt,
    cli_actor,
    dry_run_note,
    err,
    errors,
    open_engine,
    out,
    print_json,
    progress_bar,
    settings_for,
    transaction,
)
from geogrid.duties_cli import audit_app, person_app, retention
from geogrid.errors import GeogridError, InvalidInput
from geogrid.maps.cli import map_app
from geogrid.planning.cli import plan_app
from geogrid.requests.cli import (
    catalogue_app,
    keys_app,
    kpi,
    members_app,
    requests_app,
    webhooks_app,
)

if TYPE_CHECKING:
    from geogrid.quality import QualityReport

app = typer.Typer(
    help="geogrid: community grid governance (网格化服务管理).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create and upgrade the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(map_app, name="map")
app.add_typer(plan_app, name="plan")
app.add_typer(keys_app, name="keys")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(members_app, name="members")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(requests_app, name="requests")
app.command("kpi")(kpi)
app.command("backup")(backup)
app.command("restore")(restore)
app.add_typer(audit_app, name="audit")
app.add_typer(person_app, name="person")
app.add_typer(batch_app, name="batch")
app.command("retention")(retention)


def _kv_table(title: str, data: dict[str, Any]) -> Fit:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in data.items():
        table.add_row(str(k), ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    return Fit(table)


# --- db ------------------------------------------------------------------------------------


@db_app.command("init")
def db_init(database: DatabaseOpt = None) -> None:
    """Create or upgrade the schema (Alembic) and load the default request catalogue."""
    from geogrid import audit
    from geogrid.catalogue import ensure_default_catalogue
    from geogrid.db import migrate

    with errors():
        engine = open_engine(database, require_schema=False)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            added = ensure_default_catalogue(conn)
            if any(added.values()):
                audit.record(
                    conn, actor=cli_actor(), action="create", subject="catalogue", details=added
                )
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

    from geogrid import audit
    from geogrid.db import models, queries
    from geogrid.demo.generate import generate_demo
    from geogrid.demo.load import load_demo
    from geogrid.periods import parse_date

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            existing = queries.count(conn, models.Community)
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
                audit.record(
                    conn,
                    actor=cli_actor(),
                    action="import",
                    subject="demo",
                    subject_id=report.community_code,
                    details={"seed": seed, "counts": report.counts},
                )
        out.print(_kv_table(f"demo community {report.community_code} loaded", report.counts))
        a = report.assignment
        out.print(
            f"assigned {a.households_in_grids} of {a.households} households to grids, "
            f"{a.households_in_fields} to responsibility fields; {a.households_outside} outside"
        )
        out.print("[dim]synthetic data: names are generated and fictional.[/]")


# --- import / export / assign --------------------------------------------------------------


@app.command("households-from-buildings")
def households_from_buildings(
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write (UTF-8).")],
    community: CommunityOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Write one stand-in household per building of the community (door inside the building,
    its street and house number): for trying geogrid on an OpenStreetMap extract, which has
    buildings and addresses but no households. Import the file with `geogrid import
    households`."""
    from geogrid.db import queries
    from geogrid.demo.from_buildings import households_from_buildings as make

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = queries.community_row(conn, code=community)
            frame = make(
                queries.buildings_frame(conn, community_id=row.id),
                queries.streets_frame(conn, community_id=row.id),
                community_code=row.code,
            )
        frame.to_csv(out_file, index=False, encoding="utf-8")
        addressed = int((frame["street_name"].notna() & frame["house_number"].notna()).sum())
        out.print(
            f"wrote {out_file}: {len(frame):,} households of {row.code}, "
            f"{addressed:,} with a street and house number",
            highlight=False,
        )


@app.command("import")
def import_(
    layer: Annotated[
        str,
        typer.Argument(
            help="communities, grids, households, buildings, streets, members, fields, "
            "requests, or osm (buildings and streets from an OpenStreetMap .osm.pbf)"
        ),
    ],
    file: Annotated[
        Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, CSV or .xlsx; .osm.pbf for osm")
    ],
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
    subdistrict: Annotated[
        str | None,
        typer.Option(
            "--subdistrict",
            help="osm only: import into every community with this subdistrict_code.",
        ),
    ] = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Import a layer from a file; refused whole, with every problem listed, on bad input.

    ``communities`` creates (or, by code, updates) the communities themselves: every other
    layer goes into one of them. ``osm`` reads an OpenStreetMap extract into the buildings
    and streets of a community (or of every community of ``--subdistrict``)."""
    from geogrid.io.importer import import_layer

    if layer == "osm":
        _import_osm(
            file,
            community=community,
            subdistrict=subdistrict,
            ignored={
                "--crs": crs,
                "--encoding": encoding,
                "--layer": source_layer,
                "--plan-name": plan_name,
            },
            commit=commit,
            as_json=as_json,
            database=database,
        )
        return
    with errors():
        if subdistrict is not None:
            raise InvalidInput(
                "--subdistrict is for `geogrid import osm` only", field="subdistrict"
            )
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with transaction(engine, commit=commit) as conn:
            report = import_layer(
                conn,
                layer=layer,
                path=file,
                crs=crs,
                community_code=community,
                encoding=encoding,
                plan_name=plan_name,
                source_layer=source_layer,
                default_timezone=settings.service.timezone,
                actor=cli_actor(),
            )
            touched = (
                [report.community_code]
                if report.community_code is not None
                else list(report.communities) or None
            )
            quality = None if commit else _dry_run_check(conn, touched)
        data = report.to_dict()
        if as_json:
            print_json(data if quality is None else {**data, "check": quality.to_dict()})
        else:
            out.print(_kv_table(f"import {layer} from {file}", _flat(data)))
            if quality is not None:
                _print_check(quality)
        dry_run_note(commit)


def _import_osm(
    file: Path,
    *,
    community: str | None,
    subdistrict: str | None,
    ignored: dict[str, str | None],
    commit: bool,
    as_json: bool,
    database: str | None,
) -> None:
    """``geogrid import osm FILE``: buildings and streets from an OpenStreetMap extract."""
    from geogrid.io.osm import import_osm

    with errors():
        given = [name for name, value in ignored.items() if value is not None]
        if given:
            raise InvalidInput(
                f"{', '.join(given)}: not used by `geogrid import osm`", field="layer"
            )
        engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            report = import_osm(
                conn,
                path=file,
                community_code=community,
                subdistrict_code=subdistrict,
                actor=cli_actor(),
            )
            quality = None if commit else _dry_run_check(conn, list(report.per_community))
        data = report.to_dict()
        if as_json:
            print_json(data if quality is None else {**data, "check": quality.to_dict()})
        else:
            data.pop("per_community")
            table = _kv_table(f"import osm from {file.name}", _flat(data))
            out.print(table)
            if quality is not None:
                _print_check(quality)
            if len(report.per_community) > 1:
                out.print(_kv_table("kept per community", _flat(report.per_community)))
        dry_run_note(commit)


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

    with errors():
        engine = open_engine(database)
        # begin(), not connect(): the first export keeps the pseudonym key it makes.
        with engine.begin() as conn:
            counts = export_geopackage(
                conn,
                out=out_file,
                community_code=community,
                include_personal=include_personal,
                actor=cli_actor(),
            )
        out.print(_kv_table(f"exported to {out_file}", counts))
        if include_personal:
            err.print("[yellow]this file holds personal data: keep it to those entitled to it.[/]")


@app.command()
def assign(
    community: Annotated[
        str | None,
        typer.Option("--community", help="Community code (default: every community)."),
    ] = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Re-run the assignment of households, fields and open requests; print what changed.
    Without --community every community with an active plan is assigned, each in its own
    transaction (committed as it is done)."""
    from geogrid import audit
    from geogrid.assign import AssignmentReport, assign_community
    from geogrid.db import queries

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            if community is not None:
                ids = [queries.community_row(conn, code=community).id]
            else:
                ids = [
                    r.id
                    for r in queries.list_communities(conn)
                    if queries.active_plan(conn, community_id=r.id) is not None
                ]
                # None with a plan: the only community's error says why (or which to name).
                ids = ids or [queries.community_row(conn).id]
        reports: list[AssignmentReport] = []
        # One transaction per community, not one for all: each community's assignment is
        # whole on its own, and a transaction holds ~43 locks per community until it ends
        # (its plan's partitions and their indexes), so a city of 1,000 communities in one
        # transaction outgrows PostgreSQL's default lock table (max_locks_per_transaction 64
        # × max_connections: "out of shared memory" past ~300 communities, measured by
        # benchmarks/city_db.py). A run that stops half-way is safe to run again.
        with progress_bar(disable=len(ids) < 2) as progress:
            task = progress.add_task("assigning communities", total=len(ids))
            for community_id in ids:
                if reports and commit:
                    done = f"{len(reports)} of {len(ids)} communities assigned and committed"
                else:
                    done = None
                try:
                    with transaction(engine, commit=commit) as conn:
                        report = assign_community(conn, community_id=community_id)
                        # One entry per community assigned: the counts, not the households.
                        audit.record(
                            conn,
                            actor=cli_actor(),
                            action="assign",
                            subject="community",
                            subject_id=report.community_code,
                            details=report.to_dict(),
                        )
                except Exception:
                    if done:
                        err.print(f"{done} before this one failed: run again to finish")
                    raise
                reports.append(report)
                progress.advance(task)
        if as_json:
            data = [r.to_dict() for r in reports]
            # One community: its report, as always; several: {"communities": [report, …]}.
            print_json(data[0] if len(data) == 1 else {"communities": data})
        else:
            for report in reports:
                out.print(_kv_table(f"assignment of {report.community_code}", report.to_dict()))
        dry_run_note(commit)


# --- summary -----------------------------------------------------------------------


@app.command()
def summary(
    from_: Annotated[
        str | None, typer.Option("--from", help="First received date (inclusive).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last received date (inclusive).")] = None,
    community: CommunityOpt = None,
    subdistrict: SubdistrictOpt = None,
    district: DistrictOpt = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Headline figures per community (as ``GET /v1/summary``); dates are local dates in each
    community's own time zone."""
    from geogrid.periods import period
    from geogrid.summary import summary as build

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with engine.connect() as conn:
            data = build(
                conn,
                period=period(from_, to, tz=settings.service.timezone),
                community_code=community,
                subdistrict_code=subdistrict,
                district_code=district,
            )
        if as_json:
            print_json(data)
            return
        for c in data["communities"]:
            flat = {k: _for_people(k, v) for k, v in _flat(c).items()}
            p = data["period"]
            zone = c["timezone"]
            title = f"{c['name']} {c['code']} — {p['from']}…{p['to']} ({zone})"
            out.print(_kv_table(title, flat))


def _for_people(key: str, value: Any) -> Any:
    """A summary figure as a table shows it (``--json`` keeps full precision): rates as
    percentages, counts with thousands grouped, other measures rounded."""
    from geogrid import i18n

    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if key.endswith(("_rate", "coverage")):
        return i18n.percent(value, "en")
    if isinstance(value, int):
        return i18n.number(value, "en") if not key.endswith((".id", ".version")) else value
    if isinstance(value, float):
        return i18n.number(value, "en", digits=2)
    return value


# --- check -----------------------------------------------------------------------------


@app.command()
def check(
    community: Annotated[
        str | None, typer.Option("--community", help="Check one community (its code).")
    ] = None,
    subdistrict: Annotated[
        str | None,
        typer.Option("--subdistrict", help="Check the communities of one subdistrict (its code)."),
    ] = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Report what is wrong with the data (read-only): errors exit 1, warnings 0.

    Without an option every community in the database is checked."""
    from geogrid.quality import check_data, subdistrict_community_codes

    if community is not None and subdistrict is not None:
        err.print("[bold red]error:[/] give --community or --subdistrict, not both")
        raise typer.Exit(2)
    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            codes = [community] if community is not None else None
            if subdistrict is not None:
                codes = subdistrict_community_codes(conn, subdistrict_code=subdistrict)
            report = check_data(conn, community_codes=codes)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_check(report)
    if not report.ok:
        raise typer.Exit(1)


def _dry_run_check(conn: Any, codes: list[str] | None) -> QualityReport:
    """The data-quality report of what a dry run would leave (read before it is rolled back)."""
    from geogrid.quality import check_data

    return check_data(conn, community_codes=codes)


def _print_check(report: QualityReport) -> None:
    """The findings as a table per community, and the counts on stderr."""
    data = report.to_dict()
    for c in data["communities"]:
        if not c["findings"]:
            out.print(f"{c['code']}: no problems found", highlight=False)
            continue
        table = Table(title=f"check {c['code']}")
        for column in ("severity", "check", "count", "ids", "message"):
            table.add_column(column, justify="right" if column == "count" else "left")
        for f in c["findings"]:
            more = " …" if f["count"] > len(f["ids"]) else ""
            ids = ", ".join(map(str, f["ids"])) + more
            table.add_row(f["severity"], f["check"], str(f["count"]), ids, f["message"])
        out.print(Fit(table))
    n = len(data["communities"])
    err.print(
        f"{data['errors']} errors, {data['warnings']} warnings "
        f"in {n} {'community' if n == 1 else 'communities'}",
        highlight=False,
    )


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``a.b`` keys for a two-column table."""
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            flat.update(_flat(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


# --- lookup --------------------------------------------------------------------------------

#: Columns ``geogrid lookup --file`` adds to each row (docs/api.md, "Lookup").
LOOKUP_COLUMNS = (
    "grid_code",
    "grid_name",
    "member_id",
    "member_display_name",
    "member_rule",
    "match_level",
    "match_confidence",
    "error",
)


@app.command()
def lookup(
    address: Annotated[str | None, typer.Argument(help="An address to look up.")] = None,
    lon: Annotated[
        str | None, typer.Option(help="Longitude (x) of a point to look up, in --crs.")
    ] = None,
    lat: Annotated[str | None, typer.Option(help="Latitude (y) of the point, in --crs.")] = None,
    crs: Annotated[
        str,
        typer.Option(
            help="CRS of --lon/--lat and of a file's points (a file's crs column wins): "
            "wgs84, cgcs2000, gcj02, bd09, EPSG:…"
        ),
    ] = "wgs84",
    community: Annotated[
        str | None, typer.Option("--community", help="Only this community code.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="CSV with an address column, or lon and lat columns (one lookup a row); or "
            "GeoParquet of points (geoarrow, WKB or x/y columns).",
        ),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="CSV to write (with --file): the rows + answers.")
    ] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of --file (utf-8, gb18030, …).")
    ] = "utf-8-sig",
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Which grid and member cover an address or a point (as ``GET /v1/lookup``), or every
    row of a CSV file (as ``POST /v1/lookup/batch``)."""
    from geogrid.errors import InvalidInput
    from geogrid.lookup import LookupService

    with errors():
        if file is not None:
            if out_file is None:
                raise InvalidInput("--file needs --out (the CSV to write)", field="out")
            if file.suffix.lower() in (".parquet", ".geoparquet"):
                from geogrid.batch.sources import lookup_rows

                # The file's declared CRS decides unless --crs says otherwise (gcj02, x/y).
                rows, fieldnames = lookup_rows(file, None if crs == "wgs84" else crs)
                has_address = False
            else:
                rows, fieldnames, has_address = _read_lookup_csv(file, encoding)
        elif address is None and lon is None and lat is None:
            raise InvalidInput("give an ADDRESS, --lon and --lat, or --file", field="address")
        engine = open_engine(database)
        wants_addresses = address is not None or (file is not None and has_address)
        service = LookupService(engine, poll_interval=0, addresses=wants_addresses)
        service.refresh(force=True)
        if file is None:
            result = service.lookup(address=address, lon=lon, lat=lat, crs=crs, community=community)
            data = result.to_dict()
            if as_json:
                print_json(data)
            else:
                out.print(_kv_table(f"lookup of {address or f'{lon}, {lat} ({crs})'}", _flat(data)))
            return
        assert out_file is not None
        counts = _lookup_file(service, rows, fieldnames, has_address, crs, community, out_file)
        if as_json:
            print_json(counts)
        else:
            out.print(_kv_table(f"lookup of {file} → {out_file}", counts))


def _read_lookup_csv(path: Path, encoding: str) -> tuple[list[dict[str, str]], list[str], bool]:
    """The rows of a lookup CSV, its columns, and whether it gives addresses (else points)."""
    import csv

    from geogrid.errors import InvalidInput

    try:
        with path.open(newline="", encoding=encoding) as fh:
            reader = csv.DictReader(fh)
            fieldnames = list(reader.fieldnames or [])
            rows = list(reader)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}", field="file") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path} is not {encoding} text ({exc.reason}): give --encoding (e.g. gb18030)",
            field="encoding",
        ) from None
    lower = {c.strip().lower() for c in fieldnames}
    if "address" in lower:
        return rows, fieldnames, True
    if {"lon", "lat"} <= lower:
        return rows, fieldnames, False
    raise InvalidInput(
        f"{path} needs an address column, or lon and lat columns; it has: "
        f"{', '.join(fieldnames) or 'no header'}",
        field="file",
    )


def _lookup_file(
    service: Any,
    rows: list[dict[str, str]],
    fieldnames: list[str],
    has_address: bool,
    crs: str,
    community: str | None,
    out_file: Path,
) -> dict[str, Any]:
    """Look up every row in batches, with a progress bar; write the rows + answers."""
    import csv

    from geogrid.lookup import result_row

    key = {c.strip().lower(): c for c in fieldnames}

    def item(row: dict[str, str]) -> dict[str, Any]:
        def cell(name: str) -> str | None:
            value = row.get(key[name]) if name in key else None
            return value.strip() if value and value.strip() else None

        it: dict[str, Any] = {
            "crs": cell("crs") or crs,
            "community": cell("community") or community,
        }
        if has_address:
            it["address"] = row.get(key["address"]) or ""
        else:
            it["lon"], it["lat"] = cell("lon"), cell("lat")
        return it

    items = [item(r) for r in rows]
    results: list[Any] = []
    chunk = 1000
    with progress_bar() as progress:
        task = progress.add_task("looking up", total=len(items))
        for start in range(0, len(items), chunk):
            results.extend(service.lookup_many(items[start : start + chunk]))
            progress.update(task, completed=len(results))
    extra = [c for c in LOOKUP_COLUMNS if c not in fieldnames]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    errors = 0
    # UTF-8 with a byte-order mark: Excel (common for such rosters) then reads Chinese right.
    with out_file.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames + extra, extrasaction="ignore")
        writer.writeheader()
        for row, result in zip(rows, results, strict=True):
            answer = result_row(result)
            errors += bool(answer["error"])
            writer.writerow({**row, **answer})
    return {"rows": len(rows), "found": len(rows) - errors, "errors": errors, "out": str(out_file)}
