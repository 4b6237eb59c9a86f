"""Real Postgres errors on demand: a trigger that makes an INSERT fail with a connection-class
SQLSTATE (what psycopg raises as ``OperationalError`` when the server or the network fails), for
one billing account's rows only, while a switch row says so or for the first ``times`` inserts.
Nothing is mocked: the statement reaches Postgres and Postgres refuses it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from db.session import Database

#: How each table's row names its account.
_ACCOUNT_OF = {
    "charge_receipts": "NEW.billing_account_id",
    "model_calls": "(SELECT billing_account_id FROM graph_runs WHERE run_id = NEW.run_id)",
    "run_events": "(SELECT billing_account_id FROM graph_runs WHERE run_id = NEW.run_id)",
}


class Fault:
    def __init__(self, database: Database, name: str, times: int | None) -> None:
        self._db = database
        self.name = name
        self._times = times

    async def stop(self) -> None:
        async with self._db.transaction() as session:
            await session.execute(text(f"UPDATE {self.name}_switch SET armed = false"))

    async def fired(self) -> int:
        """How many inserts were refused so far."""
        async with self._db.transaction() as session:
            query = f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {self.name}_seq"
            counted = int((await session.execute(text(query))).scalar_one())
        return counted if self._times is None else min(counted, self._times)


@asynccontextmanager
async def failing_inserts(
    database: Database, table: str, account: str, *, times: int | None = None, where: str = "true"
) -> AsyncIterator[Fault]:
    """Inserts into ``table`` for ``account`` (and ``where``, over ``NEW``) fail until
    :meth:`Fault.stop`, or for the first ``times`` of them."""
    name = f"fault_{uuid.uuid4().hex[:10]}"
    limit = "NULL" if times is None else str(times)
    statements = [
        f"CREATE TABLE {name}_switch (armed boolean NOT NULL)",
        f"INSERT INTO {name}_switch VALUES (true)",
        # A sequence, not the switch row, counts the failures: nextval survives the rollback the
        # raised error causes.
        f"CREATE SEQUENCE {name}_seq",
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE n bigint;
        BEGIN
          IF {_ACCOUNT_OF[table]} = '{account}' AND ({where})
             AND (SELECT armed FROM {name}_switch) THEN
            n := nextval('{name}_seq');
            IF {limit} IS NULL OR n <= {limit} THEN
              RAISE EXCEPTION 'injected fault %', n USING ERRCODE = '08006';
            END IF;
          END IF;
          RETURN NEW;
        END $$
        """,
        f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]
    async with database.transaction() as session:
        for statement in statements:
            await session.execute(text(statement))
    fault = Fault(database, name, times)
    try:
        yield fault
    finally:
        async with database.transaction() as session:
            await session.execute(text(f"DROP TRIGGER {name} ON {table}"))
            await session.execute(text(f"DROP FUNCTION {name}()"))
            await session.execute(text(f"DROP SEQUENCE {name}_seq"))
            await session.execute(text(f"DROP TABLE {name}_switch"))
