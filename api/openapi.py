"""The OpenAPI document declares every status a route can answer, each error with the SPEC §4
envelope (:class:`api.errors.ErrorEnvelope`).

The statuses every route shares come from what the boundary and the router do, so a new route gets
them without writing them: 400 (a header over the limit), 422 (validation), 401 when it needs a
caller, 403 when it needs the admin token, 404 when its path names an object, 413 when it takes a
body. A route declares only its own others, with :func:`errors` (402, 409, 503, ...).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.boundary import required_role
from api.errors import ErrorEnvelope

_DESCRIPTIONS = {
    400: "Bad request (a header value over the limit)",
    401: "Missing or invalid bearer key",
    402: "Insufficient credits",
    403: "The admin token is required",
    404: "Not found (another tenant's object too)",
    409: "Conflict",
    413: "The body is over the limit",
    422: "Validation error",
    502: "The run ended in error",
    503: "Temporal is unavailable",
    504: "The run did not finish in time",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error statuses."""
    return {status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]} for status in statuses}


def _statuses(route: APIRoute) -> dict[int | str, dict[str, Any]]:
    shared = {400, 422}
    role = required_role(route)
    if role is not None:
        shared.add(401)
    if role == "admin":
        shared.add(403)
    if route.dependant.path_params:
        shared.add(404)
    if route.body_field is not None or getattr(route.endpoint, "runledger_raw_body", False):
        shared.add(413)
    return errors(*sorted(shared))


def document_errors(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so each operation also lists the shared statuses of its route."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, APIRoute) or not route.include_in_schema or context.path is None:
                continue
            operations = spec.get("paths", {}).get(context.path, {})
            for method in context.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for status, documented in _statuses(route).items():
                    if str(status) not in responses or status == 422:
                        # FastAPI's own 422 schema is not our envelope: ours replaces it.
                        responses[str(status)] = _rendered(documented)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _rendered(documented: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": documented["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
