"""``/health``: liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    """The service is up and its database schema is current."""

    status: str = Field(description="ok (200) or degraded (503)", examples=["ok"])
    version: str = Field(description="The geogrid package's version", examples=["0.1.0"])
    backend: str = Field(description="spatialite or postgis", examples=["postgis"])
    schema_revision: str | None = Field(
        description="The database's migration revision (null: not initialised)", examples=["0007"]
    )


class HealthDegraded(HealthOut):
    """The database answers but its schema is not up to date (503)."""

    message: str = Field(examples=["schema is not up to date: run `geogrid db init`"])
