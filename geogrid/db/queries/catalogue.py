"""Queries of the request catalogue: categories and the departments requests escalate to.

Validation of what an official enters is in ``geogrid.directory``; the shipped defaults are
loaded by ``geogrid.catalogue``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from geogrid.db import models


class CategoryRow(NamedTuple):
    """A category with its escalation department by code and name."""

    code: str
    name: str
    name_en: str | None
    programme: str
    category_class: str
    subclass: str | None
    sla_hours: int
    department: str | None
    department_name: str | None
    attributes: list[dict[str, Any]] | None
    active: bool


class DepartmentRow(NamedTuple):
    """A department as the catalogue shows it."""

    code: str
    name: str
    name_en: str | None


# --- categories ------------------------------------------------------------------------------


def categories(conn: Connection, *, include_inactive: bool) -> list[CategoryRow]:
    """The categories by code; retired ones only with ``include_inactive``."""
    category, department = models.Category, models.Department
    stmt = (
        select(
            category.code,
            category.name,
            category.name_en,
            category.programme,
            category.category_class,
            category.subclass,
            category.sla_hours,
            department.code.label("department"),
            department.name.label("department_name"),
            category.attributes,
            category.active,
        )
        .outerjoin(department, department.id == category.department_id)
        .order_by(category.code)
    )
    if not include_inactive:
        stmt = stmt.where(category.active.is_(True))
    return [CategoryRow._make(row) for row in conn.execute(stmt)]


def category_id(conn: Connection, *, code: str) -> int | None:
    """The id of the category with ``code``, or None."""
    return conn.execute(select(models.Category.id).where(models.Category.code == code)).scalar()


class CategoryIntake(NamedTuple):
    """What filing a request under a category needs: its id, programme and time limit."""

    id: int
    code: str
    programme: str
    sla_hours: int


def categories_for_intake(conn: Connection) -> list[CategoryIntake]:
    """Every category (retired ones included) with its id, programme and SLA hours."""
    category = models.Category
    rows = conn.execute(
        select(category.id, category.code, category.programme, category.sla_hours)
    ).all()
    return [CategoryIntake(*row) for row in rows]


def category_codes(conn: Connection) -> set[str]:
    """The codes of every category, retired ones included."""
    return set(conn.execute(select(models.Category.code)).scalars())


def insert_category(conn: Connection, *, code: str, values: Mapping[str, Any]) -> None:
    """Add category ``code`` with column ``values``."""
    conn.execute(insert(models.Category).values(code=code, **values))


def update_category(conn: Connection, *, code: str, values: Mapping[str, Any]) -> None:
    """Set column ``values`` of category ``code``."""
    conn.execute(update(models.Category).where(models.Category.code == code).values(**values))


# --- departments -----------------------------------------------------------------------------


def departments(conn: Connection) -> list[DepartmentRow]:
    """The departments by code."""
    department = models.Department
    return [
        DepartmentRow._make(row)
        for row in conn.execute(
            select(department.code, department.name, department.name_en).order_by(department.code)
        )
    ]


def department_id(conn: Connection, *, code: str) -> int | None:
    """The id of the department with ``code``, or None."""
    return conn.execute(select(models.Department.id).where(models.Department.code == code)).scalar()


def department_ids(conn: Connection) -> dict[str, int]:
    """``{code: id}`` of every department."""
    return {
        row.code: row.id
        for row in conn.execute(select(models.Department.code, models.Department.id))
    }


def insert_department(
    conn: Connection, *, code: str, name: str | None, name_en: str | None
) -> None:
    """Add department ``code``."""
    conn.execute(insert(models.Department).values(code=code, name=name, name_en=name_en))


def update_department(conn: Connection, *, department_id: int, values: Mapping[str, Any]) -> None:
    """Set column ``values`` of department ``department_id``."""
    conn.execute(
        update(models.Department).where(models.Department.id == department_id).values(**values)
    )
