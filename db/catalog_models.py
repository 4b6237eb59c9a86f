"""ORM models of the published graph catalog: graph versions, the catalog's entries, model prices
(the system of record of ``db.models``, split by concern; the same metadata)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_now


class GraphVersion(Base):
    """One published version of a graph, as a worker served it: kept for good, so every run's
    ``graph_version`` still says what it executed. Rows are immutable (the version is a hash of
    everything in them)."""

    __tablename__ = "graph_versions"
    __table_args__ = (CheckConstraint("max_model_calls >= 0", name="max_model_calls_not_negative"),)

    graph_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text, primary_key=True)
    #: ``builtin``, or the path of the project's ``langgraph.json``.
    source: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    tool_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    write_tools: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    approval_tools: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    max_model_calls: Mapped[int] = mapped_column(Integer, nullable=False)
    model: Mapped[str | None] = mapped_column(Text)
    first_published_at: Mapped[datetime] = created_now()


class CatalogEntry(Base):
    """The catalog the API serves: the current version of each graph, as the last worker to start
    published it (a graph that worker no longer serves is gone from here, never from
    ``graph_versions``)."""

    __tablename__ = "graph_catalog"
    __table_args__ = (
        ForeignKeyConstraint(
            ["graph_id", "version"],
            ["graph_versions.graph_id", "graph_versions.version"],
            ondelete="RESTRICT",
        ),
    )

    graph_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text, nullable=False)
    published_at: Mapped[datetime] = created_now()


class ModelPrice(Base):
    """LiteLLM's price of a model the worker serves, published at worker start so the API's run-start
    preflight prices runs exactly as the worker's per-call reservation does (the API never imports
    LiteLLM)."""

    __tablename__ = "model_prices"
    __table_args__ = (
        CheckConstraint("input_usd_per_token >= 0", name="input_not_negative"),
        CheckConstraint("output_usd_per_token >= 0", name="output_not_negative"),
    )

    model: Mapped[str] = mapped_column(Text, primary_key=True)
    input_usd_per_token: Mapped[Decimal] = mapped_column(Numeric(24, 15), nullable=False)
    output_usd_per_token: Mapped[Decimal] = mapped_column(Numeric(24, 15), nullable=False)
    published_at: Mapped[datetime] = created_now()
