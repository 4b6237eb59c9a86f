"""LangGraph checkpoints on the product's Postgres (langgraph-checkpoint-postgres).

The saver's tables are made by Alembic (revision ``0012_checkpoints``), never at request time: a
worker checks the schema at start (:func:`CheckpointStore.open`) and refuses to run when the locked
library expects saver migrations the database does not have.

The saver needs psycopg connections in autocommit with ``dict_row`` and no prepared statements, so it
gets its own small pool (the ORM engine's connections are SQLAlchemy's). Its SQL is the library's;
runledger's own reads of checkpoints (a fork's copy) go through the saver's API, not raw SQL.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from db.session import libpq_url

#: Tables the saver owns (left out of the ORM metadata and its autogenerate diff).
CHECKPOINT_TABLES = frozenset(
    {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"}
)


class CheckpointSchemaError(RuntimeError):
    """The database lacks saver migrations the installed library needs: run ``runledger migrate``."""


class CheckpointStore:
    """One process's checkpoint saver and its connection pool (opened once, closed at shutdown)."""

    def __init__(self, database_url: str, *, max_size: int = 10) -> None:
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            name="runledger-checkpoints",
        )
        self.saver = AsyncPostgresSaver(self._pool)

    async def open(self) -> None:
        await self._pool.open(wait=True)
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT max(v) AS v FROM checkpoint_migrations")
            row = await cur.fetchone()
        have = -1 if row is None or row["v"] is None else int(row["v"])
        need = len(AsyncPostgresSaver.MIGRATIONS) - 1
        if have < need:
            raise CheckpointSchemaError(
                f"checkpoint tables are at saver migration {have}, the installed "
                f"langgraph-checkpoint-postgres needs {need}: run `runledger migrate`"
            )

    async def close(self) -> None:
        await self._pool.close()


async def copy_checkpoint(
    saver: BaseCheckpointSaver[Any],
    *,
    source_thread: str,
    checkpoint_id: str,
    target_thread: str,
    run_id: str,
) -> CheckpointTuple | None:
    """Put the state of one checkpoint of ``source_thread`` at the head of ``target_thread`` (a
    fork: the new thread continues from that state; the source is never changed). None when the
    source thread has no such checkpoint. Only the checkpoint is copied, not pending writes: a
    checkpoint saved after a finished super-step has none."""
    found = await saver.aget_tuple(
        {"configurable": {"thread_id": source_thread, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    )
    if found is None:
        return None
    checkpoint = found.checkpoint
    versions = dict(checkpoint["channel_versions"])
    await saver.aput(
        {"configurable": {"thread_id": target_thread, "checkpoint_ns": ""}},
        checkpoint,
        # ``run_id`` marks the copy as the new run's own (see activities.graph_steps).
        {**found.metadata, "source": "fork", "run_id": run_id},
        versions,
    )
    return found
