"""Command-line parts of the requests workflow, registered by ``geogrid/cli.py``:

``geogrid keys create|revoke|list``, ``geogrid kpi``, ``geogrid catalogue …``,
``geogrid members …``, ``geogrid webhooks …``, ``geogrid requests …``.

Keys act at once (a revocation must not wait). Edits of the catalogue and the directory are
dry runs unless given ``--commit`` (docs/api.md, "Command line"). Shared helpers come from
``geogrid.clikit``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Connection, Engine

from geogrid import i18n
from geogrid.clikit import (
    CommitOpt,
    CommunityOpt,
    DatabaseOpt,
    DistrictOpt,
    Fit,
    JsonOpt,
    LangOpt,
    SubdistrictOpt,
    cli_actor,
    dry_run_note,
    err,
    errors,
    open_engine,
    out,
    print_json,
    settings_for,
    transaction,
)
from geogrid.i18n import N_


@contextmanager
def _session(database: str | None, *, commit: bool = True) -> Iterator[Connection]:
    """Errors printed as ``error: …`` (exit 1); one transaction, rolled back unless commit."""
    with errors():
        engine: Engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            yield conn
        engine.dispose()


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Fit:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if r.get(c) is None else str(r.get(c)) for c in columns])
    return Fit(table)


# --- keys ------------------------------------------------------------------------------------

keys_app = typer.Typer(
    help="API keys with roles (stored hashed; shown once).", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str,
        typer.Option("--role", help="public, member, department, official, planner or admin."),
    ],
    community: CommunityOpt = None,
    subdistrict: Annotated[
        str | None,
        typer.Option(help="Limit the key to the communities of this subdistrict (code)."),
    ] = None,
    district: Annotated[
        str | None, typer.Option(help="Limit the key to the communities of this district (code).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Who or what holds the key.")] = None,
    member: Annotated[int | None, typer.Option(help="Member id (member keys).")] = None,
    department: Annotated[
        str | None, typer.Option(help="Department code (department keys).")
    ] = None,
    personal_data: Annotated[
        bool,
        typer.Option("--personal-data", help="May read unmasked personal data (logged)."),
    ] = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from geogrid.access import create_key

    with _session(database) as conn:
        new = create_key(
            conn,
            role=role,
            name=name,
            community_code=community,
            member_id=member,
            department_code=department,
            personal_data=personal_data,
            subdistrict_code=subdistrict,
            district_code=district,
            actor=cli_actor(),
        )
    if as_json:
        print_json({"id": new.id, "key": new.key, "prefix": new.prefix, "role": new.role})
        return
    out.print(new.key, highlight=False, soft_wrap=True)
    err.print(
        f"[yellow]key {new.prefix} ({new.role}) created: this is the only time it is shown; "
        "store it now.[/]"
    )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key, or its 8-character prefix.")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke a key at once (and end its browser sessions)."""
    from geogrid.access import revoke_key

    with _session(database) as conn:
        prefix = revoke_key(conn, key_or_prefix=key, actor=cli_actor())
    out.print(f"key {prefix} revoked")


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """The keys (prefix, role, scope; never a secret)."""
    from geogrid.access import list_keys

    with _session(database) as conn:
        tz = settings_for(database).service.timezone
        rows = list_keys(conn, include_revoked=include_revoked, tz=tz)
    if as_json:
        print_json(rows)
        return
    cols = ["prefix", "role", "name", "community", "subdistrict", "district", "member_id",
            "department", "personal_data", "created_at", "revoked_at", "last_used_at"]  # fmt: skip
    out.print(_table("API keys", rows, cols))


# --- KPIs ------------------------------------------------------------------------------------


