"""Schedule lookups and commands shared by the JSON API (``api.routes.schedules``) and the
dashboard (``api.ui.schedules``).

``owner_user_id`` scopes every lookup: a user's own schedules, or None for the dashboard's admin
(every user's). A schedule outside the scope is a 404, like one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client

from api import temporal_schedules
from api.errors import NotFound
from db import schedules
from db.session import Database
from db.trigger_models import Schedule
from runledger.contracts.errors import ErrorCode


def schedule_not_found(schedule_id: str) -> NotFound:
    return NotFound(f"schedule {schedule_id} not found", code=ErrorCode.SCHEDULE_NOT_FOUND)


async def scoped_schedule(database: Database, owner_user_id: str | None, schedule_id: str) -> Schedule:
    try:
        uuid.UUID(schedule_id)
    except ValueError:
        raise schedule_not_found(schedule_id) from None
    async with database.transaction() as session:
        row = await schedules.get_schedule(session, schedule_id=schedule_id, owner_user_id=owner_user_id)
    if row is None:
        raise schedule_not_found(schedule_id)
    return row


async def apply_changes(
    database: Database, temporal: Client, *, task_queue: str, row: Schedule, changes: dict[str, Any]
) -> Schedule:
    """Write validated ``changes`` and push them to the Temporal schedule in the same transaction:
    if Temporal refuses, the row keeps its old values."""
    async with database.transaction() as session:
        updated = await schedules.update_schedule(session, schedule_id=row.id, values=changes)
        await temporal_schedules.update(
            temporal,
            updated,
            task_queue=task_queue,
            enabled_changed="enabled" in changes and changes["enabled"] != row.enabled,
        )
    return updated
