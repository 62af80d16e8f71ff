"""``geogrid plan …``: boundary planning from the command line.

``PLAN`` arguments take a stored plan (``12`` = id, ``v3`` = version, ``active``) or a plan
file (GeoJSON, GeoPackage, Shapefile). ``load``, ``activate`` and ``rollback`` are dry runs
unless given ``--commit``; ``validate`` exits 1 when the plan is not valid.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geogrid.clikit import (
    CommitOpt,
    CommunityOpt,
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
    transaction,
)
from geogrid.errors import InvalidInput

plan_app = typer.Typer(
    help="Boundary plans: validate, measure, diff, load, activate, roll back, propose, delete.",
    no_args_is_help=True,
)

PlanArg = Annotated[str, typer.Argument(help="A plan id, vN (version), 'active', or a plan file.")]
CrsOpt = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of a plan file that declares none (wgs84, gcj02, …)."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--households-per-grid",
        help="Target range of households per grid, LOW:HIGH (default 300:500).",
    ),
]
LimitOpt = Annotated[
    int, typer.Option("--limit", help="Rows of each list to print (JSON: all unless given).")
]


def _community(conn: Any, code: str | None) -> Any:
    from geogrid.db import queries

    return queries.community_row(conn, code=code)


#: Columns holding a share of a whole (``deviation`` 0.507: 50.7% above the plan's mean):
#: shown as signed percentages; ``--json`` keeps the fraction.
_PERCENT_COLUMNS = frozenset({"deviation"})


def _fmt(v: Any, column: str | None = None) -> str:
    if v is None:
        return "—"
    if column in _PERCENT_COLUMNS and isinstance(v, int | float) and not isinstance(v, bool):
        from geogrid.i18n import percent

        return ("+" if v > 0 else "") + percent(v, "en")
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Fit:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(
            c, justify="left" if c in ("code", "name", "check", "message") else "right"
        )
    for r in rows:
        table.add_row(*(_fmt(r.get(c), c) for c in columns))
    return Fit(table)


# --- list ---------------------------------------------------------------------------------


@plan_app.command("list")
def list_(
    community: CommunityOpt = None, as_json: JsonOpt = False, database: DatabaseOpt = None
) -> None:
    """The community's plans, newest first, and their activations (times in the community's
    own time zone)."""
    from geogrid.planning.store import plan_history

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            history = plan_history(conn, community_id=row.id)
        plans, events = history["plans"], history["events"]
        if as_json:
            print_json({"community_code": row.code, "plans": plans, "events": events})
            return
        out.print(
            _table(
                f"boundary plans of {row.code} (times in {history['timezone']})",
                [
                    {
                        **p,
                        "activated_at": _day(p["activated_at"]),
                        "retired_at": _day(p["retired_at"]),
                        "created_at": _day(p["created_at"]),
                    }
                    for p in plans
                ],
                [
                    "id",
                    "version",
                    "status",
                    "grids",
                    "base_plan_id",
                    "created_at",
                    "activated_at",
                    "retired_at",
                    "name",
                ],
            )
        )


def _day(value: str | None) -> str | None:
    """An ISO 8601 time (already in the community's zone) as ``2024-07-01 09:30``."""
    return None if value is None else value[:16].replace("T", " ")


# --- validate ---------------------------------------------------------------------------


@plan_app.command("validate")
def validate(
    plan: PlanArg,
    community: CommunityOpt = None,
    crs: CrsOpt = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Overlaps and gaps up to this many m² pass.")
    ] = 1.0,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Check a plan: valid closed polygons inside the community, no overlaps or gaps, each
    grid in one piece, unique well-formed codes numbered west→east, north→south."""
    from geogrid.planning.store import resolve_plan, validate_ref

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            ref = resolve_plan(conn, community_id=row.id, ref=plan, crs=crs)
            report = validate_ref(conn, community_id=row.id, ref=ref, tolerance_m2=tolerance)
        if as_json:
            print_json({"plan": ref.label, **report.to_dict()})
        else:
            verdict = "[green]valid[/]" if report.valid else "[bold red]NOT valid[/]"
            out.print(
                f"{ref.label}: {report.grids} grids — {verdict} "
                f"({report.errors} errors, {report.warnings} warnings; "
                f"tolerance {tolerance:g} m²)",
                highlight=False,
            )
            for p in report.problems:
                colour = "red" if p.severity == "error" else "yellow"
                where = f"feature {p.feature}: " if p.feature is not None else ""
                out.print(f"  [{colour}]{p.check}[/] {where}{p.message}", highlight=False)
            if report.renumbering:
                out.print("  renumbering the rule would apply:", highlight=False)
                for a, b in report.renumbering.items():
                    out.print(f"    {a} → {b}", highlight=False)
    if not report.valid:
        raise typer.Exit(1)


# --- measure ------------------------------------------------------------------------------


@plan_app.command("measure")
def measure(
    plan: Annotated[str, typer.Argument(help="A plan id, vN, 'active' or a plan file.")] = (
        "active"
    ),
    community: CommunityOpt = None,
    target: TargetOpt = None,
    crs: CrsOpt = None,
    limit: LimitOpt = 15,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Balance and compactness per grid and for the plan, worst grids first."""
    from geogrid.planning.common import parse_target
    from geogrid.planning.store import measure_in_db, resolve_plan

    with errors():
        rng = parse_target(target)
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            ref = resolve_plan(conn, community_id=row.id, ref=plan, crs=crs)
            metrics = measure_in_db(conn, community_id=row.id, grids=ref.grids, target=rng)
        if as_json:
            print_json({"plan": ref.label, **metrics.to_dict()})
            return
        _print_metrics(ref.label, metrics.to_dict(), limit)


def _print_metrics(label: str, data: dict[str, Any], limit: int) -> None:
    p = data["plan"]
    lo, hi = data["target"]
    out.print(
        f"{label}: {p['grids']} grids, {p['households']:,} households "
        f"(mean {p['mean_households']:,.0f}, min {p['min_households']:,}, "
        f"max {p['max_households']:,}, CV {p['cv_households']:.2f}); "
        f"{p['in_target']} of {p['grids']} grids in {lo}–{hi}; "
        f"Polsby-Popper mean {p['mean_polsby_popper']:.3f} (min {p['min_polsby_popper']:.3f}), "
        f"Reock mean {p['mean_reock']:.3f}",
        highlight=False,
    )
    out.print(
        _table(
            f"worst grids first (top {min(limit, len(data['grids']))})",
            data["grids"][:limit],
            [
                "code",
                "households",
                "residents",
                "members",
                "households_per_member",
                "fields",
                "open_requests",
                "deviation",
                "target_gap",
                "polsby_popper",
                "reock",
                "area_km2",
            ],
        )
    )


# --- diff ---------------------------------------------------------------------------------


@plan_app.command("diff")
def diff(
    draft: PlanArg,
    against: Annotated[
        str, typer.Option("--against", help="The plan to compare with (default: active).")
    ] = "active",
    community: CommunityOpt = None,
    crs: CrsOpt = None,
    limit: LimitOpt = 10,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """What the draft changes: grids, households, cut fields, members, branches, requests."""
    from geogrid.planning.store import diff_in_db, resolve_plan

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            ref = resolve_plan(conn, community_id=row.id, ref=draft, crs=crs)
            base = resolve_plan(conn, community_id=row.id, ref=against, crs=crs)
            d = diff_in_db(conn, community_id=row.id, draft=ref.grids, against=base.grids)
        if as_json:
            print_json({"draft": ref.label, "against": base.label, **d.to_dict()})
            return
        out.print(f"{ref.label} against {base.label}", highlight=False)
        out.print(_table("counts", [d.counts], list(d.counts)))
        data = d.to_dict(limit=limit)
        for key, cols in (
            ("grids_added", ["code", "name", "area_m2", "households"]),
            ("grids_removed", ["code", "name", "area_m2", "households"]),
            (
                "grids_reshaped",
                [
                    "code",
                    "area_before_m2",
                    "area_after_m2",
                    "changed_m2",
                    "households_before",
                    "households_after",
                ],
            ),
            (
                "fields_cut",
                [
                    "field_id",
                    "name",
                    "member_id",
                    "grid_code",
                    "cut_area_m2",
                    "cut_share",
                    "households_cut",
                ],
            ),
            ("fields_moved", ["field_id", "name", "member_id", "from_code", "to_code"]),
            ("members_changed", ["member_id", "from_codes", "to_codes"]),
            ("branches_changed", ["branch_id", "branch_name", "from_codes", "to_codes"]),
            ("requests_rerouted", ["request_id", "from_code", "to_code"]),
            ("households_moved", ["household", "from_code", "to_code"]),
        ):
            if data[key]:
                total = d.counts[key]
                out.print(_table(f"{key} ({total:,}; first {len(data[key])})", data[key], cols))


# --- load, activate, rollback -----------------------------------------------------------------


@plan_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="Plan file (GeoJSON, GeoPackage, Shapefile).")],
    community: CommunityOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the draft.")] = None,
    crs: CrsOpt = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Store a plan file as a draft based on the active plan; prints the draft's id."""
    from geogrid.planning.store import load_plan, read_plan_file

    with errors():
        engine = open_engine(database)
        plan_file = read_plan_file(file, crs=crs)
        with transaction(engine, commit=commit) as conn:
            row = _community(conn, community)
            plan_id, report = load_plan(
                conn, community_id=row.id, plan_file=plan_file, name=name, actor=cli_actor()
            )
        result = {
            "plan_id": plan_id if commit else None,
            "grids": report.grids,
            "warnings": [p.to_dict() for p in report.problems if p.severity == "warning"],
            "committed": commit,
        }
        if as_json:
            print_json(result)
        else:
            for p in report.problems:
                err.print(f"[yellow]warning:[/] {p.message}", highlight=False)
            if commit:
                out.print(plan_id)
                err.print(f"loaded {file.name}: draft plan id {plan_id}, {report.grids} grids")
            else:
                err.print(f"{file.name}: {report.grids} grids, valid — would load as a draft")
        dry_run_note(commit)


