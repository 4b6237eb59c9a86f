"""The two service processes of the benchmark, each started by ``bench.run_bench``:

- ``python -m bench.serve worker``: the production worker (``runledger.worker.build_deps`` and
  ``build_worker``, as ``runledger worker`` builds it) plus, in the same process, a worker for the
  bare baseline on its own task queue, created from the production worker's own config so the two
  use identical worker settings;
- ``python -m bench.serve api``: uvicorn serving ``api.app.create_app(settings)`` on a loopback port.

The configuration comes from ``BENCH_STACK`` (see :mod:`bench.common`). Each prints ``ready`` on
stdout once it serves, and stops cleanly when its stdin closes (so it also stops if the load
generator dies). With ``BENCH_PROFILE`` set, the worker profiles itself from ``ready`` on and writes
the profile there when it stops (see :mod:`bench.profiling`).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import argparse
import asyncio
import sys
import time

from bench import profiling
from bench.common import StackConfig
from runledger import event_loop


async def _stdin_closed() -> None:
    await asyncio.to_thread(sys.stdin.read)


async def serve_worker(cfg: StackConfig, *, profile: bool = False) -> None:
    from temporalio.worker import Worker

    from bench.bare import BareWorkflow, SleepWorkflow, noop, sleep
    from runledger.processes import freeze_startup_heap
    from runledger.temporal import connect
    from runledger.worker import build_deps, build_worker, publish_catalog

    settings = cfg.settings()
    client = await connect(settings)
    deps = build_deps(settings)
    poet_worker = build_worker(client, settings, deps)
    await publish_catalog(deps.database, deps.registry, settings.default_model)
    bare_config = poet_worker.config()
    bare_config["task_queue"] = cfg.bare_task_queue
    bare_config["workflows"] = [BareWorkflow, SleepWorkflow]
    bare_config["activities"] = [noop, sleep]
    if cfg.bare_max_activities:
        # The sleep baseline needs a slot per run in flight, whatever the product's tuner is.
        bare_config.pop("tuner", None)
        bare_config["max_concurrent_activities"] = cfg.bare_max_activities
    bare_worker = Worker(**bare_config)
    freeze_startup_heap()  # as runledger.worker.run_worker does
    try:
        async with poet_worker, bare_worker:
            print("ready", flush=True)
            if profile:  # after start-up, so imports are not counted
                profiling.start()
            await _stdin_closed()
    finally:
        await deps.database.dispose()


async def serve_api(cfg: StackConfig) -> None:
    import uvicorn

    from api.app import create_app
    from runledger.processes import freeze_startup_heap

    app = create_app(cfg.settings())
    freeze_startup_heap()  # as `runledger api` does
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=cfg.api_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            raise RuntimeError("uvicorn stopped before it started serving")
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await _stdin_closed()
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["worker", "api"])
    role = parser.parse_args().role
    cfg = StackConfig.from_env()
    profile_path = os.environ.get(profiling.ENV_VAR) if role == "worker" else None
    try:
        # The loop `runledger worker` runs on, and the one uvicorn picks for `runledger api`.
        event_loop.run(serve_worker(cfg, profile=bool(profile_path)) if role == "worker" else serve_api(cfg))
    finally:
        if profile_path:
            profiling.dump(profile_path)
        # Temporal's core runtime can abort the interpreter at exit (feasibility §9.1).
        time.sleep(0.5)


if __name__ == "__main__":
    main()
