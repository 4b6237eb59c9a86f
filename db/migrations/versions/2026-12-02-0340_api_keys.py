"""api keys: a name per key (to tell keys apart in lists); revocation uses the existing revoked_at

Revision ID: 0009_api_keys
Revises: 0012_checkpoints
Create Date: 2026-12-02 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_api_keys"
down_revision: str | None = "0012_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("name", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "name")
