"""The trigger audit log's budget for unauthenticated refusals.

Every delivery that was signed by a trigger's secret (accepted, duplicate, filtered, or refused for
its payload) is always recorded. A delivery refused before any trigger verified it (bad signature,
stale timestamp, body too large, unknown source) is recorded too, but at most
``RUNLEDGER_WEBHOOK_REFUSED_LOG_PER_MINUTE`` rows per source per minute *per API process*; all
unknown sources share one such budget (so random source names cannot grow this table's rate or
this map). Past the budget a refusal is answered the same way and only logged once per minute, so
a stranger's flood costs one bounded HMAC per request and no database write.
"""

from __future__ import annotations

import time

import structlog

log = structlog.get_logger(__name__)

#: The one budget shared by every source that has no live trigger.
UNKNOWN_SOURCES = "*"


class RefusalBudget:
    """Per-process counts of this minute's recorded refusals, by source."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._minute = -1
        self._counts: dict[str, int] = {}

    def take(self, bucket: str) -> bool:
        """Whether one more refusal on ``bucket`` may be recorded this minute."""
        minute = int(time.monotonic() // 60)
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        used = self._counts.get(bucket, 0)
        self._counts[bucket] = used + 1
        if used < self.per_minute:
            return True
        if used == self.per_minute:
            log.warning("webhook_refusals_not_recorded", source=bucket, per_minute=self.per_minute)
        return False
