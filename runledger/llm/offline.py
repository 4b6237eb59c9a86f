"""The built-in offline model: deterministic text, no network, a real price in LiteLLM's registry.

The text comes from LiteLLM's own ``mock_response`` path, so usage, cost and the call id are produced
by LiteLLM exactly as for a real provider; only the words are made here.
"""

from __future__ import annotations

import hashlib
import re

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
