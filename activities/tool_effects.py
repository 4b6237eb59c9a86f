"""The worker's bindings for graph code beyond the meter: write tools' recorded effects
(EXACTLY_ONCE_TOOL_EFFECTS) and calls that bypassed the meter (NO_UNMETERED_MODEL_CALLS).

- :class:`PostgresEffects` is the tool runner's effect store: ``tool_effects`` in Postgres, one
  committed row per write tool call, read before the tool would run again.
- :func:`unmetered_recorder` records a LiteLLM call that did not come through the meter: a
  ``flagged`` model call on the run (reconciliation lists it) and an ``unmetered_model_call`` run
  event, in one transaction. The error-level log line is the guard's (``runledger.llm.context``).
"""

from __future__ import annotations

from typing import Any

from db import events, model_calls, tool_effects
from db.session import Database
from runledger.llm import UnmeteredCall, UnmeteredSink

UNMETERED_EVENT = "unmetered_model_call"


class PostgresEffects:
    def __init__(self, database: Database, *, run_id: str, attempt: int) -> None:
        self._db = database
        self._run_id = run_id
        self._attempt = attempt

    async def recorded(self, effect_key: str) -> Any | None:
        async with self._db.transaction() as session:
            return await tool_effects.recorded(session, effect_key=effect_key)

    async def record(self, effect_key: str, *, tool_id: str, args: dict[str, Any], value: Any) -> Any:
        async with self._db.transaction() as session:
            return await tool_effects.record(
                session,
                effect_key=effect_key,
                run_id=self._run_id,
                tool_id=tool_id,
                args=args,
                result=value,
                attempt=self._attempt,
            )


def unmetered_recorder(database: Database, *, run_id: str, attempt: int) -> UnmeteredSink:
    async def record(call: UnmeteredCall) -> None:
        call_key = f"unmetered:{call.ordinal}"
        async with database.transaction() as session:
            await model_calls.record_unmetered(
                session,
                run_id=run_id,
                call_key=call_key,
                attempt=attempt,
                model=call.model,
                request_hash=call.request_hash,
            )
            await events.append(
                session,
                run_id=run_id,
                events=[
                    (
                        UNMETERED_EVENT,
                        {"call_key": call_key, "model": call.model, "message": model_calls.UNMETERED},
                    )
                ],
            )

    return record