def kpi(
    from_: Annotated[
        str | None, typer.Option("--from", help="First received date (inclusive).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last received date (inclusive).")] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by", help="community, grid, branch, member, category, programme or month."
        ),
    ] = None,
    community: CommunityOpt = None,
    subdistrict: SubdistrictOpt = None,
    district: DistrictOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of the screen.")
    ] = None,
    lang: LangOpt = "en",
    database: DatabaseOpt = None,
) -> None:
    """Request KPIs of a period (as ``GET /v1/kpis``): received, resolved, resolution rate,
    结案率, on-time rate, time to resolve, escalations, overdue, satisfaction, visits."""
    from geogrid.errors import InvalidInput
    from geogrid.periods import period
    from geogrid.requests.kpis import METRICS, kpis, to_csv

    with _session(database, commit=False) as conn:
        if fmt not in ("table", "json", "csv"):
            raise InvalidInput("--format must be table, json or csv", field="format")
        p = period(from_, to, tz=settings_for(database).service.timezone)
        table = kpis(
            conn,
            period=p,
            group_by=group_by,
            community=community,
            actor=cli_actor(),
            subdistrict=subdistrict,
            district=district,
        )
    if fmt == "json":
        text = json.dumps(table, ensure_ascii=False, indent=2, default=str) + "\n"
    elif fmt == "csv":
        text = to_csv(table)
    else:
        if out_file is None:
            out.print(_kpi_table(table, p, group_by, METRICS, i18n.lang_of(lang)))
            return
        text = to_csv(table)
    if out_file is None:
        sys.stdout.write(text)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8-sig" if fmt != "json" else "utf-8")
        err.print(f"written to {out_file}")


#: The columns of ``geogrid kpi``'s table and their headings (the dashboard's words).
_KPI_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", N_("Group")),
    ("label", N_("Label")),
    ("received", N_("Requests received")),
    ("resolved", N_("Resolved")),
    ("resolution_rate", N_("Resolution rate")),
    ("closed", N_("Closed")),
    ("due", N_("Due")),
    ("closure_rate", N_("Closure rate")),
    ("on_time_rate", N_("On-time rate")),
    ("median_hours_to_resolve", N_("Median hours to resolve")),
    ("p90_hours_to_resolve", N_("90th percentile of hours to resolve")),
    ("escalations", N_("Escalated")),
    ("overdue_open", N_("Overdue, still open")),
    ("satisfaction_rate", N_("Satisfaction")),
    ("visit_coverage", N_("Visit coverage")),
)

_KPI_GROUPS: dict[str, str] = {
    "community": N_("Community"),
    "grid": N_("Grid"),
    "branch": N_("Party branch"),
    "member": N_("Member"),
    "category": N_("Category"),
    "programme": N_("Programme"),
    "month": N_("Month"),
}


def _kpi_table(
    table: dict[str, Any], p: Any, group_by: str | None, metrics: Any, lang: i18n.Lang
) -> Fit:
    """The KPI table for people, headings in ``lang``."""
    _ = i18n.translator(lang)[0]
    title = _("KPIs %(start)s … %(end)s") % {"start": p.start, "end": p.end}
    if group_by:
        title += " · " + _("by %(group)s") % {"group": _(_KPI_GROUPS.get(group_by, group_by))}
    shown = [_kpi_row(r, metrics, lang) for r in table["rows"]]
    shown.append({**_kpi_row(table["total"], metrics, lang), "key": _("Total"), "label": ""})
    rich = Table(title=title)
    for key, heading in _KPI_COLUMNS:
        rich.add_column(_(heading), justify="left" if key in ("key", "label") else "right")
    for r in shown:
        rich.add_row(*("" if r.get(c) is None else str(r.get(c)) for c, _h in _KPI_COLUMNS))
    return Fit(rich)


def _kpi_row(row: dict[str, Any], metrics: Any, lang: i18n.Lang = "en") -> dict[str, Any]:
    """A KPI row for people (the table; ``--format json/csv`` keep full precision): rates as
    percentages (97.7%), counts grouped (2,270), hours to one decimal."""
    out = {**row, "key": row.get("code") or row.get("key")}  # grid and community codes
    for k in metrics:
        value = row.get(k)
        if k.endswith("_rate") or k == "visit_coverage":
            out[k] = i18n.percent(value, lang)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[k] = i18n.number(value, lang)
        elif isinstance(value, float):
            out[k] = i18n.number(value, lang, digits=1)
    return out


