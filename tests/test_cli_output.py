"""What the command line prints survives pipes, log files and narrow terminals.

Errors and tables sent anywhere but a terminal are never wrapped or cropped (people grep them;
Rich would wrap at $COLUMNS or 80); in a terminal too narrow for a table, each row is shown
as a block of ``column: value`` lines instead of squeezed columns.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from geogrid import clikit
from geogrid.clikit import Fit
from geogrid.errors import GeogridError

COLUMNS = ["code", "name", "programme", "department", "sla_hours", "note"]
ROWS = [
    ["elderly_care", "居家养老服务", "care", "civil_affairs", "72", "a note that runs on " * 3],
    ["street_light", "路灯不亮", "convenience", "urban_management", "48", ""],
]


def _table() -> Table:
    table = Table(title="categories")
    for column in COLUMNS:
        table.add_column(column)
    for row in ROWS:
        table.add_row(*row)
    return table


def _geogrid(*args: str, cwd: Path, columns: int) -> subprocess.CompletedProcess[str]:
    """The CLI as a separate process whose output is a pipe, as in a script or cron job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-c", "from api.cli import app; app()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_errors_and_tables_through_a_pipe_are_whole(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a-folder-name-long-enough-to-pass-any-terminal-width-" * 2)
    long_dir.mkdir()
    url = f"sqlite:///{long_dir / 'missing.sqlite'}"
    failed = _geogrid("assign", "--database", url, cwd=tmp_path, columns=30)
    assert failed.returncode == 1
    expected = f"error: the database at {url} has no geogrid schema: run `geogrid db init`"
    assert expected in failed.stderr.splitlines()  # one line, however long

    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    assert _geogrid("db", "init", "--database", url, cwd=tmp_path, columns=30).returncode == 0
    listed = _geogrid("catalogue", "list", "--database", url, cwd=tmp_path, columns=30)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = next(line for line in lines if "sla_hours" in line)
    assert all(c in header for c in ("code", "name", "programme", "department", "active"))
    row = next(line for line in lines if "elderly_care" in line)
    assert "居家养老服务" in row and "civil_affairs" in row and "72" in row
    assert "…" not in listed.stdout  # nothing cropped


def test_the_cli_consoles_never_wrap_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "20")
    message = "the roster's line 12 has a household outside every grid of the community " * 3
    with pytest.raises(Exception, match="1"), clikit.errors():
        raise GeogridError(message.strip())
    clikit.out.print(Fit(_table()))
    captured = capsys.readouterr()
    assert f"error: {message.strip()}\n" in captured.err
    row = next(line for line in captured.out.splitlines() if "elderly_care" in line)
    assert ROWS[0][-1].strip() in row and "civil_affairs" in row


def _terminal(width: int) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return (
        Console(file=buffer, force_terminal=True, width=width, height=40, color_system=None),
        buffer,
    )


def test_a_narrow_terminal_shows_records() -> None:
    console, buffer = _terminal(80)
    console.print(Fit(_table()))
    text = buffer.getvalue()
    assert "code: elderly_care" in text.splitlines()
    assert "department: urban_management" in text.splitlines()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "┃" not in text  # no squeezed columns
    # Records are separated by a blank line, in the table's order.
    assert text.index("code: elderly_care") < text.index("\n\ncode: street_light")


def test_a_table_that_fits_stays_a_table() -> None:
    console, buffer = _terminal(200)
    console.print(Fit(_table()))
    lines = buffer.getvalue().splitlines()
    assert any("┃ code" in line and "sla_hours" in line for line in lines)
    assert all(len(line) <= 200 for line in lines)


def test_a_key_value_table_in_a_narrow_terminal() -> None:
    table = Table(title="assignment of 441302011005", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("households_outside_every_grid_of_the_active_plan", "0" * 40)
    console, buffer = _terminal(60)
    console.print(Fit(table))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "assignment of 441302011005"
    assert lines[1].startswith("households_outside_every_grid_of_the_active_plan:")
    assert "0" * 40 in buffer.getvalue()  # folded by the terminal's width, at a space
    assert all(len(line) <= 60 for line in lines)


def test_the_suite_runs_narrow_and_deep(tmp_path: Path) -> None:
    """scripts/test.sh (CI) runs everything with COLUMNS=60 under a path of > 150 characters."""
    if os.environ.get("GEOGRID_REQUIRE_ALL") != "1":
        pytest.skip("only under scripts/test.sh")
    assert os.environ.get("COLUMNS") == "60"
    assert len(str(tmp_path)) > 150
