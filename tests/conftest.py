"""Fixtures: every database test runs on both backends.

* SpatiaLite: a fresh file per test, copied from a migrated template file.
* PostGIS: a fresh database per test, ``CREATE DATABASE … TEMPLATE`` of a migrated template,
  on the server named by ``GEOGRID_TEST_POSTGRES_URL`` (``scripts/test.sh`` starts a
  throwaway cluster and sets it).

With ``GEOGRID_REQUIRE_ALL=1`` (set by ``scripts/test.sh``, hence in CI) a missing PostGIS
server is an error, never a skip.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from geogrid.db import migrate
from geogrid.db.engine import make_engine
from geogrid.demo.generate import DemoData, generate_demo
from tests.requests_factories import World, build_world, make_app

pytest_plugins = ["tests.browser_support", "tests.web_support"]

# Starlette's TestClient calls itself "testserver": the apps under test answer to it (the
# service checks Host against GEOGRID_ALLOWED_HOSTS; tests of that check set their own list).
os.environ.setdefault("GEOGRID_ALLOWED_HOSTS", '["localhost", "127.0.0.1", "[::1]", "testserver"]')

BACKENDS = ["spatialite", "postgis"]
REQUIRE_ALL = os.environ.get("GEOGRID_REQUIRE_ALL") == "1"
#: The demo's fixed "today" in tests, so figures do not move with the calendar.
DEMO_TODAY = dt.date(2026, 11, 1)


def _pg_url() -> str:
    url = os.environ.get("GEOGRID_TEST_POSTGRES_URL")
    if not url:
        msg = "GEOGRID_TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh"
        if REQUIRE_ALL:
            pytest.fail(msg)
        pytest.skip(msg)
    return url


def _pg_admin(url: str) -> Engine:
    return make_engine(
        make_url(url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Migrated template databases, made once per session and backend on first use."""
    made: dict[str, str] = {}
    yield made
    if "postgis" in made:
        admin = _pg_admin(_pg_url())
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{made["postgis"]}" WITH (FORCE)'))
        admin.dispose()


def _template(backend: str, made: dict[str, str], tmp: pytest.TempPathFactory) -> str:
    if backend in made:
        return made[backend]
    if backend == "spatialite":
        path = tmp.mktemp("template") / "template.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        made[backend] = str(path)
    else:
        url = _pg_url()
        name = f"geogrid_tpl_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin(url)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = make_engine(make_url(url).set(database=name).render_as_string(False))
        migrate.upgrade(engine)
        engine.dispose()
        made[backend] = name
    return made[backend]


def fresh_database(
    backend: str, made: dict[str, str], tmp: pytest.TempPathFactory
) -> tuple[str, Callable[[], None]]:
    """A URL of a fresh migrated database and a finaliser."""
    template = _template(backend, made, tmp)
    if backend == "spatialite":
        path = tmp.mktemp("db") / "geogrid.sqlite"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}", lambda: None
    url = _pg_url()
    name = f"geogrid_t_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin(url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(False), drop


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, _templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a fresh, migrated, empty database on ``backend``."""
    url, finalise = fresh_database(backend, _templates, tmp_path_factory)
    yield url
    finalise()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_data() -> DemoData:
    """The generated demo community (pure data), once per session."""
    return generate_demo(today=DEMO_TODAY)


@pytest.fixture(scope="session")
def _demo_urls() -> Iterator[dict[str, tuple[str, Callable[[], None]]]]:
    """Demo databases per backend, loaded on first use and dropped at the end."""
    made: dict[str, tuple[str, Callable[[], None]]] = {}
    yield made
    for _url, drop in made.values():
        drop()


@pytest.fixture
def demo_engine(
    backend: str,
    _demo_urls: dict[str, tuple[str, Callable[[], None]]],
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: DemoData,
) -> Iterator[Engine]:
    """An engine on a database holding the demo community. Shared: tests must not write."""
    if backend not in _demo_urls:
        from geogrid.demo.load import load_demo

        url, drop = fresh_database(backend, _templates, tmp_path_factory)
        eng = make_engine(url)
        with eng.begin() as conn:
            load_demo(conn, demo_data)
        eng.dispose()
        _demo_urls[backend] = (url, drop)
    eng = make_engine(_demo_urls[backend][0])
    yield eng
    eng.dispose()


@pytest.fixture
def demo_url(demo_engine: Engine) -> str:
    """URL of the shared demo database of the current backend."""
    return demo_engine.url.render_as_string(hide_password=False)


@pytest.fixture
def artifacts() -> Path:
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def world(engine: Engine) -> World:
    """The requests world (``tests.requests_factories``): one community, four grids, three
    members, two fields, three households. A test module may define its own ``world``."""
    return build_world(engine)


@pytest.fixture
def client(db_url: str, world: World) -> Iterator[TestClient]:
    """The API over the ``world`` database."""
    with TestClient(make_app(db_url)) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs on PostGIS ``postgis`` (``-m "not postgis"`` runs the
    SpatiaLite half alone, e.g. on a laptop without a server)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        if "postgis" in (callspec.params.get("backend"), callspec.params.get("demo_api")):
            item.add_marker(pytest.mark.postgis)
