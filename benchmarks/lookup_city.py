"""The lookup service at city scale: build, memory per worker, per-community refresh, HTTP.

    python -m benchmarks.city load --url URL          # once: the city into a database
    python -m benchmarks.lookup_city --url URL [--workers 1,2] [--concurrency 16,64]
        [--duration 8] [--rounds 2] [--out benchmarks/results/lookup_city-DATE.json]

One command, one JSON file (machine, versions, every run, medians and ratios):

* **Build** (a child process, so its memory is its own): ``LookupService.refresh(force=True)``
  over every community, timed in parts — reading the frames, building the point indexes,
  reading the gazetteer frames, building the gazetteers — plus the peak RSS.
* **In process**: single point and address lookups through the service (µs each): what a
  request costs before HTTP.
* **Incremental change** (same child): a field falls vacant (spatial), one community's
  house numbers change (gazetteer, as an import would), a new plan of one community is
  activated; each time from the commit to the end of ``refresh()``, which rebuilds that
  community only. Everything is put back afterwards.
* **HTTP**: ``geogrid serve --workers N`` (the product command) for N in ``--workers``; the
  start-up (until every worker answers), the PSS of each worker (``/proc/PID/smaps_rollup``:
  shared pages — the memory-mapped point indexes — count once across workers), ``wrk`` on
  door points and on addresses of random households at each concurrency. In the same run
  and with as many workers, a baseline server (:func:`baseline_app`) answers a constant (the
  HTTP floor of FastAPI + uvicorn) and the grid and member of a point with one PostGIS query
  per request (``benchmarks.lookup.BASELINE_SQL``); ratios are taken per round. Then a field
  is made vacant and the time until every answer of the running server shows it (poll
  interval included) is measured.

The load generator (wrk, one thread) shares the 2-core machine with the server and
PostgreSQL: compare ratios, not absolute figures, across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Query
from fastapi.responses import Response

from benchmarks import measure
from benchmarks.lookup import BASELINE_SQL, _answer, _free_port, wrk

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "build_s": 15.0,
    "pss_mb_per_worker": 2048.0,
    "incremental_s": 2.0,
    "point_p99_ms_c16": 15.0,
    "address_p99_ms_c16": 30.0,
}


# --------------------------------------------------------------------------------------------
# Baseline server (not part of the product)
# --------------------------------------------------------------------------------------------


def baseline_app() -> FastAPI:
    """A constant and one PostGIS query per request (``GEOGRID_DATABASE_URL``)."""
    import threading

    from sqlalchemy import Engine, create_engine

    url = os.environ["GEOGRID_DATABASE_URL"]
    app = FastAPI()
    lock = threading.Lock()
    engines: dict[str, Engine] = {}

    def engine() -> Engine:
        with lock:
            if "pg" not in engines:
                engines["pg"] = create_engine(url, pool_size=40, max_overflow=0)
            return engines["pg"]

    @app.get("/bench/constant")
    async def constant() -> Response:
        return Response(b'{"status":"ok","grid":{"code":"441302001001001"}}')

    @app.get("/bench/postgis")
    def postgis(lon: float = Query(), lat: float = Query()) -> Response:
        with engine().connect() as conn:
            row = conn.exec_driver_sql(BASELINE_SQL, {"lon": lon, "lat": lat}).first()
        return _answer(row)

    return app


# --------------------------------------------------------------------------------------------
# Build, in-process lookups and incremental changes (a child process)
# --------------------------------------------------------------------------------------------


def _timed(totals: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - t

    return wrapper


@contextmanager
def _parts(totals: dict[str, float]) -> Iterator[None]:
    """Time the parts of a build (monkeypatched into geogrid.lookup.service)."""
    from geogrid.lookup import service as svc_module
    from geogrid.lookup.address import Gazetteer
    from geogrid.lookup.index import LookupIndex

    saved = (
        svc_module.read_frames,
        svc_module.gazetteer_frames,
        LookupIndex.from_frames,
        Gazetteer.from_frames,
    )
    svc_module.read_frames = _timed(totals, "read_frames", saved[0])  # type: ignore[assignment]
    svc_module.gazetteer_frames = _timed(totals, "gazetteer_frames", saved[1])  # type: ignore[assignment]
    index_from = saved[2].__func__  # type: ignore[attr-defined]
    gaz_from = saved[3].__func__  # type: ignore[attr-defined]
    LookupIndex.from_frames = classmethod(_timed(totals, "point_indexes", index_from))  # type: ignore[assignment,method-assign]
    Gazetteer.from_frames = classmethod(_timed(totals, "gazetteers", gaz_from))  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        svc_module.read_frames, svc_module.gazetteer_frames = saved[0], saved[1]  # type: ignore[assignment]
        LookupIndex.from_frames = saved[2]  # type: ignore[method-assign]
        Gazetteer.from_frames = saved[3]  # type: ignore[method-assign]


def sample_households(url: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` random households of the city: door point and the address a resident writes."""
    from sqlalchemy import text

    from geogrid.db.engine import make_engine

    engine = make_engine(url)
    sql = text(
        "SELECT h.community_id, h.street_name, h.house_number, h.compound, h.building_name, "
        "h.unit, h.room, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat FROM households AS h "
        "WHERE h.id IN (SELECT id FROM households ORDER BY md5(id::text || :seed) LIMIT :n)"
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sql, {"n": n, "seed": str(seed)})]
    engine.dispose()
    random.Random(seed).shuffle(rows)
    for h in rows:
        if h["compound"]:
            h["address"] = (
                f"{h['compound']}{h['building_name'] or ''}{h['unit'] or ''}{h['room'] or ''}室"
            )
        else:
            h["address"] = f"{h['street_name']}{h['house_number']}"
    return rows


