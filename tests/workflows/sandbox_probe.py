"""A workflow that does what workflow code must not (read the clock, draw random numbers, do I/O),
for the sandbox test. It imports nothing but the standard library and ``temporalio.workflow``, so
the sandbox can load it the way it loads the product's workflows."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

from temporalio import workflow


@workflow.defn(name="SandboxProbe")
class SandboxProbe:
    @workflow.run
    async def run(self, what: str) -> str:
        if what == "clock":
            return datetime.datetime.now(datetime.UTC).isoformat()
        if what == "random":
            return str(random.random())
        if what == "io":
            return Path("/etc/hostname").read_text()  # noqa: ASYNC240 - the point of the probe
        return workflow.now().isoformat()  # the deterministic clock is fine
