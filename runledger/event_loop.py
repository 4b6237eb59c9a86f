"""The event loop of runledger's long-running processes (``runledger worker``, ``runledger api``):
uvloop where it is installed (every platform but Windows), asyncio's own loop elsewhere.

The worker's event loop carries hundreds of graph executions at once (their streams, statements and
Temporal's task hand-offs), and the API's every request; uvloop runs the same asyncio programs with
less CPU per callback. ``make bench`` idle, ten bursts each, alternated: worker CPU per run 26.3 →
24.9 ms, API 6.7 → 5.7 ms (bench/README, 2026-12-06). uvicorn picks uvloop by itself when it is
installed (``loop="auto"``); the worker and the bench's services start through :func:`run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop (see the module docstring), like ``asyncio.run``."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop is not installed there
        return asyncio.run(main)
    return uvloop.run(main)
