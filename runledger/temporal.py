"""Connecting to Temporal and registering the search attributes of SPEC §2 (idempotently)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from runledger.config import Settings
from runledger.contracts.temporal import SEARCH_ATTRIBUTES
from runledger.telemetry import temporal_plugins


async def connect(settings: Settings) -> Client:
    """The process's client; its OpenTelemetry plugin also traces the workers built on it."""
    return await Client.connect(
        settings.require_temporal_address(),
        namespace=settings.temporal_namespace,
        plugins=temporal_plugins(settings),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the Keyword attributes that are missing; returns the names added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
