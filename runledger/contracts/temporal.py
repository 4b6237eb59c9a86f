"""Temporal names shared by every process: search attributes and the default task queue."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

#: SPEC §2 names this attribute ``RunId``, but Temporal reserves ``RunId`` as a system attribute (its
#: own execution run id) and refuses to register or set it; ``GraphRunId`` carries our run_id instead.
RUN_ID = SearchAttributeKey.for_keyword("GraphRunId")
GRAPH_ID = SearchAttributeKey.for_keyword("GraphId")
BILLING_ACCOUNT_ID = SearchAttributeKey.for_keyword("BillingAccountId")
RUN_KIND = SearchAttributeKey.for_keyword("RunKind")
SCHEDULE_ID = SearchAttributeKey.for_keyword("ScheduleId")

#: Registered by the dev stack and by ``runledger worker`` on start-up (idempotently).
SEARCH_ATTRIBUTES = (RUN_ID, GRAPH_ID, BILLING_ACCOUNT_ID, RUN_KIND, SCHEDULE_ID)

DEFAULT_TASK_QUEUE = "runledger"
