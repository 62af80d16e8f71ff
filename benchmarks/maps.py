"""District-scale maps: page size and load time in headless Chromium.

    python -m benchmarks.maps [--households 200000] [--grids 500] [--requests 20000]
        [--repeats 3] [--out benchmarks/results/maps-YYYY-MM-DD.json]

The issue's budget: a district map (500 grids, 200,000 households, 20,000 requests) loads in
a browser in under 3 s and its HTML is under 5 MB. On the synthetic city of
``benchmarks.synth`` (40 × 30 km near Huizhou, clustered households, Voronoi grids and
responsibility fields) cut to the sizes asked for, this builds with the product's builders:

* the coverage map, public (uncovered households counted per H3 hexagon) and official
  (members' positions clustered, uncovered households per door);
* the hot-spot map of the open requests (H3 resolution 9 and 10; 8 planted clusters),

and measures for each: building the map (frames → ``folium.Map``), rendering the HTML, the
page's size standalone (assets inlined, as ``geogrid map … --out``) and as served (assets
linked, as ``GET /maps/…``), and the time to load it in headless Chromium from a loopback HTTP
server (navigation start → the load event, and → the grid shapes drawn). Medians of
``--repeats`` loads. The frames are made in memory: the database queries that feed the API are
not part of these numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks.measure import machine, python_versions
from benchmarks.synth import CODE_PREFIX, KM_LAT, KM_LON, X0, X1, Y0, Y1, make_city

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
]
OPEN = ("received", "registered", "dispatched", "in_progress", "escalated")


def district(households: int, grids: int, requests: int, seed: int = 20261127) -> dict[str, Any]:
    """Frames of a synthetic district, in the shapes ``geogrid.maps.data`` returns."""
    from geogrid.spatial import assign_points

    city = make_city(households=households, grids=grids, fields=grids * 6, seed=seed)
    rng = np.random.default_rng(seed)
    hx, hy = city.households(households)
    homes = shapely.points(hx, hy)
    grid_frame = gpd.GeoDataFrame(
        {"code": city.grid_codes, "name": [f"第{c[-3:]}网格" for c in city.grid_codes]},
        geometry=city.grids,
        crs="EPSG:4326",
    ).sort_values("code", ignore_index=True)
    keys = grid_frame["code"].to_numpy()
    in_grid = assign_points(homes, grid_frame, key=keys)
    fields = gpd.GeoDataFrame(
        {
            "field_id": np.arange(1, len(city.fields) + 1),
            "name": [f"责任田{i}" for i in range(1, len(city.fields) + 1)],
            "member_id": np.where(
                rng.random(len(city.fields)) < 0.9, np.arange(len(city.fields)), np.nan
            ),
        },
        geometry=city.fields,
        crs="EPSG:4326",
    )
    in_field = assign_points(homes, fields)
    fields["households"] = np.bincount(in_field[in_field >= 0], minlength=len(fields))
    field_grid = assign_points(
        shapely.point_on_surface(np.asarray(city.fields)), grid_frame, key=keys
    )
    fields["grid_code"] = np.where(field_grid >= 0, keys[np.maximum(field_grid, 0)], None)
    fields["member_masked"] = [None if np.isnan(v) else "张*明" for v in fields["member_id"]]

    # Requests: 80 % at random doors, 20 % in 8 clusters of ~150 m; 12 % open (40 % in clusters).
    n_hot = requests // 5
    doors = rng.integers(0, households, requests - n_hot)
    centres = rng.uniform([X0 + 0.05, Y0 + 0.05], [X1 - 0.05, Y1 - 0.05], (8, 2))
    which = rng.integers(0, 8, n_hot)
    spread = rng.normal(0, 0.15, (n_hot, 2)) * np.array([KM_LON, KM_LAT])
    rx = np.concatenate([hx[doors], centres[which, 0] + spread[:, 0]])
    ry = np.concatenate([hy[doors], centres[which, 1] + spread[:, 1]])
    hot = np.r_[np.zeros(requests - n_hot, bool), np.ones(n_hot, bool)]
    is_open = rng.random(requests) < np.where(hot, 0.4, 0.075)
    status = np.where(is_open, rng.choice(list(OPEN), requests), "closed")
    received = pd.Timestamp("2026-11-01", tz="UTC") - pd.to_timedelta(
        rng.integers(0, 365, requests), "D"
    )
    req = pd.DataFrame(
        {
            "lon": rx,
            "lat": ry,
            "category_name": rng.choice(
                ["下水道堵塞", "路灯不亮", "垃圾堆放", "占道经营"], requests
            ),
            "status": status,
            "received_at": received,
            "overdue": is_open & (rng.random(requests) < 0.3),
            "days_open": rng.integers(0, 365, requests),
        }
    )
    r_grid = assign_points(shapely.points(rx, ry), grid_frame, key=keys)
    n = len(grid_frame)
    inside = in_grid >= 0
    grid_frame["households"] = np.bincount(in_grid[inside], minlength=n)
    grid_frame["residents"] = grid_frame["households"] * 3
    grid_frame["members"] = np.bincount(field_grid[field_grid >= 0], minlength=n)
    grid_frame["fields"] = grid_frame["members"]
    grid_frame["fields_vacant"] = 0
    grid_frame["visited"] = (grid_frame["households"] * rng.uniform(0.2, 0.95, n)).astype(int)
    ok = r_grid >= 0
    grid_frame["received"] = np.bincount(r_grid[ok], minlength=n)
    grid_frame["resolved"] = np.bincount(r_grid[ok & ~is_open], minlength=n)
    grid_frame["open_requests"] = np.bincount(r_grid[ok & is_open], minlength=n)
    grid_frame["uncovered"] = np.bincount(in_grid[inside & (in_field < 0)], minlength=n)
    grid_frame["branch"] = "第一党支部"
    grid_frame["lead_member_masked"] = "李*"
    members = pd.DataFrame(
        {
            "name_masked": "王*华",
            "kind": rng.choice(["resident", "duty_post", "new_org"], grids * 10),
            "branch": "第一党支部",
            "lon": hx[rng.integers(0, households, grids * 10)],
            "lat": hy[rng.integers(0, households, grids * 10)],
        }
    )
    uncovered = pd.DataFrame({"lon": hx[in_field < 0], "lat": hy[in_field < 0]})
    boundary = gpd.GeoDataFrame(
        {"code": [CODE_PREFIX], "name": ["惠城区（合成）"]},
        geometry=[shapely.box(X0, Y0, X1, Y1)],
        crs="EPSG:4326",
    )
    return {
        "grids": grid_frame,
        "fields": fields,
        "members": members,
        "uncovered": uncovered,
        "requests": req,
        "households": gpd.GeoSeries(homes, crs="EPSG:4326"),
        "boundary": boundary,
        "open": req[is_open].reset_index(drop=True),
    }


def maps(data: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The maps to measure: name → a function building the ``folium.Map``."""
    from geogrid.hotspots import hotspots
    from geogrid.maps.coverage import coverage_map
    from geogrid.maps.hotspot import hotspot_map

    def coverage(audience: str) -> Callable[[], Any]:
        return lambda: coverage_map(
            data["grids"],
            fields=data["fields"],
            uncovered=data["uncovered"],
            members=data["members"],
            boundary=data["boundary"],
            audience=audience,
            title="惠城区（合成） · 网格覆盖图",
            subtitle=["benchmark"],
        )

    def hot(resolution: int) -> Callable[[], Any]:
        def build() -> Any:
            opened = data["open"]
            result = hotspots(
                gpd.GeoSeries(shapely.points(opened["lon"], opened["lat"]), crs="EPSG:4326"),
                data["households"],
                resolution=resolution,
                area=data["boundary"].geometry.iloc[0],
            )
            return hotspot_map(
                result,
                requests=opened,
                grids=data["grids"][["code", "name", "geometry"]],
                boundary=data["boundary"],
                title="惠城区（合成） · 未结诉求热点图",
            ), result.summary()

        return build

    return {
        "coverage_public": coverage("public"),
        "coverage_official": coverage("official"),
        "hotspots_h3_9": hot(9),
        "hotspots_h3_10": hot(10),
    }


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def load_times(browser: Any, url: str, repeats: int) -> dict[str, Any]:
    """Median load event and time-to-drawn (ms) over ``repeats`` fresh contexts."""
    load, drawn, external, errors = [], [], set(), []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                external.add(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None
            ),
        )
        t0 = time.perf_counter()
        page.goto(url, wait_until="load", timeout=120_000)
        page.wait_for_function(
            "() => window.geogrid && document.querySelectorAll('path.geogrid-grid').length > 0",
            timeout=120_000,
        )
        drawn.append((time.perf_counter() - t0) * 1000)
        nav = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
        load.append(nav["loadEventEnd"] - nav["startTime"])
        context.close()
    return {
        "load_event_ms": round(statistics.median(load)),
        "drawn_ms": round(statistics.median(drawn)),
        "load_event_ms_all": [round(v) for v in load],
        "external_requests": sorted(external),
        "page_errors": errors[:5],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from geogrid.maps.assets import assets_dir, check_assets
    from geogrid.maps.base import render_html

    t0 = time.perf_counter()
    data = district(args.households, args.grids, args.requests)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "sizes": {
            "grids": len(data["grids"]),
            "households": args.households,
            "requests": args.requests,
            "open_requests": len(data["open"]),
            "fields": len(data["fields"]),
            "members": len(data["members"]),
            "uncovered_households": len(data["uncovered"]),
        },
        "synth_seconds": round(time.perf_counter() - t0, 2),
        "machine": machine(),
        "versions": python_versions(),
        "maps": {},
    }
    check_assets()
    executable = os.environ.get("GEOGRID_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory(prefix="geogrid-bench-maps-") as tmp, sync_playwright() as pw:
        site = Path(tmp)
        (site / "assets").symlink_to(assets_dir(), target_is_directory=True)
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        with serve(site) as base:
            for name, build in maps(data).items():
                t = time.perf_counter()
                built = build()
                m, stats = built if isinstance(built, tuple) else (built, None)
                build_s = time.perf_counter() - t
                t = time.perf_counter()
                inline = render_html(m)
                render_s = time.perf_counter() - t
                served = render_html(m, assets="assets/")
                (site / f"{name}.html").write_text(inline, encoding="utf-8")
                (site / f"{name}.served.html").write_text(served, encoding="utf-8")
                entry: dict[str, Any] = {
                    "build_seconds": round(build_s, 2),
                    "render_seconds": round(render_s, 2),
                    "standalone_mb": round(len(inline.encode()) / 1e6, 2),
                    "served_page_mb": round(len(served.encode()) / 1e6, 2),
                    "standalone": load_times(browser, f"{base}/{name}.html", args.repeats),
                    "served": load_times(browser, f"{base}/{name}.served.html", args.repeats),
                }
                if stats is not None:
                    entry["hotspots"] = {
                        k: stats[k] for k in ("status", "features", "requests", "hot", "cold")
                    }
                results["maps"][name] = entry
                e = entry
                print(
                    f"{name}: build {e['build_seconds']} s, render {e['render_seconds']} s, "
                    f"{e['standalone_mb']} MB standalone / {e['served_page_mb']} MB served; "
                    f"load {entry['standalone']['load_event_ms']} ms, drawn "
                    f"{entry['standalone']['drawn_ms']} ms (served: "
                    f"{entry['served']['drawn_ms']} ms)",
                    file=sys.stderr,
                )
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.maps", description=__doc__)
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--grids", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results") / f"maps-{dt.date.today().isoformat()}.json",
    )
    args = parser.parse_args(argv)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
