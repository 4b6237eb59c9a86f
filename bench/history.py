"""Run samples and their Temporal histories: where a run's time goes.

Contract: a :class:`RunSample` is one run as the load generator saw it; :func:`fetch_histories` fills
its ``events`` from Temporal, and :func:`breakdown` / :func:`event_counts` summarise them (the gaps
between consecutive history events over the most common event sequence, and events per run).
Nothing here starts or changes a run.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import pct


@dataclass
class RunSample:
    workflow_id: str
    begun: float  # perf_counter() when the start request was sent
    run_id: str | None = None
    post_s: float | None = None  # API POST latency (graph runs only)
    done: float | None = None  # perf_counter() when the workflow result was in
    ok: bool = False
    error: str | None = None  # why the start failed (no run then)
    events: list[tuple[str, int]] = field(default_factory=list)  # (event type, event time in ns)

    @property
    def e2e_s(self) -> float:
        return (self.done or math.nan) - self.begun

    @property
    def server_s(self) -> float:
        """First to last history event: WorkflowExecutionStarted → WorkflowExecutionCompleted."""
        return (self.events[-1][1] - self.events[0][1]) / 1e9 if self.events else math.nan


def event_name(event_type: int) -> str:
    """EVENT_TYPE_WORKFLOW_TASK_SCHEDULED -> WorkflowTaskScheduled"""
    raw = EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in raw.split("_"))


def short(name: str) -> str:
    return (
        name.replace("WorkflowExecution", "WF")
        .replace("WorkflowTask", "WFT ")
        .replace("ActivityTask", "Act ")
        .replace("MarkerRecorded", "Marker")
    )


#: What each history gap is, for the breakdown table.
STEP_MEANING = {
    ("WorkflowExecutionStarted", "WorkflowTaskScheduled"): "server schedules the first workflow task",
    ("WorkflowTaskScheduled", "WorkflowTaskStarted"): "workflow task waits for the worker (matching)",
    ("WorkflowTaskStarted", "WorkflowTaskCompleted"): "worker runs workflow code (+ local activities)",
    ("WorkflowTaskCompleted", "MarkerRecorded"): "local-activity marker (written with the completion)",
    ("MarkerRecorded", "ActivityTaskScheduled"): "activity scheduled (same completion)",
    ("WorkflowTaskCompleted", "ActivityTaskScheduled"): "activity scheduled (same completion)",
    ("ActivityTaskScheduled", "ActivityTaskStarted"): "activity waits for the worker (0 if eager)",
    ("ActivityTaskStarted", "ActivityTaskCompleted"): "activity body + completion round trip",
    ("ActivityTaskCompleted", "WorkflowTaskScheduled"): "server schedules the next workflow task",
    ("WorkflowTaskCompleted", "WorkflowExecutionCompleted"): "workflow closes (same completion)",
    ("MarkerRecorded", "WorkflowExecutionCompleted"): "workflow closes (same completion)",
}


async def fetch_histories(temporal: Client, samples: Sequence[RunSample], concurrency: int = 16) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(sample: RunSample) -> None:
        async with gate:
            history = await temporal.get_workflow_handle(sample.workflow_id).fetch_history()
        sample.events = [(event_name(e.event_type), e.event_time.ToNanoseconds()) for e in history.events]

    await asyncio.gather(*(one(s) for s in samples if s.workflow_id))


def breakdown(samples: Sequence[RunSample]) -> dict[str, Any]:
    """Median and p95 of every gap between consecutive history events, over the runs that share the
    most common event sequence (runs with retries or extra workflow tasks are counted, not mixed in)."""
    with_history = [s for s in samples if s.events]
    if not with_history:
        return {"sequence": [], "runs": 0, "of": 0, "steps": [], "other_sequences": []}
    sequences = Counter(tuple(name for name, _ in s.events) for s in with_history)
    sequence, count = sequences.most_common(1)[0]
    matching = [s for s in with_history if tuple(name for name, _ in s.events) == sequence]
    steps = []
    for i in range(1, len(sequence)):
        gaps = [(s.events[i][1] - s.events[i - 1][1]) / 1e6 for s in matching]
        steps.append(
            {
                "step": f"{short(sequence[i - 1])} -> {short(sequence[i])}",
                "meaning": STEP_MEANING.get((sequence[i - 1], sequence[i]), ""),
                "p50_ms": pct(gaps, 50),
                "p95_ms": pct(gaps, 95),
            }
        )
    others = [
        {"runs": n, "events": len(seq), "sequence": " ".join(short(name).replace(" ", "") for name in seq)}
        for seq, n in sequences.most_common()[1:4]
    ]
    return {
        "sequence": list(sequence),
        "runs": count,
        "of": len(with_history),
        "steps": steps,
        "other_sequences": others,
    }


def event_counts(samples: Sequence[RunSample]) -> dict[str, float]:
    counts = [len(s.events) for s in samples if s.events]
    if not counts:
        return {"min": math.nan, "median": math.nan, "max": math.nan}
    return {"min": min(counts), "median": statistics.median(counts), "max": max(counts)}
