"""geogrid.lookup's point indexes shared between processes through memory-mapped files
(``geogrid.lookup.store``): the same answers as the in-memory grids, one build for several
services, a refresh of one community, and ``geogrid serve --workers 2`` on both backends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, update

from geogrid.db import models as m
from geogrid.errors import GeogridError
from geogrid.lookup import LookupService
from geogrid.lookup.cells import Cells
from geogrid.lookup.store import CellsStore
from geogrid.spatial import assign_points
from tests.factories import X0, Y0, D
from tests.lookup_factories import EXPECTED, LookupCommunity, make_lookup_community

ROOT = Path(__file__).resolve().parent.parent


def _tiling(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi tiles and overlapping discs, and points: random, every vertex, along edges."""
    rng = np.random.default_rng(seed)
    frame = shapely.box(X0, Y0, X0 + 0.03, Y0 + 0.02)
    seeds = shapely.multipoints(np.c_[X0 + rng.random(30) * 0.03, Y0 + rng.random(30) * 0.02])
    tiles = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    discs = shapely.buffer(
        shapely.points(X0 + rng.random(10) * 0.03, Y0 + rng.random(10) * 0.02), 0.002
    )
    polys = np.concatenate([tiles, discs])
    boundary = shapely.boundary(polys)
    along = shapely.line_interpolate_point(
        np.repeat(boundary, 10), np.tile(np.linspace(0, 1, 10), len(boundary)), normalized=True
    )
    vertices = shapely.get_coordinates(polys)
    x = np.concatenate([X0 - 0.005 + rng.random(5000) * 0.04, vertices[:, 0], shapely.get_x(along)])
    y = np.concatenate([Y0 - 0.005 + rng.random(5000) * 0.03, vertices[:, 1], shapely.get_y(along)])
    return polys, x, y


@pytest.mark.parametrize("max_side", [None, 8])
def test_mapped_grids_answer_as_the_strtree_rule(tmp_path: Path, max_side: int | None) -> None:
    polys, x, y = _tiling(5)
    want = assign_points(shapely.points(x, y), gpd.GeoSeries(polys))
    store = CellsStore(tmp_path)
    built = store.cells("441302011099", (3, 4), "grids", polys, max_side=max_side)
    # A second process (here: a second store on the folder) maps the same file.
    mapped = CellsStore(tmp_path).cells("441302011099", (3, 4), "grids", polys)
    for grid in (built, mapped):
        assert isinstance(grid.answer, np.memmap) or isinstance(grid.answer.base, np.memmap)
        assert grid.find_many(x, y).tolist() == want.tolist()
        assert [grid.find(float(a), float(b)) for a, b in zip(x, y, strict=True)] == want.tolist()
    assert mapped.nx == built.nx == (8 if max_side else Cells(polys).nx)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "441302011099-3-4-grids.json",
        "441302011099-3-4-grids.npy",
    ]
    # A newer counter replaces the older files.
    store.cells("441302011099", (3, 5), "grids", polys, replaces=(3, 4))
    assert not (tmp_path / "441302011099-3-4-grids.npy").exists()
    assert (tmp_path / "441302011099-3-5-grids.npy").exists()


def _answers(svc: LookupService) -> list[Any]:
    rng = np.random.default_rng(11)
    pts = [(X0 + a, Y0 + b) for a, b in rng.uniform(-0.003, 2 * D + 0.003, (200, 2))]
    pts += [xy for xy, *_ in EXPECTED.values()]
    out = []
    for x, y in pts:
        try:
            out.append(svc.lookup(lon=x, lat=y).to_dict())
        except GeogridError as exc:
            out.append(exc.to_dict())
    out.append([r.to_dict() for r in svc.lookup_many([{"lon": x, "lat": y} for x, y in pts])])
    return out


def test_services_sharing_a_folder_answer_as_one_in_memory(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        community: LookupCommunity = make_lookup_community(conn)
    alone = LookupService(engine, poll_interval=0)
    first = LookupService(engine, poll_interval=0, shared_dir=tmp_path)
    second = LookupService(engine, poll_interval=0, shared_dir=tmp_path)
    for svc in (alone, first, second):
        svc.refresh(force=True)
    written = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert len(written) == 3  # grids, fields, buildings: written once
    assert _answers(first) == _answers(alone) == _answers(second)

    with engine.begin() as conn:
        conn.execute(
            update(m.ResponsibilityField)
            .where(m.ResponsibilityField.id == community.fields["F1"])
            .values(member_id=None)
        )
    for svc in (alone, first, second):
        assert svc.refresh() is True
    assert _answers(first) == _answers(alone) == _answers(second)
    (x, y), *_ = EXPECTED["F1 in 003"]
    assert second.lookup(lon=x, lat=y).place.member_rule == "grid_lead"
    now = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert len(now) == 3 and not set(now) & set(written)  # the old counter's files are gone


# --- geogrid serve --workers 2 ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not listening yet: uvicorn's workers listen once started
        return 0, b""


def _workers(pid: int) -> list[int]:
    """The server's worker processes (multiprocessing's resource tracker is a child too)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def _maps(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` maps a file of ``folder``."""
    return str(folder) in Path(f"/proc/{pid}/maps").read_text()


# One backend: the service's part is tested on both above; this is the server's processes
# (~40 s of start-up on a busy 2-core machine).
@pytest.mark.parametrize("backend", ["spatialite"])
def test_serve_with_two_workers_shares_the_indexes(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        community: LookupCommunity = make_lookup_community(conn)
    port = _free_port()
    shared = tmp_path / "shared"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env |= {"GEOGRID_LOOKUP_SHARED_DIR": str(shared), "PYTHONPATH": str(ROOT)}
    serve = ["serve", "--port", str(port), "--workers", "2", "--database", db_url]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import app; app()", *serve],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    (x, y), *_ = EXPECTED["F1 in 003"]
    url = f"{base}/v1/lookup?lon={x}&lat={y}"
    try:
        deadline = time.monotonic() + 90
        workers: list[int] = []
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            workers = _workers(proc.pid)
            ready = len(workers) == 2 and all(_maps(w, shared) for w in workers)
            if ready and _get(url)[0] == 200:
                break
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        # Each worker maps the same files (built once), and every answer is the same.
        assert len(list(shared.glob("*.npy"))) == 3
        answers = {_get(url) for _ in range(30)}
        assert len(answers) == 1
        status, body = answers.pop()
        assert status == 200 and b'"member_rule":"field"' in body

        with engine.begin() as conn:
            conn.execute(
                update(m.ResponsibilityField)
                .where(m.ResponsibilityField.id == community.fields["F1"])
                .values(member_id=None)
            )
        # Both workers refresh: 30 answers in a row (new connections, spread over both) agree.
        deadline = time.monotonic() + 15
        while True:
            bodies = [_get(url)[1] for _ in range(30)]
            if all(b'"member_rule":"grid_lead"' in b for b in bodies):
                break
            assert time.monotonic() < deadline, "a worker did not refresh"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
