"""The operator's duties on the command line, registered by ``geogrid/cli.py``:

``geogrid audit [--since …] [--actor …] [--subject KIND[:ID]] [--action …] [--limit N]
[--json]`` and ``geogrid audit prune [--commit]``.

Changes are dry runs unless given ``--commit`` (docs/api.md, "Command line"); every command
that writes, and every export of a person's data, is an entry of the audit log.
"""

from __future__ import annotations

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
    errors,
    open_engine,
    out,
    print_json,
    settings_for,
    transaction,
)

audit_app = typer.Typer(
    help="The audit log: reads of personal data and every write (newest first).",
    invoke_without_command=True,
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
