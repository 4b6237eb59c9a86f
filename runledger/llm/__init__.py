"""The model gateway: the only place LiteLLM is imported.

Graph nodes call :func:`complete`; which gateway answers and how the call is metered is bound by the
caller (the execute activity binds a billing meter; a plain script may bind an unmetered gateway). So
graphs stay plain LangGraph code that knows nothing of billing, and billing never depends on a graph
remembering to report usage.
"""

from runledger.llm.context import DeltaSink, Invoke, Meter, bind, complete, current_call_scope
from runledger.llm.gateway import (
    LiteLLMGateway,
    ModelCallInterrupted,
    ModelGatewayError,
    UnpricedModelError,
    model_price,
)
from runledger.llm.types import CallBound, ModelRequest, ModelResponse

__all__ = [
    "CallBound",
    "DeltaSink",
    "Invoke",
    "LiteLLMGateway",
    "Meter",
    "ModelCallInterrupted",
    "ModelGatewayError",
    "ModelRequest",
    "ModelResponse",
    "UnpricedModelError",
    "bind",
    "complete",
    "current_call_scope",
    "model_price",
]
