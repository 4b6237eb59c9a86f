"""The built-in offline model: deterministic answers, no network, a real price in LiteLLM's registry.

The answer comes from LiteLLM's own ``mock_response`` / ``mock_tool_calls`` path, so usage, cost and
the call id are produced by LiteLLM exactly as for a real provider; only the words are made here.

Contract (:func:`offline_answer`): with tools bound (and ``tool_choice`` not ``"none"``), a request
whose last message is not a tool result is answered with one tool call — of the tool ``tool_choice``
names, else the first bound tool — with arguments valid for that tool's JSON schema
(:func:`sample_arguments`); a tool result, or a request without tools, is answered with text. So a
ReAct agent runs end to end offline: call a tool, read its result, answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from runledger.llm.types import ModelRequest, content_text

OFFLINE_MODEL = "runledger/offline"

#: Registered in LiteLLM's model registry at gateway start-up. USD per token.
OFFLINE_MODEL_PRICE = {
    OFFLINE_MODEL: {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "litellm_provider": "openai",
        "mode": "chat",
        "max_tokens": 4096,
        "cache_creation_input_token_cost": 0.0,
        "cache_read_input_token_cost": 0.0,
    }
}

_IMAGES = (
    "the lantern light",
    "a quiet river",
    "the morning frost",
    "an open door",
    "the patient stone",
    "a paper boat",
    "the falling snow",
    "a distant bell",
)
_VERBS = ("remembers", "carries", "forgives", "unfolds", "keeps", "returns to", "waits for", "sings of")


def offline_text(prompt: str) -> str:
    """Four short lines chosen from the prompt's hash: the same prompt always gives the same text."""
    first_line = prompt.strip().splitlines()[0] if prompt.strip() else "nothing"
    # "Write a poem about the sea" / "Topic: the sea" -> "the sea"
    subject = re.split(r"\babout\s+|:\s*", first_line)[-1].strip()[:80] or first_line[:80]
    digest = hashlib.sha256(prompt.encode()).digest()
    lines = [
        f"{_IMAGES[digest[i] % len(_IMAGES)].capitalize()} {_VERBS[digest[i + 4] % len(_VERBS)]} {subject}"
        for i in range(4)
    ]
    return "\n".join(lines)


#: A word of the user's message that looks like an identifier (has a digit): ``A-1001``, ``order42``.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*")


def _sample(schema: Any, hint: str, defs: dict[str, Any], depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        return _sample(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), hint, defs, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if not (isinstance(o, dict) and o.get("type") == "null")]
        if options:
            return _sample(options[0], hint, defs, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        found = _IDENTIFIER.search(hint)
        text = found.group(0) if found else (hint.strip().split() or ["offline"])[0]
        text = text[: schema.get("maxLength", 200)]
        return text.ljust(schema.get("minLength", 0), "x")
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True
    if kind == "array":
        return [
            _sample(schema.get("items", {}), hint, defs, depth + 1) for _ in range(schema.get("minItems", 0))
        ]
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _sample(properties.get(name, {}), hint, defs, depth + 1)
            for name in schema.get("required", [])
        }
    return None


def sample_arguments(parameters: dict[str, Any], hint: str) -> dict[str, Any]:
    """Arguments valid for a tool's JSON schema: every required property, from the user's words
    where a string is wanted (the first identifier-like word, e.g. an order id)."""
    value = _sample(parameters, hint, parameters.get("$defs", parameters.get("definitions", {})))
    return value if isinstance(value, dict) else {}


def chosen_tool(request: ModelRequest) -> dict[str, Any] | None:
    """The tool the offline model calls for this request, or None when it answers with text."""
    if not request.tools or request.tool_choice == "none":
        return None
    if request.messages and request.messages[-1].get("role") == "tool":
        return None
    choice = request.tool_choice
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        for tool in request.tools:
            if tool.get("function", {}).get("name") == wanted:
                return tool
    return request.tools[0]


def offline_answer(request: ModelRequest) -> tuple[str, list[dict[str, Any]]]:
    """The offline model's text and tool calls (OpenAI format) for a request (see the contract)."""
    tool = chosen_tool(request)
    if tool is not None:
        function = tool.get("function", {})
        arguments = sample_arguments(function.get("parameters") or {}, request.last_user_text())
        call_id = "call_" + hashlib.sha256(request.fingerprint().encode()).hexdigest()[:24]
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": function.get("name", ""), "arguments": json.dumps(arguments)},
        }
        return "", [call]
    last = request.messages[-1] if request.messages else {}
    if last.get("role") == "tool":
        result = content_text(last.get("content"))[:300]
        return f"Here is what I found: {result}", []
    return offline_text(request.last_user_text()), []
