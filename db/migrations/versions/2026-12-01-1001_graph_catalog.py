"""graph catalog: every published graph version, the current one per graph, graph_runs.graph_version

Revision ID: 0006_graph_catalog
Revises: 0005_webhook_triggers
Create Date: 2026-12-01 10:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_graph_catalog"
down_revision: str | None = "0005_webhook_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "graph_versions",
        sa.Column("graph_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tool_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("write_tools", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("approval_tools", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("max_model_calls", sa.Integer(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column(
            "first_published_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "max_model_calls >= 0", name=op.f("ck_graph_versions_max_model_calls_not_negative")
        ),
        sa.PrimaryKeyConstraint("graph_id", "version", name=op.f("pk_graph_versions")),
    )
    # A version row is what runs say they executed: never changed, never removed (the initial
    # schema's reject_mutation, as for receipts and ledger rows).
    op.execute(
        "CREATE TRIGGER graph_versions_immutable BEFORE UPDATE OR DELETE ON graph_versions "
        "FOR EACH ROW EXECUTE FUNCTION reject_mutation()"
    )
    op.create_table(
        "graph_catalog",
        sa.Column("graph_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column(
            "published_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["graph_id", "version"],
            ["graph_versions.graph_id", "graph_versions.version"],
            name=op.f("fk_graph_catalog_graph_id_graph_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("graph_id", name=op.f("pk_graph_catalog")),
    )
    op.add_column("graph_runs", sa.Column("graph_version", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_graph_runs_graph_id_graph_versions"),
        "graph_runs",
        "graph_versions",
        ["graph_id", "graph_version"],
        ["graph_id", "version"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_graph_runs_graph_id_graph_versions"), "graph_runs", type_="foreignkey")
    op.drop_column("graph_runs", "graph_version")
    op.drop_table("graph_catalog")
    op.execute("DROP TRIGGER graph_versions_immutable ON graph_versions")
    op.drop_table("graph_versions")
