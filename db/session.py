"""Engine, session factory, the one transaction helper, and the single-statement pool.

The boundary (an API route, an activity) opens ``async with database.transaction() as session``; it
commits when the block ends and rolls back when it raises. Repository functions never commit.

``database.autocommit()`` is a session whose every statement is its own transaction: for reads and
single-statement writes that need no transaction around them (no ``BEGIN``/``COMMIT`` round trips,
which psycopg sends as commands of their own).

``database.single_statement(write)`` is for a write that is one SQL statement (the ledger's charge).
It runs on a small pool of psycopg connections in autocommit, so the statement is its own
transaction and commits on the server without a second client round trip: the row locks it takes
are held for that statement only. The pool is small on purpose (2 connections by default): statements
on one hot account row queue somewhere, and a queue in the client is cheaper than waiting backends in
Postgres, which all cost CPU on every commit. ``bench/ledger_bench.py`` measures it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import PoolProxiedConnection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

T = TypeVar("T")

#: Shown in ``pg_stat_activity`` for the single-statement pool's connections.
STATEMENT_POOL_NAME = "runledger-statements"


def async_url(url: str) -> str:
    """Accept the usual ``postgresql://`` form and pin the psycopg 3 async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URL, for connections psycopg opens itself."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a session, inside the session's transaction: for the one
    repository statement written for the driver directly (``db.ledger``'s charge)."""
    raw: PoolProxiedConnection = await (await session.connection()).get_raw_connection()
    connection = raw.driver_connection
    if not isinstance(connection, psycopg.AsyncConnection):
        raise TypeError(f"expected a psycopg async connection, got {type(connection).__name__}")
    return connection


class Database:
    """One engine and session factory per process, and one single-statement pool."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout: float = 30.0,
        statement_pool_size: int = 2,
        pre_ping: bool = True,
    ) -> None:
        """``max_overflow`` connections beyond ``pool_size`` are opened under a burst (default: as
        many again); the worker sets 0 so that what it opens is bounded (see
        ``Settings.worker_db_pool_size``) and waits up to ``pool_timeout`` seconds for a free one
        (a queue in the worker beats failing a graph execution that Temporal would then retry).
        ``pre_ping`` tests a pooled connection before each transaction (a round trip): right for
        the API, where a stale connection after a Postgres restart would fail a request. The worker
        turns it off: every statement it runs is retried by Temporal when it fails, and SQLAlchemy
        drops the whole pool at the first disconnect it sees, so a restart costs one retry, not a
        ping per transaction of every run."""
        self.url = async_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_pre_ping=pre_ping,
            pool_timeout=pool_timeout,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; a connection checked out for it is switched to psycopg's autocommit (a
        # client-side flag, no round trip) and back when it returns.
        self._autocommit_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        # Opened on first use: a process that never charges (the API) holds no connection for it.
        self._statement_pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            libpq_url(self.url),
            min_size=statement_pool_size,
            max_size=statement_pool_size,
            kwargs={"autocommit": True, "application_name": STATEMENT_POOL_NAME},
            name=STATEMENT_POOL_NAME,
            open=False,
        )
        self._statement_pool_open = False
        self._statement_pool_lock = asyncio.Lock()
        #: Closed by :meth:`dispose`: pools that other layers open on this database (checkpoints).
        self.closers: list[Callable[[], Awaitable[None]]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session without a transaction: each statement commits on its own. Only for what needs
        no atomicity across statements (a lookup, a one-statement update)."""
        async with self._autocommit_sessionmaker() as session:
            yield session

    async def single_statement(self, write: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``write`` — exactly one statement, its own transaction — on the statement pool.

        ``write`` must be idempotent: when it fails with an operational error (typically a pooled
        connection that died while idle, after a Postgres restart) the pool's connections are
        checked and it runs once more. That replaces a ping before every checkout, which would cost
        a round trip on the hottest path.
        """
        pool = await self._open_statement_pool()
        try:
            async with pool.connection() as conn:
                return await write(conn)
        except psycopg.OperationalError:
            # The pool discards the broken connection when it comes back; its idle siblings likely
            # died with it (a restarted server), so test them all before taking one.
            await pool.check()
            async with pool.connection() as conn:
                return await write(conn)

    async def _open_statement_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if not self._statement_pool_open:
            async with self._statement_pool_lock:
                if not self._statement_pool_open:
                    await self._statement_pool.open(wait=True)
                    self._statement_pool_open = True
        return self._statement_pool

    async def dispose(self) -> None:
        for close in self.closers:
            await close()
        self.closers.clear()
        if self._statement_pool_open:
            await self._statement_pool.close()
            self._statement_pool_open = False
        await self.engine.dispose()
