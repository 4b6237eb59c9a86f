"""Composition root of the worker process: graphs, database, model gateway, activities, Temporal worker.

Start-up order (``run_worker``): the graphs are loaded first (``runledger.projects``: the built-in
ones and the configured project; a bad project raises ``ProjectError`` before anything connects),
their models are checked for a price, the catalog is published to Postgres, then the worker polls.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypedDict

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.worker import (
    FixedSizeSlotSupplier,
    ResourceBasedSlotConfig,
    ResourceBasedSlotSupplier,
    ResourceBasedTunerConfig,
    Worker,
    WorkerTuner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notify import NotifyActivities
from activities.reconcile import ReconcileActivities
from activities.runs import RunActivities
from activities.schedules import ScheduleActivities
from activities.sweep import SweepActivities
from db import catalog, prices
from db.session import Database
from runledger.config import Settings
from runledger.contracts.reconcile import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW, ReconcileInput
from runledger.contracts.scrub import Scrubber
from runledger.llm import LiteLLMGateway, UnpricedModelError, model_price
from runledger.log_context import LogContextInterceptor
from runledger.processes import freeze_startup_heap
from runledger.projects import GraphRegistry, ProjectError, load_registry
from runledger.telemetry import RunTracer, build_run_tracer, install_tracing, known_secrets, scrubbing_client
from workflows.registry import WORKFLOWS

#: How long a database step waits for one of the worker's (bounded) pool connections. Under a burst
#: of hundreds of runs on one account the per-call reservations queue on the account's lock, each
#: holding a connection; waiting is cheaper than failing the graph execution for Temporal to retry.
WORKER_POOL_TIMEOUT_SECONDS = 180.0

#: How often, at most, a running activity's heartbeat reaches Temporal (see build_worker): 20 s of
#: slack within the graph's 30 s heartbeat timeout; 1,000 graph executions running longer than it
#: send 100 heartbeats a second.
HEARTBEAT_THROTTLE = timedelta(seconds=10)

#: With the resource-based tuner: graph executions begun whatever the load, and the least time
#: between two more (the supplier's default, 50 ms, capped a worker at 20 executions begun a second:
#: half the idle runs/s of fixed slots in ``make bench``).
EXECUTION_SLOTS_ALWAYS = 10
EXECUTION_SLOT_RAMP = timedelta(milliseconds=10)

#: The sandbox re-imports a workflow's modules for every run; our pure contracts and retry policies
#: are deterministic and import-cheap, so they are shared instead (measured: about a third less
#: workflow-side CPU per run).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "runledger.contracts", "workflows.policies"
    )
)


log = logging.getLogger("runledger.worker")


@dataclass
class WorkerDeps:
    database: Database
    gateway: LiteLLMGateway
    #: One per process (a Langfuse client when configured); the default traces to OpenTelemetry only.
    tracer: RunTracer = field(default_factory=RunTracer)
    #: The graphs this worker serves, loaded once; the default is the built-in graphs only.
    registry: GraphRegistry = field(default_factory=load_registry)


def load_graphs(settings: Settings) -> GraphRegistry:
    """The built-in graphs and ``RUNLEDGER_GRAPHS_CONFIG``'s project; ``ProjectError`` (one line) for a
    bad project."""
    return load_registry(settings.graphs_config)


def check_models(registry: GraphRegistry, gateway: LiteLLMGateway) -> None:
    """Fail at start-up, not at a run, when a graph's own model has no price."""
    for loaded in registry:
        if loaded.spec.model is None:
            continue
        try:
            gateway.ensure_priced(loaded.spec.model)
        except UnpricedModelError as exc:
            name = loaded.spec.graph_id.split(":", 1)[1]
            raise ProjectError(loaded.spec.source, str(exc), entry=f"runledger.graphs.{name}.model") from exc


async def publish_catalog(database: Database, registry: GraphRegistry, default_model: str) -> None:
    """Publish every graph this worker serves, and LiteLLM's price of every model they use (the
    default model for graphs that name none): the API reads both only from Postgres."""
    models = {spec.model or default_model for spec in registry.specs} | {default_model}
    async with database.transaction() as session:
        published = await catalog.publish(session, registry.specs)
        await prices.publish(
            session, {model: model_price(model) for model in models}, default_model=default_model
        )
    log.info(
        "published the graph catalog: %s",
        ", ".join(f"{p.graph_id}@{p.version}{'' if p.changed else ' (unchanged)'}" for p in published),
    )


