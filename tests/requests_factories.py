"""A small community for the requests workflow: four grids, members, fields, a vacancy.

Grids (tests.factories): 001 NW, 002 NE, 003 SW, 004 SE, each 0.01° square.

* member A (张小明) holds field F1, the west half of grid 001;
* member B (李四) leads grid 001, member C (王五) leads grid 002;
* field F2 covers grid 002 and is vacant: requests there go to C, the grid lead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shapely.geometry import MultiPolygon, box
from sqlalchemy import Connection, Engine, update

from geogrid.assign import assign_community
from geogrid.catalogue import ensure_default_catalogue
from geogrid.db import models as m
from geogrid.db import queries as q
from tests.factories import X0, Y0, D, add_households, make_community

#: Points (lon, lat) and what they should be assigned to.
IN_FIELD = (X0 + D / 4, Y0 + 1.5 * D)  # grid 001, field F1 → member A (rule field)
IN_GRID_NO_FIELD = (X0 + 0.75 * D, Y0 + 1.5 * D)  # grid 001, no field → B (grid_lead)
IN_VACANT_FIELD = (X0 + 1.5 * D, Y0 + 1.5 * D)  # grid 002, vacant F2 → C (grid_lead)
JUST_OUTSIDE = (X0 + 2 * D + 0.001, Y0 + 0.5 * D)  # ~100 m east: community level, flagged
FAR_AWAY = (115.5, 24.5)


@dataclass
class World:
    community_id: int
    plan_id: int
    grids: dict[str, int]
    members: dict[str, int]
    fields: dict[str, int]
    households: list[int]


def make_world(conn: Connection) -> World:
    cid, plan_id, grids = make_community(conn)
    ensure_default_catalogue(conn)
    ids = q.insert_returning_ids(
        conn,
        m.Member,
        [
            {"community_id": cid, "name": name, "phone": phone, "kind": "resident", "active": True}
            for name, phone in (("张小明", "13800000001"), ("李四", None), ("王五", None))
        ],
    )
    members = dict(zip("ABC", ids, strict=True))
    conn.execute(
        update(m.Grid).where(m.Grid.id == grids["441302011099001"]).values(lead_member_id=ids[1])
    )
    conn.execute(
        update(m.Grid).where(m.Grid.id == grids["441302011099002"]).values(lead_member_id=ids[2])
    )
    field_ids = q.insert_returning_ids(
        conn,
        m.ResponsibilityField,
        [
            {
                "community_id": cid,
                "member_id": members["A"],
                "name": "F1",
                "geom": q.geom_value(MultiPolygon([box(X0, Y0 + D, X0 + D / 2, Y0 + 2 * D)])),
            },
            {
                "community_id": cid,
                "member_id": None,
                "name": "F2",
                "geom": q.geom_value(MultiPolygon([box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D)])),
            },
        ],
    )
    households = add_households(conn, cid, [IN_FIELD, IN_GRID_NO_FIELD, IN_VACANT_FIELD])
    assign_community(conn, community_id=cid, plan_id=plan_id)
    return World(
        cid, plan_id, grids, members, dict(zip(["F1", "F2"], field_ids, strict=True)), households
    )


def build_world(engine: Engine) -> World:
    with engine.begin() as conn:
        return make_world(conn)


def set_attributes(engine: Engine, category: str, attributes: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(m.Category).where(m.Category.code == category).values(attributes=attributes)
        )


#: Test apps send webhooks to the local :class:`Receiver` (http, 127.0.0.1).
TEST_REQUESTS_SETTINGS: dict[str, Any] = {"webhook_poll_seconds": 0, "webhook_allow_private": True}


def make_app(
    db_url: str,
    *,
    http: dict[str, Any] | None = None,
    database: dict[str, Any] | None = None,
    **requests_settings: Any,
) -> Any:
    """The app over ``db_url``, with requests settings for tests — no webhook polling, and
    webhooks allowed to the local receiver (``webhook_allow_private``) unless told otherwise —
    and ``http`` and ``database`` settings (``geogrid.settings``) if given."""
    from api import create_app
    from geogrid.settings import DatabaseSettings, HttpSettings, RequestsSettings, Settings

    return create_app(
        Settings(
            database=DatabaseSettings(database_url=db_url, **(database or {})),
            requests=RequestsSettings(**{**TEST_REQUESTS_SETTINGS, **requests_settings}),
            http=HttpSettings(**(http or {})),
        )
    )


def file_request(client: Any, key: str, **body: Any) -> Any:
    """``POST /v1/requests`` with ``key``: a blocked sewer at ``IN_FIELD`` unless ``body``
    says otherwise; the response."""
    payload = {"category": "sewer_blocked", "lon": IN_FIELD[0], "lat": IN_FIELD[1], **body}
    return client.post("/v1/requests", json=payload, headers={"X-API-Key": key})


def csrf_token(client: Any, page: str = "/login") -> str:
    """The CSRF token of the app's form at ``page`` (its cookie is kept by ``client``)."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert found, f"no csrf_token on {page}"
    return found.group(1)


def sign_in(client: Any, key: str, **data: Any) -> Any:
    """Sign in through the form at ``/login`` (CSRF token and all); the answer, unfollowed."""
    form = {"api_key": key, "csrf_token": csrf_token(client), **data}
    return client.post("/login", data=form, follow_redirects=False)


def sign_out(client: Any) -> Any:
    form = {"csrf_token": csrf_token(client, "/logout")}
    return client.post("/logout", data=form, follow_redirects=False)


def new_key(engine: Engine, role: str, **kw: Any) -> str:
    from geogrid.access import create_key

    with engine.begin() as conn:
        return create_key(conn, role=role, **kw).key


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its URL.

    For clients that speak real HTTP (the Open311 client library uses ``requests``)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST, answers from ``statuses`` (with
    ``headers``). ``tls``: a PEM file (key and certificate) to serve https with; the server
    names clients asked for (SNI) are kept in ``server_names``."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        *,
        headers: dict[str, str] | None = None,
        tls: str | None = None,
    ) -> None:
        import http.server
        import ssl
        import threading

        self.calls: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.server_names: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls.append({"headers": dict(self.headers), "body": body})
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls)
            context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cli_app() -> Any:
    """The ``geogrid`` console script's Typer app."""
    from api.cli import app

    return app
