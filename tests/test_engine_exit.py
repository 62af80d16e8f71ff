"""A process that opens SpatiaLite and uses pyproj afterwards exits cleanly.

Debian's ``mod_spatialite`` links the system's PROJ, pyproj's wheel bundles its own; a process
that loaded the extension before importing pyproj crashed at exit (SIGSEGV, or "double free or
corruption"), which the abuse benchmark met in CLI processes. ``geogrid.db.engine`` imports
pyproj first. SpatiaLite only: PostgreSQL loads no library into our process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    from sqlalchemy import text
    from geogrid.db.engine import make_engine

    engine = make_engine("sqlite:///" + sys.argv[1])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT spatialite_version()")).scalar()
    import pyproj

    print(pyproj.CRS.from_epsg(4547).to_epsg())
    """
)


def test_spatialite_then_pyproj_exits_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "x.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "4547"), done.stderr[-2000:]
