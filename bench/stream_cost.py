"""What one streamed model call costs the worker's CPU, split into LiteLLM's share and runledger's.

Run it from the repository root (not part of the test suite; about 20 s)::

    .venv/bin/python -m bench.stream_cost                 # 5 and 100 chunks, 40 calls each
    .venv/bin/python -m bench.stream_cost --chunks 100 --calls 80

Against the fake provider of ``bench.latency_bench`` (``bench.slow_provider`` with no delay, in its
own process), one call at a time in this process, it measures this process's CPU per call for:

- **LiteLLM alone**: ``litellm.acompletion(stream=True)`` consumed chunk by chunk through
  LiteLLM's stream wrapper, nothing else (the wrapper and the OpenAI SDK's chunk parsing);
- **the gateway**: ``LiteLLMGateway.invoke`` as the worker calls it: LiteLLM opens the call, the
  gateway reads the server-sent events off its HTTP response (``runledger.llm.stream``), hands every
  delta to a sink, and has LiteLLM price the answer;
- **the call bound**: ``LiteLLMGateway.call_bound`` (LiteLLM's token count of the request), which the
  meter computes before each call to reserve its maximum cost.

The per-chunk figure is the slope between the two chunk counts, so fixed per-call costs cancel.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"

import argparse
import asyncio
import resource
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence

import litellm

from bench.services import REPO_ROOT
from bench.stats import print_table
from runledger.llm.gateway import LiteLLMGateway
from runledger.llm.types import ModelRequest

MODEL = "openai/gpt-4o-mini"
MESSAGES = ({"role": "user", "content": "write a poem about the sea"},)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _per_call_ms(call: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(5):  # warm-up: imports, tokenizer, connection pool
        await call()
    start = _cpu()
    for _ in range(calls):
        await call()
    return (_cpu() - start) * 1000 / calls


async def measure(base: str, calls: int) -> dict[str, float]:
    gateway = LiteLLMGateway(api_base=base, api_key="sk-bench")
    request = ModelRequest(model=MODEL, messages=MESSAGES, max_tokens=400)

    async def litellm_alone() -> None:
        stream = await litellm.acompletion(
            model=MODEL,
            messages=[dict(m) for m in MESSAGES],
            stream=True,
            stream_options={"include_usage": True},
            api_base=base,
            api_key="sk-bench",
            num_retries=0,
            max_tokens=400,
        )
        async for _ in stream:
            pass

    async def sink(_: str) -> None:
        return None

    async def through_gateway() -> None:
        await gateway.invoke(request, sink)

    async def bound() -> None:
        gateway.call_bound(request)

    return {
        "LiteLLM alone": await _per_call_ms(litellm_alone, calls),
        "gateway.invoke": await _per_call_ms(through_gateway, calls),
        "call_bound": await _per_call_ms(bound, calls),
    }


def measure_with_provider(chunks: int, calls: int) -> dict[str, float]:
    """The figures against a fake provider that streams ``chunks`` chunks at once."""
    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.slow_provider", "--delay", "0", "--chunks", str(chunks)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert provider.stdout is not None
        port = provider.stdout.readline().split()[1].decode()
        return asyncio.run(measure(f"http://127.0.0.1:{port}/v1", calls))
    finally:
        assert provider.stdin is not None
        provider.stdin.close()
        provider.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, nargs=2, default=[5, 100], metavar=("FEW", "MANY"))
    parser.add_argument("--calls", type=int, default=40, help="measured calls per figure (default 40)")
    args = parser.parse_args(argv)
    few, many = args.chunks
    low = measure_with_provider(few, args.calls)
    high = measure_with_provider(many, args.calls)
    rows = [
        [name, low[name], high[name], (high[name] - low[name]) / (many - few) * 1000]
        for name in ("LiteLLM alone", "gateway.invoke", "call_bound")
    ]
    print_table(
        f"CPU per streamed call, one at a time ({args.calls} calls each)",
        ["path", f"ms/call, {few} chunks", f"ms/call, {many} chunks", "µs per extra chunk"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
