"""Validation of what a schedule is made of: a five-field cron (parsed by croniter, the library
Temporal's own cron syntax matches for five fields) and an IANA time zone name."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from api.errors import Unprocessable

_FROM = datetime(2001, 1, 1, tzinfo=UTC)
_YEARS = 8
#: Files of the zone database that are no place's zone: the system's own (``localtime``), the
#: placeholder ``Factory`` and the POSIX rule files.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "leap-seconds", "leapseconds"})


@cache
def _zones() -> frozenset[str]:
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def validate_cron(expression: str) -> str:
    cron = " ".join(expression.split())
    if len(cron.split(" ")) != 5:
        raise Unprocessable(
            f"cron must have five fields (minute hour day-of-month month day-of-week): {expression!r}",
            code="invalid_cron",
        )
    if not croniter.is_valid(cron):
        raise Unprocessable(f"not a valid cron expression: {expression!r}", code="invalid_cron")
    try:
        # A valid expression may still name no real day (``0 0 31 2 *``): it must fire at least once
        # in the next leap cycle, from a fixed start so the answer never depends on today.
        croniter(cron, _FROM, max_years_between_matches=_YEARS).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError, ValueError) as exc:
        raise Unprocessable(f"cron expression never fires: {expression!r}", code="invalid_cron") from exc
    return cron


def validate_timezone(name: str) -> str:
    # Only names from the IANA database: zoneinfo would also accept file-system paths.
    if name not in _zones():
        raise Unprocessable(f"unknown IANA time zone: {name!r}", code="invalid_timezone")
    return name
