"""Stable error codes shared by the API, activities and workflows.

A code is part of the public contract (SPEC §4 error envelope, ``graph_runs.error_code``): codes are
added, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    INVALID_CURSOR = "invalid_cursor"
    #: A header value over the boundary's limit (400).
    HEADER_TOO_LARGE = "header_too_large"
    API_KEY_NOT_FOUND = "api_key_not_found"
    USER_NOT_FOUND = "user_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    GRAPH_NOT_FOUND = "graph_not_found"
    RUN_NOT_FOUND = "run_not_found"
    ACCOUNT_NOT_FOUND = "billing_account_not_found"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    TOPUP_REFERENCE_CONFLICT = "topup_reference_conflict"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"
    INTERNAL_ERROR = "internal_error"
    #: A dashboard form without its session's CSRF token (403).
    CSRF_TOKEN_INVALID = "csrf_token_invalid"
    SCHEDULE_NOT_FOUND = "schedule_not_found"
    BULK_OPERATION_NOT_FOUND = "bulk_operation_not_found"
    # Webhooks (POST /api/v1/webhooks/{source} and the triggers behind it).
    WEBHOOK_SOURCE_NOT_FOUND = "webhook_source_not_found"
    WEBHOOK_TRIGGER_NOT_FOUND = "webhook_trigger_not_found"
    INVALID_SIGNATURE = "invalid_signature"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_PAYLOAD = "invalid_payload"
    #: A request that waits for its run's answer (``/v1/chat/completions``) gave up; the run goes on.
    RUN_WAIT_TIMEOUT = "run_wait_timeout"
    # Execution-time codes, stored on graph_runs.error_code.
    GRAPH_FAILED = "graph_failed"
    MODEL_NOT_PRICED = "model_not_priced"
    MODEL_PROVIDER_ERROR = "model_provider_error"
    RUN_CANCELLED = "run_cancelled"
    CHARGE_CONFLICT = "charge_conflict"
    #: A run of the same ``state_key`` thread is still going (one run of a thread at a time).
    THREAD_BUSY = "thread_busy"
    #: A run paused for input (``interrupt()`` or an approval) was not resumed in time.
    INPUT_TIMEOUT = "input_timeout"
    #: ``POST /runs/{id}/resume`` on a run that is not waiting for input.
    RUN_NOT_PAUSED = "run_not_paused"
    #: A replay names a checkpoint that is not one of its original's steps (or no longer exists).
    CHECKPOINT_NOT_FOUND = "checkpoint_not_found"
    #: Raised by the execute activity when the next call is not covered; the workflow pauses.
    CREDITS_EXHAUSTED = "credits_exhausted"
    # Set by the run sweeper (HOLDS_ALWAYS_RELEASED) on a run whose workflow ended without
    # finalizing it, or no longer exists.
    WORKFLOW_TERMINATED = "workflow_terminated"
    WORKFLOW_TIMED_OUT = "workflow_timed_out"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_MISSING = "workflow_missing"
