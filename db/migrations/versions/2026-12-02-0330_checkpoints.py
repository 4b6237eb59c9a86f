"""LangGraph checkpoint tables; graph_runs.pending_input (a run paused by ``interrupt()``) and
graph_runs.replay_from_checkpoint (a replay that starts at a checkpoint of its original).

The checkpoint tables (langgraph-checkpoint-postgres) are made here rather than by the saver's
own ``setup()`` so they exist before any worker starts and are never created at request time.

The saver records which of its own migrations ran in ``checkpoint_migrations``; this revision runs
exactly the first ``SAVER_MIGRATIONS`` of them (the ones of the pinned library version) and records
them, so the saver sees an up-to-date schema. ``CREATE INDEX CONCURRENTLY`` cannot run inside
Alembic's transaction; on tables this migration has just created a plain ``CREATE INDEX`` is the same.
A library upgrade that adds saver migrations needs a new revision (the worker refuses to start until
then: ``db.checkpoints.check_schema``).

Revision ID: 0012_checkpoints
Revises: 0006_graph_catalog
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from langgraph.checkpoint.postgres.base import BasePostgresSaver
from sqlalchemy.dialects import postgresql

revision: str = "0012_checkpoints"
down_revision: str | None = "0006_graph_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The saver migrations of langgraph-checkpoint-postgres 3.2 (the locked version).
SAVER_MIGRATIONS = 10


def upgrade() -> None:
    migrations = BasePostgresSaver.MIGRATIONS[:SAVER_MIGRATIONS]
    if len(migrations) != SAVER_MIGRATIONS:
        raise RuntimeError("langgraph-checkpoint-postgres is older than this migration expects")
    for version, statement in enumerate(migrations):
        op.execute(statement.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX"))
        if version > 0:  # statement 0 creates checkpoint_migrations itself
            op.execute(sa.text("INSERT INTO checkpoint_migrations (v) VALUES (:v)").bindparams(v=version))
    op.execute(sa.text("INSERT INTO checkpoint_migrations (v) VALUES (0)"))
    op.add_column(
        "graph_runs", sa.Column("pending_input", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("graph_runs", sa.Column("replay_from_checkpoint", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("graph_runs", "replay_from_checkpoint")
    op.drop_column("graph_runs", "pending_input")
    for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints", "checkpoint_migrations"):
        op.drop_table(table)
