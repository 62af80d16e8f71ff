"""The operator's duties on the command line, registered by ``geogrid/cli.py``:

``geogrid audit [--since …] [--actor …] [--subject KIND[:ID]] [--action …] [--limit N]
[--json]`` and ``geogrid audit prune [--commit]``; ``geogrid retention [--older-than 2y]
[--commit]``; ``geogrid person export|erase --member ID | --address-id ID | --request-token
TOKEN | --phone PHONE``.

Changes are dry runs unless given ``--commit`` (docs/api.md, "Command line"); every command
that writes, and every export of a person's data, is an entry of the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

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
    transaction,
)
from geogrid.errors import InvalidInput

audit_app = typer.Typer(
    help="The audit log: reads of personal data and every write (newest first).",
    invoke_without_command=True,
)
person_app = typer.Typer(
    help="A person's data: export everything held about them, or erase it.",
    no_args_is_help=True,
)

_AUDIT_COLUMNS = ["id", "at", "actor", "role", "client", "via", "action", "subject",
                  "subject_id", "fields"]  # fmt: skip


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Fit:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cells.append(
                ", ".join(map(str, v)) if isinstance(v, list) else "" if v is None else str(v)
            )
        table.add_row(*cells)
    return Fit(table)


# --- audit -----------------------------------------------------------------------------------


@audit_app.callback()
def audit_list(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="From this local date (2026-01-31) or this long ago (90d, 6m, 1y)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Text of the actor's label (a key prefix, cli), or key id.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="A subject kind (member), or kind and id (member:12).")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="read, export, create, update, dispatch, erase …")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """List the audit log, newest first (``geogrid audit prune`` removes what is past the
    kept period)."""
    if ctx.invoked_subcommand is not None:
        return
    from geogrid import audit

    with errors():
        settings = settings_for(database)
        tz = settings.service.timezone
        kind, _, sid = (subject or "").partition(":")
        where = audit.AuditFilter(
            since=audit.since(since, tz=tz) if since else None,
            actor=actor,
            subject=kind or None,
            subject_id=sid or None,
            action=action,
        )
        engine = open_engine(database, settings=settings)
        with engine.connect() as conn:
            rows = audit.entries(conn, where=where, limit=limit, tz=tz)
    if as_json:
        print_json(rows)
        return
    out.print(_table("audit log", rows, _AUDIT_COLUMNS))


@audit_app.command("prune")
def audit_prune(
    commit: CommitOpt = False, as_json: JsonOpt = False, database: DatabaseOpt = None
) -> None:
    """Remove the entries older than the kept period (GEOGRID_AUDIT_KEEP_DAYS, default 183
    days): the only way entries leave the log. Itself recorded."""
    from geogrid import audit

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with transaction(engine, commit=commit) as conn:
            report = audit.prune(
                conn, actor=cli_actor(), settings=settings.privacy, tz=settings.service.timezone
            )
    if as_json:
        print_json({**report, "committed": commit})
    else:
        verb = "removed" if commit else "would remove"
        out.print(
            f"{verb} {report['removed']} entries older than {report['before']} "
            f"(kept {report['keep_days']} days; oldest kept: {report['oldest_kept']})",
            highlight=False,
        )
    dry_run_note(commit)


# --- retention -------------------------------------------------------------------------------


def retention(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Requests closed (or rejected) longer ago than this: 2y, 18m, 90d "
            "(default GEOGRID_RETENTION_PERIOD, 2y).",
        ),
    ] = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Erase the reporters' contacts and photos (and token, comment, phones in the texts) of
    requests finished longer ago than the period; the anonymous requests stay for the
    statistics. One transaction, one audit entry."""
    from geogrid.retention import retention as run

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with transaction(engine, commit=commit) as conn:
            report = run(
                conn,
                older_than=older_than or settings.privacy.retention_period,
                actor=cli_actor(),
                tz=settings.service.timezone,
            )
    if as_json:
        print_json({**report, "committed": commit})
    else:
        rows = [{"community": c, **counts} for c, counts in report["communities"].items()]
        rows.append({"community": "total", **report["total"]})
        verb = "erased" if commit else "would erase"
        title = (
            f"{verb}: reporters' data of requests finished before {report['before']} "
            f"({report['finished_requests']} such requests)"
        )
        cols = ["community", "requests", "contacts", "photos", "linked_photos", "notes"]
        out.print(_table(title, rows, cols))
    dry_run_note(commit)


