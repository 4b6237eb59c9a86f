"""Logging of every runledger process: one JSON object per line, through structlog.

Contract:
- :func:`configure_logging` is called once by each process entry (``runledger worker|api|migrate|
  reconcile``) before any work. It installs one handler on the root logger (stderr unless a stream is
  given), so structlog's own loggers and the standard library's (uvicorn, temporalio, alembic,
  LiteLLM, httpx) all come out in the same format: ``json=True`` one JSON object per line,
  ``json=False`` structlog's console format for people.
- Every line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger`` and ``event``, plus whatever
  is bound in :mod:`structlog.contextvars` where it was logged. In the worker that is ``workflow_id``,
  ``run_id``, ``activity`` and ``attempt`` (:mod:`runledger.log_context`) and, around a model call,
  ``node`` and ``call_key`` (:func:`runledger.llm.call`).
- Temporal's own loggers attach the workflow or activity they log for as a record attribute; their
  ``workflow_id`` (and our ``run_id``, derived from it) are lifted into the line too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import IO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from runledger.contracts.ids import GRAPH_RUN_WORKFLOW_PREFIX, run_id_from_workflow_id

#: Loggers too chatty at INFO (LiteLLM logs every completion, httpx every request): WARNING unless DEBUG.
QUIET_AT_INFO = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore")
#: Loggers that may carry handlers of their own (LiteLLM's from its import, uvicorn's from its default
#: log config); they go through the root handler instead.
OWN_HANDLERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "uvicorn", "uvicorn.error", "uvicorn.access")


def run_context(workflow_id: str | None) -> dict[str, str]:
    """``workflow_id`` and, for a graph run's workflow, our ``run_id``."""
    if not workflow_id:
        return {}
    context = {"workflow_id": workflow_id}
    if workflow_id.startswith(GRAPH_RUN_WORKFLOW_PREFIX):
        context["run_id"] = run_id_from_workflow_id(workflow_id)
    return context


def _temporal_record_context(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Lift the workflow of a temporalio log record (``extra={"temporal_workflow": {...}}`` or
    ``temporal_activity``) into the line, unless the context already named it."""
    record = event_dict.get("_record")
    for attribute in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, attribute, None)
        if isinstance(details, Mapping):
            for key, value in run_context(details.get("workflow_id")).items():
                event_dict.setdefault(key, value)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_record_context,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str = "info", *, json: bool = True, stream: IO[str] | None = None) -> None:
    """Route structlog and the standard library's logging through one JSON (or console) handler."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared = _shared_processors()
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in OWN_HANDLERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(
            numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        )
    logging.captureWarnings(True)
