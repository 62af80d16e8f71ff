"""``/v1/admin``: API keys, webhooks and their delivery log, the audit log.

Times are ISO 8601 with the service's offset (``2018-04-18T09:30:00+08:00``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.params import WholeId
from geogrid.db.models import Role


class _StrictBody(BaseModel):
    """An admin body: no unknown field, and no coercion — ``"false"`` is not a boolean
    (it was read as true and made a key that could read phone numbers; issue 14)."""

    model_config = ConfigDict(extra="forbid", strict=True)


_Code = Annotated[str, Field(min_length=1, max_length=32)]


class KeyCreate(_StrictBody):
    """A key to create. Scope: ``community``, or ``subdistrict`` or ``district`` (codes)."""

    role: Role = Field(
        strict=False,  # FastAPI validates the parsed JSON: the value, not a Role instance
        description="public, member, department, official, planner or admin",
    )
    name: str | None = Field(default=None, max_length=200, description="Who holds the key")
    community: _Code | None = Field(default=None, examples=["441302011005"])
    subdistrict: _Code | None = None
    district: _Code | None = None
    member_id: WholeId | None = Field(default=None, description="Member keys: the member")
    department: _Code | None = Field(default=None, description="Department keys: its code")
    personal_data: bool = Field(default=False, description="May read unmasked personal data")


class WebhookCreate(_StrictBody):
    """A webhook to register; ``secret`` is generated when not given."""

    url: str = Field(max_length=2000, examples=["https://sms.example.org/geogrid"])
    events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=64, description="Default: every event"
    )
    secret: str | None = Field(default=None, max_length=128)
    community: _Code | None = None
    description: str | None = Field(default=None, max_length=2000)


class WebhookUpdate(_StrictBody):
    active: bool


# --- API keys --------------------------------------------------------------------------------


class KeyCreated(BaseModel):
    """A new key: ``key`` is shown this once and never again (only its hash is stored)."""

    id: int
    key: str = Field(description="The secret key, to send as X-API-Key")
    prefix: str = Field(description="Its public part: names the key in lists and logs")
    role: str = Field(examples=["official"])


class KeyOut(BaseModel):
    """A key's public facts (never its secret or hash)."""

    id: int
    prefix: str = Field(description="The public part of the key (gg_<prefix>_…)")
    name: str | None = Field(examples=["社区书记"])
    role: str = Field(examples=["official"], description="public, member, department, …")
    community: str | None = Field(
        description="Community code; null = not limited to one community",
        examples=["441302011005"],
    )
    subdistrict: str | None = Field(
        description="Subdistrict code: the key is limited to its communities", examples=[None]
    )
    district: str | None = Field(
        description="District code: the key is limited to its communities", examples=[None]
    )
    member_id: int | None = Field(description="Member keys: the member")
    department: str | None = Field(description="Department keys: the department's code")
    personal_data: bool = Field(description="May read unmasked personal data (logged)")
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


class KeyRevoked(BaseModel):
    revoked: str = Field(description="The prefix of the revoked key")


# --- webhooks --------------------------------------------------------------------------------


class WebhookCreated(BaseModel):
    """A registered webhook: ``secret`` signs its deliveries and is shown this once."""

    id: int
    secret: str = Field(description="HMAC-SHA256 signing secret (given or generated)")


class WebhookOut(BaseModel):
    """A webhook without its secret."""

    id: int
    url: str = Field(examples=["https://sms.example.org/geogrid"])
    events: list[str] = Field(examples=[["request.dispatched", "request.overdue"]])
    community: str | None = Field(description="Community code; null = every community")
    active: bool
    description: str | None
    created_at: str


class WebhookState(BaseModel):
    id: int
    active: bool


class DeliveryAttemptOut(BaseModel):
    """One try to deliver an event."""

    at: str
    status_code: int | None = Field(description="The receiver's HTTP status; null = no answer")
    error: str | None = Field(examples=["ConnectError: [Errno 111] Connection refused"])
    duration_ms: int | None


class DeliveryOut(BaseModel):
    """A delivery (an event for a webhook) with every attempt, oldest first."""

    id: int
    webhook_id: int
    event: str = Field(examples=["request.dispatched"])
    request_id: int | None
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: str | None = Field(description="When a pending delivery is tried again")
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    attempt_log: list[DeliveryAttemptOut]


# --- the audit log ---------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    """An entry of the audit log: who did what to which subject, when, from where (names of
    fields and non-personal details only, never a personal value)."""

    id: int = Field(description="The entry's number: entries are numbered in the order written")
    at: str = Field(examples=["2026-11-01T12:00:00+08:00"])
    api_key_id: int | None = Field(description="The key acting; null for a command")
    actor: str = Field(examples=["key 9747afda 社区书记 (official)"])
    role: str | None = Field(examples=["official"], description="null in entries before 0011")
    client: str | None = Field(
        description="The HTTP client's address, or <login>@<host> of a command's operator",
        examples=["10.0.0.8"],
    )
    via: str | None = Field(
        description="The route or the command", examples=["POST /v1/requests/{request_id}/{action}"]
    )
    action: str = Field(
        description="read, export, create, update, delete, a workflow action (receive, "
        "dispatch, …), import, activate, rollback, retention, erase, prune …",
        examples=["dispatch"],
    )
    subject: str = Field(
        description="request, request_contact, member, household, visit, field, grid, "
        "category, department, key, webhook, plan, a layer (import), person …",
        examples=["request"],
    )
    subject_id: str | None = Field(description="Its id or code, as text", examples=["128"])
    fields: list[str] = Field(
        description="Names of the fields read or written", examples=[["note"]]
    )
    details: dict[str, Any] | None = Field(
        description="Counts, statuses, public ids and codes", examples=[{"from": "registered"}]
    )


class AuditPage(BaseModel):
    """Entries newest first. ``next_before_id`` pages on: pass it as ``before_id`` (a cursor,
    so entries written meanwhile do not shift the pages); null on the last page."""

    limit: int
    next_before_id: int | None
    items: list[AuditEntryOut]


class PersonalReadOut(BaseModel):
    """Who read whose unmasked personal data, when, and through what (never the data): the
    audit log's ``read`` entries, as ``/v1/admin/personal-data-reads`` showed them."""

    id: int
    at: str
    api_key_id: int | None
    actor: str | None = Field(description="The reader (key prefix, name and role)")
    subject: str = Field(description="request_contact, member or household")
    subject_id: int
    fields: list[str] = Field(examples=[["name", "phone"]])
    via: str | None = Field(examples=["GET /v1/members"])
