"""Every dependency of every route is a coroutine function: FastAPI runs a plain ``def`` dependency
in its thread pool, a thread hand-off (and a GIL contest) on every request that uses it."""

from __future__ import annotations

import inspect

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase

from api.app import create_app
from runledger.config import Settings


def _sync_calls(dependant: Dependant) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        call = sub.call
        asynchronous = inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
        # Security schemes (HTTPBearer) are callables whose __call__ is async.
        if call is not None and not isinstance(call, SecurityBase) and not asynchronous:
            found.append(getattr(call, "__qualname__", repr(call)))
        found += _sync_calls(sub)
    return found


def test_no_route_has_a_dependency_run_in_the_thread_pool(settings: Settings) -> None:
    app = create_app(settings)
    routes = [c.original_route for c in iter_route_contexts(app.routes)]
    api_routes = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api_routes) > 20
    assert {r.path: calls for r in api_routes if (calls := _sync_calls(r.dependant))} == {}
