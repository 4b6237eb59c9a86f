"""Running a graph one durable super-step at a time (COMPLETED_STEPS_NEVER_RERUN).

Every execution runs with the Postgres checkpointer on the run's LangGraph thread. LangGraph saves a
checkpoint after each super-step; this driver decides where an execution starts:

- the thread's newest checkpoint was written by this run → continue from it (``None`` input): a
  retried or resumed execute activity runs only the steps after the last completed one, so their
  nodes' side effects and model calls do not happen again;
- otherwise (a new thread, or a thread whose earlier runs share its state through ``state_key``) →
  start with the run's input, on top of the thread's state.

A resume after ``interrupt()`` sends ``Command(resume=value)``. After each super-step a ``step``
event (nodes, checkpoint id, the run's cost so far) is appended as a fact of the run. The outcome is
the graph's output (its output channels, as ``ainvoke`` returns them) or the pending interrupts.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from db import events
from db.checkpoints import CheckpointStore, copy_checkpoint
from db.session import Database

#: Receives a finished super-step: step number, checkpoint id, the nodes that ran in it, the nodes
#: that run next from that checkpoint (empty after the last step).
StepSink = Callable[[int, str, list[str], list[str]], Awaitable[None]]

_NOT_NODES = frozenset({"__start__", "__interrupt__"})


class CheckpointNotFoundError(LookupError):
    """The checkpoint a replay starts from no longer exists (its thread was deleted)."""


@dataclass(frozen=True)
class GraphOutcome:
    #: The graph's output when it finished; None while it waits on an interrupt.
    output: Any
    #: The values of the pending ``interrupt()`` calls (empty when the graph finished).
    interrupts: list[Any] = field(default_factory=list)
    #: Where this execution started: ``input`` (the run's input) or ``checkpoint`` (continued).
    started_from: str = "input"


_stores: weakref.WeakKeyDictionary[Database, CheckpointStore] = weakref.WeakKeyDictionary()


async def checkpoints_for(database: Database) -> CheckpointStore:
    """The process's checkpoint store on ``database``: opened (and its schema checked) on first
    use, closed when the database is disposed."""
    store = _stores.get(database)
    if store is None:
        opened = CheckpointStore(database.url)
        await opened.open()
        store = _stores.setdefault(database, opened)
        if store is opened:
            database.closers.append(store.close)
        else:  # another execution opened one meanwhile
            await opened.close()
    return store


def step_sink(database: Database, run_id: str) -> StepSink:
    """Appends the run's ``step`` events with the cost so far, each one statement that commits
    before the next step begins (``db.events.append_step``)."""

    async def emit(step: int, checkpoint_id: str, nodes: list[str], following: list[str]) -> None:
        data = {"step": step, "checkpoint_id": checkpoint_id, "nodes": nodes, "next": following}
        await database.single_statement(functools.partial(events.append_step, run_id=run_id, data=data))

    return emit


async def run_steps(
    graph: Pregel[Any, Any, Any, Any],
    *,
    saver: BaseCheckpointSaver[Any],
    run_input: dict[str, Any],
    config: RunnableConfig,
    run_id: str,
    on_step: StepSink,
    resume: Any = None,
    resuming: bool = False,
    fork: tuple[str, str] | None = None,
) -> GraphOutcome:
    """Run (or continue) ``graph`` on ``config``'s thread with ``saver``; see the module docstring.
    ``config["configurable"]["run_id"]`` must be ``run_id``: LangGraph copies it into every
    checkpoint's metadata, which is how a later attempt knows the checkpoint is this run's.
    ``fork`` is ``(thread, checkpoint_id)`` of a replay's original: copied once, then continued."""
    durable = graph.copy(update={"checkpointer": saver})
    if fork is not None and await saver.aget_tuple(config) is None:
        # A replay from a checkpoint: its thread starts as the original's state at that step.
        source_thread, checkpoint_id = fork
        copied = await copy_checkpoint(
            saver,
            source_thread=source_thread,
            checkpoint_id=checkpoint_id,
            target_thread=str(config["configurable"]["thread_id"]),
            run_id=run_id,
        )
        if copied is None:
            raise CheckpointNotFoundError(f"checkpoint {checkpoint_id} of thread {source_thread} is gone")
    # The thread's head checkpoint alone (not the whole state LangGraph would rebuild from it).
    head = await saver.aget_tuple(config)
    ours = head is not None and bool(head.metadata) and head.metadata.get("run_id") == run_id
    payload: Any
    if resuming:
        payload = Command(resume=resume)
    elif ours:
        payload = None
    else:
        payload = run_input
    output: Any = None
    nodes: list[str] = []
    # LangGraph streams every pause (``interrupt()`` and interrupt_before/after) as an
    # ``__interrupt__`` update: only then is the state read back for the pending values.
    paused = False
    async for mode, chunk in durable.astream(
        payload,
        config,
        stream_mode=["values", "updates", "checkpoints"],
        output_keys=durable.output_channels,
    ):
        data: Any = chunk
        if mode == "values":
            output = data
        elif mode == "updates":
            paused = paused or "__interrupt__" in data
            nodes.extend(name for name in data if name not in _NOT_NODES)
        elif mode == "checkpoints" and data["metadata"].get("source") == "loop" and nodes:
            checkpoint_id = str(data["config"]["configurable"]["checkpoint_id"])
            following = [str(n) for n in data.get("next", [])]
            await on_step(int(data["metadata"]["step"]), checkpoint_id, nodes, following)
            nodes = []
    pending = [i.value for i in (await durable.aget_state(config)).interrupts] if paused else []
    started = "checkpoint" if ours or resuming else "input"
    if pending:
        return GraphOutcome(output=None, interrupts=pending, started_from=started)
    return GraphOutcome(output=output, started_from=started)
