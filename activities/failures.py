"""How a failed graph execution is told to Temporal: what a retry can fix is retried, what it
cannot is not.

- Typed refusals (a denied grant, a run no longer running, credits exhausted, an unpriced model, a
  replay's checkpoint that is gone) and
  exceptions of the graph's own code are non-retryable: running the same code on the same state
  again gives the same answer.
- Infrastructure trouble is retryable: database errors of a connection or server kind (never a
  constraint or a bad statement, which are bugs), network and timeout errors, a provider that
  failed, a charge that could not be written yet. Settled calls are replayed on retry, never paid
  again, and owed charges are written first (``LedgerMeter.settle_owed``).

An exception counts as infrastructure when it, or any exception in its ``__cause__`` /
``__context__`` chain (LangGraph and SQLAlchemy wrap what they raise), is one of those kinds.
"""

from __future__ import annotations

import psycopg
import sqlalchemy.exc
from temporalio.exceptions import ApplicationError

from activities.graph_steps import CheckpointNotFoundError
from activities.metering import (
    ChargeNotWrittenError,
    CreditsExhaustedError,
    GrantDeniedError,
    RunNotRunningError,
)
from runledger.contracts.errors import ErrorCode
from runledger.llm import ModelGatewayError, UnpricedModelError

#: The stable type of a retryable infrastructure failure (database, network) of an execution.
TRANSIENT_ERROR = "transient_error"

_TRANSIENT: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # the connection pool's wait
    sqlalchemy.exc.DisconnectionError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OSError,  # ConnectionError, socket errors
    TimeoutError,
    ChargeNotWrittenError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may succeed where this failed (see the module docstring)."""
    for link in _chain(exc):
        if isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, _TRANSIENT):
            return True
    return False


def execution_failure(exc: Exception) -> ApplicationError:
    """The ``ApplicationError`` the execute activity raises for ``exc``."""
    if isinstance(exc, GrantDeniedError):
        return ApplicationError(str(exc), type=exc.code, non_retryable=True)
    if isinstance(exc, RunNotRunningError):
        return ApplicationError(str(exc), type="run_not_running", non_retryable=True)
    if isinstance(exc, CreditsExhaustedError):
        return ApplicationError(str(exc), exc.needed, type=ErrorCode.CREDITS_EXHAUSTED, non_retryable=True)
    if isinstance(exc, CheckpointNotFoundError):
        return ApplicationError(str(exc), type=ErrorCode.CHECKPOINT_NOT_FOUND, non_retryable=True)
    if isinstance(exc, UnpricedModelError):
        return ApplicationError(str(exc), type=ErrorCode.MODEL_NOT_PRICED, non_retryable=True)
    if isinstance(exc, ModelGatewayError):
        # Transient by default: Temporal retries it; settled calls are not repeated.
        return ApplicationError(str(exc), type=ErrorCode.MODEL_PROVIDER_ERROR)
    if is_transient(exc):
        return ApplicationError(f"{type(exc).__name__}: {exc}", type=TRANSIENT_ERROR)
    # A bug or bad state in graph code: retrying runs the same code again, so stop here.
    return ApplicationError(f"{type(exc).__name__}: {exc}", type=ErrorCode.GRAPH_FAILED, non_retryable=True)
