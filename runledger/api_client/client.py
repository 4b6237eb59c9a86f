"""The client itself: :class:`ApiClient`, one method per API call the CLI makes, and the two ways a
call fails (:class:`ApiError`, :class:`ApiUnreachable`). Contract: see :mod:`runledger.api_client`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from runledger.api_client.sse import RunEvent, SseParser

DEFAULT_TIMEOUT_SECONDS = 30.0
#: The values of ``contracts.schedules.Overlap`` (not imported: that module pulls in temporalio).
OVERLAP_POLICIES = ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all")
USER_AGENT = "runledger-cli"
#: The API pings an open event stream every 15 s: this long without a byte means the connection is dead.
EVENT_STREAM_READ_TIMEOUT_SECONDS = 45.0
#: Reconnection backoff of an event stream: first delay (unless the server sent ``retry:``), the cap,
#: and how many attempts in a row may bring no event before giving up.
RECONNECT_DELAY_SECONDS = 0.5
RECONNECT_MAX_DELAY_SECONDS = 10.0
MAX_RECONNECTS = 8
TERMINAL_EVENTS = frozenset({"done", "error"})
#: The values of ``contracts.runs.TERMINAL_STATUSES`` (not imported, as above).
TERMINAL_STATUSES = frozenset({"success", "error", "cancelled", "skipped"})
#: Answers to an event stream request that a reconnection may outlast (a proxy in front of a restart).
RETRYABLE_STATUS = frozenset({502, 503, 504})

JsonObject = dict[str, Any]


class ApiUnreachable(Exception):
    """The API gave no answer: connection refused, timed out, or dropped."""


class ApiError(Exception):
    """The API answered with an error envelope ``{"error": {"code", "message"}}``."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


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
        api_key: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``api_key`` None: no ``Authorization`` header (a webhook delivery carries a signature instead)."""
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": USER_AGENT}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.api_url,
            headers=headers,
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
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON of a 2xx answer (None for 204), or :class:`ApiError` / :class:`ApiUnreachable`.
        ``content``: raw body bytes sent as they are, instead of ``body`` as JSON."""
        try:
            response = self._http.request(
                method, path, json=body, params=params, content=content, headers=headers
            )
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
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonObject:
        answer = self.request(method, path, body=body, params=params, content=content, headers=headers)
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

    # -- API keys -------------------------------------------------------------------------------

    def list_api_keys(self) -> JsonObject:
        return self._object("GET", "/api/v1/me/api-keys")

    def create_api_key(self, body: JsonObject) -> JsonObject:
        return self._object("POST", "/api/v1/me/api-keys", body=body)

    def revoke_api_key(self, key_id: str) -> None:
        self.request("DELETE", f"/api/v1/me/api-keys/{_segment(key_id)}")

    # -- webhooks ---------------------------------------------------------------------------------

    def list_webhook_triggers(self) -> JsonObject:
        return self._object("GET", "/api/v1/webhook-triggers")

    def create_webhook_trigger(self, body: JsonObject) -> JsonObject:
        return self._object("POST", "/api/v1/webhook-triggers", body=body)

    def list_connections(self) -> JsonObject:
        return self._object("GET", "/api/v1/connections")

    def create_connection(self, body: JsonObject) -> JsonObject:
        return self._object("POST", "/api/v1/connections", body=body)

    def delete_connection(self, connection_id: str) -> None:
        self.request("DELETE", f"/api/v1/connections/{_segment(connection_id)}")

    def list_webhook_deliveries(self, params: Mapping[str, str | int]) -> JsonObject:
        return self._object("GET", "/api/v1/webhook-deliveries", params=params)

    def delete_webhook_trigger(self, trigger_id: str) -> None:
        self.request("DELETE", f"/api/v1/webhook-triggers/{_segment(trigger_id)}")

    def deliver_webhook(self, source: str, body: bytes, headers: Mapping[str, str]) -> JsonObject:
        """``POST /api/v1/webhooks/{source}`` with ``body`` as it is and the caller's signature
        ``headers`` (``contracts.webhooks``): 202 when it started runs, 200 for a re-delivery; the runs
        either way. Meant for a client made without an API key, as a sender has none."""
        return self._object(
            "POST",
            f"/api/v1/webhooks/{_segment(source)}",
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )

    # -- runs -------------------------------------------------------------------------------------

    def list_runs(self, params: Mapping[str, str | int]) -> JsonObject:
        return self._object("GET", "/api/v1/runs", params=params)

    def get_run(self, run_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/runs/{_segment(run_id)}")

    def run_charges(self, run_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/runs/{_segment(run_id)}/charges")

    def run_checkpoints(self, run_id: str) -> JsonObject:
        return self._object("GET", f"/api/v1/runs/{_segment(run_id)}/checkpoints")

    def resume_run(self, run_id: str, value: Any) -> JsonObject:
        return self._object("POST", f"/api/v1/runs/{_segment(run_id)}/resume", body={"value": value})

    def replay_run(self, run_id: str, body: JsonObject) -> JsonObject:
        return self._object("POST", f"/api/v1/runs/{_segment(run_id)}/replay", body=body)

    def run_events(
        self,
        run_id: str,
        *,
        after: str | None = None,
        on_reconnect: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[RunEvent]:
        """The run's events (``GET /api/v1/runs/{id}/events``) as they happen, after event ``after``,
        up to and including the terminal ``done``/``error`` event.

        A dropped connection, a silent one (no byte, not even a ping, within
        ``EVENT_STREAM_READ_TIMEOUT_SECONDS``) or a stream the API ended before the terminal event is
        resumed after the last event received (``Last-Event-ID``), with backoff; ``on_reconnect`` is
        told why. When a stream ends without a terminal event and the run has ended (its events were
        already read, or pruned), the iteration ends: the caller asks the run for its status.
        :class:`ApiUnreachable` after
        ``MAX_RECONNECTS`` attempts in a row that brought nothing; :class:`ApiError` at once for an error
        answer (unknown run, bad key).
        """
        path = f"/api/v1/runs/{_segment(run_id)}/events"
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, EVENT_STREAM_READ_TIMEOUT_SECONDS))
        last_id, failures, server_delay, connected = after, 0, None, False
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            received = False
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    connected = True
                    if response.is_error:
                        response.read()
                        if response.status_code not in RETRYABLE_STATUS:
                            raise _error_from(response)
                        raise _RetryableStream(f"the API answered {response.status_code}")
                    parser = SseParser(last_id)
                    for line in response.iter_lines():
                        message = parser.feed(line)
                        server_delay = parser.retry_ms / 1000 if parser.retry_ms else server_delay
                        if message is None:
                            continue
                        name, data, last_id = message
                        received, failures = True, 0
                        try:
                            decoded: Any = json.loads(data)
                        except ValueError:
                            decoded = data
                        yield RunEvent(last_id, name, decoded)
                        if name in TERMINAL_EVENTS:
                            return
                # The API ends a stream early only when it stops (a restart); or the run is over and
                # its last events are behind us (or pruned): the run's status tells which.
                if self._run_ended(run_id):
                    return
                failures = 0 if received else failures + 1
                reason = "the event stream ended before the run did"
            except (httpx.TransportError, _RetryableStream) as exc:
                if not connected:
                    # Never reached: a wrong URL or a stopped API fails at once, as every command does.
                    raise ApiUnreachable(
                        f"cannot connect to the runledger API at {self.api_url} ({exc or type(exc).__name__}); "
                        "is `runledger up` running? (set --api-url or RUNLEDGER_API_URL to use another API)"
                    ) from exc
                failures += 1
                reason = f"the event stream broke ({type(exc).__name__}: {exc or 'no detail'})"
            if failures > MAX_RECONNECTS:
                raise ApiUnreachable(
                    f"lost the event stream of run {run_id} at {self.api_url} and could not resume it "
                    f"after {MAX_RECONNECTS} attempts ({reason})"
                )
            delay = min(
                (server_delay or RECONNECT_DELAY_SECONDS) * 2 ** max(failures - 1, 0),
                RECONNECT_MAX_DELAY_SECONDS,
            )
            if on_reconnect is not None:
                after_text = f"after event {last_id}" if last_id is not None else "from the start"
                on_reconnect(f"{reason}; resuming {after_text} in {delay:g}s")
            sleep(delay)

    def _run_ended(self, run_id: str) -> bool:
        try:
            return self.get_run(run_id).get("status") in TERMINAL_STATUSES
        except ApiUnreachable:
            return False  # the API is restarting: resume the stream when it is back


class _RetryableStream(Exception):
    """An event stream answer worth another attempt (a gateway error while the API restarts)."""
