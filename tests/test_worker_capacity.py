"""The worker's capacity is its settings: slot counts, or the resource-based supplier for executions."""

from __future__ import annotations

from temporalio.worker import FixedSizeSlotSupplier, ResourceBasedSlotSupplier, WorkerTuner

from runledger.config import Settings
from runledger.worker import EXECUTION_SLOT_RAMP, EXECUTION_SLOTS_ALWAYS, build_deps, capacity


def test_fixed_slots_are_the_three_counts() -> None:
    settings = Settings(
        _env_file=None,
        worker_tuner="fixed",
        worker_max_activities=70,
        worker_max_workflow_tasks=30,
        worker_max_local_activities=40,
        worker_max_cached_workflows=90,
    )
    assert capacity(settings) == {
        "max_concurrent_activities": 70,
        "max_concurrent_workflow_tasks": 30,
        "max_concurrent_local_activities": 40,
        "max_cached_workflows": 90,
    }


def test_resource_based_gives_executions_the_resource_supplier_and_keeps_the_other_counts() -> None:
    settings = Settings(
        _env_file=None,
        worker_max_activities=700,
        worker_max_workflow_tasks=30,
        worker_max_local_activities=40,
        worker_target_cpu=0.7,
        worker_target_memory=0.6,
    )
    assert settings.worker_tuner == "resource_based"  # the default, chosen by make bench-latency
    tuner = capacity(settings)["tuner"]
    assert isinstance(tuner, WorkerTuner)
    executions = tuner._get_activity_task_slot_supplier()  # Temporal exposes no public getter
    assert isinstance(executions, ResourceBasedSlotSupplier)
    assert executions.slot_config.maximum_slots == 700
    assert executions.slot_config.minimum_slots == EXECUTION_SLOTS_ALWAYS
    assert executions.slot_config.ramp_throttle == EXECUTION_SLOT_RAMP
    assert (executions.tuner_config.target_cpu_usage, executions.tuner_config.target_memory_usage) == (
        0.7,
        0.6,
    )
    assert tuner._get_workflow_task_slot_supplier() == FixedSizeSlotSupplier(30)
    assert tuner._get_local_activity_task_slot_supplier() == FixedSizeSlotSupplier(40)


def test_the_statement_pool_of_the_run_hot_path_grows_with_the_execution_slots() -> None:
    def pool(slots: int) -> int:
        return Settings(_env_file=None, worker_max_activities=slots).worker_statement_pool_size

    assert Settings(_env_file=None).worker_statement_pool_size == 8  # the default 1,000 slots
    assert [pool(10), pool(250), pool(500), pool(1_000), pool(50_000)] == [2, 2, 4, 8, 8]


def test_the_worker_opens_its_statement_pool_at_that_size() -> None:
    settings = Settings(
        _env_file=None, database_url="postgresql+psycopg://u@127.0.0.1:1/none", worker_max_activities=500
    )
    database = build_deps(settings).database  # nothing connects until the first statement
    assert database._statement_pool.max_size == 4  # Database exposes no public getter
