"""The flood as a benchmark (issue 14): the security review's abusive requests against the real
server, while a probe watches ``/health`` and a sampler watches the server's memory.

    python -m benchmarks.abuse [--duration 10] [--clients 8] [--only crs_single,login]
        [--out benchmarks/results/abuse-DATE.json]
    python -m benchmarks.abuse --show benchmarks/results/abuse-DATE.json   # the table again

One command, one JSON file with the machine (and its load average), versions, every phase's
figures and the aims:

* **The server** is the production path: ``geogrid serve`` as a subprocess (uvicorn, one
  worker, httptools + uvloop, access log on), the settings' own defaults except a fresh
  SpatiaLite file loaded with ``geogrid db init`` + ``geogrid demo``,
  ``GEOGRID_ALLOWED_HOSTS='["127.0.0.1"]'`` and ``GEOGRID_WEBHOOK_POLL_SECONDS=0``. It runs in a
  temporary folder with every other ``GEOGRID_`` variable removed, so neither the caller's
  environment nor a ``.env`` file changes it. Keys come from ``geogrid keys create --json``.
* **A phase** runs one abusive payload from ``--clients`` threads (one ``httpx`` connection
  each, or a raw socket for the streamed body) as fast as they can for ``--duration`` seconds
  (a request under way then runs to its answer or its 30 s timeout), while a **probe** — a
  separate process, so that the abusers' GIL does not slow it — asks ``GET /health`` every
  20 ms (the next tick at once when one was late; 5 s timeout) until the last abusive answer,
  and a **sampler** thread reads ``/proc/PID/smaps_rollup`` of the server and its children
  every 100 ms (RSS and PSS). The server's CPU time comes from ``/proc/PID/stat``. Then the
  benchmark waits until the server is idle again (work whose client gave up goes on in its
  threads) and reports how long that took; memory is reported from the phase's start until
  then, and the server's log of the phase is scanned for ``ERROR``, ``Traceback`` and 5xx
  lines (the first tracebacks are kept).
* **The plan bodies** are built once, in memory; the steps of the plan route up to its size
  checks are also timed in this process on each (``plan_route_steps``), to show where a
  request's time and memory go.
* **The idle baseline** is the probe alone, same duration, before the first payload; each
  payload's ``/health`` p50 and p99 are reported as ratios to it. An idle phase after the last
  payload shows whether the server came back.

Aims (issue 14): every abusive request refused cheaply (4xx, never 5xx or a timeout), the
probe's ``/health`` p99 under 100 ms with no failure, and the server's memory under 1 GB
throughout. A payload that is not refused as expected is reported as such, never skipped.

The machine has two shared cores: server, abusers and probe compete for them (and with other
work: the load average is recorded before and after each phase). Compare within a run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import numpy as np

from benchmarks import measure

ROOT = Path(__file__).resolve().parent.parent

#: Aims of issue 14.
AIMS = {"health_p99_ms": 100.0, "server_memory_mb": 1024.0}
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 5.0
SAMPLE_INTERVAL_S = 0.1
ABUSE_TIMEOUT_S = 30.0
#: The server's own environment, besides the database: issue 14's settings.
SERVER_ENV = {
    "GEOGRID_ALLOWED_HOSTS": '["127.0.0.1"]',
    "GEOGRID_WEBHOOK_POLL_SECONDS": "0",
}
#: Default caps the payloads are sized against (geogrid.settings; checked at start-up).
PLAN_MAX_BYTES = 32_000_000
PLAN_MAX_FEATURES = 5000
PLAN_MAX_VERTICES = 2_000_000
MAX_BODY_BYTES = 16_000_000

BIG = "9223372036854775808"  # 2^63
#: The old 500s (issue 14, finding 7; tests/test_hardening.py OUT_OF_BOUNDS, and the maps of
#: empty selections): path, expected status, whether it needs the admin key and method.
OLD_500S: list[tuple[str, int]] = [
    (f"/v1/requests/{BIG}", 422),
    (f"/v1/media/{BIG}", 422),
    (f"/v1/requests?member_id={BIG}", 422),
    (f"/v1/requests?offset={BIG}", 422),
    (f"/open311/v2/requests/{BIG}.json", 400),
    ("/open311/v2/requests.json?service_request_id=99999999999999999999", 400),
    ("/open311/v2/requests/%C2%B2.json", 400),
    ("/open311/v2/requests.json?service_request_id=%C2%B2", 400),
    ("/v1/summary?from=0001-01-01", 422),
    ("/v1/summary?to=9999-12-31", 422),
    ("/v1/kpis?to=9999-12-31", 422),
    ("/v1/requests?to=9999-12-31", 422),
    ("/maps/coverage?to=9999-12-31", 422),
    ("/open311/v2/requests.json?end_date=0001-01-05T00:00:00Z", 400),
    ("/open311/v2/requests.json?start_date=9999-12-31T00:00:00Z", 400),
    ("/v1/summary?to=0", 422),
    ("/v1/requests/0", 422),
    ("/v1/requests/2147483648", 422),
    ("/v1/visits?offset=-1", 422),
    ("/maps/hotspots?category=sewer_blocked&from=2000-01-01&to=2000-01-01", 200),
    ("/maps/hotspots?from=2000-01-01&to=2000-01-01", 200),
    ("PATCH /v1/admin/webhooks/10000000000000000000", 422),
]
WEBHOOK_TARGETS = [
    "http://127.0.0.1:9/x",
    "http://0x7f000001/",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/",
]
#: A description with control characters (finding 8); what the XML must say instead.
CONTROL_DESCRIPTION = "井盖\x0b松动\x00，\x1f请处理\t谢谢"
CLEANED_DESCRIPTION = "井盖松动，请处理\t谢谢"
#: The HTTP allow-list's EPSG codes besides 4326, 4490, 3857 (geogrid.settings.HttpSettings).
EPSG_CYCLE = [*range(4491, 4555), *range(32601, 32661), *range(32701, 32761)]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    pid: int
    log: Path
    db_url: str
    keys: dict[str, str] = field(default_factory=dict)
    start_s: float = 0.0
    clients: int = 8


def _geogrid_command() -> list[str]:
    script = Path(sys.executable).with_name("geogrid")
    if script.exists():
        return [str(script)]
    found = shutil.which("geogrid")
    if found is None:
        raise SystemExit("the geogrid console script is not installed (pip install -e .)")
    return [found]


def _server_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env |= {"GEOGRID_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), **SERVER_ENV}
    return env


def _cli(args: list[str], db_url: str, cwd: Path) -> str:
    r = subprocess.run(
        [*_geogrid_command(), *args],
        env=_server_env(db_url),
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"geogrid {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def prepare_database(tmp: Path) -> str:
    """A fresh SpatiaLite file with the demo community, made by the CLI; its URL."""
    url = f"sqlite:///{tmp / 'demo.sqlite'}"
    _cli(["db", "init"], url, tmp)
    _cli(["demo"], url, tmp)
    return url


def create_key(db_url: str, role: str, tmp: Path) -> str:
    out = _cli(["keys", "create", "--role", role, "--json"], db_url, tmp)
    return str(json.loads(out)["key"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(db_url: str, tmp: Path) -> Iterator[tuple[Server, dict[str, Any]]]:
    """``geogrid serve`` on a free port until the block ends (SIGTERM); the server and a dict
    that receives how it stopped."""
    port = _free_port()
    log = tmp / "serve.log"
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_geogrid_command(), "serve", "--port", str(port)],
            env=_server_env(db_url),
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    stopped: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"the server did not start (exit code {proc.poll()}):\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield Server(base, proc.pid, log, db_url, start_s=time.perf_counter() - t0), stopped
    finally:
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            stopped["exit_code"] = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            stopped["exit_code"] = proc.wait()
            stopped["killed"] = True
        stopped["stop_s"] = round(time.perf_counter() - t1, 2)


# --------------------------------------------------------------------------------------------
# Measuring: the /health probe (a process), the memory sampler (a thread), CPU, the log
# --------------------------------------------------------------------------------------------


def _probe(base: str, ready: Any, go: Any, stop: Any, out: Any) -> None:
    """``GET /health`` every 20 ms from ``go`` until ``stop``; latencies and failures."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    with httpx.Client(base_url=base, timeout=PROBE_TIMEOUT_S) as client:
        with contextlib.suppress(httpx.HTTPError):
            client.get("/health")  # the connection, opened before the clock starts
        ready.set()
        go.wait()
        tick = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if tick > now:
                time.sleep(tick - now)
            t0 = time.perf_counter()
            try:
                r = client.get("/health")
                if r.status_code != 200:
                    failures[str(r.status_code)] += 1
            except httpx.TimeoutException:
                failures["timeout"] += 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            latencies.append((time.perf_counter() - t0) * 1000)
            # The next tick; at once if this one was late (no burst to catch up).
            tick = max(tick + PROBE_INTERVAL_S, time.monotonic())
    out.put({"latencies_ms": latencies, "failures": dict(failures)})


