"""Every JSON route declares its body: a response model (a named schema in /openapi.json);
HTML, XML, CSV and media routes declare their media types and error answers instead
(issue 12). The golden test (test_golden_bodies.py) shows the models change no body."""

from __future__ import annotations

from typing import Any

import pytest

from api import create_app
from geogrid.settings import DatabaseSettings, Settings


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    # The document needs no database: the lifespan does not run.
    app = create_app(Settings(database=DatabaseSettings(database_url="sqlite:///unused.sqlite")))
    return app.openapi()


def _names_a_model(schema: dict[str, Any]) -> bool:
    """A schema that is (a list of, or a nullable) named model, not a bare object."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _names_a_model(schema.get("items", {}))
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return (
        bool(options)
        and all(_names_a_model(o) or o.get("type") == "null" for o in options)
        and any(_names_a_model(o) for o in options)
    )


def _operations(openapi: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, ops in openapi["paths"].items()
        for method, op in ops.items()
    ]


def test_every_json_answer_names_its_model(openapi: dict[str, Any]) -> None:
    problems = []
    for name, op in _operations(openapi):
        for status, answer in op["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = answer.get("content") or {}
            if not content:
                problems.append(f"{name} {status}: no media type")
            for media, body in content.items():
                if "json" in media and not _names_a_model(body.get("schema", {})):
                    problems.append(f"{name} {status} {media}: no response model")
    assert problems == []


#: Answers that cannot fail: the sign-in and sign-out forms are static.
CANNOT_FAIL = {"GET /login", "GET /logout"}


def test_every_other_answer_declares_its_errors(openapi: dict[str, Any]) -> None:
    """HTML, XML, CSV and media answers cannot be modelled: their error answers (the JSON
    envelope) are declared instead."""
    problems = []
    for name, op in _operations(openapi):
        if name in CANNOT_FAIL:
            continue
        media = {
            m
            for status, answer in op["responses"].items()
            if status.startswith("2")
            for m in answer.get("content") or {}
        }
        if media and not any("json" in m for m in media):
            errors = [s for s in op["responses"] if s[0] in "45" and s != "422"]
            if not errors:
                problems.append(f"{name} ({', '.join(sorted(media))}): no error answers")
    assert problems == []


def test_the_check_sees_an_unmodelled_route() -> None:
    """The checks above would catch a route returning a bare dict."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    def bare() -> dict[str, Any]:
        return {}

    op = app.openapi()["paths"]["/bare"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert not _names_a_model(schema)
