"""The operator dashboard: server-rendered pages under ``/ui``, served by the API process.

Jinja2 templates and two repo-shipped files (``static/app.js``, ``static/style.css``): no CDN, no
build step. Every page is a view of the functions and repositories the JSON API uses. ``install``
adds the pages, the static files, the security headers and the HTML error pages to an app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import auth, billing, bulk, runs, schedules
from api.ui.render import STATIC_DIR, SecurityHeaders

ROUTERS = (auth.router, runs.router, bulk.router, schedules.router, billing.router)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.add_middleware(SecurityHeaders)
