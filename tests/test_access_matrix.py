"""Every route × every role × own and other community, generated from the app's route table.

Two communities: A (the requests world of ``tests.requests_factories``) and B (elsewhere). A
caller is anonymous, or a key of each role scoped to A or to B, or an unscoped official or
admin key. Every case below addresses community A's data; what each caller gets is compared
with who may do it:

* ``ANYONE``: no key needed (public reads; what a key adds is tested elsewhere);
* a set of roles: callers of another role get 401/403; a key of community B gets 403 or 404
  when the route is ``SCOPED`` (it must not touch A), its own answer when ``FILTERED`` (it sees
  only B's rows, tested elsewhere);
* ``UNSCOPED``: only keys limited to no community (the shared catalogue).

Pages and forms of the web workbench take no key: a case marked ``session`` is sent with the
caller's browser session (opened with its key) and no key header; a caller that cannot sign in
(anonymous, a public app's key) must be sent to ``/login?next=…`` (303), and a signed-in one
sent there counts as refused.

A route of the app without a case here fails :func:`test_every_route_has_cases`: a new route
cannot escape the matrix. Denials run before allowed calls, so a write that succeeds does
not change what a refused caller would have met.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, select, update

from api.auth import SESSION_COOKIE
from geogrid.access import create_key, open_session
from geogrid.db import models as m
from geogrid.db import queries as q
from tests.requests_factories import (
    IN_FIELD,
    World,
    build_world,
    csrf_token,
    file_request,
    make_app,
)

A, B = "441302011099", "441302011098"
ROLES = ("public", "member", "department", "official", "planner", "admin")
ANYONE = frozenset({"anonymous", *ROLES})
READERS = frozenset({"official", "planner", "admin"})
EDITORS = frozenset({"official", "admin"})
PLANNERS = frozenset({"planner", "admin"})
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


#: A community far from A and B, as a GeoJSON feature (for the communities import).
NEW_COMMUNITY = {
    "type": "Feature",
    "properties": {"code": "441302011097", "name": "新社区"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[114.0, 22.0], [114.01, 22.0], [114.01, 22.01], [114.0, 22.0]]],
    },
}


@dataclass(frozen=True)
class Caller:
    role: str  # "anonymous" or a role
    community: str | None  # A, B, or None (unscoped)
    #: How the key is limited: to the community itself, or to its subdistrict or district
    #: (each holding only that community: A's and B's lie in different ones).
    via: str = "community"

    @property
    def name(self) -> str:
        if self.role == "anonymous":
            return self.role
        area = "" if self.via == "community" else f"{self.via}:"
        return f"{self.role}@{area}{self.community or '*'}"


CALLERS = (
    Caller("anonymous", None),
    *(Caller(role, c) for role in ROLES for c in (A, B)),
    Caller("official", None),
    Caller("admin", None),
    # Keys of a subdistrict or a district reach its communities, and only those.
    Caller("official", A, "subdistrict"),
    Caller("admin", B, "subdistrict"),
    Caller("planner", A, "district"),
    Caller("department", B, "district"),
)
#: The subdistrict and district codes stored for A and B.
AREAS = {A: ("441302011", "441302"), B: ("441303012", "441303")}


@dataclass
class Ctx:
    """Community A's objects the cases address, and the callers' keys."""

    world: World
    keys: dict[str, str]
    request_id: int
    media_id: int
    token: str
    webhook_id: int
    engine: Engine
    versions: dict[int, int] = field(default_factory=dict)
    #: The token of the app's forms (sign in, sign out), for the test client's cookie.
    csrf: str = ""

    #: Session tokens of the callers signed in to the pages (``Case.session``), by name.
    sessions: dict[str, str | None] = field(default_factory=dict)

    def session_of(self, caller: Caller) -> str | None:
        """A browser session of ``caller``, opened with its key once (None: a caller that
        cannot sign in in a browser, anonymous or a public app's key)."""
        if caller.name not in self.sessions:
            key = self.keys.get(caller.name)
            token = None
            if key is not None and caller.role != "public":
                with self.engine.begin() as conn:
                    token = open_session(conn, key=key)[0]
            self.sessions[caller.name] = token
        return self.sessions[caller.name]

    def throwaway_key(self) -> str:
        with self.engine.begin() as conn:
            return create_key(conn, role="public", community_code=A, name="to revoke").prefix


Call = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # the route's path, as the app declares it
    who: frozenset[str]
    #: "scoped": B's keys are refused (403/404); "filtered": they get their own answer;
    #: "unscoped": only keys limited to no community; None: no community in it.
    scope: str | None
    call: Callable[[Ctx], Call]
    #: Statuses an allowed caller may get besides 2xx/3xx (a write already done by an
    #: earlier allowed caller: 409; the route's own validation of this small world: 422).
    ok: frozenset[int] = frozenset()
    note: str = ""
    #: A page or form of the web workbench: the caller comes with a browser session (opened
    #: with its key), not the key; one without a session is sent to sign in (303).
    session: bool = False


def _get(url: str, **kw: Any) -> Callable[[Ctx], Call]:
    return lambda ctx: ("GET", url.format(ctx=ctx, A=A), dict(kw))


def case(
    method: str,
    path: str,
    who: frozenset[str],
    scope: str | None,
    call: Callable[[Ctx], Call] | None = None,
    ok: tuple[int, ...] = (),
    note: str = "",
    session: bool = False,
) -> Case:
    if call is None:
        call = _get(path) if method == "GET" else (lambda ctx: (method, path, {}))
    return Case(method, path, who, scope, call, frozenset(ok), note, session)


def _form(path: str, **data: Any) -> Callable[[Ctx], Call]:
    """A form's POST to ``path`` (formatted with ``ctx``), with its CSRF token."""
    return lambda ctx: (
        "POST",
        path.format(ctx=ctx, A=A),
        {
            "data": {
                **{k: v(ctx) if callable(v) else v for k, v in data.items()},
                "csrf_token": ctx.csrf,
            }
        },
    )


def _home_in_field(ctx: Ctx) -> str:
    """The address id of a household in member A's field."""
    with ctx.engine.connect() as conn:
        return str(
            conn.execute(
                select(m.Household.address_id).where(m.Household.id == ctx.world.households[0])
            ).scalar_one()
        )


def _action(ctx: Ctx) -> Call:
    return (
        "POST",
        f"/v1/requests/{ctx.request_id}/register",
        {"json": {"version": 1}},
    )


CASES: list[Case] = [
    # --- public reads ---
    case("GET", "/", ANYONE, None),
    case("GET", "/lang/{code}", ANYONE, None, _get("/lang/en?next=/")),
    case("GET", "/health", ANYONE, None),
    case("GET", "/openapi.json", ANYONE, None),
    case("GET", "/docs", ANYONE, None),
    case("GET", "/docs/oauth2-redirect", ANYONE, None),
    case("GET", "/redoc", ANYONE, None),
    case("GET", "/login", ANYONE, None),
    case(
        "POST",
        "/login",
        ANYONE,
        None,
        lambda ctx: (
            "POST",
            "/login",
            {"data": {"api_key": "gg_00000000_wrong", "csrf_token": ctx.csrf}},
        ),
        ok=(401,),
        note="the sign-in itself: a wrong key is 401 for everyone",
    ),
    case("GET", "/logout", ANYONE, None),
    case("GET", "/lang/{code}", ANYONE, None, _get("/lang/en?next=/")),
    case(
        "POST",
        "/logout",
        ANYONE,
        None,
        lambda ctx: ("POST", "/logout", {"data": {"csrf_token": ctx.csrf}}),
    ),
    case("GET", "/v1/summary", ANYONE, None, _get("/v1/summary?community={A}")),
    case(
        "GET",
        "/v1/lookup",
        ANYONE,
        None,
        _get(f"/v1/lookup?lon={IN_FIELD[0]}&lat={IN_FIELD[1]}"),
    ),
    case(
        "POST",
        "/v1/lookup/batch",
        ANYONE,
        None,
        lambda ctx: (
            "POST",
            "/v1/lookup/batch",
            {"json": {"items": [{"lon": IN_FIELD[0], "lat": IN_FIELD[1]}]}},
        ),
    ),
    case("GET", "/maps/coverage", ANYONE, None, _get("/maps/coverage?community={A}")),
    case("GET", "/maps/hotspots", ANYONE, None, _get("/maps/hotspots?community={A}")),
    case(
        "GET",
        "/maps/assets/{path:path}",
        ANYONE,
        None,
        _get("/maps/assets/leaflet-1.9.4/dist/leaflet.css"),
    ),
    case("GET", "/v1/requests", ANYONE, "filtered"),
    case("GET", "/v1/requests/actions", ANYONE, None),
    case(
        "GET",
        "/v1/requests/{request_id}",
        ANYONE,
        "filtered",
        _get("/v1/requests/{ctx.request_id}"),
    ),
    case("GET", "/v1/media/{media_id}", ANYONE, None, _get("/v1/media/{ctx.media_id}")),
    case("GET", "/v1/categories", ANYONE, None),
    case("GET", "/v1/departments", ANYONE, None),
    case("GET", "/v1/fields", ANYONE, None, _get("/v1/fields?community={A}")),
    case("GET", "/v1/kpis", ANYONE, "scoped", _get("/v1/kpis?community={A}")),
    case("GET", "/open311/v2/discovery.{fmt}", ANYONE, None, _get("/open311/v2/discovery.json")),
    case("GET", "/open311/v2/services.{fmt}", ANYONE, None, _get("/open311/v2/services.json")),
    case(
        "GET",
        "/open311/v2/services/{name}",
        ANYONE,
        None,
        _get("/open311/v2/services/sewer_blocked.json"),
    ),
    case("GET", "/open311/v2/requests.{fmt}", ANYONE, None, _get("/open311/v2/requests.xml")),
    case(
        "GET",
        "/open311/v2/requests/{name}",
        ANYONE,
        None,
        _get("/open311/v2/requests/{ctx.request_id}.json"),
    ),
    case(
        "GET",
        "/open311/v2/tokens/{name}",
        ANYONE,
        None,
        _get("/open311/v2/tokens/{ctx.token}.json"),
    ),
    # --- the residents' pages: public, no key (issue 15) ---
    case("GET", "/report", ANYONE, None),
    case(
        "POST",
        "/report",
        ANYONE,
        None,
        lambda ctx: (
            "POST",
            "/report",
            {
                "data": {
                    "csrf_token": ctx.csrf,
                    "category": "sewer_blocked",
                    "description": "井盖破损",
                    "lon": str(IN_FIELD[0]),
                    "lat": str(IN_FIELD[1]),
                }
            },
        ),
        ok=(429,),
        note="5 an hour per client address: the matrix's later callers meet the limit",
    ),
    case("GET", "/track", ANYONE, None),
    case("GET", "/track/{token}", ANYONE, None, _get("/track/{ctx.token}")),
    case("GET", "/find", ANYONE, None, _get(f"/find?lon={IN_FIELD[0]}&lat={IN_FIELD[1]}")),
    # --- official maps: members' positions ---
    case(
        "GET",
        "/maps/coverage",
        READERS,
        "scoped",
        _get("/maps/coverage?audience=official&community={A}"),
        note="official audience",
    ),
    case(
        "GET",
        "/maps/hotspots",
        READERS,
        "scoped",
        _get("/maps/hotspots?audience=official&community={A}"),
        note="official audience",
    ),
    case(
        "GET",
        "/maps/coverage",
        READERS,
        "scoped",
        _get(f"/maps/coverage?audience=official&subdistrict={AREAS[A][0]}"),
        note="official audience, A's subdistrict",
    ),
    # --- any key ---
    case("GET", "/v1/me", ANYONE, None, note="anonymous: who the server takes the caller for"),
    case(
        "POST",
        "/v1/requests",
        ANYONE - {"anonymous"},
        "scoped",
        lambda ctx: (
            "POST",
            "/v1/requests",
            {"json": {"category": "sewer_blocked", "lon": IN_FIELD[0], "lat": IN_FIELD[1]}},
        ),
    ),
    case(
        "POST",
        "/open311/v2/requests.{fmt}",
        ANYONE - {"anonymous"},
        "scoped",
        lambda ctx: ("POST", "/open311/v2/requests.json", {"open311": True}),
        note="api_key in the form body",
    ),
    # --- the workflow ---
    case("POST", "/v1/requests/{request_id}/{action}", EDITORS, "scoped", _action, ok=(409,)),
    # --- the dashboard (browser sessions) ---
    case("GET", "/dashboard", EDITORS, "scoped", _get("/dashboard?community={A}"), session=True),
    case(
        "GET",
        "/dashboard/export",
        EDITORS,
        "scoped",
        _get("/dashboard/export?table=grids&format=xlsx&community={A}"),
        session=True,
    ),
    # --- the request pages (browser sessions) ---
    case(
        "GET",
        "/requests",
        frozenset({"member", "department", *READERS}),
        "filtered",
        _get("/requests?status=open"),
        session=True,
    ),
    case(
        "GET",
        "/requests/{request_id}",
        frozenset({"member", *READERS}),
        "scoped",
        _get("/requests/{ctx.request_id}"),
        session=True,
        note="member A's request, not escalated: its department may not read it",
    ),
    case(
        "POST",
        "/requests/{request_id}/{action}",
        EDITORS,
        "scoped",
        lambda ctx: (
            "POST",
            f"/requests/{ctx.request_id}/register",
            {"data": {"csrf_token": ctx.csrf, "version": "1"}},
        ),
        ok=(409,),
        note="the register form: 409 once an allowed caller has registered it",
        session=True,
    ),
    # --- a member's pages and the sign-in links officials print (api/web/member.py) ---
    case("GET", "/members", EDITORS, "filtered", session=True),
    case(
        "GET",
        "/members/{member_id}/sign-in-link",
        EDITORS,
        "scoped",
        _get("/members/{ctx.world.members[A]}/sign-in-link"),
        session=True,
    ),
    case(
        "POST",
        "/members/{member_id}/sign-in-link",
        EDITORS,
        "scoped",
        _form("/members/{ctx.world.members[A]}/sign-in-link"),
        session=True,
    ),
    case("GET", "/login/link/{token}", ANYONE, None, _get("/login/link/not-a-token")),
    case(
        "POST",
        "/login/link",
        ANYONE,
        None,
        _form("/login/link", token="not-a-token"),
        ok=(401,),
        note="a wrong link is 401 for everyone",
    ),
    case("GET", "/my", frozenset({"member"}), "filtered", session=True),
    case(
        "POST",
        "/my/requests/{request_id}/start",
        frozenset({"member"}),
        "scoped",
        _form("/my/requests/{ctx.request_id}/start", version=1),
        ok=(409,),
        note="the request is only received: 409 for its member",
        session=True,
    ),
    case(
        "POST",
        "/my/requests/{request_id}/resolve",
        frozenset({"member"}),
        "scoped",
        _form("/my/requests/{ctx.request_id}/resolve", version=1, note="done"),
        ok=(409,),
        note="the request is only received: 409 for its member",
        session=True,
    ),
    case(
        "POST",
        "/my/visits",
        frozenset({"member"}),
        "scoped",
        _form("/my/visits", address_id=_home_in_field, kind="routine"),
        session=True,
    ),
    # --- the catalogue: shared by every community ---
    case(
        "POST",
        "/v1/categories",
        EDITORS,
        "unscoped",
        lambda ctx: (
            "POST",
            "/v1/categories",
            {
                "json": {
                    "code": "stray_dogs",
                    "name": "流浪犬",
                    "programme": "safety",
                    "class": "event",
                    "sla_hours": 48,
                    "department": "urban_management",
                }
            },
        ),
        ok=(409,),
    ),
    case(
        "PATCH",
        "/v1/categories/{code}",
        EDITORS,
        "unscoped",
        lambda ctx: ("PATCH", "/v1/categories/sewer_blocked", {"json": {"sla_hours": 24}}),
    ),
    case(
        "PUT",
        "/v1/departments/{code}",
        EDITORS,
        "unscoped",
        lambda ctx: ("PUT", "/v1/departments/urban_management", {"json": {"name": "城管局"}}),
    ),
    # --- the directory ---
    case(
        "GET",
        "/v1/members",
        frozenset({"member", "department", *READERS}),
        "scoped",
        _get("/v1/members?community={A}"),
    ),
    case(
        "POST",
        "/v1/members",
        EDITORS,
        "scoped",
        lambda ctx: (
            "POST",
            "/v1/members",
            {"json": {"community": A, "name": "赵六", "kind": "resident"}},
        ),
    ),
    case(
        "PATCH",
        "/v1/members/{member_id}",
        EDITORS,
        "scoped",
        lambda ctx: ("PATCH", f"/v1/members/{ctx.world.members['C']}", {"json": {"active": True}}),
    ),
    case(
        "PUT",
        "/v1/fields/{field_id}/member",
        EDITORS,
        "scoped",
        lambda ctx: (
            "PUT",
            f"/v1/fields/{ctx.world.fields['F2']}/member",
            {"json": {"member_id": ctx.world.members["C"]}},
        ),
    ),
    case(
        "PUT",
        "/v1/grids/{grid_code}/lead",
        EDITORS,
        "scoped",
        lambda ctx: (
            "PUT",
            "/v1/grids/441302011099003/lead",
            {"json": {"member_id": ctx.world.members["C"]}},
        ),
    ),
    case(
        "POST",
        "/v1/visits",
        frozenset({"member", *EDITORS}),
        "scoped",
        lambda ctx: (
            "POST",
            "/v1/visits",
            {
                "json": {
                    "address_id": "T-00000",
                    "member_id": ctx.world.members["A"],
                    "kind": "routine",
                }
            },
        ),
        ok=(422,),
        note="a member key logs its own visits only (422 for another member's field)",
    ),
    case(
        "GET",
        "/v1/visits",
        frozenset({"member", *READERS}),
        "filtered",
        _get("/v1/visits?community={A}"),
    ),
    case(
        "GET",
        "/v1/visits/coverage",
        ANYONE,
        "scoped",
        _get("/v1/visits/coverage?community={A}"),
    ),
    # --- administration ---
    case(
        "POST",
        "/v1/admin/keys",
        frozenset({"admin"}),
        "unscoped",
        lambda ctx: (
            "POST",
            "/v1/admin/keys",
            {"json": {"role": "official", "community": A, "name": "社区书记"}},
        ),
    ),
    case("GET", "/v1/admin/keys", frozenset({"admin"}), "unscoped"),
    # --- communities: listed for anyone, imported by an admin of no one community ---
    case("GET", "/v1/communities", ANYONE, None),
    case(
        "POST",
        "/v1/communities",
        frozenset({"admin"}),
        "unscoped",
        lambda ctx: (
            "POST",
            "/v1/communities",
            {"json": {"type": "FeatureCollection", "features": [NEW_COMMUNITY]}},
        ),
        note="a dry run (no commit): the same new community each time",
    ),
    case(
        "DELETE",
        "/v1/admin/keys/{prefix}",
        frozenset({"admin"}),
        "unscoped",
        lambda ctx: ("DELETE", f"/v1/admin/keys/{ctx.throwaway_key()}", {}),
    ),
    case(
        "POST",
        "/v1/admin/webhooks",
        frozenset({"admin"}),
        "unscoped",
        lambda ctx: (
            "POST",
            "/v1/admin/webhooks",
            {"json": {"url": "http://127.0.0.1:9/hook", "community": A}},
        ),
    ),
    case("GET", "/v1/admin/webhooks", frozenset({"admin"}), "unscoped"),
    case(
        "PATCH",
        "/v1/admin/webhooks/{webhook_id}",
        frozenset({"admin"}),
        "unscoped",
        lambda ctx: ("PATCH", f"/v1/admin/webhooks/{ctx.webhook_id}", {"json": {"active": True}}),
    ),
    case("GET", "/v1/admin/webhooks/deliveries", frozenset({"admin"}), "unscoped"),
    case("GET", "/v1/admin/personal-data-reads", frozenset({"admin"}), "unscoped"),
    case("GET", "/v1/admin/audit", frozenset({"admin"}), "unscoped"),
    # --- boundary plans ---
    case("GET", "/v1/plans", READERS, "scoped", _get("/v1/plans?community={A}")),
    case(
        "POST",
        "/v1/plans/validate",
        READERS,
        "scoped",
        lambda ctx: (
            "POST",
            f"/v1/plans/validate?community={A}",
            {"json": {"type": "FeatureCollection", "features": []}},
        ),
        ok=(422,),
    ),
    case(
        "POST",
        "/v1/plans",
        PLANNERS,
        "scoped",
        lambda ctx: (
            "POST",
            f"/v1/plans?community={A}",
            {"json": {"type": "FeatureCollection", "features": []}},
        ),
        ok=(422,),
    ),
    case(
        "GET",
        "/v1/plans/{plan}/validation",
        READERS,
        "scoped",
        _get("/v1/plans/active/validation?community={A}"),
    ),
    case(
        "GET",
        "/v1/plans/{plan}/metrics",
        READERS,
        "scoped",
        _get("/v1/plans/active/metrics?community={A}"),
    ),
    case(
        "GET",
        "/v1/plans/{plan}/diff",
        READERS,
        "scoped",
        _get("/v1/plans/active/diff?community={A}"),
    ),
    case(
        "GET",
        "/v1/plans/{plan}/geojson",
        READERS,
        "scoped",
        _get("/v1/plans/active/geojson?community={A}"),
    ),
    case(
        "POST",
        "/v1/plans/{plan}/activate",
        PLANNERS,
        "scoped",
        lambda ctx: ("POST", f"/v1/plans/active/activate?community={A}", {}),
        ok=(409,),
        note="the active plan: 409 for an allowed caller",
    ),
    case("GET", "/v1/plans/review", READERS, "scoped", _get("/v1/plans/review?community={A}")),
    case(
        "POST",
        "/v1/plans/review",
        READERS,
        "scoped",
        lambda ctx: ("POST", f"/v1/plans/review?community={A}", {"json": {"all": True}}),
    ),
    case(
        "DELETE",
        "/v1/plans/{plan}",
        PLANNERS,
        "scoped",
        lambda ctx: ("DELETE", f"/v1/plans/active?community={A}", {}),
        ok=(409,),
        note="the active plan is never deleted: 409 for an allowed caller",
    ),
    case(
        "POST",
        "/v1/plans/rollback",
        PLANNERS,
        "scoped",
        lambda ctx: ("POST", f"/v1/plans/rollback?community={A}", {}),
        ok=(409,),
        note="no plan to go back to: 409 for an allowed caller",
    ),
    case(
        "POST",
        "/v1/plans/propose",
        PLANNERS,
        "scoped",
        lambda ctx: ("POST", f"/v1/plans/propose?community={A}&grids=1", {}),
        ok=(422,),
    ),
    case(
        "GET",
        "/maps/plan",
        READERS,
        "scoped",
        lambda ctx: ("GET", f"/maps/plan?community={A}&draft={ctx.world.plan_id}", {}),
        ok=(409, 422),
        note="the active plan as its own draft: refused as not a draft",
    ),
]


def _routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every endpoint, walking included routers."""

    def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif getattr(route, "methods", None):
                for method in route.methods - {"HEAD", "OPTIONS"}:
                    yield method, prefix + route.path

    return set(walk(app.router.routes))


def test_every_route_has_cases(db_url: str) -> None:
    routes = _routes(make_app(db_url))
    covered = {(c.method, c.path) for c in CASES}
    assert routes - covered == set(), "routes missing from the access matrix"
    assert covered - routes == set(), "cases of routes the app no longer has"


# --- running the matrix ------------------------------------------------------------------------


def _keys(engine: Engine, world: World) -> dict[str, str]:
    with engine.begin() as conn:
        b_id = q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": B,
                    "name": "另一社区",
                    "subdistrict_code": AREAS[B][0],
                    "district_code": AREAS[B][1],
                    "boundary": q.geom_value(MultiPolygon([box(100.0, 30.0, 100.1, 30.1)])),
                    "created_at": m.utcnow(),
                }
            ],
        )[0]
        b_member = q.insert_returning_ids(
            conn,
            m.Member,
            [{"community_id": b_id, "name": "钱七", "kind": "resident", "active": True}],
        )[0]
        conn.execute(
            update(m.Community)
            .where(m.Community.code == A)
            .values(subdistrict_code=AREAS[A][0], district_code=AREAS[A][1])
        )
        keys = {}
        for caller in CALLERS[1:]:
            kw: dict[str, Any] = {"community_code": caller.community}
            if caller.via != "community" and caller.community is not None:
                subdistrict, district = AREAS[caller.community]
                kw = {
                    f"{caller.via}_code": subdistrict if caller.via == "subdistrict" else district
                }
            if caller.role == "member":
                kw["member_id"] = world.members["A"] if caller.community == A else b_member
            if caller.role == "department":
                kw["department_code"] = "urban_management"
            keys[caller.name] = create_key(conn, role=caller.role, name=caller.name, **kw).key
    return keys


def _context(client: TestClient, engine: Engine, world: World) -> Ctx:
    keys = _keys(engine, world)
    official = {"X-API-Key": keys[f"official@{A}"]}
    photo = {"data": base64.b64encode(PNG).decode(), "content_type": "image/png"}
    filed = file_request(client, keys[f"public@{A}"], photos=[photo])
    assert filed.status_code == 201, filed.text
    hook = client.post(
        "/v1/admin/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "community": A},
        headers={"X-API-Key": keys["admin@*"]},
    )
    assert hook.status_code == 201, hook.text
    assert client.get("/v1/me", headers=official).status_code == 200
    body = filed.json()
    return Ctx(
        world=world,
        keys=keys,
        request_id=body["id"],
        media_id=body["media"][0]["id"],
        token=body["token"],
        webhook_id=hook.json()["id"],
        engine=engine,
        csrf=csrf_token(client),
    )


def _expected(c: Case, caller: Caller) -> bool:
    """Whether ``caller`` may do ``c`` to community A."""
    if caller.role not in c.who:
        return False
    if c.scope == "scoped":
        return caller.community in (A, None)
    if c.scope == "unscoped":
        return caller.community is None
    return True


def _send(client: TestClient, ctx: Ctx, c: Case, caller: Caller) -> int:
    method, url, kw = c.call(ctx)
    headers = {}
    key = ctx.keys.get(caller.name)
    if c.session:  # a browser: the session cookie, no key
        session = ctx.session_of(caller)
        if session is not None:
            client.cookies.set(SESSION_COOKIE, session)
        try:
            response = client.request(method, url, follow_redirects=False, **kw)
        finally:
            client.cookies.delete(SESSION_COOKIE)
        assert response.status_code < 500, f"{caller.name} {method} {url}: {response.text[:300]}"
        to_login = response.headers.get("location", "").startswith("/login")
        if response.status_code == 303 and to_login and session is not None:
            return 401  # a signed-in caller sent to sign in: its session did not count
        if response.status_code == 303 and session is None:
            assert to_login, response.headers
        return response.status_code
    if kw.pop("open311", False):  # Open311 takes the key in the form body
        form = {
            "service_code": "sewer_blocked",
            "lat": str(IN_FIELD[1]),
            "long": str(IN_FIELD[0]),
        }
        if key:
            form["api_key"] = key
        kw = {"data": form}
    elif key:
        headers["X-API-Key"] = key
    response = client.request(method, url, headers=headers, follow_redirects=False, **kw)
    assert response.status_code < 500, f"{caller.name} {method} {url}: {response.text[:300]}"
    return response.status_code


def test_access_matrix(engine: Engine, db_url: str) -> None:
    world = build_world(engine)
    wrong: list[str] = []
    # Every caller signs in with a wrong key once: more than the throttle's 10 a minute.
    with TestClient(make_app(db_url, http={"login_max_failures": 1000})) as client:
        ctx = _context(client, engine, world)
        for c in CASES:
            # Refused callers first: nothing an allowed write changes can hide a refusal.
            order = sorted(CALLERS, key=lambda caller: _expected(c, caller))
            for caller in order:
                status = _send(client, ctx, c, caller)
                allowed = _expected(c, caller)
                if c.session and ctx.session_of(caller) is None and not allowed:
                    good = status == 303  # no session: to the sign-in page
                elif allowed:
                    good = status < 400 or status in c.ok
                elif caller.role in c.who:  # the right role, the wrong community
                    good = status in (403, 404)
                else:
                    good = status in (401, 403)
                if not good:
                    want = "allowed" if allowed else "refused"
                    wrong.append(f"{c.method} {c.call(ctx)[1]} as {caller.name}: {status}, {want}")
    assert wrong == [], f"{len(wrong)} of the matrix wrong:\n  " + "\n  ".join(wrong)
