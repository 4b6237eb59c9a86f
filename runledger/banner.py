"""The banner ``runledger up`` prints once its stack is ready (:mod:`runledger.stack`).

Contract:
- :func:`render_banner` takes what the stack found or started and returns the banner text; printing it
  is the caller's job. It starts and stops nothing and reads no files; only the path of the bundled
  ``temporal`` binary is looked up (bare ``temporal`` when it is missing).
- The text begins and ends with an empty line. It shows the dashboard URL and how to sign in, the API
  docs and metrics URLs (and the worker's
  metrics URL unless its port is 0), the Temporal UI, the Temporal address and namespace, Postgres
  (password hidden), the graphs served (built-in, and the project's langgraph.json), the admin token, the demo user's API key, id, balance and where it is saved,
  commands to start a run, get it and find it in Temporal, where the logs are, and ``Press Ctrl-C to
  stop.`` (the last line, which tests/test_stack.py waits for before it checks the URLs, token and key).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runledger.config import Settings
    from runledger.demo import DemoState


def render_banner(
    *,
    settings: Settings,
    demo: DemoState,
    api_url: str,
    temporal_address: str | None,
    database_url: str | None,
    admin_token: str,
    worker_metrics_port: int,
    data_dir: Path,
    logs_dir: Path,
    log_names: Iterable[str],
    pgdata: Path | None,
    embedded_postgres: bool,
) -> str:
    """The banner for a ready stack. ``settings`` is the configuration as given (an unset
    ``TEMPORAL_ADDRESS`` means the embedded dev server); the other arguments are what the stack uses:
    ``temporal_address`` and ``database_url`` the servers' addresses, ``log_names`` the names of the
    ``<logs_dir>/<name>.log`` files, ``pgdata`` the embedded Postgres cluster (None when not embedded)."""
    from runledger.binaries import temporal_cli

    try:
        temporal = temporal_cli()
    except FileNotFoundError:
        temporal = "temporal"
    key = demo.user.api_key
    api = api_url
    namespace = settings.temporal_namespace
    ns_flag = "" if namespace == "default" else f" --namespace {namespace}"
    embedded_pg = " (embedded)" if embedded_postgres else ""
    embedded_tp = " (embedded dev server)" if settings.temporal_address is None else ""
    ui_note = ""
    if settings.temporal_address is not None and settings.temporal_ui_url is None:
        ui_note = "  (assumed; set RUNLEDGER_TEMPORAL_UI_URL)"
    demo_note = "created" if demo.created else "reused"
    metrics_host = settings.worker_metrics_host
    if metrics_host in ("0.0.0.0", "::", ""):
        metrics_host = "127.0.0.1"
    worker_metrics = f"http://{metrics_host}:{worker_metrics_port}/metrics"
    lines = [
        "",
        "runledger dev stack is up",
        "",
        f"  Dashboard     {api}/ui  (sign in with the demo API key below; the admin token shows every account)",
        f"  API docs      {api}/docs",
        f"  Metrics       {api}/metrics" + (f", worker {worker_metrics}" if worker_metrics_port else ""),
        f"  Temporal UI   {settings.temporal_ui_base}{ui_note}",
        f"  Temporal      {temporal_address}{embedded_tp}, namespace {namespace}",
        f"  Postgres      {_display_url(database_url)}{embedded_pg}",
        f"  Graphs        built-in, and the project {settings.graphs_config}"
        if settings.graphs_config is not None
        else "  Graphs        built-in (serve your own with --graphs path/to/langgraph.json)",
        "",
        f"  Admin token   {admin_token}",
        f"  Demo API key  {key}",
        f"                user {demo.user.user_id} ({demo_note}), "
        f"balance {demo.balance_credits} credits, saved in {data_dir / 'demo.json'}",
    ]
    if demo.topup_note:
        lines.append(f"                note: {demo.topup_note}")
    lines += [
        "",
        "Start a run:",
        f'  curl -s -X POST {api}/api/v1/graphs/langgraph:poet/runs -H "Authorization: Bearer {key}" '
        '-H "Content-Type: application/json" -H "Idempotency-Key: demo-1" '
        '-d \'{"input":{"topic":"the sea"}}\'',
        "",
        "Get the run (RUN_ID from the answer above), or watch it live in the dashboard:",
        f'  curl -s {api}/api/v1/runs/RUN_ID -H "Authorization: Bearer {key}"',
        f"  {api}/ui/runs/RUN_ID",
        "",
        "Find runs in Temporal:",
        f"  {temporal} workflow list --address {temporal_address}{ns_flag} "
        "--query \"GraphId='langgraph:poet'\"",
        "",
        f"Logs: {logs_dir}/{{{','.join(sorted(log_names))}}}.log"
        + (f", Postgres: {pgdata / 'log'}" if pgdata is not None else ""),
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _display_url(url: str | None) -> str:
    from sqlalchemy import make_url

    if not url:
        return ""
    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url
