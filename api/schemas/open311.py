"""Open311 GeoReport v2 bodies (``/open311/v2/…``), JSON form; the XML form carries the same
elements under the spec's root (``services``, ``service_requests`` …).

The routes answer ``.json`` or ``.xml`` by the path's extension and render the body
themselves (``geogrid.requests.open311.render``): these models document the JSON form.
Names follow http://wiki.open311.org/GeoReport_v2.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel


class Open311Error(BaseModel):
    code: int = Field(examples=[404], description="The HTTP status")
    description: str = Field(examples=["service_code 'nope' not found"])


class Open311Errors(RootModel[list[Open311Error]]):
    """The spec's error list (not the ``/v1`` envelope)."""


class Endpoint(BaseModel):
    specification: str = Field(examples=["http://wiki.open311.org/GeoReport_v2"])
    url: str = Field(examples=["https://grid.example.org/open311/v2"])
    changeset: str = Field(examples=["2026-11-27T00:00:00+00:00"])
    type: str = Field(examples=["production"])
    formats: list[str] = Field(examples=[["text/xml", "application/json"]])


class Discovery(BaseModel):
    changeset: str = Field(
        examples=["2026-11-27T00:00:00+00:00"], description="When this mapping last changed"
    )
    contact: str
    key_service: str = Field(description="How to get an API key")
    endpoints: list[Endpoint]


class Service(BaseModel):
    """A request category."""

    service_code: str = Field(examples=["sewer_blocked"])
    service_name: str = Field(examples=["下水道堵塞"])
    description: str = Field(examples=["Blocked sewer"])
    metadata: bool = Field(description="Whether the category has attributes (a definition)")
    type: str = Field(examples=["realtime"])
    keywords: str = Field(description="Sub-class, class and English name, comma-separated")
    group: str = Field(examples=["convenience"], description="The programme")


class ServiceList(RootModel[list[Service]]):
    """The service list: every active request category."""


class AttributeValue(BaseModel):
    key: str
    name: str


class ServiceAttribute(BaseModel):
    variable: bool
    code: str
    datatype: str = Field(examples=["string"], description="string, number, datetime, text, …")
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[AttributeValue] = Field(description="Choices of singlevaluelist/multivaluelist")


class ServiceDefinition(BaseModel):
    service_code: str = Field(examples=["sewer_blocked"])
    attributes: list[ServiceAttribute]


class ServiceRequest(BaseModel):
    """A request as the public sees it: no contact, no address id, no names."""

    service_request_id: str = Field(examples=["26"])
    status: str = Field(examples=["open"], description="open or closed")
    status_notes: str | None = Field(description="The latest public note")
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str = Field(description="The department, else the grid (or community)")
    service_notice: str = Field(description="Set when the location is outside every grid")
    requested_datetime: str | None = Field(examples=["2017-09-27T15:22:10+08:00"])
    updated_datetime: str | None
    expected_datetime: str | None = Field(description="Due date (or the SLA's, while open)")
    address: str | None = Field(description="The street")
    address_id: str | None = Field(description="Always null (not public)")
    zipcode: str | None = Field(description="Always null")
    lat: float | None = Field(description="Centre of the request's H3 cell, not the exact point")
    long: float | None
    media_url: str | None = Field(description="The first public photo")


class ServiceRequests(RootModel[list[ServiceRequest]]):
    """Service requests, newest first."""


class CreatedRequest(BaseModel):
    service_request_id: str
    token: str | None = Field(description="The reporter's token: keep it to follow the request")
    service_notice: str
    account_id: str | None


class CreatedRequests(RootModel[list[CreatedRequest]]):
    """``POST requests``: one item, the new request."""


class TokenAnswer(BaseModel):
    service_request_id: str
    token: str
    status: str = Field(description="open or closed")


class TokenAnswers(RootModel[list[TokenAnswer]]):
    """``GET tokens/{token}``: one item."""
