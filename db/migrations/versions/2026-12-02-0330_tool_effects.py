"""tool effects: the recorded result of every write tool call, by tool effect key

Revision ID: 0007_tool_effects
Revises: 0008b_connections
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_tool_effects"
down_revision: str | None = "0008b_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_effects",
        sa.Column("effect_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("tool_id", sa.Text(), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["graph_runs.run_id"],
            name=op.f("fk_tool_effects_run_id_graph_runs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("effect_key", name=op.f("pk_tool_effects")),
    )
    op.create_index("ix_tool_effects_run", "tool_effects", ["run_id"], unique=False)
    # A recorded effect is what every later attempt answers with: never changed, never removed.
    op.execute(
        "CREATE TRIGGER tool_effects_immutable BEFORE UPDATE OR DELETE ON tool_effects "
        "FOR EACH ROW EXECUTE FUNCTION reject_mutation()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tool_effects_immutable ON tool_effects")
    op.drop_index("ix_tool_effects_run", table_name="tool_effects")
    op.drop_table("tool_effects")
