"""Who may read a request beyond its public view: the scope of a key.

A member reads the requests assigned to it, a department what is escalated to it, officials,
admins and planners every request of their community (or of all, without one); the public
reads public views only, and never a care-programme request's. The views
(:mod:`geogrid.requests.views`) and the workflow (:mod:`geogrid.requests.workflow`) ask here.
"""

from __future__ import annotations

from typing import Any

from geogrid.access import Actor
from geogrid.db.models import Role
from geogrid.db.queries.requests import RequestScope


def can_read(actor: Actor, row: Any) -> bool:
    """Whether ``actor`` may see request ``row`` beyond its public view (scope)."""
    if not actor.may_act_on(row.community_id):
        return False
    if actor.role is Role.MEMBER:
        return bool(row.member_id == actor.member_id)
    if actor.role is Role.DEPARTMENT:
        return bool(row.escalated_to_id == actor.department_id)
    return actor.role in (Role.OFFICIAL, Role.ADMIN, Role.PLANNER)


def list_scope(actor: Actor) -> RequestScope:
    """The requests ``actor`` lists: a member's list is its own requests, a department's what
    is escalated to it, a community key's its community; care requests are never public
    (every other role is scoped)."""
    return RequestScope(
        community_ids=actor.community_ids,
        exclude_care=actor.role is Role.PUBLIC,
        own_member=actor.role is Role.MEMBER,
        member_id=actor.member_id,
        own_department=actor.role is Role.DEPARTMENT,
        department_id=actor.department_id,
    )
