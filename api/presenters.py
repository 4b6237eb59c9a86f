"""Mapping rows to response shapes, links included."""

from __future__ import annotations

from urllib.parse import quote

from api.schemas import LedgerEntryOut, ReceiptOut, RunLinks, RunOut
from db.models import ChargeReceipt, CreditLedgerEntry, GraphRun
from runledger.config import Settings
from runledger.telemetry import langfuse_trace_url


def run_links(settings: Settings, run: GraphRun) -> RunLinks:
    base = f"/api/v1/runs/{run.run_id}"
    ui = (
        f"{settings.temporal_ui_base}/namespaces/{quote(settings.temporal_namespace)}"
        f"/workflows/{quote(run.workflow_id, safe='')}"
    )
    return RunLinks(
        self=base,
        events=f"{base}/events",
        charges=f"{base}/charges",
        temporal_ui=ui,
        langfuse=langfuse_trace_url(settings, run.trace_id),
    )


def run_out(settings: Settings, run: GraphRun) -> RunOut:
    return RunOut(
        run_id=run.run_id,
        workflow_id=run.workflow_id,
        graph_id=run.graph_id,
        billing_account_id=run.billing_account_id,
        status=run.status,
        pause_reason=run.pause_reason,
        pending_input=run.pending_input,
        run_kind=run.run_kind,
        trigger_source=run.trigger_source,
        trigger_ref=run.trigger_ref,
        requested_by=run.requested_by,
        schedule_id=run.schedule_id,
        scheduled_for=run.scheduled_for,
        state_key=run.state_key,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        input=run.input,
        output=run.output,
        error_code=run.error_code,
        error_message=run.error_message,
        cost_credits=run.cost_credits,
        model_calls=run.model_calls,
        trace_id=run.trace_id,
        replay_of=run.replay_of,
        graph_version=run.graph_version,
        links=run_links(settings, run),
    )


def receipt_out(receipt: ChargeReceipt) -> ReceiptOut:
    return ReceiptOut(
        id=receipt.id,
        run_id=receipt.run_id,
        attempt=receipt.attempt,
        usage_unit_id=receipt.usage_unit_id,
        provider_response_id=receipt.provider_response_id,
        source_system=receipt.source_system,
        source_reference=receipt.source_reference,
        graph_id=receipt.graph_id,
        model=receipt.model,
        provider=receipt.provider,
        tokens_in=receipt.tokens_in,
        tokens_out=receipt.tokens_out,
        cost_usd=str(receipt.cost_usd),
        markup=str(receipt.markup),
        charged_credits=receipt.charged_credits,
        created_at=receipt.created_at,
    )


def ledger_out(entry: CreditLedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=entry.id,
        billing_account_id=entry.billing_account_id,
        amount=entry.amount,
        balance_after=entry.balance_after,
        reason=entry.reason,
        reference=entry.reference,
        run_id=entry.run_id,
        receipt_id=entry.receipt_id,
        created_at=entry.created_at,
    )