def build_deps(settings: Settings, registry: GraphRegistry | None = None) -> WorkerDeps:
    gateway = LiteLLMGateway(
        api_base=settings.model_api_base,
        api_key=settings.model_api_key.get_secret_value() if settings.model_api_key else None,
        timeout_seconds=settings.model_timeout_seconds,
        model_registry=settings.model_registry,
    )
    # Fail at start-up, not at the first run, when the default model has no price.
    gateway.ensure_priced(settings.default_model)
    registry = registry or load_graphs(settings)
    check_models(registry, gateway)
    return WorkerDeps(
        database=Database(
            settings.require_database_url(),
            pool_size=settings.worker_db_pool_size,
            max_overflow=0,
            pool_timeout=WORKER_POOL_TIMEOUT_SECONDS,
            pre_ping=False,
            statement_pool_size=settings.worker_statement_pool_size,
        ),
        gateway=gateway,
        tracer=build_run_tracer(settings),
        registry=registry,
    )


def build_worker(
    client: Client,
    settings: Settings,
    deps: WorkerDeps,
    *,
    activities_cls: type[RunActivities] = RunActivities,
) -> Worker:
    acts = activities_cls(
        database=deps.database,
        gateway=deps.gateway,
        settings=settings,
        registry=deps.registry,
        tracer=deps.tracer,
    )
    slots = ScheduleActivities(database=deps.database, settings=settings)
    reconcile = ReconcileActivities(database=deps.database)
    sweeper = SweepActivities(database=deps.database, settings=settings, tracer=deps.tracer)
    notifier = NotifyActivities(database=deps.database, settings=settings)
    return Worker(
        # Every failure this worker records in history is scrubbed (NO_SECRETS_IN_HISTORY).
        scrubbing_client(client, Scrubber(known_secrets(settings))),
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        **capacity(settings),
        activities=[
            acts.authorize,
            acts.execute,
            acts.pause,
            acts.pause_for_input,
            acts.resume,
            acts.finalize,
            slots.record_slot,
            reconcile.reconcile,
            sweeper.sweep,
            notifier.notify,
        ],
        # Every log line of an activity carries its workflow_id and run_id.
        interceptors=[LogContextInterceptor()],
        # Temporal sends an activity's heartbeats at most every 0.8 x its heartbeat timeout by
        # default (24 s of the graph's 30 s): 6 s of slack, which a loaded server or worker exceeds,
        # and the execution is then timed out and retried while its model calls are at the provider.
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )


class Capacity(TypedDict, total=False):
    max_concurrent_activities: int
    max_concurrent_workflow_tasks: int
    max_concurrent_local_activities: int
    tuner: WorkerTuner
    max_cached_workflows: int


def capacity(settings: Settings) -> Capacity:
    """The worker's slots, from the settings. ``resource_based``: graph executions get slots from
    Temporal's resource-based supplier (up to ``worker_max_activities``, while CPU and memory stay
    under their targets), workflow tasks and the short database steps fixed counts."""
    if settings.worker_tuner == "resource_based":
        resources = ResourceBasedTunerConfig(
            target_memory_usage=settings.worker_target_memory, target_cpu_usage=settings.worker_target_cpu
        )
        return Capacity(
            tuner=WorkerTuner.create_composite(
                workflow_supplier=FixedSizeSlotSupplier(settings.worker_max_workflow_tasks),
                activity_supplier=ResourceBasedSlotSupplier(
                    ResourceBasedSlotConfig(
                        minimum_slots=EXECUTION_SLOTS_ALWAYS,
                        maximum_slots=settings.worker_max_activities,
                        ramp_throttle=EXECUTION_SLOT_RAMP,
                    ),
                    resources,
                ),
                local_activity_supplier=FixedSizeSlotSupplier(settings.worker_max_local_activities),
                nexus_supplier=FixedSizeSlotSupplier(1),  # the worker serves no Nexus operations
            ),
            max_cached_workflows=settings.worker_max_cached_workflows,
        )
    return Capacity(
        max_concurrent_activities=settings.worker_max_activities,
        max_concurrent_workflow_tasks=settings.worker_max_workflow_tasks,
        max_concurrent_local_activities=settings.worker_max_local_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
    )


RECONCILE_EVERY = timedelta(minutes=10)


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> bool:
    """Create the stack's reconciliation schedule unless it exists; True when created."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            ReconcileInput(
                threshold_seconds=settings.reconcile_after_seconds,
                event_retention_days=settings.event_retention_days,
                sweep_after_seconds=settings.sweep_after_seconds,
            ),
            id="runledger-reconcile",
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


async def run_worker(
    settings: Settings, client: Client, stop: asyncio.Event, registry: GraphRegistry | None = None
) -> None:
    deps = build_deps(settings, registry)
    worker = build_worker(client, settings, deps)
    await publish_catalog(deps.database, deps.registry, settings.default_model)
    await ensure_reconcile_schedule(client, settings)
    freeze_startup_heap()
    try:
        async with worker:
            await stop.wait()
    finally:
        await deps.database.dispose()
        # Send what is buffered before the process exits (blocking calls: off the event loop).
        await asyncio.to_thread(deps.tracer.shutdown)
        await asyncio.to_thread(install_tracing(settings).force_flush)
