"""The unmetered-call guard (NO_UNMETERED_MODEL_CALLS): a LiteLLM callback that sees every LiteLLM
call of the process before it reaches a provider.

The gateway marks its own calls (:func:`metered`, a context variable LiteLLM carries into the
threads it runs its hooks on); any other call — graph code calling ``litellm.acompletion`` or
LangChain's ``ChatLiteLLM`` directly — is reported through :func:`context.report_unmetered`. A
provider's own SDK used directly never passes LiteLLM and cannot be seen here (README).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from runledger.llm.context import report_unmetered

_metered: ContextVar[bool] = ContextVar("runledger_metered_call", default=False)


@contextmanager
def metered() -> Iterator[None]:
    token = _metered.set(True)
    try:
        yield
    finally:
        _metered.reset(token)


class UnmeteredCallGuard(CustomLogger):
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        if not _metered.get():
            report_unmetered(model, messages)


def install_guard() -> None:
    """Register the guard once per process."""
    if not any(isinstance(callback, UnmeteredCallGuard) for callback in litellm.callbacks):
        litellm.callbacks.append(UnmeteredCallGuard())
