"""``geogrid serve`` stops on SIGTERM in the middle of a long plan validation (issue 14).

A real server process, a plan within every size limit that takes minutes to validate (2,500
overlapping discs: ~770,000 pairs of grids to intersect), SIGTERM while it runs. Before the
fix uvicorn waited for the request to finish (2 min here); now the validation stops at its
next budget check and answers 503 ``shutting_down``, and the process is gone in about a
second. The 30 s bound is the issue's requirement, not a measurement of speed.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import Engine

from tests.factories import X0, Y0, D
from tests.requests_factories import World, new_key

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _heavy_plan() -> bytes:
    """2,500 discs of 257 vertices over the world's community, each overlapping ~600 others:
    ~28 MB and 640,000 vertices, inside the default limits (32 MB, 5,000 grids, 2,000,000
    vertices), and minutes of pairwise overlay to validate."""
    rng = np.random.default_rng(0)
    n, side = 2500, 2 * D
    centres = shapely.points(rng.uniform(X0, X0 + side, n), rng.uniform(Y0, Y0 + side, n))
    discs = shapely.buffer(centres, side / 10, quad_segs=64)
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": f"441302011099{i:03d}"}, "geometry": g}
            for i, g in enumerate(map(mapping, discs))
        ],
    }
    return json.dumps(body).encode()


@pytest.fixture
def server(
    db_url: str, world: World, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``geogrid serve`` over the world's database, as its own process (webhook worker and
    lookup poller running, as in production); killed at the end if still alive."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "GEOGRID_DATABASE_URL": db_url,
        # The budget must not end the validation: the stop signal has to.
        "GEOGRID_PLAN_MAX_SECONDS": "3600",
    }
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_sigterm_stops_the_server_in_the_middle_of_a_plan_validation(
    server: tuple[subprocess.Popen[bytes], str], engine: Engine, tmp_path: Path
) -> None:
    proc, url = server
    key = new_key(engine, "planner")
    body = _heavy_plan()
    answer: dict[str, Any] = {}
    sent = threading.Event()

    def validate() -> None:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=600)
        try:
            conn.request(
                "POST",
                "/v1/plans/validate",
                body=body,
                headers={"X-API-Key": key, "Content-Type": "application/json"},
            )
            sent.set()
            response = conn.getresponse()
            answer["status"], answer["body"] = response.status, response.read()
        except OSError as exc:  # the connection dropped: recorded, asserted below
            answer["error"] = exc
        finally:
            sent.set()
            conn.close()

    client = threading.Thread(target=validate, daemon=True)
    client.start()
    assert sent.wait(120), "the plan was not uploaded"
    # The server has the whole body: its validation (parse, then the pairwise overlay) runs.
    time.sleep(3)
    assert proc.poll() is None and client.is_alive(), answer  # still validating
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("geogrid serve was still running 30 s after SIGTERM")
    took = time.monotonic() - signalled
    client.join(30)
    log = (tmp_path / "serve.log").read_text()
    print(f"geogrid serve exited {took:.2f} s after SIGTERM (status {proc.returncode})")
    # uvicorn re-raises the signal once it has shut down: a death by SIGTERM, not a crash.
    assert proc.returncode == -signal.SIGTERM, log
    # The validation itself was stopped, and said so: it did not run to its end.
    assert answer.get("status") == 503, (answer, log)
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "shutting_down" and "validating the plan" in error["message"]
    assert "Application shutdown complete" in log
