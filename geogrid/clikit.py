"""Shared pieces of the command line: options, engine, errors, transactions, output.

Used by ``geogrid.cli`` and the command groups of ``geogrid.requests`` and ``geogrid.maps``,
so every command reports errors, dry runs and JSON the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from pydantic import ValidationError
from rich.console import Console, ConsoleDimensions, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, Engine

from geogrid.access import Actor
from geogrid.errors import ConfigurationError, GeogridError
from geogrid.settings import Settings

if TYPE_CHECKING:
    from rich.progress import Progress

#: The width a console reports when its output is not a terminal: wide enough that nothing is
#: ever wrapped or cropped to fit it.
UNBOUNDED_WIDTH = 100_000


class _Console(Console):
    """A Rich console that never hard-wraps what goes to a pipe, a file, a log or a cron mail.

    Rich wraps at ``$COLUMNS`` or 80 columns when its output is not a terminal, which splits
    messages mid-sentence (people grep them) and crops tables. Here text is never wrapped
    (``soft_wrap``: a terminal folds long lines itself, without a newline in the text) and a
    console that writes elsewhere than a terminal is as wide as the widest line, so tables
    come out whole. Checked per call, since tests and callers swap ``sys.stdout``.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, soft_wrap=True)

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal:
            return size
        return ConsoleDimensions(UNBOUNDED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out: Console = _Console()
err: Console = _Console(stderr=True)


class Fit:
    """A table that a narrow terminal shows as records, one ``column: value`` line each.

    Wider than the terminal, a table's columns would be squeezed into illegible slivers; there
    each row becomes a block of lines instead. Output that is not a terminal always gets the
    whole table (``--json`` gives every field for machines).
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        natural = Measurement.get(console, options.update_width(UNBOUNDED_WIDTH), self.table)
        if not console.is_terminal or natural.maximum <= options.max_width:
            yield self.table
            return
        table = self.table
        if table.title:
            yield Text(str(table.title), style="bold")
        headers = [str(c.header) for c in table.columns]
        for i, row in enumerate(zip(*(list(c.cells) for c in table.columns), strict=True)):
            cells = [console.render_str(c) if isinstance(c, str) else Text(str(c)) for c in row]
            if not table.show_header:  # a key-value table: the first cell is the label
                yield Text.assemble((f"{cells[0].plain}: ", "bold"), *cells[1:])
                continue
            if i:
                yield Text("")
            for header, cell in zip(headers, cells, strict=True):
                yield Text.assemble((f"{header}: ", "bold"), cell)


def progress_bar(*, disable: bool = False) -> Progress:
    """The progress bar of long commands, on stderr: what, a bar, done of total, time spent
    and left (the output on stdout stays clean for pipes)."""
    from rich.progress import (  # not at import: every command would pay for it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
    )


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
SubdistrictOpt = Annotated[
    str | None,
    typer.Option("--subdistrict", help="Subdistrict code (街道): all its communities."),
]
DistrictOpt = Annotated[
    str | None, typer.Option("--district", help="District code (区/县): all its communities.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
LangOpt = Annotated[
    str,
    typer.Option(
        "--lang",
        envvar="GEOGRID_LANG",
        help="Language of the table's headings and figures: en or zh (zh_CN too).",
    ),
]


def settings_for(database: str | None) -> Settings:
    """The command's settings: read from the environment and ``.env`` here, once per command,
    and passed down (no library function reads the environment); ``--database`` wins. A
    setting out of bounds is a :class:`ConfigurationError` (``error: …``, exit 1)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigurationError(f"a setting is not valid: {problems}") from None
    if database:
        settings.database.database_url = database
    return settings


def _current_context() -> click.Context | None:
    # Typer ≥ 0.2x runs commands on its own copy of Click (``typer._click``) and keeps the
    # current context there; older ones on Click itself. Without either: None.
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - an older Typer
        return click.get_current_context(silent=True)
    return get_current_context(silent=True) or click.get_current_context(silent=True)  # type: ignore[return-value]


def command_name() -> str:
    """The running command as typed, ``geogrid members add`` (for the audit log's ``via``)."""
    ctx = _current_context()
    if ctx is None:
        return "geogrid"
    # The root's name is the script's (``geogrid``, or a test runner's): say ``geogrid``.
    _, _, rest = ctx.command_path.partition(" ")
    return f"geogrid {rest}".strip()


def cli_actor(label: str = "cli") -> Actor:
    """The operator running this command, for the audit log: admin rights, the login and
    host as the client, the command as ``via``."""
    return Actor.system(label, via=command_name())


def open_engine(
    database: str | None, *, require_schema: bool = True, settings: Settings | None = None
) -> Engine:
    """The engine of ``settings`` (default: :func:`settings_for` ``database``)."""
    from geogrid.db.engine import make_engine
    from geogrid.db.engine import require_schema as check

    engine = make_engine(settings=(settings or settings_for(database)).database)
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
