"""Validation of what a schedule is made of: a five-field cron (parsed by croniter, the library
Temporal's own cron syntax matches for five fields) and an IANA time zone name."""

from __future__ import annotations

import zoneinfo
from functools import cache

from croniter import croniter

from api.errors import Unprocessable


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_cron(expression: str) -> str:
    cron = " ".join(expression.split())
    if len(cron.split(" ")) != 5:
        raise Unprocessable(
            f"cron must have five fields (minute hour day-of-month month day-of-week): {expression!r}",
            code="invalid_cron",
        )
    if not croniter.is_valid(cron):
        raise Unprocessable(f"not a valid cron expression: {expression!r}", code="invalid_cron")
    return cron


def validate_timezone(name: str) -> str:
    # Only names from the IANA database: zoneinfo would also accept file-system paths.
    if name not in _zones():
        raise Unprocessable(f"unknown IANA time zone: {name!r}", code="invalid_timezone")
    return name
