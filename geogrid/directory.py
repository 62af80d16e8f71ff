"""Editing the people and the catalogue: categories, departments, members, responsibility
fields and grid leads (docs/api.md, "Catalogue and directory").

The catalogue is data: each category has a programme (五大工程), a class (部件/事件, GB/T
30428), an SLA in hours, a default escalation department and optional Open311 attributes.
A category is never deleted (requests refer to it): ``active = false`` retires it.

When a field changes hands, a grid gets another lead or a member leaves, the open requests
of the community are routed again (grid → field → member; a vacant field falls back to the
grid's lead). Requests an official assigned by hand (rule ``manual``) keep their member.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor, limit_to_scope, log_personal_read
from geogrid.assign import assign_requests
from geogrid.catalogue import ATTRIBUTE_TYPES
from geogrid.db import models, queries
from geogrid.db.queries import assignment, catalogue, people
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.privacy import mask_name

_CODE_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
CATEGORY_FIELDS: Final = (
    "name",
    "name_en",
    "programme",
    "class",
    "subclass",
    "sla_hours",
    "department",
    "attributes",
    "active",
)


def _code(code: Any, field: str = "code") -> str:
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise InvalidInput(
            f"{field} must be 1–64 lower-case letters, digits, '_' or '-', got {code!r}",
            field=field,
        )
    return code


def _str(value: Any, field: str, *, limit: int = 200, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} must be text of at most {limit} characters", field=field)
    return value.strip()


# --- categories ------------------------------------------------------------------------------


def check_attribute_definitions(defs: Any) -> list[dict[str, Any]] | None:
    """Validate Open311 attribute definitions; errors name ``attributes[i].<key>``."""
    if defs is None or defs == []:
        return None
    if not isinstance(defs, list):
        raise InvalidInput("attributes must be a list of definitions", field="attributes")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, d in enumerate(defs):
        f = f"attributes[{i}]"
        if not isinstance(d, Mapping):
            raise InvalidInput(f"{f} must be an object", field=f)
        code = _code(d.get("code"), f"{f}.code")
        if code in seen:
            raise InvalidInput(f"{f}.code {code!r} is given twice", field=f"{f}.code")
        seen.add(code)
        kind = d.get("datatype", "string")
        if kind not in ATTRIBUTE_TYPES:
            raise InvalidInput(
                f"{f}.datatype must be one of {', '.join(ATTRIBUTE_TYPES)}", field=f"{f}.datatype"
            )
        values = d.get("values") or []
        if kind.endswith("valuelist"):
            if not isinstance(values, list) or not values:
                raise InvalidInput(f"{f}.values: a {kind} needs values", field=f"{f}.values")
            for j, v in enumerate(values):
                if not isinstance(v, Mapping) or not str(v.get("key", "")).strip():
                    raise InvalidInput(
                        f"{f}.values[{j}] needs a key and a name", field=f"{f}.values[{j}]"
                    )
            values = [
                {"key": str(v["key"]), "name": str(v.get("name") or v["key"])} for v in values
            ]
        elif values:
            raise InvalidInput(f"{f}.values are for list datatypes only", field=f"{f}.values")
        out.append(
            {
                "code": code,
                "datatype": kind,
                "required": bool(d.get("required", False)),
                "variable": bool(d.get("variable", True)),
                "description": _str(d.get("description"), f"{f}.description", limit=500) or code,
                "datatype_description": _str(
                    d.get("datatype_description"), f"{f}.datatype_description", limit=500
                ),
                "order": int(d.get("order", i + 1)),
                "values": values,
            }
        )
    return out


def list_categories(conn: Connection, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    out = []
    for category in catalogue.categories(conn, include_inactive=include_inactive):
        row = category._asdict()
        row["class"] = row.pop("category_class")
        out.append(row)
    return out


def get_category(conn: Connection, code: str) -> dict[str, Any]:
    for row in list_categories(conn, include_inactive=True):
        if row["code"] == code:
            return row
    raise NotFound(f"no category {code!r}", field="category")


def save_category(
    conn: Connection,
    *,
    code: str,
    values: Mapping[str, Any],
    create: bool,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Create (``create``) or update a category; only the keys given change. Recorded in
    the audit log as ``actor``'s (default: the local operator)."""
    _code(code)
    unknown = set(values) - set(CATEGORY_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field {sorted(unknown)[0]!r}: one of {', '.join(CATEGORY_FIELDS)}",
            field=sorted(unknown)[0],
        )
    exists = catalogue.category_id(conn, code=code)
    if create and exists:
        raise Conflict(f"category {code!r} exists already", field="code")
    if not create and not exists:
        raise NotFound(f"no category {code!r}", field="category")
    row: dict[str, Any] = {}
    if "name" in values or create:
        row["name"] = _str(values.get("name"), "name", required=True)
    if "name_en" in values:
        row["name_en"] = _str(values.get("name_en"), "name_en")
    if "programme" in values or create:
        p = values.get("programme")
        if p not in {x.value for x in models.Programme}:
            names = ", ".join(x.value for x in models.Programme)
            raise InvalidInput(f"programme must be one of {names}, got {p!r}", field="programme")
        row["programme"] = p
    if "class" in values or create:
        k = values.get("class")
        if k not in {x.value for x in models.CategoryClass}:
            raise InvalidInput(f"class must be component or event, got {k!r}", field="class")
        row["category_class"] = k
    if "subclass" in values:
        row["subclass"] = _str(values.get("subclass"), "subclass", limit=64)
    if "sla_hours" in values or create:
        h = values.get("sla_hours", 72)
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 24 * 366:
            raise InvalidInput(
                f"sla_hours must be a whole number of hours, 1 to 8784, got {h!r}",
                field="sla_hours",
            )
        row["sla_hours"] = h
    if "department" in values:
        dcode = values.get("department")
        if dcode is None:
            row["department_id"] = None
        else:
            department_id = catalogue.department_id(conn, code=dcode)
            if department_id is None:
                raise InvalidInput(f"unknown department {dcode!r}", field="department")
            row["department_id"] = department_id
    if "attributes" in values:
        row["attributes"] = check_attribute_definitions(values.get("attributes"))
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise InvalidInput("active must be true or false", field="active")
        row["active"] = values["active"]
    if create:
        row.setdefault("active", True)
        catalogue.insert_category(conn, code=code, values=row)
    elif row:
        catalogue.update_category(conn, code=code, values=row)
    if create or row:
        audit.record(
            conn,
            actor=as_actor(actor),
            action="create" if create else "update",
            subject="category",
            subject_id=code,
            fields=row,
        )
    return get_category(conn, code)


