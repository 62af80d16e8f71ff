"""Open311 GeoReport v2 at ``/open311/v2/`` (http://wiki.open311.org/GeoReport_v2).

Each method answers ``.xml`` (required by the spec) or ``.json``, chosen by the extension.
Errors are the spec's list of ``{code, description}`` with 400 (bad input), 403 (missing or
wrong ``api_key``) or 404 (unknown service, request or token) — not the ``/v1`` envelope.
The mapping onto geogrid lives in ``geogrid.requests.open311``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.auth import reached
from api.deps import base_url, geocoder_of
from api.schemas.open311 import (
    CreatedRequests,
    Discovery,
    Open311Errors,
    ServiceDefinition,
    ServiceList,
    ServiceRequests,
    TokenAnswers,
)
from geogrid.access import NotAuthenticated, authenticate
from geogrid.db import models, queries
from geogrid.errors import GeogridError, InvalidInput, NotFound
from geogrid.requests import open311
from geogrid.requests.workflow import receive

router = APIRouter(prefix="/open311/v2", tags=["open311"])

#: When this mapping last changed (the discovery ``changeset``).
CHANGESET = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
_DOC = "Extension .xml (the spec's default) or .json."


_XML = {"text/xml": {"schema": {"type": "string", "description": "The same elements as XML"}}}


def _answers(model: type[Any], *errors: int, status: int = 200) -> dict[int | str, Any]:
    """OpenAPI answers of a route: ``model`` as JSON or XML, and the spec's error lists."""
    why = {
        400: "Bad input (a malformed parameter)",
        403: "api_key missing or not allowed",
        404: "Not found, or the path lacks .xml or .json (then always JSON)",
    }
    out: dict[int | str, Any] = {status: {"model": model, "content": _XML}}
    for code in errors:
        out[code] = {"model": Open311Errors, "description": why[code], "content": _XML}
    return out


def _split(name: str) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in open311.FORMATS:
        raise NotFound("add .xml or .json to the path", field="format")
    return stem, fmt


def _respond(root: str, data: Any, fmt: str, status: int = 200) -> Response:
    return Response(
        open311.render(root, data, fmt), status_code=status, media_type=open311.FORMATS[fmt]
    )


def _error(exc: GeogridError, fmt: str) -> Response:
    status, body = open311.error_list(exc)
    response = _respond("errors", body, fmt, status)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:  # the database is unavailable (503): when to try again
        response.headers["Retry-After"] = str(retry)
    return response


def _answer(name: str, root: str, build: Callable[[str], Any], status: int = 200) -> Response:
    """Run ``build`` and render its answer in the path's format, or the spec's errors."""
    fmt = name.rpartition(".")[2]
    if "." not in name or fmt not in open311.FORMATS:
        return _error(NotFound("add .xml or .json to the path", field="format"), "json")
    try:
        return _respond(root, build(fmt), fmt, status)
    except GeogridError as exc:
        return _error(exc, fmt)


def _stem(name: str) -> str:
    return _split(name)[0]


@router.get(
    "/discovery.{fmt}",
    summary="Discovery: where the endpoint is, which formats",
    description=_DOC,
    responses=_answers(Discovery, 404),
)
def discovery(fmt: str, request: Request) -> Response:
    return _answer(
        f"discovery.{fmt}",
        "discovery",
        lambda _f: open311.discovery(
            base_url=base_url(request),
            changeset=CHANGESET,
            contact="The community office (社区服务中心) runs this service.",
        ),
    )


@router.get(
    "/services.{fmt}",
    summary="Service list: the request categories",
    description=_DOC,
    responses=_answers(ServiceList, 404),
)
def services(fmt: str, request: Request) -> Response:
    engine = request.app.state.engine

    def build(_f: str) -> Any:
        with engine.connect() as conn:
            return open311.services(conn)

    return _answer(f"services.{fmt}", "services", build)


@router.get(
    "/services/{name}",
    summary="Service definition: the attributes of a category",
    description="`/services/{service_code}.xml` or `.json`.",
    responses=_answers(ServiceDefinition, 404),
)
def service_definition(name: str, request: Request) -> Response:
    engine = request.app.state.engine

    def build(_f: str) -> Any:
        with engine.connect() as conn:
            return open311.service_definition(conn, _stem(name))

    return _answer(name, "service_definition", build)


