"""Faults survived, on real servers (issue 14):

* PostgreSQL stopped under a running API server (a cluster of the test's own, scripts/pg.sh
  ``pause``/``resume``): lookups go on from memory, writes answer 503 ``database_unavailable``
  with ``Retry-After`` and write nothing, and service comes back by itself;
* a SQLite file held by another writer: writes wait ``GEOGRID_DATABASE_BUSY_TIMEOUT_SECONDS``,
  then the same 503; they work again once the lock is released;
* webhook deliveries queued before a restart are sent by the next app's worker (the outbox).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import make_url

from api import create_app
from geogrid.access import create_key
from geogrid.catalogue import ensure_default_catalogue
from geogrid.db import migrate
from geogrid.db import models as m
from geogrid.db.engine import make_engine
from geogrid.requests import webhooks as w
from geogrid.settings import DatabaseSettings, RequestsSettings, Settings
from tests.factories import X0, Y0
from tests.lookup_factories import LookupCommunity, make_lookup_community
from tests.requests_factories import Receiver, World, live_server, make_app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PG_SH = ROOT / "scripts" / "pg.sh"
#: 长湖街5号, a village house in field F1 of grid 003 (tests/lookup_factories.py).
HOUSE = (X0 + 0.003, Y0 + 0.0052)
ADDRESS = "长湖街5号"
#: Hold the write lock of the SQLite file argv[1] until stdin is closed.
HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def _world(engine: Engine) -> tuple[LookupCommunity, str]:
    """The lookup community (addresses, fields), the request catalogue and a public key."""
    with engine.begin() as conn:
        community = make_lookup_community(conn)
        ensure_default_catalogue(conn)
        key = create_key(conn, role="public").key
    return community, key


def _file(client: Any, key: str) -> Any:
    body = {"category": "sewer_blocked", "lon": HOUSE[0], "lat": HOUSE[1]}
    return client.post("/v1/requests", json=body, headers={"X-API-Key": key})


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        requests = conn.execute(select(func.count()).select_from(m.Request)).scalar_one()
        events = conn.execute(select(func.count()).select_from(m.RequestEvent)).scalar_one()
    return int(requests), int(events)


def _unavailable(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["error"]["code"] == "database_unavailable"


def _until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


# --- PostgreSQL goes away ----------------------------------------------------------------------


def _pg(*args: str) -> str:
    return subprocess.run(
        ["bash", str(PG_SH), *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


@pytest.fixture
def own_cluster() -> Iterator[tuple[str, str]]:
    """A PostgreSQL + PostGIS cluster of this test's own (not the shared test server, which
    other tests use): ``(url, dir)``. Deleted afterwards."""
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in _pg("start").splitlines()
        if line.startswith("export ")
    )
    try:
        yield env["GEOGRID_TEST_POSTGRES_URL"], env["GEOGRID_PG_DIR"]
    finally:
        _pg("stop", env["GEOGRID_PG_DIR"])


def test_postgres_stopped_under_a_running_server(
    own_cluster: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, directory = own_cluster
    engine = make_engine(url)
    migrate.upgrade(engine)
    community, key = _world(engine)
    caplog.set_level(logging.INFO, logger="geogrid")
    app = make_app(url)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        point = {"lon": HOUSE[0], "lat": HOUSE[1]}
        before = client.get("/v1/lookup", params=point).json()
        assert before["member"]["display_name"] == "欧*娜" and before["member_rule"] == "field"
        by_address = client.get("/v1/lookup", params={"address": ADDRESS}).json()
        assert _file(client, key).status_code == 201
        counts = _counts(engine)

        _pg("pause", directory)
        # The poller fails (logged once) and keeps its index; lookups answer from memory.
        assert _until(lambda: app.state.lookup.last_error is not None)
        assert client.get("/v1/lookup", params=point).json() == before
        assert client.get("/v1/lookup", params={"address": ADDRESS}).json() == by_address
        # Writes: 503 with Retry-After, fast (the server refuses connections).
        started = time.monotonic()
        _unavailable(_file(client, key))
        assert time.monotonic() - started < 5
        _unavailable(client.post("/v1/requests/1/register", json={"version": 1},
                                 headers={"X-API-Key": key}))  # fmt: skip
        form = {"api_key": key, "service_code": "sewer_blocked",
                "long": str(HOUSE[0]), "lat": str(HOUSE[1])}  # fmt: skip
        r = client.post("/open311/v2/requests.json", data=form)  # Open311's own error list
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert r.json()[0]["code"] == 503
        assert app.state.lookup.poll_interval > 0 and app.state.lookup._poller.running

        _pg("resume", directory)
        # Back by itself: stale pooled connections are replaced (pool_pre_ping) …
        assert _file(client, key).status_code == 201
        assert _counts(engine) == (counts[0] + 1, counts[1] + 1)  # nothing of the 503s
        # … and the poller picks up a change: F1 vacant, the grid lead answers.
        with engine.begin() as conn:
            conn.execute(
                update(m.ResponsibilityField)
                .where(m.ResponsibilityField.id == community.fields["F1"])
                .values(member_id=None)
            )
        assert _until(
            lambda: client.get("/v1/lookup", params=point).json()["member_rule"] == "grid_lead"
        )
        assert _until(lambda: app.state.lookup.last_error is None)
    engine.dispose()
    logged = [r.getMessage() for r in caplog.records]
    assert any("lookup index refresh failed" in x for x in logged)
    assert any("lookup index refresh works again" in x for x in logged)


# --- a SQLite file locked by another writer ------------------------------------------------------


@pytest.mark.parametrize("backend", ["spatialite"])
def test_sqlite_locked_by_another_writer(db_url: str, engine: Engine) -> None:
    _, key = _world(engine)
    settings = Settings(
        database=DatabaseSettings(database_url=db_url, database_busy_timeout_seconds=1),
        requests=RequestsSettings(webhook_poll_seconds=0),
    )
    path = make_url(db_url).database
    assert path
    with TestClient(create_app(settings)) as client:
        point = {"lon": HOUSE[0], "lat": HOUSE[1]}
        answer = client.get("/v1/lookup", params=point).json()
        # Another process (the CLI importing, say) holds the write lock. A process: SQLite's
        # locks are POSIX locks, which do not part two library copies in one process.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            started = time.monotonic()
            _unavailable(_file(client, key))
            waited = time.monotonic() - started
            assert 0.9 <= waited < 4, waited  # the busy timeout, then refused
            assert client.get("/v1/lookup", params=point).json() == answer  # from memory
        finally:
            holder.communicate("", timeout=30)  # closes its stdin: it rolls back and ends
        assert holder.returncode == 0
        assert _counts(engine) == (0, 0)
        assert _file(client, key).status_code == 201
    assert _counts(engine)[0] == 1


# --- the webhook outbox across a restart -------------------------------------------------------


def test_deliveries_queued_before_a_restart_are_sent_after_it(
    db_url: str, engine: Engine, world: World
) -> None:
    receiver = Receiver([503])  # down for the first attempt
    try:
        with engine.begin() as conn:
            w.create_webhook(
                conn,
                url=receiver.url,
                secret="s3cret-s3cret-s3cret",
                settings=RequestsSettings(webhook_allow_private=True),
            )
        with engine.begin() as conn:
            official = {"X-API-Key": create_key(conn, role="official").key}
        # The first app: no worker; its after-commit attempt fails, a retry is due in 0.2 s.
        with TestClient(make_app(db_url, webhook_backoff_seconds=0.2)) as client:
            rid = _file(client, official["X-API-Key"]).json()["id"]
            client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=official)
            r = client.post(f"/v1/requests/{rid}/dispatch", json={"version": 2}, headers=official)
            assert r.status_code == 200, r.text
        with engine.connect() as conn:
            (delivery,) = conn.execute(select(m.table(m.WebhookDelivery))).all()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        time.sleep(0.3)
        # The next app on the same database: its worker sends what the outbox holds.
        with TestClient(make_app(db_url, webhook_poll_seconds=0.1)):

            def sent() -> bool:
                with engine.connect() as conn:
                    status = conn.execute(select(m.WebhookDelivery.status)).scalar_one()
                return bool(status == "delivered")

            assert _until(sent)
        assert len(receiver.calls) == 2
        ids = {c["headers"]["X-Geogrid-Delivery"] for c in receiver.calls}
        assert ids == {str(delivery.id)}  # the same delivery: receivers de-duplicate on it
        assert json.loads(receiver.calls[1]["body"])["request"]["id"] == rid
    finally:
        receiver.close()
