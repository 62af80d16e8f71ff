"""Golden bodies: every JSON GET route on the demo, recorded once and compared on every run.

A ``response_model`` validates and *filters* what a handler returns, so adding one can silently
change a body (a field dropped, a float re-rendered). This test pins the bodies of every JSON GET
route on the demo community, for several callers (public, official, admin with personal data,
a member), so a refactor that changes one fails here with the path and the first difference.

The clock is fixed (``models.utcnow`` and ``periods.today``), dates are passed explicitly, and
what differs from run to run by design is normalised: key secrets and prefixes, Open311 tokens,
and the times of rows this test writes itself.

Re-record (only when a body is *meant* to change, and say so in the commit):
``GEOGRID_GOLDEN_RECORD=1 bash scripts/test.sh tests/test_golden_bodies.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from geogrid import periods
from geogrid.db import migrate
from geogrid.db import models as m
from geogrid.db.engine import make_engine
from geogrid.demo.generate import DemoData
from geogrid.demo.load import load_demo
from tests.conftest import DEMO_TODAY, fresh_database
from tests.requests_factories import make_app, new_key

GOLDEN = Path(__file__).parent / "golden" / "api_get_bodies.json"
RECORD = os.environ.get("GEOGRID_GOLDEN_RECORD") == "1"
NOW = dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)  # noon in Huizhou on DEMO_TODAY
ROOT = Path(__file__).resolve().parent.parent
DRAFT = ROOT / "boundaries" / "441302011005" / "proposal-seed0.geojson"


def _paths() -> list[tuple[str, str]]:
    """(caller, path template) of every JSON GET to record; ``{name}`` fields are filled from
    what the demo decides (ids, a point, an address, a token), and the template names the body
    in the golden file, so per-run values never reach a name."""
    calls: list[tuple[str, str]] = [
        ("public", "/health"),
        ("public", "/v1/me"),
        ("public", "/v1/communities"),
        ("public", "/v1/communities?district=441302"),
        ("public", "/v1/summary?from=2017-07-01&to=2018-04-18"),
        ("public", "/v1/summary"),
        ("public", "/v1/summary?subdistrict=441302011&from=2017-07-01&to=2018-04-18"),
        ("official", "/v1/summary?from=2017-07-01&to=2018-04-18"),
        ("public", "/v1/lookup?lon={lon}&lat={lat}"),
        ("public", "/v1/lookup?lon={lon}&lat={lat}&crs=gcj02"),
        ("public", "/v1/lookup?address={address}"),
        ("public", "/v1/lookup?address=长湖街"),
        ("public", "/v1/lookup?lon=0&lat=0"),
        ("public", "/v1/lookup?lon=abc&lat=1"),
        ("official", "/v1/me"),
        ("member", "/v1/me"),
        ("public", "/v1/requests?limit=100"),
        ("official", "/v1/requests?limit=100"),
        ("official", "/v1/requests?status=open&from=2017-07-01&to=2018-04-18"),
        ("official", "/v1/requests?overdue=true&limit=20"),
        ("official", "/v1/requests?member_id={member}&limit=20"),
        ("member", "/v1/requests?limit=20"),
        ("admin", "/v1/requests?limit=10&offset=5"),
        ("public", "/v1/requests/actions"),
        ("public", "/v1/requests/{req}"),
        ("official", "/v1/requests/{req}"),
        ("admin", "/v1/requests/{req}?personal=true"),
        ("public", "/v1/kpis?from=2017-07-01&to=2018-04-18"),
        ("official", "/v1/kpis?from=2017-07-01&to=2018-04-18&group_by=grid"),
        ("official", "/v1/kpis?from=2017-07-01&to=2018-04-18&group_by=member"),
        ("official", "/v1/kpis?from=2017-07-01&group_by=category"),
        ("official", "/v1/kpis?from=2017-07-01&to=2018-04-18&district=441302&group_by=community"),
        ("public", "/v1/categories"),
        ("admin", "/v1/categories?include_inactive=true"),
        ("admin", "/v1/departments"),
        ("public", "/v1/members"),
        ("official", "/v1/members"),
        ("official", "/v1/fields?community={code}"),
        ("public", "/v1/fields"),
        ("official", "/v1/visits?limit=50"),
        ("official", "/v1/visits?from=2017-07-01&to=2018-04-18&limit=20&offset=3"),
        ("official", "/v1/visits/coverage?from=2017-07-01&to=2018-04-18"),
        ("official", "/v1/visits/coverage?from=2017-07-01&to=2018-04-18&group_by=member"),
        ("admin", "/v1/admin/keys"),
        ("admin", "/v1/admin/webhooks"),
        ("admin", "/v1/admin/webhooks/deliveries"),
        ("admin", "/v1/admin/personal-data-reads"),
        ("admin", "/v1/admin/audit?action=read"),
        ("public", "/open311/v2/discovery.json"),
        ("public", "/open311/v2/services.json"),
        ("public", "/open311/v2/services/sewer_blocked.json"),
        (
            "public",
            "/open311/v2/requests.json?start_date=2017-07-01T00:00:00Z"
            "&end_date=2017-09-29T00:00:00Z",
        ),
        ("public", "/open311/v2/requests/{req}.json"),
        ("public", "/open311/v2/requests/{filed}.json"),
        ("public", "/open311/v2/tokens/{token}.json"),
        ("official", "/v1/plans"),
        ("planner", "/v1/plans/{draft}/validation"),
        ("official", "/v1/plans/{draft}/metrics"),
        ("official", "/v1/plans/{draft}/metrics?households_per_grid=1000:1500"),
        ("official", "/v1/plans/{draft}/diff?limit=5"),
        ("official", "/v1/plans/review"),
        ("official", "/v1/plans/{draft}/geojson"),
        ("official", "/v1/plans/active/geojson"),
    ]
    return calls


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def demo_api(
    request: pytest.FixtureRequest,
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: DemoData,
) -> Iterator[tuple[str, TestClient, dict[str, str], dict[str, Any]]]:
    """A private demo database (this test writes: keys, a draft plan, an Open311 request),
    the API over it with a fixed clock, the callers' headers and the ids the paths need."""
    backend = str(request.param)
    url, finalise = fresh_database(backend, _templates, tmp_path_factory)
    engine = make_engine(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(m, "utcnow", lambda: NOW)
        mp.setattr(periods, "today", lambda tz=periods.DEFAULT_TZ: DEMO_TODAY)
        with engine.begin() as conn:
            load_demo(conn, demo_data)
            code = conn.execute(select(m.Community.code)).scalar_one()
            member = conn.execute(
                select(m.Request.member_id)
                .where(m.Request.member_id.is_not(None))
                .order_by(m.Request.id)
                .limit(1)
            ).scalar_one()
            req = conn.execute(select(m.Request.id).order_by(m.Request.id).limit(1)).scalar_one()
            point = conn.execute(
                select(m.Household.geom.ST_X(), m.Household.geom.ST_Y())
                .order_by(m.Household.id)
                .limit(1)
            ).one()
            street, number = conn.execute(
                select(m.Household.street_name, m.Household.house_number)
                .where(m.Household.house_number.is_not(None))
                .order_by(m.Household.id)
                .limit(1)
            ).one()
        keys = {
            "official": new_key(engine, "official", name="golden official"),
            "planner": new_key(engine, "planner", name="golden planner"),
            "admin": new_key(engine, "admin", name="golden admin", personal_data=True),
            "member": new_key(engine, "member", name="golden member", member_id=member),
        }
        headers = {role: {"X-API-Key": key} for role, key in keys.items()}
        headers["public"] = {}
        with TestClient(make_app(url)) as client:
            draft = client.post(
                "/v1/plans?name=golden",
                content=DRAFT.read_bytes(),
                headers={**headers["planner"], "Content-Type": "application/json"},
            )
            assert draft.status_code == 201, draft.text
            filed = client.post(
                "/open311/v2/requests.json",
                data={
                    "service_code": "sewer_blocked",
                    "lat": str(point[1]),
                    "long": str(point[0]),
                    "description": "井盖旁污水外溢",
                    "api_key": keys["official"],
                },
                headers=headers["official"],
            )
            assert filed.status_code in (200, 201), filed.text
            ids = {
                "code": code,
                "member": member,
                "req": req,
                "lon": round(point[0], 6),
                "lat": round(point[1], 6),
                "address": f"{street}{number}",
                "draft": draft.json()["plan_id"],
                "token": filed.json()[0]["token"],
                "filed": filed.json()[0]["service_request_id"],
            }
            yield backend, client, headers, ids
    engine.dispose()
    finalise()


_SECRETISH = re.compile(r"^(gg_[A-Za-z0-9_-]+|[0-9a-f]{32,})$")
#: "key 9747afda golden admin (admin)": the prefix is random.
_KEY_LABEL = re.compile(r"\bkey [0-9a-f]{8}\b")


def _normalise(value: Any, keys: dict[str, str], backend: str) -> Any:
    """Per-run values as stand-ins: key secrets and prefixes, tokens, the backend's name (one
    golden file holds both backends: they must answer alike)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("prefix", "key_prefix", "token") and isinstance(v, str):
                out[k] = "<per-run>"
            elif k == "backend" and v == backend:
                out[k] = "<backend>"
            elif k == "schema_revision" and v == migrate.head_revision():
                out[k] = "<head>"  # a new migration changes no body
            else:
                out[k] = _normalise(v, keys, backend)
        return out
    if isinstance(value, list):
        return [_normalise(v, keys, backend) for v in value]
    if isinstance(value, str):
        for role, key in keys.items():
            if key and (value == key or value == key[:12]):
                return f"<key:{role}>"
        if _SECRETISH.match(value):
            return "<per-run>"
        return _KEY_LABEL.sub("key <prefix>", value)
    return value


def _record(
    backend: str, client: TestClient, headers: dict[str, dict[str, str]], ids: dict[str, Any]
) -> Any:
    secrets = {role: h.get("X-API-Key", "") for role, h in headers.items()}
    out: dict[str, Any] = {}
    for caller, template in _paths():
        path = template.format(**ids)
        r = client.get(path, headers=headers[caller])
        body: Any
        try:
            body = r.json()
        except ValueError:
            pytest.fail(f"{caller} GET {path}: not JSON ({r.headers.get('content-type')})")
        body = _normalise(body, secrets, backend)
        out[f"{caller} {template}"] = {"status": r.status_code, "body": body}
    return out


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{where or '/'}: {a!r:.200} != {b!r:.200}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{where}/{k}: only in {'golden' if k in a else 'now'}"
            if (d := _first_difference(a[k], b[k], f"{where}/{k}")) is not None:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (d := _first_difference(x, y, f"{where}[{i}]")) is not None:
                return d
        return None
    return None if a == b else f"{where or '/'}: {a!r:.200} != {b!r:.200}"


def test_json_get_bodies_are_unchanged(
    demo_api: tuple[str, TestClient, dict[str, dict[str, str]], dict[str, Any]],
) -> None:
    backend, client, headers, ids = demo_api
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(m, "utcnow", lambda: NOW)
        mp.setattr(periods, "today", lambda tz=periods.DEFAULT_TZ: DEMO_TODAY)
        now = _record(backend, client, headers, ids)
    if RECORD and backend == "spatialite":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(
            json.dumps(now, ensure_ascii=False, sort_keys=True, indent=1) + "\n", "utf-8"
        )
    assert GOLDEN.exists(), "no golden bodies: record them (see the module's docstring)"
    golden: dict[str, Any] = json.loads(GOLDEN.read_text("utf-8"))
    problems = []
    for name in sorted(set(golden) | set(now)):
        if name not in now or name not in golden:
            problems.append(f"{name}: {'not requested now' if name not in now else 'new path'}")
            continue
        if (d := _first_difference(golden[name], now[name])) is not None:
            problems.append(f"{name}: {d}")
    assert not problems, f"{backend}: bodies changed:\n" + "\n".join(problems)


def test_golden_covers_every_json_get_route(
    demo_api: tuple[str, TestClient, dict[str, dict[str, str]], dict[str, Any]],
) -> None:
    """A new JSON GET route must be added to the golden paths."""
    from tests.test_access_matrix import _routes

    _, client, _, ids = demo_api
    not_json = {"/maps/coverage", "/maps/hotspots", "/maps/assets/{path:path}", "/maps/plan"}
    not_json |= {"/login", "/logout", "/", "/v1/media/{media_id}", "/openapi.json"}
    not_json |= {"/docs", "/redoc"}
    not_json |= {"/docs/oauth2-redirect"}
    # Only routes of the OpenAPI document: the web workbench's pages (HTML) are not in it.
    documented = set(client.app.openapi()["paths"])
    wanted = {
        p
        for method, p in _routes(client.app)
        if method == "GET" and re.sub(r":[^}]*\}", "}", p) in documented
    } - not_json
    recorded = [template.format(**ids).split("?")[0] for _, template in _paths()]
    missing = []
    for p in sorted(wanted):
        t = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p))
        if not any(re.fullmatch(t, r) for r in recorded):
            missing.append(p)
    assert wanted and not missing, f"JSON GET routes without a golden body: {missing}"