# --- departments -----------------------------------------------------------------------------


def list_departments(conn: Connection) -> list[dict[str, Any]]:
    return [department._asdict() for department in catalogue.departments(conn)]


def save_department(
    conn: Connection,
    *,
    code: str,
    name: str | None,
    name_en: str | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Create or rename a department (upsert by code); audit log as :func:`save_category`."""
    _code(code)
    exists = catalogue.department_id(conn, code=code)
    values: dict[str, Any] = {}
    if exists:
        if name is not None:
            values["name"] = _str(name, "name", required=True)
        if name_en is not None:
            values["name_en"] = _str(name_en, "name_en")
        if values:
            catalogue.update_department(conn, department_id=exists, values=values)
    else:
        values = {"name": _str(name, "name", required=True), "name_en": _str(name_en, "name_en")}
        catalogue.insert_department(conn, code=code, name=values["name"], name_en=values["name_en"])
    if values:
        audit.record(
            conn,
            actor=as_actor(actor),
            action="update" if exists else "create",
            subject="department",
            subject_id=code,
            fields=[k for k, v in values.items() if v is not None or exists],
        )
    return next(d for d in list_departments(conn) if d["code"] == code)


# --- members ---------------------------------------------------------------------------------


def _member_dict(
    row: people.MemberRow, fields: list[int], leads: list[str], *, personal: bool
) -> dict[str, Any]:
    out = {
        "id": int(row.id),
        "community": row.community_code,
        "display_name": mask_name(row.name),
        "kind": row.kind,
        "branch": row.branch,
        "active": bool(row.active),
        "fields": fields,
        "leads_grids": leads,
    }
    if personal:
        out["name"] = row.name
        out["phone"] = row.phone
    return out


def list_members(
    conn: Connection,
    *,
    actor: Actor,
    community: str | None = None,
    ids: Sequence[int] = (),
    personal: bool = False,
    via: str = "GET /v1/members",
) -> list[dict[str, Any]]:
    """Members with masked names, their fields and the grids they lead; ``personal`` adds
    name and phone (needs the right; every read logged)."""
    if personal:
        actor.require_personal_data(what="members' names and phones")
    if community is not None:  # another community's members, asked by name: refused
        community = limit_to_scope(conn, actor, community, what="members")
    rows = people.members(
        conn, community_code=community, community_ids=actor.community_ids, ids=ids
    )
    member_ids = [int(r.id) for r in rows]
    fields: dict[int, list[int]] = {i: [] for i in member_ids}
    leads: dict[int, list[str]] = {i: [] for i in member_ids}
    if member_ids:
        for field_id, holder_id in people.fields_held(conn, member_ids=member_ids):
            fields[int(holder_id or 0)].append(int(field_id))
        for grid_code, lead_id in people.grids_led(conn, member_ids=member_ids):
            leads[int(lead_id or 0)].append(str(grid_code))
    out = [_member_dict(r, fields[int(r.id)], leads[int(r.id)], personal=personal) for r in rows]
    if personal and member_ids:
        log_personal_read(
            conn,
            actor=actor,
            subject="member",
            subject_ids=member_ids,
            fields=["name", "phone"],
            via=via,
        )
    return out


def save_member(
    conn: Connection,
    *,
    member_id: int | None,
    values: Mapping[str, Any],
    community: str | None = None,
    actor: Actor | None = None,
) -> int:
    """Create (``member_id`` None) or update a member; return its id. Deactivating a
    member vacates its fields (their requests go to the grid lead). Recorded in the audit
    log as ``actor``'s (default: the local operator), with the names of the fields only."""
    allowed = {"name", "phone", "kind", "branch", "active"}
    unknown = set(values) - allowed
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    row: dict[str, Any] = {}
    if member_id is None:
        cid = queries.community_row(conn, code=community).id
    else:
        member_community_id = queries.member_community_id(conn, member_id=member_id)
        if member_community_id is None:
            raise NotFound(f"no member with id {member_id}", field="id")
        cid = member_community_id
    if "name" in values or member_id is None:
        row["name"] = _str(values.get("name"), "name", required=True)
    if "phone" in values:
        row["phone"] = _str(values.get("phone"), "phone", limit=64)
    if "kind" in values or member_id is None:
        kind = values.get("kind")
        if kind not in {k.value for k in models.MemberKind}:
            names = ", ".join(k.value for k in models.MemberKind)
            raise InvalidInput(f"kind must be one of {names}, got {kind!r}", field="kind")
        row["kind"] = kind
    if "branch" in values:
        name = values.get("branch")
        if name is None:
            row["branch_id"] = None
        else:
            branch_id = people.branch_id(conn, community_id=cid, name=name)
            if branch_id is None:
                raise InvalidInput(f"no branch named {name!r} in the community", field="branch")
            row["branch_id"] = branch_id
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise InvalidInput("active must be true or false", field="active")
        row["active"] = values["active"]
    created = member_id is None
    if member_id is None:
        row.setdefault("active", True)
        member_id = people.insert_member(conn, community_id=cid, values=row)
    elif row:
        people.update_member(conn, member_id=member_id, values=row)
    rerouted = 0
    if row.get("active") is False:
        people.vacate_fields(conn, member_id=member_id)
        rerouted = reroute_open_requests(conn, community_id=cid)
    if created or row:
        audit.record(
            conn,
            actor=as_actor(actor),
            action="create" if created else "update",
            subject="member",
            subject_id=member_id,
            fields=row,
            details={"community_id": cid, "requests_rerouted": rerouted},
        )
    return member_id


# --- fields and grid leads -------------------------------------------------------------------


def list_fields(conn: Connection, *, community: str | None = None) -> list[dict[str, Any]]:
    cid = queries.community_row(conn, code=community).id if community is not None else None
    return [
        {
            "id": int(r.id),
            "name": r.name,
            "grid_code": r.grid_code,
            "member_id": r.member_id,
            "member_display_name": mask_name(r.member_name) if r.member_name else None,
            "vacant": r.member_id is None,
            "needs_review": bool(r.needs_review),
        }
        for r in people.fields(conn, community_id=cid)
    ]


def _active_member(conn: Connection, member_id: int, community_id: int, field: str) -> None:
    row = people.member_state(conn, member_id=member_id)
    if row is None or row.community_id != community_id:
        raise InvalidInput(f"no member {member_id} in the community", field=field)
    if not row.active:
        raise InvalidInput(f"member {member_id} is not active", field=field)


def set_field_member(
    conn: Connection, *, field_id: int, member_id: int | None, actor: Actor
) -> dict[str, Any]:
    """Give a field to a member, or vacate it (``None``); re-route open requests.

    A key scoped to a community changes only that community's fields."""
    community_id = people.field_community_id(conn, field_id=field_id)
    if community_id is None:
        raise NotFound(f"no responsibility field with id {field_id}", field="id")
    actor.require_community(community_id, what=f"assigning field {field_id}")
    if member_id is not None:
        _active_member(conn, member_id, community_id, "member_id")
    people.set_field_member(conn, field_id=field_id, member_id=member_id)
    rerouted = reroute_open_requests(conn, community_id=community_id)
    audit.record(
        conn,
        actor=actor,
        action="update",
        subject="field",
        subject_id=field_id,
        fields=["member_id"],
        details={"member_id": member_id, "requests_rerouted": rerouted},
    )
    return {"field_id": field_id, "member_id": member_id, "requests_rerouted": rerouted}


def set_grid_lead(
    conn: Connection,
    *,
    grid_code: str,
    member_id: int | None,
    actor: Actor,
    community: str | None = None,
) -> dict[str, Any]:
    """Set (or clear) the lead member of a grid of the active plan; re-route open requests.

    A key scoped to a community changes only that community's grids."""
    # Without a community named, a scoped key means its own community's grid.
    community_id = (
        queries.community_row(conn, code=community).id if community else actor.community_id
    )
    row = people.active_grid(conn, grid_code=grid_code, community_id=community_id)
    if row is None:
        raise NotFound(f"no grid {grid_code!r} in an active plan", field="grid")
    actor.require_community(row.community_id, what=f"setting the lead of grid {grid_code}")
    if member_id is not None:
        _active_member(conn, member_id, row.community_id, "member_id")
    people.set_grid_lead(conn, grid_id=row.id, member_id=member_id)
    rerouted = reroute_open_requests(conn, community_id=row.community_id)
    audit.record(
        conn,
        actor=actor,
        action="update",
        subject="grid",
        subject_id=grid_code,
        fields=["lead_member_id"],
        details={"lead_member_id": member_id, "requests_rerouted": rerouted},
    )
    return {"grid_code": grid_code, "lead_member_id": member_id, "requests_rerouted": rerouted}


def reroute_open_requests(conn: Connection, *, community_id: int) -> int:
    """Route the community's open requests again, except those assigned by hand."""
    plan = queries.active_plan(conn, community_id=community_id)
    if plan is None:
        return 0
    ids = assignment.reroutable_request_ids(conn, community_id=community_id)
    _, _, rerouted = assign_requests(
        conn, community_id=community_id, plan_id=plan.id, all_requests=False, request_ids=ids
    )
    return rerouted