@router.get(
    "/requests.{fmt}",
    summary="Service requests: filters, last 90 days by default",
    description=_DOC,
    responses=_answers(ServiceRequests, 400, 404),
)
def get_requests(fmt: str, request: Request) -> Response:
    engine = request.app.state.engine
    settings = request.app.state.settings.requests
    tz = request.app.state.settings.service.timezone
    qp = request.query_params

    def build(_f: str) -> Any:
        ids = open311.parse_ids(qp.get("service_request_id") or "")
        codes = [c.strip() for c in (qp.get("service_code") or "").split(",") if c.strip()]
        statuses = [s.strip() for s in (qp.get("status") or "").split(",") if s.strip()]
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise InvalidInput(f"status must be open or closed, got {bad[0]!r}", field="status")
        days = dt.timedelta(days=settings.open311_default_days)
        start = qp.get("start_date")
        end = qp.get("end_date")
        start_dt = open311.parse_datetime(start, field="start_date", tz=tz) if start else None
        end_dt = open311.parse_datetime(end, field="end_date", tz=tz) if end else None
        if end_dt is None:
            end_dt = min(models.utcnow(), start_dt + days) if start_dt else models.utcnow()
        if start_dt is None:
            start_dt = end_dt - days
        if end_dt < start_dt:
            raise InvalidInput("end_date is before start_date", field="end_date")
        if end_dt - start_dt > days:
            raise InvalidInput(
                f"start_date to end_date may not span more than {days.days} days",
                field="end_date",
            )
        community = qp.get("jurisdiction_id") or None
        with engine.connect() as conn:
            _jurisdiction(conn, community)
            rows = open311.request_rows(
                conn,
                ids=ids,
                service_codes=codes,
                start=start_dt,
                end=end_dt,
                statuses=statuses,
                community=community,
            )
            return open311.requests_out(conn, rows, base_url=base_url(request))

    return _answer(f"requests.{fmt}", "service_requests", build)


def _jurisdiction(conn: Any, code: str | None) -> None:
    if code is None:
        return
    try:
        queries.community_row(conn, code=code, field="jurisdiction_id")
    except NotFound:
        raise NotFound(f"jurisdiction_id {code!r} not found", field="jurisdiction_id") from None


@router.post(
    "/requests.{fmt}",
    summary="Create a service request (form-encoded, with api_key)",
    description=_DOC,
    status_code=201,
    responses=_answers(CreatedRequests, 400, 403, 404, status=201),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["api_key", "service_code"],
                        "properties": {
                            k: {"type": "string"}
                            for k in (
                                "api_key",
                                "jurisdiction_id",
                                "service_code",
                                "lat",
                                "long",
                                "address_string",
                                "address_id",
                                "email",
                                "device_id",
                                "account_id",
                                "first_name",
                                "last_name",
                                "phone",
                                "description",
                                "media_url",
                            )
                        },
                        "additionalProperties": {
                            "type": "string",
                            "description": "attribute[CODE]=VALUE",
                        },
                    }
                }
            }
        }
    },
)
async def post_request(fmt: str, request: Request) -> Response:
    if fmt not in open311.FORMATS:
        return _error(NotFound("add .xml or .json to the path", field="format"), "json")
    if "api_key" in request.query_params:
        # The spec puts api_key in the form body; in the URL it lands in access logs,
        # proxies' logs and browser histories (issue 14, finding 6).
        return _error(
            InvalidInput("send api_key in the form body, not in the URL", field="api_key"), fmt
        )
    try:
        form = await request.form()
    except HTTPException:  # the body cap (413)
        raise
    except Exception:
        return _error(InvalidInput("the body must be form-encoded", field="body"), fmt)
    fields = {k: [str(v) for v in form.getlist(k)] for k in form}
    engine = request.app.state.engine
    settings = request.app.state.settings.requests
    geocoder = geocoder_of(request)

    def create() -> Any:
        key = (fields.get("api_key") or [""])[0]
        if not key:
            raise NotAuthenticated("api_key is required to create a request", field="api_key")
        with engine.begin() as conn:
            actor = reached(authenticate(conn, key), request)
            open311.require_service(conn, (fields.get("service_code") or [""])[0])
            intake = open311.intake_from_form(fields)
            out = receive(conn, intake, actor=actor, geocoder=geocoder, settings=settings)
        return open311.post_answer(
            request_id=out.request_id,
            token=out.token,
            flag=out.flag,
            account_id=intake.contact.account_id,
        )

    try:
        body = await run_in_threadpool(create)
    except GeogridError as exc:
        return _error(exc, fmt)
    return _respond("service_requests", body, fmt, 201)


@router.get(
    "/requests/{name}",
    summary="One service request (`{id}.xml` or `.json`)",
    responses=_answers(ServiceRequests, 400, 404),
)
def get_request(name: str, request: Request) -> Response:
    engine = request.app.state.engine

    def build(_f: str) -> Any:
        stem = _stem(name)
        ids = open311.parse_ids(stem)
        if len(ids) != 1:
            raise InvalidInput("give one service_request_id", field="service_request_id")
        with engine.connect() as conn:
            rows = open311.request_rows(conn, ids=ids)
            if not rows:
                raise NotFound(f"service_request_id {ids[0]} not found", field="service_request_id")
            return open311.requests_out(conn, rows, base_url=base_url(request))

    return _answer(name, "service_requests", build)


@router.get(
    "/tokens/{name}",
    summary="The request id of a token (`{token}.xml` or `.json`)",
    responses=_answers(TokenAnswers, 404),
)
def get_token(name: str, request: Request) -> Response:
    engine = request.app.state.engine

    def build(_f: str) -> Any:
        token = _stem(name)
        with engine.connect() as conn:
            rows = open311.request_rows(conn, token=token) if token else []
        if not rows:
            raise NotFound("token not found", field="token")
        # The status too: the holder of a care request's token sees it nowhere else.
        return [
            {
                "service_request_id": str(rows[0].id),
                "token": token,
                "status": open311.status_of(rows[0].status),
            }
        ]

    return _answer(name, "service_requests", build)
