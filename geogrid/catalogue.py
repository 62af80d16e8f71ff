"""The request catalogue: departments and categories (programme, class, SLA, department).

The catalogue is data, not code: the defaults ship as CSV in ``geogrid/data/`` and are
loaded by ``geogrid db init``; officials edit them afterwards through the API and CLI.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any, Final

from sqlalchemy import Connection

from geogrid.db import models, queries
from geogrid.db.queries import catalogue as catalogue_queries

#: Open311 attribute datatypes (GeoReport v2, "GET Service Definition").
ATTRIBUTE_TYPES: Final = (
    "string",
    "number",
    "datetime",
    "text",
    "singlevaluelist",
    "multivaluelist",
)


def read_default(name: str) -> list[dict[str, str]]:
    """Rows of a shipped catalogue CSV (``departments`` or ``categories``)."""
    text = resources.files("geogrid.data").joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def ensure_default_catalogue(conn: Connection) -> dict[str, int]:
    """Insert the shipped departments and categories that are missing (by code).

    Existing rows are left as officials edited them. Returns how many of each were added.
    """
    existing_departments = catalogue_queries.department_ids(conn)
    new_depts = [
        {"code": r["code"], "name": r["name"], "name_en": r.get("name_en") or None}
        for r in read_default("departments")
        if r["code"] not in existing_departments
    ]
    queries.bulk_insert(conn, models.Department, new_depts)
    department_ids = catalogue_queries.department_ids(conn)
    existing_categories = catalogue_queries.category_codes(conn)
    new_cats: list[dict[str, Any]] = []
    for r in read_default("categories"):
        if r["code"] in existing_categories:
            continue
        new_cats.append(
            {
                "code": r["code"],
                "name": r["name"],
                "name_en": r.get("name_en") or None,
                "programme": r["programme"],
                "category_class": r["class"],
                "subclass": r.get("subclass") or None,
                "sla_hours": int(r["sla_hours"]),
                "department_id": department_ids.get(r.get("department_code") or ""),
            }
        )
    queries.bulk_insert(conn, models.Category, new_cats)
    return {"departments": len(new_depts), "categories": len(new_cats)}
