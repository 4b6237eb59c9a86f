"""Execution grants: the one module that mints and checks scopes (GRANT_SCOPES_CONSTRAIN_GRAPHS).

A grant lets runs that no user session starts (scheduled, webhook) execute a graph and bill an
account. Checks run in a fixed order, each with a stable code: not found → revoked → expired →
scope mismatch → spend cap exhausted. Pure functions: the caller passes the grant and the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SCOPE_PREFIX = "graph:execute:"
WILDCARD_SCOPE = f"{SCOPE_PREFIX}*"
_GRAPH_ID = re.compile(r"^[a-z0-9_.-]+:[A-Za-z0-9_.-]+$")


class GrantErrorCode(StrEnum):
    NOT_FOUND = "grant_not_found"
    REVOKED = "grant_revoked"
    EXPIRED = "grant_expired"
    SCOPE_MISMATCH = "grant_scope_mismatch"
    BUDGET_EXHAUSTED = "grant_budget_exhausted"


def is_grant_error(code: str | None) -> bool:
    """Grant refusals end a run ``skipped``: nothing was wrong with the run, it was not allowed."""
    return code is not None and code in GrantErrorCode.__members__.values()


@dataclass(frozen=True)
class GrantView:
    grant_id: str
    billing_account_id: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None
    max_credits: int | None
    spent_credits: int


@dataclass(frozen=True)
class GrantDenied:
    code: GrantErrorCode
    message: str


def scope_for_graph(graph_id: str) -> str:
    """Mint the scope that allows executing exactly one graph."""
    if not _GRAPH_ID.match(graph_id):
        raise ValueError(f"not a graph id: {graph_id!r}")
    return f"{SCOPE_PREFIX}{graph_id}"


def is_valid_scope(scope: str) -> bool:
    if scope == WILDCARD_SCOPE:
        return True
    return scope.startswith(SCOPE_PREFIX) and bool(_GRAPH_ID.match(scope[len(SCOPE_PREFIX) :]))


def allows_graph(scopes: tuple[str, ...] | list[str], graph_id: str) -> bool:
    return WILDCARD_SCOPE in scopes or scope_for_graph(graph_id) in scopes


def check_grant(
    grant: GrantView | None, *, graph_id: str, now: datetime, next_cost_credits: int = 0
) -> GrantDenied | None:
    """``None`` when the grant lets ``graph_id`` run now; otherwise why not. ``next_cost_credits``
    is what the next step is expected to spend (0 only checks that some budget is left)."""
    if grant is None:
        return GrantDenied(GrantErrorCode.NOT_FOUND, "the execution grant does not exist")
    if grant.revoked_at is not None:
        return GrantDenied(GrantErrorCode.REVOKED, f"grant {grant.grant_id} was revoked")
    if grant.expires_at is not None and grant.expires_at <= now:
        return GrantDenied(
            GrantErrorCode.EXPIRED, f"grant {grant.grant_id} expired at {grant.expires_at.isoformat()}"
        )
    if not allows_graph(grant.scopes, graph_id):
        return GrantDenied(GrantErrorCode.SCOPE_MISMATCH, f"grant {grant.grant_id} does not allow {graph_id}")
    if grant.max_credits is not None:
        left = grant.max_credits - grant.spent_credits
        if left <= 0 or left < next_cost_credits:
            return budget_exhausted(grant.grant_id, left=left, max_credits=grant.max_credits)
    return None


def budget_exhausted(grant_id: str, *, left: int, max_credits: int) -> GrantDenied:
    """The refusal of a grant whose spend cap does not cover the next step."""
    return GrantDenied(
        GrantErrorCode.BUDGET_EXHAUSTED, f"grant {grant_id} has {max(left, 0)} of {max_credits} credits left"
    )
