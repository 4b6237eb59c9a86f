"""Declarative base with a naming convention, so constraint names are stable across migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, Uuid, func, text
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


TZ = TIMESTAMP(timezone=True)
UUID_PK_DEFAULT = text("gen_random_uuid()")


def uuid_pk() -> Mapped[str]:
    """A UUID primary key Postgres fills in."""
    return mapped_column(Uuid(as_uuid=False), primary_key=True, server_default=UUID_PK_DEFAULT)


def created_now() -> Mapped[datetime]:
    """A ``created_at`` column Postgres fills in with the transaction's time."""
    return mapped_column(TZ, nullable=False, server_default=func.now())


#: Tables langgraph-checkpoint-postgres owns (made by migration 0012, not in the ORM metadata).
CHECKPOINT_TABLES = frozenset(
    {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"}
)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's autogenerate filter: the checkpoint saver's tables are not ours to diff."""
    return not (type_ == "table" and name in CHECKPOINT_TABLES)