def _read_kb(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in keys:
                    found[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/PID/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


class MemorySampler:
    """RSS and PSS (``smaps_rollup``) of a process and its children, every 100 ms."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, int, int]] = []  # (t, rss kB, pss kB, processes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def sample(self) -> tuple[float, int, int, int]:
        rss = pss = 0
        pids = process_tree(self.pid)
        for p in pids:
            kb = _read_kb(f"/proc/{p}/smaps_rollup", ("Rss", "Pss"))
            rss += kb.get("Rss", 0)
            pss += kb.get("Pss", 0)
        s = (time.monotonic(), rss, pss, len(pids))
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        sel = [s for s in self.samples if t0 <= s[0] <= t1] or [self.sample()]
        return {
            "peak_rss_mb": round(max(s[1] for s in sel) / 1024, 1),
            "peak_pss_mb": round(max(s[2] for s in sel) / 1024, 1),
            "start_rss_mb": round(sel[0][1] / 1024, 1),
            "end_rss_mb": round(sel[-1][1] / 1024, 1),
            "samples": len(sel),
            "processes": max(s[3] for s in sel),
        }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``, its live children and the children it waited for."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _log_counts(log: Path, start: int) -> tuple[dict[str, Any], int]:
    """``ERROR``, ``Traceback`` and 5xx access lines of the server's log from byte ``start``,
    with the first tracebacks' last lines; the log's end."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read()
    lines = text.decode("utf-8", "replace").splitlines()
    excerpts: list[str] = []
    for k, line in enumerate(lines):
        if line.startswith("Traceback") and len(excerpts) < 3:
            end = next(
                (j for j in range(k + 1, len(lines)) if lines[j] and not lines[j][0].isspace()),
                len(lines) - 1,
            )
            excerpts.append("\n".join([lines[k - 1], *lines[max(k, end - 12) : end + 1]]))
    return {
        "lines": len(lines),
        "error_lines": sum(1 for x in lines if x.startswith("ERROR")),
        "tracebacks": sum(1 for x in lines if x.startswith("Traceback")),
        "status_5xx": len(re.findall(rb'" 5\d\d ', text)),
        "excerpts": excerpts,
    }, start + len(text)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    a = np.asarray(values)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p90": round(float(np.percentile(a, 90)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
    }


# --------------------------------------------------------------------------------------------
# The payloads
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One abusive request: its status (or the exception's name) and whether it is what the
    payload expects."""

    status: str
    ok: bool
    seconds: float = 0.0
    note: str | None = None
    value: float | None = None


One = Callable[[int, int, httpx.Client], Outcome]


@dataclass
class Payload:
    key: str
    title: str
    what: str
    expected: str
    make: Callable[[Server], One]
    summarise: Callable[[list[Outcome]], dict[str, Any]] | None = None
    prepared: dict[str, Any] = field(default_factory=dict)


def _error_code(r: httpx.Response) -> tuple[str | None, str | None]:
    try:
        err = r.json()["error"]
        return err.get("code"), err.get("field")
    except (ValueError, KeyError, TypeError):
        return None, None


def _tmerc(i: int, n: int) -> str:
    """A PROJ string distinct for each client ``i`` and request ``n``."""
    return f"+proj=tmerc +lon_0={100 + i}.{n:07d} +ellps=GRS80 +units=m"


def crs_single(_server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        r = c.get("/v1/lookup", params={"lon": "500000", "lat": "2560000", "crs": _tmerc(i, n)})
        code, _ = _error_code(r)
        return Outcome(str(r.status_code), r.status_code == 422 and code == "invalid_crs")

    return one


def crs_batch(_server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        items = [
            {"lon": 500000, "lat": 2560000, "crs": _tmerc(i, n * 1000 + k)} for k in range(1000)
        ]
        r = c.post("/v1/lookup/batch", json={"items": items})
        _, fld = _error_code(r)
        return Outcome(str(r.status_code), r.status_code == 422 and fld == "items")

    return one


def epsg_cycle(server: Server) -> One:
    share = -(-len(EPSG_CYCLE) // server.clients)

    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        code = EPSG_CYCLE[(i * share + n) % len(EPSG_CYCLE)]
        r = c.get("/v1/lookup", params={"lon": "500000", "lat": "2560000", "crs": f"EPSG:{code}"})
        # The client's first pass over its share of the codes: first uses (parsed then).
        first = 1.0 if n < share else 0.0
        # 422 invalid_input: the point is outside the zone's domain (the zones with the zone
        # number in their false easting, EPSG:4495–4501 and 4513–4533).
        ok = r.status_code in (200, 404) or (
            r.status_code == 422 and _error_code(r)[0] == "invalid_input"
        )
        return Outcome(str(r.status_code), ok, note=None if ok else f"EPSG:{code}", value=first)

    return one


def _epsg_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    first = [o.seconds * 1000 for o in outcomes if o.value]
    later = [o.seconds * 1000 for o in outcomes if not o.value]
    return {
        "codes": len(EPSG_CYCLE),
        "first_pass_ms": percentiles(first) | {"n": len(first)},
        "later_ms": percentiles(later) | {"n": len(later)},
    }


def _ring(cx: float, cy: float, r: float, n: int, decimals: int) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    xs = np.round(cx + r * np.cos(t), decimals).tolist()
    ys = np.round(cy + r * 0.9 * np.sin(t), decimals).tolist()
    ring = [[x, y] for x, y in zip(xs, ys, strict=True)]
    return [*ring, ring[0]]


def plan_body(features: int, vertices: int, *, decimals: int = 6) -> bytes:
    """A FeatureCollection of ``features`` grids of ``vertices`` vertices each (closing point
    included), rings around Jinyuan's neighbourhood, compact JSON."""
    cols = int(np.ceil(np.sqrt(features)))
    step = 0.2 / cols
    feats = []
    for k in range(features):
        cx = 114.3 + (k % cols) * step
        cy = 23.05 + (k // cols) * step
        feats.append(
            {
                "type": "Feature",
                "properties": {"code": f"441302011005{k:03d}", "name": f"网格{k}"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [_ring(cx, cy, step * 0.45, vertices - 1, decimals)],
                },
            }
        )
    fc = {"type": "FeatureCollection", "features": feats}
    return json.dumps(fc, ensure_ascii=False, separators=(",", ":")).encode()


def _fit(features: int, vertices: int, decimals: int, limit: int) -> bytes:
    """The largest body of ``features`` grids under ``limit`` bytes, from ``vertices`` down."""
    body = plan_body(features, vertices, decimals=decimals)
    while len(body) >= limit:
        vertices = int(vertices * limit / len(body) * 0.995)
        body = plan_body(features, vertices, decimals=decimals)
    return body


def _plan_info(body: bytes) -> dict[str, Any]:
    t0 = time.perf_counter()
    parsed = json.loads(body)
    loads_s = time.perf_counter() - t0
    feats = parsed["features"]
    return {
        "bytes": len(body),
        "features": len(feats),
        "vertices": sum(len(f["geometry"]["coordinates"][0]) for f in feats),
        # The plan routes parse the body with json.loads (in the thread pool) before they count
        # anything: this is that parse, timed in this process.
        "json_loads_s": round(loads_s, 3),
    }


def plan_route_steps(body: bytes) -> dict[str, Any]:
    """The steps of ``POST /v1/plans/validate`` up to its size checks, timed one by one in
    this process on ``body`` (api/routes/plans.py: ``_parse_plan`` parses the body in the
    thread pool and counts grids and vertices on the JSON; only a plan within the limits is
    written to a file and read as a plan file), with the peak memory they add (``VmHWM``)."""
    from geogrid.errors import TooComplex
    from geogrid.planning import store
    from geogrid.planning.limits import check_geojson_size, check_plan_size

    steps: dict[str, Any] = {}
    with measure.process_peak() as mem, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        doc = json.loads(body)
        steps["json_loads_in_the_thread_pool_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        try:
            check_geojson_size(doc, max_features=PLAN_MAX_FEATURES,
                               max_vertices=PLAN_MAX_VERTICES)  # fmt: skip
        except TooComplex as exc:
            steps["count_on_the_json_s"] = round(time.perf_counter() - t0, 3)
            steps["refused_at"] = f"{exc.field} counted on the JSON ({exc.message})"
        else:
            steps["count_on_the_json_s"] = round(time.perf_counter() - t0, 3)
            path = Path(tmp) / "plan.geojson"
            path.write_bytes(body)
            t0 = time.perf_counter()
            pf = store.read_plan_file(path)
            steps["read_plan_file_s"] = round(time.perf_counter() - t0, 3)
            try:
                check_plan_size(pf.grids, max_features=PLAN_MAX_FEATURES,
                                max_vertices=PLAN_MAX_VERTICES)  # fmt: skip
            except TooComplex as exc:
                steps["refused_at"] = f"vertex count ({exc.message})"
            del pf
        del doc
    steps["peak_mb_added"] = round(mem["peak_mb"], 1) if mem["peak_mb"] is not None else None
    return steps


def _plan_post(c: httpx.Client, key: str, body: bytes, *, chunked: bool) -> httpx.Response:
    headers = {"X-API-Key": key, "Content-Type": "application/geo+json"}
    if not chunked:
        return c.post("/v1/plans/validate", content=body, headers=headers)
    view = memoryview(body)

    def chunks() -> Iterator[bytes]:
        for k in range(0, len(view), 1 << 16):
            yield bytes(view[k : k + (1 << 16)])

    return c.post("/v1/plans/validate", content=chunks(), headers=headers)


def plan_oversize(server: Server, payload: Payload) -> One:
    body: bytes = payload.prepared["body"]

    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        chunked = (i + n) % 2 == 1
        r = _plan_post(c, server.keys["planner"], body, chunked=chunked)
        code, _ = _error_code(r)
        return Outcome(
            str(r.status_code),
            r.status_code == 413 and code == "too_large",
            note="chunked" if chunked else "declared",
        )

    return one


def plan_too_complex(server: Server, payload: Payload, fld: str) -> One:
    body: bytes = payload.prepared["body"]

    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        r = _plan_post(c, server.keys["planner"], body, chunked=False)
        code, got = _error_code(r)
        return Outcome(str(r.status_code), r.status_code == 422 and code == "too_complex" and
                       got == fld, note=None if got == fld else f"field {got}")  # fmt: skip

    return one


def _by_note(outcomes: list[Outcome]) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {}
    for o in outcomes:
        by.setdefault(o.note or "-", Counter())[o.status] += 1
    return {"statuses_by_mode": {k: dict(v) for k, v in sorted(by.items())}}


def stream_body(server: Server, *, total: int = 200_000_000, chunk: int = 1 << 16) -> Outcome:
    """POST ``total`` bytes to ``/v1/requests`` chunked, without a key, over a raw socket,
    watching for the answer between chunks: the status and how much was sent before it."""
    host, port = server.base.removeprefix("http://").split(":")
    data = b"x" * chunk
    frame = f"{chunk:x}\r\n".encode() + data + b"\r\n"
    head = (
        f"POST /v1/requests HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sent = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + ABUSE_TIMEOUT_S
    with socket.create_connection((host, int(port)), timeout=ABUSE_TIMEOUT_S) as s:
        s.sendall(head)
        answer = b""
        try:
            while sent < total:
                readable, writable, _ = select.select([s], [s], [], 1.0)
                if readable:
                    break
                if time.monotonic() > deadline:
                    return Outcome("timeout", False, time.perf_counter() - t0, value=sent)
                if writable:
                    s.sendall(frame)
                    sent += chunk
            else:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed its side: its answer may still be readable
        with contextlib.suppress(OSError):
            while b"\r\n" not in answer:
                got = s.recv(4096)
                if not got:
                    break
                answer += got
    seconds = time.perf_counter() - t0
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    if not m:
        return Outcome("no answer", False, seconds, value=sent)
    status = m.group(1).decode()
    return Outcome(status, status == "413" and sent < total, seconds, value=sent)


def streamed_request(server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        return stream_body(server)

    return one


def _stream_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    sent = [o.value / 1e6 for o in outcomes if o.value is not None]
    return {
        "body_offered_mb": 200,
        "cap_mb": MAX_BODY_BYTES / 1e6,
        "mb_sent_before_answer": percentiles(sent),
        "note": "bytes the client had sent when the answer arrived: what the server read, plus "
        "what sat in the two sockets' buffers",
    }


def login_flood(_server: Server) -> One:
    tokens: dict[int, str] = {}

    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        if i not in tokens:
            page = c.get("/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            if not found:
                return Outcome(f"{page.status_code} no token", False)
            tokens[i] = found.group(1)
        form = {"api_key": f"gg_00000000_wrong{i}x{n}", "csrf_token": tokens[i]}
        r = c.post("/login", data=form, follow_redirects=False)
        ok = r.status_code == 401 or (r.status_code == 429 and "retry-after" in r.headers)
        return Outcome(str(r.status_code), ok, value=time.monotonic())

    return one


def _login_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    timed = sorted((o.value or 0.0, o.status) for o in outcomes)
    first_429 = next((t for t, s in timed if s == "429"), None)
    late_401 = sum(1 for t, s in timed if s == "401" and first_429 is not None and t > first_429)
    return {
        "limit_per_minute": 10,
        "wrong_keys_taken_401": sum(1 for _, s in timed if s == "401"),
        "401_after_first_429": late_401,
    }


def webhook_targets(server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        url = WEBHOOK_TARGETS[(i + n) % len(WEBHOOK_TARGETS)]
        r = c.post(
            "/v1/admin/webhooks", json={"url": url}, headers={"X-API-Key": server.keys["admin"]}
        )
        return Outcome(str(r.status_code), r.status_code == 422, note=url)

    return one


def _webhook_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {}
    for o in outcomes:
        by.setdefault(o.note or "-", Counter())[o.status] += 1
    return {
        "statuses_by_target": {k: dict(v) for k, v in by.items()},
        "webhooks_registered": sum(v.get("201", 0) for v in by.values()),
    }


def old_500s(server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        path, expected = OLD_500S[(i * 3 + n) % len(OLD_500S)]
        if path.startswith("PATCH "):
            r = c.patch(
                path.removeprefix("PATCH "),
                json={"active": False},
                headers={"X-API-Key": server.keys["admin"]},
            )
        else:
            r = c.get(path)
        return Outcome(str(r.status_code), r.status_code == expected, note=path)

    return one


def _old_500s_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {}
    slow: dict[str, list[float]] = {}
    for o in outcomes:
        by.setdefault(o.note or "-", Counter())[o.status] += 1
        slow.setdefault(o.note or "-", []).append(o.seconds * 1000)
    return {
        "paths": len(OLD_500S),
        "by_path": {
            k: {"statuses": dict(v), "p50_ms": round(statistics.median(slow[k]), 1)}
            for k, v in by.items()
        },
    }


def open311_xml(server: Server) -> One:
    def one(i: int, n: int, c: httpx.Client) -> Outcome:
        r = c.get("/open311/v2/requests.xml")
        if r.status_code != 200:
            return Outcome(str(r.status_code), False)
        try:
            root = ET.fromstring(r.content)
        except ET.ParseError:
            return Outcome("200 unparseable", False)
        texts = {e.text for e in root.iter("description")}
        if CLEANED_DESCRIPTION not in texts:
            return Outcome("200 without the filed request", False)
        return Outcome("200", True, value=len(r.content))

    return one


def file_control_request(server: Server, db_path: Path) -> dict[str, Any]:
    """File (public key) the request whose description holds control characters, at a
    household's address of the demo (its ``address_id``, read with the standard ``sqlite3``:
    this process loads no SpatiaLite — with pyproj loaded after it, a process aborts at
    exit, "double free or corruption")."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        (address_id,) = db.execute(
            "SELECT address_id FROM households WHERE address_id IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
    body = {"category": "sewer_blocked", "address_id": address_id,
            "description": CONTROL_DESCRIPTION}  # fmt: skip
    r = httpx.post(
        f"{server.base}/v1/requests",
        json=body,
        headers={"X-API-Key": server.keys["public"]},
        timeout=30,
    )
    if r.status_code != 201:
        raise SystemExit(f"filing the request with control characters failed: {r.text}")
    return {"status": r.status_code, "id": r.json()["id"], "address_id": address_id}


def payloads() -> list[Payload]:
    p4a = Payload(
        "plan_54mb",
        "4a. 54 MB plan, planner key",
        "POST /v1/plans/validate, a 54 MB FeatureCollection (many grids, many vertices), "
        "every other request with Content-Length, the others chunked",
        "413 too_large",
        lambda s: plan_oversize(s, p4a),
        _by_note,
    )
    p4b = Payload(
        "plan_features",
        "4b. plan under the cap, too many grids",
        "POST /v1/plans/validate, a FeatureCollection just under GEOGRID_PLAN_MAX_BYTES with "
        "more grids than GEOGRID_PLAN_MAX_FEATURES",
        "422 too_complex (features)",
        lambda s: plan_too_complex(s, p4b, "features"),
    )
    p4c = Payload(
        "plan_vertices",
        "4c. plan under the cap, too many vertices",
        "POST /v1/plans/validate, a FeatureCollection just under GEOGRID_PLAN_MAX_BYTES, "
        "grids within the limit, more vertices than GEOGRID_PLAN_MAX_VERTICES",
        "422 too_complex (vertices)",
        lambda s: plan_too_complex(s, p4c, "vertices"),
    )
    return [
        Payload(
            "crs_single",
            "1. PROJ strings, single lookup",
            "GET /v1/lookup?lon=500000&lat=2560000&crs=<a distinct +proj=tmerc string per "
            "request>, no key",
            "422 invalid_crs",
            crs_single,
        ),
        Payload(
            "crs_batch",
            "2. PROJ strings, batch",
            "POST /v1/lookup/batch, 1,000 items each with a distinct +proj=tmerc crs, no key",
            "422 (items: at most 8 distinct crs)",
            crs_batch,
        ),
        Payload(
            "epsg_cycle",
            "3. allowed EPSG codes in turn",
            f"GET /v1/lookup?lon=500000&lat=2560000&crs=EPSG:NNNN cycling through the "
            f"{len(EPSG_CYCLE)} allowed Gauss-Krüger and UTM codes; each client starts at its "
            "own share, so first uses (parsed off the loop) come first",
            "200 or 404 (422 invalid_input where the point is outside the zone's domain)",
            epsg_cycle,
            _epsg_summary,
        ),
        p4a,
        p4b,
        p4c,
        Payload(
            "stream_200mb",
            "5. 200 MB streamed body",
            "POST /v1/requests, 200 MB chunked (raw socket, 64 kB chunks, watching for the "
            "answer between chunks), no key",
            "413 too_large well before 200 MB",
            streamed_request,
            _stream_summary,
        ),
        Payload(
            "login",
            "6. sign-in flood",
            "GET /login once per client (CSRF cookie and token), then POST /login with wrong "
            "keys as fast as possible",
            "401, then 429 with Retry-After",
            login_flood,
            _login_summary,
        ),
        Payload(
            "webhooks",
            "7. webhooks to internal targets",
            "POST /v1/admin/webhooks, admin key, url in turn: " + ", ".join(WEBHOOK_TARGETS),
            "422",
            webhook_targets,
            _webhook_summary,
        ),
        Payload(
            "old_500s",
            "8. the old 500s",
            f"the {len(OLD_500S)} requests that answered 500 before issue 14 (ids 2^63, dates "
            "0001 and 9999, %C2%B2, hot spots of empty selections, a webhook id of 10^19), "
            "in a loop",
            "each its 4xx (or 200 for the maps)",
            old_500s,
            _old_500s_summary,
        ),
        Payload(
            "open311_xml",
            "9. Open311 XML after control characters",
            "GET /open311/v2/requests.xml after a request was filed (public key) with "
            "\\x0b, \\x00 and \\x1f in its description; each answer parsed",
            "200, well-formed XML holding the cleaned description",
            open311_xml,
        ),
    ]


def prepare_plans(selected: list[Payload]) -> None:
    """Build the plan bodies once, in memory."""
    for p in selected:
        if p.key == "plan_54mb":
            body = plan_body(3000, 785)  # 54 MB at 6 decimals
        elif p.key == "plan_features":
            body = _fit(PLAN_MAX_FEATURES + 1000, 230, 6, int(PLAN_MAX_BYTES * 0.99))
        elif p.key == "plan_vertices":
            # 4,000 grids (allowed) of ~520 vertices at 2 decimals: > 2M vertices in < 32 MB.
            body = _fit(4000, 530, 2, int(PLAN_MAX_BYTES * 0.99))
        else:
            continue
        info = _plan_info(body)
        if p.key != "plan_54mb":  # refused before it is read: nothing to time
            info["route_steps_in_process"] = plan_route_steps(body)
        p.prepared |= {"body": body, "info": info}
        if p.key == "plan_54mb":
            assert info["bytes"] > PLAN_MAX_BYTES, info
        else:
            assert info["bytes"] < PLAN_MAX_BYTES, info
        if p.key == "plan_features":
            assert info["features"] > PLAN_MAX_FEATURES, info
        if p.key == "plan_vertices":
            assert info["features"] <= PLAN_MAX_FEATURES, info
            assert info["vertices"] > PLAN_MAX_VERTICES, info


# --------------------------------------------------------------------------------------------
# A phase
# --------------------------------------------------------------------------------------------


def _classify(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException | socket.timeout | TimeoutError):
        return "timeout"
    return type(exc).__name__


def _abuse(server: Server, one: One, clients: int, seconds: float, t_start: float) -> list[Outcome]:
    results: list[list[Outcome]] = [[] for _ in range(clients)]

    def run(i: int) -> None:
        n = 0
        with httpx.Client(base_url=server.base, timeout=ABUSE_TIMEOUT_S) as c:
            while time.monotonic() < t_start + seconds:
                t0 = time.perf_counter()
                try:
                    out = one(i, n, c)
                except (httpx.HTTPError, OSError) as exc:
                    out = Outcome(_classify(exc), False)
                if not out.seconds:
                    out.seconds = time.perf_counter() - t0
                results[i].append(out)
                n += 1

    threads = [threading.Thread(target=run, args=(i,), name=f"abuser-{i}") for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [o for r in results for o in r]


def run_phase(
    server: Server,
    sampler: MemorySampler,
    payload: Payload | None,
    *,
    seconds: float,
    clients: int,
    log_at: int,
    idle: dict[str, Any] | None,
) -> tuple[dict[str, Any], int]:
    """One phase: ``payload`` from ``clients`` threads (or nothing: idle) for ``seconds``
    while the probe and the sampler watch. Its figures, and the log's new end."""
    one = payload.make(server) if payload else None
    ctx = mp.get_context("spawn")
    ready, go, stop, queue = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    probe = ctx.Process(target=_probe, args=(server.base, ready, go, stop, queue))
    probe.start()
    if not ready.wait(60):
        raise SystemExit("the /health probe did not start")
    load_before = os.getloadavg()
    cpu0 = cpu_seconds(server.pid)
    t0 = time.monotonic()
    go.set()
    # The probe watches until the last abusive request has its answer (or timed out).
    outcomes = _abuse(server, one, clients, seconds, t0) if one else []
    if not one:
        time.sleep(seconds)
    stop.set()
    probed = queue.get(timeout=60)
    probe.join()
    t1 = time.monotonic()
    cpu1 = cpu_seconds(server.pid)

    health_lat = probed["latencies_ms"]
    health = percentiles(health_lat)
    failures = sum(probed["failures"].values())
    health |= {
        "count": len(health_lat),
        "failures": failures,
        "failure_kinds": probed["failures"],
        "over_100ms": sum(1 for x in health_lat if x > AIMS["health_p99_ms"]),
    }
    if idle:
        for q in ("p50", "p99"):
            base, val = idle["health_ms"][q], health[q]
            health[f"{q}_x_idle"] = round(val / base, 2) if base and val is not None else None
    wall = t1 - t0
    # Work the clients gave up on (timeouts) goes on in the server's threads: wait for it to
    # end, so that the next phase starts on an idle server, and say how long it took. Memory
    # is reported from the phase's start until then.
    busy_after = settle(server.pid, limit=600)
    cpu2 = cpu_seconds(server.pid)
    log, log_at = _log_counts(server.log, log_at)
    sampler.sample()
    memory = sampler.window(t0, time.monotonic())
    memory["peak_rss_mb_during_abuse"] = sampler.window(t0, t1)["peak_rss_mb"]
    phase: dict[str, Any] = {
        "key": payload.key if payload else "idle",
        "wall_s": round(wall, 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "server_cpu_share": round((cpu1 - cpu0) / wall, 2),
        "server_busy_after_s": busy_after,
        "server_cpu_after_s": round(cpu2 - cpu1, 2),
        "health_ms": health,
        "memory": memory,
        "server_log": log,
    }
    if payload:
        statuses = Counter(o.status for o in outcomes)
        unexpected = Counter(
            o.status + (f" ({o.note})" if o.note else "") for o in outcomes if not o.ok
        )
        phase |= {
            "title": payload.title,
            "what": payload.what,
            "expected": payload.expected,
            "sent": len(outcomes),
            "per_s": round(len(outcomes) / wall, 1),
            "statuses": dict(sorted(statuses.items())),
            "unexpected": dict(unexpected.most_common()),
            "abuse_ms": percentiles([o.seconds * 1000 for o in outcomes]),
        }
        if payload.summarise:
            phase["details"] = payload.summarise(outcomes)
        if payload.prepared.get("info"):
            phase.setdefault("details", {})["body"] = payload.prepared["info"]
        phase["verdict"] = {
            "refused_as_expected": not unexpected and bool(outcomes),
            "no_5xx_or_timeout": not any(
                s.startswith("5") or s == "timeout" or not s[:1].isdigit() for s in statuses
            ),
        }
    phase.setdefault("verdict", {})
    phase["verdict"] |= {
        "health_p99_aim_met": health["p99"] is not None
        and health["p99"] < AIMS["health_p99_ms"]
        and failures == 0,
        "memory_aim_met": memory["peak_rss_mb"] < AIMS["server_memory_mb"],
    }
    return phase, log_at


def settle(pid: int, *, quiet: float = 0.05, limit: float = 60.0) -> float:
    """Wait until the server is idle (under ``quiet`` CPU seconds in a second: the app's
    warm-up thread has imported esda and libpysal); the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        c0 = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - c0 < quiet:
            return round(time.monotonic() - t0 - 1, 1)
    return round(time.monotonic() - t0, 1)


def _print_phase(phase: dict[str, Any]) -> None:
    h, m = phase["health_ms"], phase["memory"]
    head = f"  {phase['key']:<14}"
    if "sent" in phase:
        st = " ".join(f"{k}×{v}" for k, v in phase["statuses"].items())
        head += f" sent {phase['sent']:>6,} ({st})"
    print(
        f"{head}\n  {'':<14} /health p50 {h['p50']} p99 {h['p99']} max {h['max']} ms, "
        f"failures {h['failures']}; peak RSS {m['peak_rss_mb']} MB; "
        f"server CPU {phase['server_cpu_s']} s, busy {phase['server_busy_after_s']} s after; "
        f"load {phase['load_before'][0]}",
        flush=True,
    )
    if phase.get("unexpected"):
        print(f"  {'':<14} NOT AS EXPECTED: {phase['unexpected']}", flush=True)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def health_cost(repeats: int = 30) -> dict[str, Any]:
    """What ``GET /health`` does besides the query, timed in this process: it asks Alembic for
    the newest migration (``geogrid.db.migrate.head_revision``), read from the migration
    scripts once per process since the first abuse run (14 ms a call before)."""
    from geogrid.db import migrate

    migrate.head_revision()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        migrate.head_revision()
        times.append((time.perf_counter() - t0) * 1000)
    return {"head_revision_ms": percentiles(times) | {"n": repeats}}


def versions() -> dict[str, str]:
    import fastapi
    import pyproj
    import starlette
    import uvicorn

    return measure.python_versions() | {
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.abuse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--duration", type=float, default=10, help="seconds per phase")
    p.add_argument("--clients", type=int, default=8, help="concurrent abusive clients")
    p.add_argument("--only", help="comma list of payload keys (default: all)")
    p.add_argument("--out", type=Path)
    p.add_argument("--server-log", type=Path, help="keep the server's log there")
    p.add_argument("--show", type=Path, help="print the table of a results file and stop")
    args = p.parse_args(argv)
    if args.show:
        print(table(json.loads(args.show.read_text())))
        return 0
    _check_defaults()
    selected = payloads()
    if args.only:
        keys = {k.strip() for k in args.only.split(",") if k.strip()}
        unknown = keys - {x.key for x in selected}
        if unknown:
            raise SystemExit(f"unknown payloads: {', '.join(sorted(unknown))}")
        selected = [x for x in selected if x.key in keys]
    today = dt.date.today().isoformat()
    out = args.out or ROOT / "benchmarks" / "results" / f"abuse-{today}.json"
    load_start = os.getloadavg()

    print("building the plan bodies …", flush=True)
    prepare_plans(selected)
    health_work = health_cost()
    tmp = Path(tempfile.mkdtemp(prefix="bench_abuse_"))
    phases: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        db_url = prepare_database(tmp)
        api_keys = {r: create_key(db_url, r, tmp) for r in ("planner", "admin", "public")}
        setup["database_s"] = round(time.perf_counter() - t0, 1)
        print(f"demo database ready in {setup['database_s']} s ({tmp})", flush=True)
        with serve(db_url, tmp) as (server, stopped):
            server.keys, server.clients = api_keys, args.clients
            setup["server_start_s"] = round(server.start_s, 1)
            with MemorySampler(server.pid) as sampler:
                setup["settle_s"] = settle(server.pid)
                if any(x.key == "open311_xml" for x in selected):
                    # Filed before the phases, so no later phase waits on a webhook delivery.
                    setup["control_request"] = file_control_request(server, tmp / "demo.sqlite")
                log_at = 0
                print("idle baseline …", flush=True)
                idle, log_at = run_phase(server, sampler, None, seconds=args.duration,
                                         clients=0, log_at=log_at, idle=None)  # fmt: skip
                _print_phase(idle)
                phases.append(idle)
                for payload in selected:
                    print(f"{payload.title} …", flush=True)
                    time.sleep(1)
                    phase, log_at = run_phase(server, sampler, payload, seconds=args.duration,
                                              clients=args.clients, log_at=log_at,
                                              idle=idle)  # fmt: skip
                    _print_phase(phase)
                    phases.append(phase)
                time.sleep(1)
                print("idle after …", flush=True)
                after, log_at = run_phase(server, sampler, None, seconds=args.duration,
                                          clients=0, log_at=log_at, idle=idle)  # fmt: skip
                after["key"] = "idle_after"
                _print_phase(after)
                phases.append(after)
                peak = max(s[1] for s in sampler.samples) / 1024
        setup["server_stop"] = stopped
        if args.server_log:
            shutil.copyfile(tmp / "serve.log", args.server_log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    abusive = [x for x in phases if "sent" in x]
    aims = {
        "health_p99_ms": {
            "aim": f"< {AIMS['health_p99_ms']:.0f} ms and no failure, every phase",
            "worst": max(x["health_ms"]["p99"] or 0 for x in phases),
            "met": all(x["verdict"]["health_p99_aim_met"] for x in phases),
            "missed_in": [x["key"] for x in phases if not x["verdict"]["health_p99_aim_met"]],
        },
        "server_memory_mb": {
            "aim": f"< {AIMS['server_memory_mb']:.0f} MB RSS throughout",
            "peak": round(peak, 1),
            "met": peak < AIMS["server_memory_mb"],
        },
        "refused_cheaply": {
            "aim": "every abusive request answered as expected: 4xx (200 for the maps and the "
            "Open311 list), never 5xx or a timeout",
            "met": all(x["verdict"]["refused_as_expected"] for x in abusive),
            "not_refused": [x["key"] for x in abusive if not x["verdict"]["refused_as_expected"]],
        },
    }
    report = {
        "benchmark": "abuse",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.abuse " + " ".join(argv or sys.argv[1:]),
        "machine": measure.machine()
        | {
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": versions(),
        "config": {
            "server": "geogrid serve (uvicorn, 1 worker, httptools + uvloop, access log on), "
            "loopback; settings' defaults except the environment below",
            "server_env": {"GEOGRID_DATABASE_URL": "sqlite:///<tmp>/demo.sqlite", **SERVER_ENV},
            "database": "SpatiaLite, geogrid db init + geogrid demo (seed 20170701, today "
            f"{today}): 9 grids, 12,500 households, ~2,270 requests",
            "duration_s": args.duration,
            "clients": args.clients,
            "probe": f"GET /health every {PROBE_INTERVAL_S * 1000:.0f} ms from its own "
            f"process, one keep-alive connection, {PROBE_TIMEOUT_S:.0f} s timeout",
            "memory": f"RSS and PSS of the server and its children from /proc/PID/smaps_rollup "
            f"every {SAMPLE_INTERVAL_S * 1000:.0f} ms",
            "abuse_timeout_s": ABUSE_TIMEOUT_S,
        },
        "setup": setup,
        "health_cost_in_process": health_work,
        "aims": aims,
        "phases": phases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(report))
    print()
    for name, aim in aims.items():
        print(f"aim {name}: {aim['aim']} — " + ("met" if aim["met"] else "MISSED"))
    print(f"\nwritten {out}")
    return 0


def _check_defaults() -> None:
    """The payloads are sized against the settings' defaults: say so if those moved."""
    from geogrid.settings import HttpSettings, PlanSettings

    plans, http = PlanSettings.defaults(), HttpSettings.defaults()
    now = (plans.plan_max_bytes, plans.plan_max_features, plans.plan_max_vertices)
    if now != (PLAN_MAX_BYTES, PLAN_MAX_FEATURES, PLAN_MAX_VERTICES):
        raise SystemExit(f"plan limits changed ({now}): resize the plan payloads")
    if http.max_body_bytes != MAX_BODY_BYTES:
        raise SystemExit(f"GEOGRID_MAX_BODY_BYTES changed ({http.max_body_bytes})")


def _statuses(phase: dict[str, Any]) -> str:
    return ", ".join(f"{k} × {v:,}" for k, v in phase["statuses"].items())


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| phase | sent | statuses | as expected | /health p50 / p99 / max ms | × idle p50 / p99 "
        "| /health failures | server RSS start → peak MB | server CPU s (+ busy after) |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for ph in report["phases"]:
        h, m = ph["health_ms"], ph["memory"]
        ratio = (
            f"{h['p50_x_idle']} / {h['p99_x_idle']}" if h.get("p50_x_idle") is not None else "1 / 1"
        )
        name = ph.get("title", ph["key"].replace("_", " "))
        if "sent" in ph:
            expected = "yes" if ph["verdict"]["refused_as_expected"] else "**no**"
            sent, statuses = f"{ph['sent']:,}", _statuses(ph)
        else:
            expected, sent, statuses = "", "", ""
        cpu = f"{ph['server_cpu_s']}"
        if ph["server_busy_after_s"]:
            cpu += f" (+ {ph['server_cpu_after_s']} in {ph['server_busy_after_s']} s)"
        lines.append(
            f"| {name} | {sent} | {statuses} | {expected} | {h['p50']} / {h['p99']} / "
            f"{h['max']} | {ratio} | {h['failures']} | {m['start_rss_mb']:.0f} → "
            f"{m['peak_rss_mb']:.0f} | {cpu} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