# --- catalogue -------------------------------------------------------------------------------

catalogue_app = typer.Typer(
    help="The request catalogue: categories and departments.", no_args_is_help=True
)


@catalogue_app.command("list")
def catalogue_list(
    include_inactive: Annotated[bool, typer.Option("--all", help="Include retired ones.")] = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Categories with programme, class, SLA hours and default department."""
    from geogrid.directory import list_categories

    with _session(database, commit=False) as conn:
        rows = list_categories(conn, include_inactive=include_inactive)
    if as_json:
        print_json(rows)
        return
    cols = ["code", "name", "programme", "class", "subclass", "sla_hours", "department", "active"]
    out.print(_table("categories", rows, cols))


@catalogue_app.command("set")
def catalogue_set(
    code: Annotated[str, typer.Argument(help="Category code.")],
    create: Annotated[bool, typer.Option("--create", help="Add a new category.")] = False,
    name: Annotated[str | None, typer.Option(help="Name (Chinese).")] = None,
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name.")] = None,
    programme: Annotated[
        str | None,
        typer.Option(help="convenience, integration, care, mediation or safety."),
    ] = None,
    category_class: Annotated[
        str | None, typer.Option("--class", help="component (部件) or event (事件).")
    ] = None,
    subclass: Annotated[str | None, typer.Option(help="Subclass (公用设施, 街面秩序, …).")] = None,
    sla_hours: Annotated[int | None, typer.Option("--sla-hours", help="SLA in hours.")] = None,
    department: Annotated[
        str | None, typer.Option(help="Default escalation department code ('' for none).")
    ] = None,
    attributes: Annotated[
        Path | None,
        typer.Option(help="JSON file with the Open311 attribute definitions ([] for none)."),
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--retire", help="Take requests, or retire it.")
    ] = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Add (--create) or change a category; only the options given change."""
    from geogrid.directory import save_category
    from geogrid.errors import InvalidInput

    values: dict[str, Any] = {}
    for key, value in (
        ("name", name),
        ("name_en", name_en),
        ("programme", programme),
        ("class", category_class),
        ("subclass", subclass),
        ("sla_hours", sla_hours),
        ("active", active),
    ):
        if value is not None:
            values[key] = value
    if department is not None:
        values["department"] = department or None
    with _session(database, commit=commit) as conn:
        if attributes is not None:
            try:
                values["attributes"] = json.loads(attributes.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"cannot read {attributes}: {exc}", field="attributes") from exc
        row = save_category(conn, code=code, values=values, create=create, actor=cli_actor())
    if as_json:
        print_json(row)
    else:
        out.print(_table(f"category {code}", [row], list(row)))
    dry_run_note(commit)


@catalogue_app.command("department")
def catalogue_department(
    code: Annotated[str, typer.Argument(help="Department code.")],
    name: Annotated[str | None, typer.Option(help="Name (Chinese).")] = None,
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name.")] = None,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Add or rename a department (upsert by code)."""
    from geogrid.directory import save_department

    with _session(database, commit=commit) as conn:
        row = save_department(conn, code=code, name=name, name_en=name_en, actor=cli_actor())
    out.print(_table("department", [row], list(row)))
    dry_run_note(commit)


# --- members, fields, grid leads -------------------------------------------------------------

members_app = typer.Typer(
    help="Members, responsibility fields and grid leads.", no_args_is_help=True
)


@members_app.command("list")
def members_list(
    community: CommunityOpt = None,
    personal: Annotated[
        bool, typer.Option("--personal", help="Show names and phones (logged).")
    ] = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Members with masked names (``--personal`` shows names and phones; logged)."""
    from geogrid.directory import list_members

    with _session(database) as conn:
        rows = list_members(
            conn,
            actor=cli_actor(),
            community=community,
            personal=personal,
            via="geogrid members list",
        )
    if as_json:
        print_json(rows)
        return
    cols = ["id", "display_name", "kind", "branch", "active", "fields", "leads_grids"]
    out.print(_table("members", rows, (["name", "phone"] if personal else []) + cols))


@members_app.command("add")
def members_add(
    name: Annotated[str, typer.Option(help="Full name (personal data).")],
    kind: Annotated[
        str,
        typer.Option(help="resident, registered_elsewhere, duty_post, new_org or stationed."),
    ],
    community: CommunityOpt = None,
    phone: Annotated[str | None, typer.Option(help="Phone (personal data).")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch name.")] = None,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Add a member."""
    from geogrid.directory import save_member

    values: dict[str, Any] = {"name": name, "kind": kind}
    if phone is not None:
        values["phone"] = phone
    if branch is not None:
        values["branch"] = branch
    with _session(database, commit=commit) as conn:
        member_id = save_member(
            conn, member_id=None, values=values, community=community, actor=cli_actor()
        )
    out.print(f"member {member_id} added")
    dry_run_note(commit)


@members_app.command("set")
def members_set(
    member_id: Annotated[int, typer.Argument(help="Member id.")],
    name: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    branch: Annotated[str | None, typer.Option()] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Deactivating vacates the member's fields."),
    ] = None,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Change a member; only the options given change."""
    from geogrid.directory import save_member

    values = {
        k: v
        for k, v in (
            ("name", name), ("phone", phone), ("kind", kind), ("branch", branch),
            ("active", active),
        )
        if v is not None
    }  # fmt: skip
    with _session(database, commit=commit) as conn:
        save_member(conn, member_id=member_id, values=values, actor=cli_actor())
    out.print(f"member {member_id} updated")
    dry_run_note(commit)


@members_app.command("field")
def members_field(
    field_id: Annotated[int, typer.Argument(help="Responsibility field id.")],
    member: Annotated[int | None, typer.Option(help="The member who takes the field.")] = None,
    vacant: Annotated[bool, typer.Option("--vacant", help="Leave the field vacant.")] = False,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Give a field to a member (or vacate it); open requests are routed again."""
    from geogrid.directory import set_field_member
    from geogrid.errors import InvalidInput

    with _session(database, commit=commit) as conn:
        if (member is None) == (not vacant):
            raise InvalidInput("give --member ID or --vacant", field="member")
        report = set_field_member(conn, field_id=field_id, member_id=member, actor=cli_actor())
    out.print(report)
    dry_run_note(commit)


@members_app.command("lead")
def members_lead(
    grid: Annotated[str, typer.Argument(help="Grid code (active plan).")],
    member: Annotated[int | None, typer.Option(help="The lead member.")] = None,
    none: Annotated[bool, typer.Option("--none", help="The grid has no lead.")] = False,
    community: CommunityOpt = None,
    commit: CommitOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Set the lead member of a grid; open requests are routed again."""
    from geogrid.directory import set_grid_lead
    from geogrid.errors import InvalidInput

    with _session(database, commit=commit) as conn:
        if (member is None) == (not none):
            raise InvalidInput("give --member ID or --none", field="member")
        report = set_grid_lead(
            conn, grid_code=grid, member_id=member, actor=cli_actor(), community=community
        )
    out.print(report)
    dry_run_note(commit)


# --- webhooks --------------------------------------------------------------------------------

webhooks_app = typer.Typer(
    help="Outbound webhooks (signed, retried, logged).", no_args_is_help=True
)


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[
        str,
        typer.Argument(
            help="Receiver URL: https, public addresses only "
            "(GEOGRID_WEBHOOK_ALLOW_PRIVATE allows http and private ones)."
        ),
    ],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="request.dispatched, request.escalated, request.overdue, request.resolved "
            "(repeat; default all).",
        ),
    ] = None,
    secret: Annotated[str | None, typer.Option(help="Signing secret (default generated).")] = None,
    community: CommunityOpt = None,
    description: Annotated[str | None, typer.Option()] = None,
    database: DatabaseOpt = None,
) -> None:
    """Register a webhook; prints its signing secret once."""
    from geogrid.requests.webhooks import EVENTS, create_webhook

    with _session(database) as conn:
        wid, key = create_webhook(
            conn,
            url=url,
            events=event or EVENTS,
            secret=secret,
            community_code=community,
            description=description,
            settings=settings_for(database).requests,
            actor=cli_actor(),
        )
    out.print(f"webhook {wid} registered; signing secret (shown once): {key}", highlight=False)


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOpt = False, database: DatabaseOpt = None) -> None:
    from geogrid.requests.webhooks import list_webhooks

    with _session(database, commit=False) as conn:
        rows = list_webhooks(conn, tz=settings_for(database).service.timezone)
    if as_json:
        print_json(rows)
    else:
        out.print(_table("webhooks", rows, ["id", "url", "events", "community", "active"]))


@webhooks_app.command("disable")
def webhooks_disable(
    webhook_id: Annotated[int, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="Switch it back on.")] = False,
    database: DatabaseOpt = None,
) -> None:
    from geogrid.requests.webhooks import set_webhook_active

    with _session(database) as conn:
        set_webhook_active(
            conn,
            webhook_id=webhook_id,
            active=enable,
            settings=settings_for(database).requests,
            actor=cli_actor(),
        )
    out.print(f"webhook {webhook_id} {'enabled' if enable else 'disabled'}")


@webhooks_app.command("deliver")
def webhooks_deliver(as_json: JsonOpt = False, database: DatabaseOpt = None) -> None:
    """Find overdue requests and send every due delivery (for cron, when the server's
    worker is off)."""
    from geogrid.requests.webhooks import deliver_due, sweep_overdue

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with engine.begin() as conn:
            overdue = sweep_overdue(conn)
        report = deliver_due(engine, settings=settings.requests).to_dict()
    report["overdue_found"] = len(overdue)
    if as_json:
        print_json(report)
    else:
        out.print(report)


@webhooks_app.command("log")
def webhooks_log(
    webhook_id: Annotated[int | None, typer.Option("--webhook")] = None,
    limit: Annotated[int, typer.Option()] = 20,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """The delivery log, newest first, with every attempt."""
    from geogrid.requests.webhooks import deliveries

    with _session(database, commit=False) as conn:
        rows = deliveries(conn, webhook_id=webhook_id, limit=limit)
    if as_json:
        print_json(rows)
    else:
        cols = ["id", "webhook_id", "event", "request_id", "status", "attempts",
                "last_status_code", "last_error", "next_attempt_at"]  # fmt: skip
        out.print(_table("webhook deliveries", rows, cols))


# --- requests --------------------------------------------------------------------------------

requests_app = typer.Typer(help="Requests: read and act on them.", no_args_is_help=True)


@requests_app.command("show")
def requests_show(
    request_id: Annotated[int, typer.Argument()],
    database: DatabaseOpt = None,
) -> None:
    """One request with its full history (JSON)."""
    from geogrid.requests.views import get_request

    with _session(database, commit=False) as conn:
        print_json(get_request(conn, request_id, actor=cli_actor()))


@requests_app.command("act")
def requests_act(
    request_id: Annotated[int, typer.Argument()],
    action: Annotated[
        str,
        typer.Argument(
            help="register, reject, dispatch, start, escalate, "
            "send_back, resolve, close, reopen, reassign"
        ),
    ],
    version: Annotated[int, typer.Option(help="The version you saw (requests show).")],
    note: Annotated[str | None, typer.Option()] = None,
    member: Annotated[int | None, typer.Option(help="dispatch/reassign: member id.")] = None,
    department: Annotated[str | None, typer.Option(help="escalate: department code.")] = None,
    actor_name: Annotated[str, typer.Option("--as", help="Recorded as the actor.")] = "cli",
    database: DatabaseOpt = None,
) -> None:
    """Perform an action as an operator on the server (recorded with --as)."""
    from geogrid.requests.webhooks import deliver_due
    from geogrid.requests.workflow import ActionInput, act

    settings = settings_for(database)
    with _session(database) as conn:
        outcome = act(
            conn,
            request_id=request_id,
            action=action,
            actor=cli_actor(f"cli {actor_name}"),
            params=ActionInput(version=version, note=note, member_id=member, department=department),
            settings=settings.requests,
        )
    out.print(f"request {request_id}: {outcome.status}, version {outcome.version}")
    if outcome.deliveries:
        with errors():
            report = deliver_due(
                open_engine(database, settings=settings),
                ids=outcome.deliveries,
                settings=settings.requests,
            )
        out.print(f"webhooks: {report.to_dict()}")


#: ``geogrid requests list``'s table: (column, heading); the headings are in cli.po.
_LIST_COLUMNS: list[tuple[str, str]] = [
    ("id", N_("id")),
    ("status", N_("status")),
    ("received", N_("received at")),
    ("category", N_("category")),
    ("grid", N_("grid")),
    ("member", N_("member")),
    ("due", N_("due")),
    ("overdue", N_("overdue")),
]


def _list_row(item: dict[str, Any], lang: i18n.Lang) -> dict[str, str]:
    """A request of ``GET /v1/requests``'s JSON as the table shows it: times in the
    community's zone to the minute (the JSON's offsets are the community's already)."""

    def when(value: str | None) -> str:
        return "–" if value is None else value[:16].replace("T", " ")

    category = item["category"]
    name = category["name_en"] if lang == "en" and category["name_en"] else category["name"]
    assignment = item["assignment"]
    return {
        "id": str(item["id"]),
        "status": item["status"],
        "received": when(item["received_at"]),
        "category": str(name),
        "grid": assignment["grid_code"] or "–",
        "member": assignment["member_display_name"] or "–",
        "due": when(item["due_at"]),
        "overdue": i18n.translate(lang, N_("yes")) if item["overdue"] else "",
    }


@requests_app.command("list")
def requests_list(
    status: Annotated[
        str | None, typer.Option(help="Comma list of statuses, or open (as GET /v1/requests).")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Comma list of category codes.")] = None,
    programme: Annotated[
        str | None, typer.Option(help="convenience, integration, care, mediation or safety.")
    ] = None,
    community: CommunityOpt = None,
    grid: Annotated[str | None, typer.Option(help="Grid code.")] = None,
    member: Annotated[int | None, typer.Option("--member", help="Member id.")] = None,
    department: Annotated[str | None, typer.Option(help="Escalated to (code).")] = None,
    flag: Annotated[str | None, typer.Option(help="outside_grids.")] = None,
    overdue: Annotated[
        bool | None, typer.Option("--overdue/--not-overdue", help="Open and past the SLA, or not.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="First received date (inclusive).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last received date (inclusive).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1–500).")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    lang: LangOpt = "en",
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Requests with the filters of ``GET /v1/requests``, newest received first; times in
    each community's zone. ``--json`` prints the API's page (every field)."""
    from geogrid.periods import period
    from geogrid.requests.views import RequestFilter, list_requests

    with _session(database, commit=False) as conn:
        language = i18n.lang_of(lang)
        p = None
        if from_ is not None or to is not None:
            p = period(from_, to, tz=settings_for(database).service.timezone)
        filters = RequestFilter(
            status=[s.strip() for s in status.split(",") if s.strip()] if status else (),
            category=[c.strip() for c in category.split(",") if c.strip()] if category else (),
            programme=programme,
            community=community,
            grid=grid,
            member_id=member,
            department=department,
            flag=flag,
            overdue=overdue,
            period=p,
        )
        page = list_requests(conn, actor=cli_actor(), filters=filters, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    _ = i18n.translator(language)[0]
    table = Table(
        title=_("requests: %(shown)s of %(total)s")
        % {
            "shown": i18n.number(len(page["items"]), language),
            "total": i18n.number(page["total"], language),
        }
    )
    for key, heading in _LIST_COLUMNS:
        table.add_column(_(heading), justify="right" if key == "id" else "left")
    for item in page["items"]:
        row = _list_row(item, language)
        table.add_row(*(row[key] for key, _heading in _LIST_COLUMNS))
    out.print(Fit(table))
    shown = offset + len(page["items"])
    if shown < page["total"]:
        err.print(_("more: --offset %(next)s") % {"next": shown}, highlight=False)
