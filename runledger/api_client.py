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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_API_PORT = "8000"
DEFAULT_DATA_DIR = ".runledger"
#: Same name as ``runledger.demo.DEMO_FILE`` (not imported: that module pulls in the database layer).
DEMO_FILE = "demo.json"
#: The values of ``contracts.schedules.Overlap`` (not imported: that module pulls in temporalio).
OVERLAP_POLICIES = ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all")
USER_AGENT = "runledger-cli"

JsonObject = dict[str, Any]


class ClientConfigError(Exception):
    """The connection settings are missing or unusable."""


class ApiUnreachable(Exception):
    """The API gave no answer: connection refused, timed out, or dropped."""


class ApiError(Exception):
    """The API answered with an error envelope ``{"error": {"code", "message"}}``."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Connection:
    api_url: str
    api_key: str
    #: Where the key came from, for error messages ("--api-key", "RUNLEDGER_API_KEY" or a file path).
    key_source: str


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("RUNLEDGER_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def default_api_url(env: Mapping[str, str]) -> str:
    url = env.get("RUNLEDGER_API_URL")
    if url:
        return url
    return f"http://127.0.0.1:{env.get('RUNLEDGER_API_PORT') or DEFAULT_API_PORT}"


def demo_api_key(path: Path) -> str | None:
    """The ``api_key`` saved by ``runledger up``, or None when the file is absent or unreadable."""
    try:
        key = json.loads(path.read_text()).get("api_key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) and key else None


def resolve_connection(api_url: str | None, api_key: str | None, env: Mapping[str, str]) -> Connection:
    url = (api_url or default_api_url(env)).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientConfigError(f"the API URL must start with http:// or https://, got {url!r}")
    if api_key:
        return Connection(url, api_key, "--api-key")
    if env.get("RUNLEDGER_API_KEY"):
        return Connection(url, env["RUNLEDGER_API_KEY"], "RUNLEDGER_API_KEY")
    demo = data_dir(env) / DEMO_FILE
    key = demo_api_key(demo)
    if key is not None:
        return Connection(url, key, str(demo))
    raise ClientConfigError(
        f"no API key: pass --api-key or set RUNLEDGER_API_KEY (`runledger up` saves the demo user's key "
        f"in {demo}, which does not exist or has no api_key)"
    )


def _segment(value: str) -> str:
    # Dots too, so "." and ".." stay an id instead of being resolved as path steps.
    return quote(value, safe="").replace(".", "%2E")


def _error_from(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        return ApiError(response.status_code, f"http_{response.status_code}", text)


class ApiClient:
    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: JsonObject | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """The decoded JSON of a 2xx answer (None for 204), or :class:`ApiError` / :class:`ApiUnreachable`."""
        try:
            response = self._http.request(method, path, json=body, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnreachable(
                f"cannot connect to the runledger API at {self.api_url} ({exc or 'connection refused'}); "
                "is `runledger up` running? (set --api-url or RUNLEDGER_API_URL to use another API)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(
                f"the runledger API at {self.api_url} did not answer within {self.timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(f"the request to the runledger API at {self.api_url} failed: {exc}") from exc
        if response.is_error:
            raise _error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code, "invalid_response", f"the API answered with non-JSON: {exc}"
            ) from exc

    def _object(
        self,
        method: str,
        path: str,
        *,
        body: JsonObject | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> JsonObject:
        answer = self.request(method, path, body=body, params=params)
        if not isinstance(answer, dict):
            raise ApiError(200, "invalid_response", f"expected a JSON object from {method} {path}")
        return answer

    # -- schedules --------------------------------------------------------------------------------

    def list_schedules(self) -> JsonObject:
        return self._object("GET", "/api/v1/schedules")

    def get_schedule(self, schedule_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/schedules/{_segment(schedule_id)}")

    def create_schedule(self, body: JsonObject) -> JsonObject:
        return self._object("POST", "/api/v1/schedules", body=body)

    def patch_schedule(self, schedule_id: str, changes: JsonObject) -> JsonObject:
        return self._object("PATCH", f"/api/v1/schedules/{_segment(schedule_id)}", body=changes)

    def trigger_schedule(self, schedule_id: str) -> JsonObject:
        return self._object("POST", f"/api/v1/schedules/{_segment(schedule_id)}/trigger")

    def delete_schedule(self, schedule_id: str) -> None:
        self.request("DELETE", f"/api/v1/schedules/{_segment(schedule_id)}")

    # -- grants -----------------------------------------------------------------------------------

    def list_grants(self) -> JsonObject:
        return self._object("GET", "/api/v1/grants")

    def create_grant(self, body: JsonObject) -> JsonObject:
        return self._object("POST", "/api/v1/grants", body=body)

    def revoke_grant(self, grant_id: str) -> None:
        self.request("DELETE", f"/api/v1/grants/{_segment(grant_id)}")

    # -- runs -------------------------------------------------------------------------------------

    def list_runs(self, params: Mapping[str, str | int]) -> JsonObject:
        return self._object("GET", "/api/v1/runs", params=params)

    def get_run(self, run_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/runs/{_segment(run_id)}")

    def run_charges(self, run_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/runs/{_segment(run_id)}/charges")