@plan_app.command("activate")
def activate(
    draft: PlanArg,
    community: CommunityOpt = None,
    crs: CrsOpt = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Make a draft active in one transaction: retire the active plan, clip cut fields,
    re-map branches and leads, re-assign households, fields and open requests."""
    from geogrid.planning.activation import activate_plan
    from geogrid.planning.store import load_plan, resolve_plan

    with errors():
        engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            row = _community(conn, community)
            ref = resolve_plan(conn, community_id=row.id, ref=draft, crs=crs)
            plan_id = ref.plan_id
            if plan_id is None:
                assert ref.plan_file is not None
                plan_id, _ = load_plan(
                    conn, community_id=row.id, plan_file=ref.plan_file, actor=cli_actor()
                )
            report = activate_plan(conn, community_id=row.id, plan_id=plan_id, actor=cli_actor())
        _print_activation(report.to_dict(), as_json)
        dry_run_note(commit)


@plan_app.command("rollback")
def rollback(
    community: CommunityOpt = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Re-activate the plan the active one replaced (fields clipped by it are restored)."""
    from geogrid.planning.activation import rollback_plan

    with errors():
        engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            row = _community(conn, community)
            report = rollback_plan(conn, community_id=row.id, actor=cli_actor())
        _print_activation(report.to_dict(), as_json)
        dry_run_note(commit)


def _print_activation(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    prev = data["previous_plan_version"]
    out.print(
        f"{data['action']}: plan v{data['plan_version']} (id {data['plan_id']}) active"
        + (f", v{prev} retired" if prev is not None else ""),
        highlight=False,
    )
    a = data["assignment"]
    out.print(
        _table(
            "what changed",
            [
                {
                    **data["counts"],
                    "fields_clipped": len(data["fields_clipped"]),
                    "fields_restored": data["fields_restored"],
                    "branches_mapped": len(data["branches_mapped"]),
                    "leads_assigned": len(data["leads_assigned"]),
                    "households_changed_grid": a.get("households_changed_grid"),
                    "requests_rerouted": a.get("requests_rerouted"),
                }
            ],
            [
                "grids_added",
                "grids_removed",
                "grids_reshaped",
                "households_changed_grid",
                "fields_clipped",
                "fields_restored",
                "branches_mapped",
                "leads_assigned",
                "requests_rerouted",
            ],
        )
    )
    for f in data["fields_clipped"]:
        out.print(f"  field {f['field_id']} {f['name'] or ''}: {f['review_note']}", highlight=False)
    if data["acting_leads"]:
        out.print(
            f"  {len(data['acting_leads'])} grids are led for now by their parent grid's lead "
            "(confirm or name new leads): "
            + ", ".join(sorted(data["acting_leads"])[:10])
            + (" …" if len(data["acting_leads"]) > 10 else ""),
            highlight=False,
        )
    if data["grids_without_lead"]:
        out.print(
            f"  {len(data['grids_without_lead'])} grids have no lead yet: "
            + ", ".join(data["grids_without_lead"][:10])
            + (" …" if len(data["grids_without_lead"]) > 10 else ""),
            highlight=False,
        )


@plan_app.command("review")
def review(
    community: CommunityOpt = None,
    field: Annotated[
        list[int] | None, typer.Option("--field", help="Mark this field reviewed (repeatable).")
    ] = None,
    branch: Annotated[
        list[int] | None,
        typer.Option("--branch", help="Mark this branch's new grids reviewed (repeatable)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Mark everything reviewed.")] = False,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """What the last activation left to review (clipped fields, branch mappings, acting
    leads); with --field/--branch/--all, mark them reviewed."""
    from geogrid.planning.store import clear_review
    from geogrid.planning.store import review as review_items

    with errors():
        engine = open_engine(database)
        marking = bool(field or branch or all_)
        with transaction(engine, commit=commit and marking) as conn:
            row = _community(conn, community)
            cleared = (
                clear_review(
                    conn,
                    community_id=row.id,
                    fields=field,
                    branches=branch,
                    everything=all_,
                    actor=cli_actor(),
                )
                if marking
                else None
            )
            items = review_items(conn, community_id=row.id)
        if as_json:
            print_json({**items, "cleared": cleared})
        else:
            out.print(
                f"plan v{items['plan']['version']}: {len(items['fields'])} fields, "
                f"{len(items['branches'])} branch mappings and {len(items['acting_leads'])} "
                "acting leads to review",
                highlight=False,
            )
            for f in items["fields"]:
                out.print(
                    f"  field {f['id']} {f['name'] or ''}: {f['review_note']}", highlight=False
                )
            for b in items["branches"]:
                out.print(
                    f"  branch {b['branch_id']} {b['branch_name']} → grid {b['code']}",
                    highlight=False,
                )
            for code, member in sorted(items["acting_leads"].items()):
                out.print(f"  grid {code}: acting lead member {member}", highlight=False)
            if cleared is not None:
                out.print(
                    f"marked reviewed: {cleared['fields']} fields, {cleared['branches']} "
                    "branch mappings",
                    highlight=False,
                )
        if marking:
            dry_run_note(commit)


@plan_app.command("delete")
def delete(
    draft: Annotated[int, typer.Argument(help="Id of the draft to delete.")],
    community: CommunityOpt = None,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Delete an abandoned draft and its grids (active and retired plans are kept)."""
    from geogrid.planning.store import delete_draft

    with errors():
        engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            row = _community(conn, community)
            plan = delete_draft(conn, community_id=row.id, plan_id=draft, actor=cli_actor())
        verb = "deleted" if commit else "would delete"
        out.print(f"{verb} draft v{plan.version} (id {draft}, {plan.name})", highlight=False)
        dry_run_note(commit)


# --- propose, export, map -------------------------------------------------------------------


@plan_app.command("propose")
def propose(
    out_file: Annotated[Path, typer.Option("--out", help="Plan file to write (GeoJSON).")],
    community: CommunityOpt = None,
    target: TargetOpt = None,
    grids: Annotated[
        int | None, typer.Option("--grids", help="Exactly K grids (instead of a range).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same plan).")] = 0,
    steps: Annotated[
        int | None, typer.Option("--steps", help="ReCom steps (default: the method's).")
    ] = None,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Draw a balanced plan automatically (ReCom over building cells in street blocks) and
    write it as a draft file, with its metrics against the active plan."""
    from geogrid.planning.common import parse_target
    from geogrid.planning.service import propose_in_db

    with errors():
        if target is not None and grids is not None:
            raise InvalidInput(
                "give --households-per-grid or --grids, not both", field="households_per_grid"
            )
        rng = parse_target(target) if grids is None else None
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            result = propose_in_db(
                conn,
                community_id=row.id,
                target=rng,
                grids=grids,
                seed=seed,
                steps=steps,
                out=out_file,
                progress=lambda s: err.print(s, highlight=False),
            )
        if as_json:
            print_json(result)
            return
        out.print(f"wrote {out_file}: {result['proposal']['method']}", highlight=False)
        _print_comparison(result)
        err.print(
            f"next: geogrid plan validate {out_file}; geogrid plan diff {out_file}; "
            f"geogrid plan load {out_file} --commit",
            highlight=False,
        )


def _print_comparison(result: dict[str, Any]) -> None:
    # A community's first plan has no current one to compare with.
    cur = (result.get("current") or {}).get("plan") or {}
    new = result["proposed"]["plan"]
    keys = [
        "grids",
        "mean_households",
        "min_households",
        "max_households",
        "cv_households",
        "in_target",
        "households_per_member",
        "mean_polsby_popper",
        "min_polsby_popper",
        "mean_reock",
    ]
    table = Table(title="current plan vs proposal", title_justify="left")
    table.add_column("metric")
    table.add_column("current", justify="right")
    table.add_column("proposed", justify="right")
    for k in keys:
        table.add_row(k, _fmt(cur.get(k)), _fmt(new.get(k)))
    p = result["proposal"]
    if cur and p.get("kept_share") is not None:
        table.add_row("households kept in their grid", "", f"{p['kept_share']:.1%}")
    report = p.get("report", {})
    if report.get("fields_cut_after") is not None:
        table.add_row(
            "responsibility fields cut (households cut off)",
            "",
            f"{report['fields_cut_after']} ({report['households_cut_from_fields_after']})",
        )
    out.print(Fit(table))


@plan_app.command("export")
def export(
    plan: PlanArg,
    out_file: Annotated[Path, typer.Option("--out", help="GeoJSON file to write.")],
    community: CommunityOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Write a stored plan's grids as a plan file (GeoJSON with provenance)."""
    from geogrid.db import queries
    from geogrid.planning.files import write_plan_geojson
    from geogrid.planning.store import resolve_plan

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            ref = resolve_plan(conn, community_id=row.id, ref=plan)
            row_ = queries.plan_row(conn, plan_id=ref.plan_id) if ref.plan_id else None
            meta = (
                {
                    "plan": {
                        k: getattr(row_, k)
                        for k in (
                            "version",
                            "name",
                            "status",
                            "source",
                            "created_at",
                            "activated_at",
                            "retired_at",
                        )
                    }
                }
                if row_ is not None
                else {}
            )
        grids = ref.grids.rename(columns={"lead_member_id": "lead_member"})
        write_plan_geojson(
            out_file,
            grids,
            name=f"{row.code} {ref.label}",
            provenance={
                "community_code": row.code,
                "exported_from": ref.label,
                "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **meta,
            },
        )
        err.print(f"wrote {out_file} ({len(grids)} grids)", highlight=False)


@plan_app.command("map")
def plan_map_(
    draft: PlanArg,
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    against: Annotated[str, typer.Option("--against", help="Default: the active plan.")] = (
        "active"
    ),
    community: CommunityOpt = None,
    lang: Annotated[str, typer.Option("--lang", help="zh or en.")] = "zh",
    database: DatabaseOpt = None,
) -> None:
    """The plan map: the draft over the active plan, households and fields that move."""
    from geogrid.maps.base import render_html
    from geogrid.planning.service import plan_map_in_db

    with errors():
        engine = open_engine(database)
        with engine.connect() as conn:
            row = _community(conn, community)
            m = plan_map_in_db(conn, community_id=row.id, draft=draft, against=against, lang=lang)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(render_html(m, assets="inline"), encoding="utf-8")
        err.print(f"wrote {out_file} ({out_file.stat().st_size / 1e6:.2f} MB)", highlight=False)