def _build_child(url: str, seed: int, out: Any) -> None:
    try:
        out.put(build_and_change(url, seed))
    except BaseException as exc:  # reported to the parent
        out.put({"error": repr(exc)})


def build_and_change(url: str, seed: int) -> dict[str, Any]:
    from sqlalchemy import select, update

    from geogrid.db import models as m
    from geogrid.db import queries as q
    from geogrid.db.engine import make_engine
    from geogrid.lookup import LookupService

    engine = make_engine(url)
    result: dict[str, Any] = {}

    # Point indexes alone, then everything (each from scratch).
    for name, addresses in (("full", True),):
        svc = LookupService(engine, poll_interval=0, addresses=addresses)
        totals: dict[str, float] = {}
        with measure.process_peak() as peak, _parts(totals):
            t = time.perf_counter()
            svc.refresh(force=True)
            seconds = time.perf_counter() - t
        result[f"build_{name}"] = {
            "seconds": round(seconds, 2),
            "parts_s": {k: round(v, 2) for k, v in totals.items()},
            "communities": len(svc.communities),
            "peak_rss_increase_mb": peak.get("peak_mb"),
        }
        print(f"  build ({name}): {seconds:.1f} s {result[f'build_{name}']['parts_s']}", flush=True)
        if not addresses:
            del svc

    # In process: what a request costs before HTTP.
    sample = sample_households(url, 2000, seed)
    for kind in ("point", "address"):
        times = []
        for h in sample:
            kw = (
                {"lon": h["lon"], "lat": h["lat"]} if kind == "point" else {"address": h["address"]}
            )
            t = time.perf_counter()
            with contextlib.suppress(Exception):  # a miss costs too
                svc.lookup(**kw).to_json()
            times.append(time.perf_counter() - t)
        times.sort()
        result[f"in_process_{kind}_us"] = {
            "p50": round(times[len(times) // 2] * 1e6, 1),
            "p99": round(times[int(len(times) * 0.99)] * 1e6, 1),
        }
    found = sum(
        1
        for h in sample[:500]
        if svc.lookup(address=h["address"]).place.community.id == h["community_id"]
    )
    result["address_sample_in_own_community"] = f"{found}/500"

    # Incremental changes: commit → refresh() done, one community rebuilt.
    cid = int(sample[0]["community_id"])
    changes: dict[str, Any] = {}

    def timed_refresh(name: str, change: Callable[[Any], None]) -> None:
        try:
            with engine.begin() as conn:
                change(conn)
            t = time.perf_counter()
            svc.refresh()
        except Exception as exc:  # reported, the rest goes on
            changes[name] = {"error": repr(exc)}
            return
        changes[name] = {
            "seconds": round(time.perf_counter() - t, 3),
            "rebuilt": len(svc._state.rebuilt),
            "rebuilt_codes": list(svc._state.rebuilt[:5]),
        }
        print(f"  change ({name}): {changes[name]}", flush=True)

    with engine.connect() as conn:
        field_id = conn.execute(
            select(m.ResponsibilityField.id)
            .where(m.ResponsibilityField.community_id == cid)
            .order_by(m.ResponsibilityField.id)
        ).scalar()
        plan = q.active_plan(conn, community_id=cid)
    if field_id is not None:
        rf = m.ResponsibilityField
        timed_refresh(
            "field vacant (spatial)",
            lambda c: c.execute(update(rf).where(rf.id == field_id).values(name="bench vacant")),
        )
        timed_refresh(
            "field back", lambda c: c.execute(update(rf).where(rf.id == field_id).values(name=None))
        )
    hh = m.Household
    timed_refresh(
        "house numbers of one community (gazetteer)",
        lambda c: c.execute(
            update(hh).where(hh.community_id == cid).values(house_number=hh.house_number + "")
        ),
    )
    if plan is not None:
        from sqlalchemy import insert

        def activate(conn: Any) -> None:
            new = q.create_plan(conn, community_id=cid, name="bench copy")
            grids = conn.execute(
                select(m.Grid.code, m.Grid.name, m.Grid.lead_member_id, m.Grid.geom).where(
                    m.Grid.plan_id == plan.id
                )
            ).all()
            conn.execute(
                insert(m.Grid),
                [
                    {
                        "plan_id": new,
                        "code": g.code,
                        "name": g.name,
                        "lead_member_id": g.lead_member_id,
                        "geom": g.geom,
                    }
                    for g in grids
                ],
            )
            q.mark_plan_active(conn, community_id=cid, plan_id=new)

        timed_refresh("a new plan activated", activate)
        timed_refresh(
            "the old plan again",
            lambda c: q.mark_plan_active(c, community_id=cid, plan_id=plan.id),
        )
    result["incremental"] = changes
    engine.dispose()
    return result


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def _workers(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except OSError:
                continue
    return found


def _pss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def product_server(url: str, workers: int, log: Path) -> Iterator[dict[str, Any]]:
    """``geogrid serve --workers N``; waits until every worker has started."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env |= {"GEOGRID_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    t = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=tempfile.gettempdir(), stdout=fh, stderr=fh)
    info: dict[str, Any] = {"base": f"http://127.0.0.1:{port}", "pid": proc.pid}
    try:
        while log.read_text().count("Application startup complete") < workers:
            if proc.poll() is not None:
                raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        info["startup_s"] = round(time.perf_counter() - t, 1)
        info["workers"] = _workers(proc.pid) if workers > 1 else [proc.pid]
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def baseline_server(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "GEOGRID_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "uvicorn", "benchmarks.lookup_city:baseline_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/bench/constant", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the baseline server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def change_reaches_answers(url: str, base: str, sample: list[dict[str, Any]]) -> dict[str, Any]:
    """Rename the field holding a sample door point and time until 20 answers in a row (new
    connections: every worker) show the new name; then put it back."""
    from sqlalchemy import update

    from geogrid.db import models as m
    from geogrid.db.engine import make_engine

    for h in sample[:50]:  # the first door point inside a field
        path = f"{base}/v1/lookup?lon={h['lon']:.7f}&lat={h['lat']:.7f}"
        before = httpx.get(path, timeout=10).json()
        if before.get("field"):
            break
    else:
        return {"skipped": "no sample point is in a field"}
    fid = before["field"]["id"]
    engine = make_engine(url)
    rf = m.ResponsibilityField
    with engine.begin() as conn:
        conn.execute(update(rf).where(rf.id == fid).values(name="bench renamed"))
    t = time.perf_counter()
    while True:
        names = [httpx.get(path, timeout=10).json()["field"]["name"] for _ in range(20)]
        if all(n == "bench renamed" for n in names):
            break
        if time.perf_counter() - t > 60:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t
    with engine.begin() as conn:
        conn.execute(update(rf).where(rf.id == fid).values(name=before["field"]["name"]))
    engine.dispose()
    return {"seconds_to_every_answer": round(seconds, 2), "poll_interval_s": 1.0}


def http(
    url: str, workers: int, sample: list[dict[str, Any]], args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    files = {
        "point": [f"/v1/lookup?lon={h['lon']:.7f}&lat={h['lat']:.7f}" for h in sample],
        "address": [f"/v1/lookup?address={urllib.parse.quote(h['address'])}" for h in sample],
        "postgis": [f"/bench/postgis?lon={h['lon']:.7f}&lat={h['lat']:.7f}" for h in sample],
        "constant": ["/bench/constant"] * len(sample),
    }
    paths = {}
    for name, lines in files.items():
        paths[name] = tmp / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n")
    out: dict[str, Any] = {"workers": workers, "runs": []}
    with (
        product_server(url, workers, tmp / f"serve-{workers}.log") as srv,
        baseline_server(url, workers) as bbase,
    ):
        base = srv["base"]
        out["startup_s"] = srv["startup_s"]
        out["pss_mb_idle"] = [_pss_mb(p) for p in srv["workers"]]
        print(f"  workers={workers}: started in {srv['startup_s']} s, PSS {out['pss_mb_idle']}")
        bases = {"point": base, "address": base, "postgis": bbase, "constant": bbase}
        for name in files:  # warm-up
            wrk(bases[name], paths[name], connections=16, seconds=2)
        for r in range(args.rounds):
            for c in args.concurrency:
                for name in files:
                    res = wrk(bases[name], paths[name], connections=c, seconds=args.duration)
                    out["runs"].append({"round": r, "endpoint": name, "concurrency": c, **res})
                    print(
                        f"  round {r + 1} c={c:<3} {name:<9} {res['rps']:8,.0f} req/s  "
                        f"p50 {res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:7.2f} ms"
                        + (f"  errors {res['errors']}" if res["errors"] else ""),
                        flush=True,
                    )
        out["pss_mb_after"] = [_pss_mb(p) for p in srv["workers"]]
        out["change"] = change_reaches_answers(url, base, sample)
        print(f"  change over HTTP: {out['change']}", flush=True)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med: dict[str, Any] = {}
    for name in sorted({r["endpoint"] for r in runs}):
        for c in sorted({r["concurrency"] for r in runs}):
            sel = [r for r in runs if r["endpoint"] == name and r["concurrency"] == c]
            if sel:
                med.setdefault(name, {})[str(c)] = {
                    k: round(statistics.median(r[k] for r in sel), 2)
                    for k in ("rps", "p50_ms", "p99_ms")
                } | {"errors": sum(r["errors"] for r in sel)}
    ratios: dict[str, Any] = {}
    for a, b in (("point", "constant"), ("point", "postgis"), ("address", "constant")):
        for c in sorted({r["concurrency"] for r in runs}):
            per_round = []
            for rnd in sorted({r["round"] for r in runs}):
                ra = [
                    r["rps"]
                    for r in runs
                    if (r["endpoint"], r["concurrency"], r["round"]) == (a, c, rnd)
                ]
                rb = [
                    r["rps"]
                    for r in runs
                    if (r["endpoint"], r["concurrency"], r["round"]) == (b, c, rnd)
                ]
                if ra and rb:
                    per_round.append(ra[0] / rb[0])
            if per_round:
                ratios.setdefault(f"{a}/{b}", {})[str(c)] = round(statistics.median(per_round), 3)
    return {"medians": med, "ratios_rps": ratios}


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="a database holding the city (benchmarks.city)")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--skip-build", action="store_true", help="HTTP only")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    out_path = args.out or ROOT / "benchmarks" / "results" / f"lookup_city-{dt.date.today()}.json"
    report: dict[str, Any] = {
        "benchmark": "lookup_city",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.lookup_city", *(argv or sys.argv[1:])]),
        "machine_before": measure.machine(),
        "loadavg_before": os.getloadavg(),
        "versions": measure.python_versions(),
        "targets": TARGETS,
    }
    if not args.skip_build:
        print("build and incremental changes (child process)", flush=True)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_build_child, args=(args.url, args.seed, queue))
        child.start()
        report["build"] = queue.get()
        child.join()
    sample = sample_households(args.url, 10_000, args.seed + 1)
    report["http"] = []
    with tempfile.TemporaryDirectory(prefix="lookup-city-") as tmp:
        for n in workers:
            print(f"HTTP, {n} worker(s)", flush=True)
            res = http(args.url, n, sample, args, Path(tmp))
            res["summary"] = summarise(res["runs"])
            report["http"].append(res)
            print(json.dumps(res["summary"], indent=1), flush=True)
    report["machine_after"] = measure.machine()
    report["loadavg_after"] = os.getloadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    print(f"written {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
