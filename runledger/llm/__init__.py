"""The model gateway: the only place LiteLLM is imported.

Graph code calls models through ``runledger.sdk.ChatModel``, which calls :func:`call`; which gateway
answers and how the call is metered is bound by the execute activity (:func:`bind`). So graphs stay
plain LangGraph code that knows nothing of billing, and billing never depends on a graph remembering
to report usage. A LiteLLM call that bypasses :func:`call` is reported by the guard (``guard.py``).
"""

from runledger.llm.context import (
    Binding,
    ChunkSink,
    DeltaSink,
    Gateway,
    Invoke,
    Meter,
    ModelNotBoundError,
    UnmeteredCall,
    UnmeteredSink,
    bind,
    call,
    current_call_scope,
    default_model,
    run_loop,
)
from runledger.llm.gateway import (
    LiteLLMGateway,
    ModelCallInterrupted,
    ModelGatewayError,
    UnpricedModelError,
    model_price,
)
from runledger.llm.types import CallBound, ModelDelta, ModelRequest, ModelResponse, ToolCall, ToolCallChunk

__all__ = [
    "Binding",
    "CallBound",
    "ChunkSink",
    "DeltaSink",
    "Gateway",
    "Invoke",
    "LiteLLMGateway",
    "Meter",
    "ModelCallInterrupted",
    "ModelDelta",
    "ModelGatewayError",
    "ModelNotBoundError",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolCallChunk",
    "UnmeteredCall",
    "UnmeteredSink",
    "UnpricedModelError",
    "bind",
    "call",
    "current_call_scope",
    "default_model",
    "model_price",
    "run_loop",
]