# --- person ----------------------------------------------------------------------------------

MemberOpt = Annotated[int | None, typer.Option("--member", help="A member's id.")]
AddressOpt = Annotated[str | None, typer.Option("--address-id", help="A household's address id.")]
TokenOpt = Annotated[
    str | None, typer.Option("--request-token", help="A reporter's request token (Open311).")
]
PhoneOpt = Annotated[str | None, typer.Option("--phone", help="A reporter's contact phone.")]


def _one_person(
    member: int | None, address_id: str | None, token: str | None, phone: str | None
) -> str:
    named = (
        ("member", member),
        ("household", address_id),
        ("reporter", token),
        ("reporter", phone),
    )
    given = [kind for kind, value in named if value is not None]
    if len(given) != 1:
        raise InvalidInput(
            "name one person: --member ID, --address-id ID, --request-token TOKEN or --phone PHONE",
            field="person",
        )
    return given[0]


@person_app.command("export")
def person_export(
    member: MemberOpt = None,
    address_id: AddressOpt = None,
    token: TokenOpt = None,
    phone: PhoneOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON to this file (else stdout).")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Everything held about a person, as JSON (an audited read)."""
    from geogrid import person

    with errors():
        kind = _one_person(member, address_id, token, phone)
        settings = settings_for(database)
        tz = settings.service.timezone
        engine = open_engine(database, settings=settings)
        # Committed: the export's audit entry must stay.
        with engine.begin() as conn:
            if kind == "member":
                assert member is not None
                data = person.export_member(conn, member_id=member, actor=cli_actor(), tz=tz)
            elif kind == "household":
                assert address_id is not None
                data = person.export_household(
                    conn, address_id=address_id, actor=cli_actor(), tz=tz
                )
            else:
                data = person.export_reporter(
                    conn, token=token, phone=phone, actor=cli_actor(), tz=tz
                )
    if out_file is None:
        print_json(data)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    out_file.write_text(text, encoding="utf-8")
    err.print(
        f"written to {out_file}: [yellow]it holds personal data; give it to the person only.[/]"
    )


@person_app.command("erase")
def person_erase(
    member: MemberOpt = None,
    address_id: AddressOpt = None,
    token: TokenOpt = None,
    phone: PhoneOpt = None,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    database: DatabaseOpt = None,
) -> None:
    """Erase a person's data: a member is anonymised (the row stays), a household's personal
    row goes (the point stays), a reporter's contacts and photos go (the requests stay)."""
    from geogrid import person

    with errors():
        kind = _one_person(member, address_id, token, phone)
        engine = open_engine(database)
        with transaction(engine, commit=commit) as conn:
            if kind == "member":
                assert member is not None
                report = person.erase_member(conn, member_id=member, actor=cli_actor())
            elif kind == "household":
                assert address_id is not None
                report = person.erase_household(conn, address_id=address_id, actor=cli_actor())
            else:
                report = person.erase_reporter(conn, token=token, phone=phone, actor=cli_actor())
    if as_json:
        print_json({**report, "committed": commit})
    else:
        verb = "erased" if commit else "would erase"
        shown = {k: v for k, v in report.items() if k != "kind"}
        out.print(
            f"{verb} ({report['kind']}): " + ", ".join(f"{k} {v}" for k, v in shown.items()),
            highlight=False,
        )
    dry_run_note(commit)
