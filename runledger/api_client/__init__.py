"""A small synchronous client of the runledger HTTP API (SPEC §4), for the user-facing CLI commands.

Contract:
- It talks to the API only (never to Postgres or Temporal), and imports nothing heavier than httpx,
  so ``runledger schedules list`` and friends start fast.
- Connection settings: the API URL is the explicit one, else ``RUNLEDGER_API_URL``, else
  ``http://127.0.0.1:{RUNLEDGER_API_PORT or 8000}``. The API key is the explicit one, else
  ``RUNLEDGER_API_KEY``, else the ``api_key`` of ``<RUNLEDGER_DATA_DIR or .runledger>/demo.json``
  (written by ``runledger up``). The environment is passed in by the caller (a composition root).
- Every non-2xx answer raises :class:`ApiError` with the envelope's stable ``code`` and ``message``
  (``http_<status>`` when the body is not the envelope); no answer at all (refused, timed out, reset)
  raises :class:`ApiUnreachable`. Nothing is retried: a trigger is not idempotent.
- Ids given by the user are quoted as one path segment, so they cannot reach another route.
- A client made without an API key sends no ``Authorization`` header: that is how a webhook delivery
  (:meth:`ApiClient.deliver_webhook`, signed by the caller with the trigger's secret) reaches the API.
- :meth:`ApiClient.run_events` follows a run's Server-Sent Events until its terminal event; a dropped
  connection (or a stream the API ended early, e.g. on restart) is resumed with ``Last-Event-ID``, so
  no event is lost or repeated. That is the one retry: reading events is idempotent.

The package's modules: :mod:`~runledger.api_client.client` (:class:`ApiClient` and its errors),
:mod:`~runledger.api_client.connection` (where the API URL and key come from) and
:mod:`~runledger.api_client.sse` (the ``text/event-stream`` format). Import from the package.
"""

from runledger.api_client.client import (
    DEFAULT_TIMEOUT_SECONDS,
    OVERLAP_POLICIES,
    ApiClient,
    ApiError,
    ApiUnreachable,
    JsonObject,
)
from runledger.api_client.connection import (
    DEMO_FILE,
    ClientConfigError,
    Connection,
    resolve_api_url,
    resolve_connection,
)
from runledger.api_client.sse import RunEvent, SseParser

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "DEMO_FILE",
    "OVERLAP_POLICIES",
    "ApiClient",
    "ApiError",
    "ApiUnreachable",
    "ClientConfigError",
    "Connection",
    "JsonObject",
    "RunEvent",
    "SseParser",
    "resolve_api_url",
    "resolve_connection",
]
