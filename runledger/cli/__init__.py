"""The ``runledger`` command: one entry point for every process role (SPEC §1).

Contract:
- ``runledger migrate|worker|api|up``: the process roles (:mod:`runledger.cli.roles` states their
  contract).
- ``runledger schedules|grants|webhooks|runs ...``: user commands that talk to the HTTP API only
  (:mod:`runledger.api_client`), never to Postgres or Temporal; tables for people, ``--json`` for
  scripts (:mod:`runledger.cli.tables`). API URL: ``--api-url``, else ``RUNLEDGER_API_URL``, else
  ``http://127.0.0.1:{RUNLEDGER_API_PORT or 8000}``; API key: ``--api-key``, else
  ``RUNLEDGER_API_KEY``, else the demo user's key that ``runledger up`` saves in
  ``<RUNLEDGER_DATA_DIR or .runledger>/demo.json``. An API error prints ``error: <code>: <message>``
  on stderr and exits 1, as does an API that cannot be reached.
- ``runledger webhooks send SOURCE``: a delivery as a sender makes it, to try a trigger: the body signed
  with the trigger's secret (``--secret``, else ``RUNLEDGER_WEBHOOK_SECRET``; none: exit 2) per
  :mod:`contracts.webhooks`, posted without the API key (only the API URL is resolved).
- ``runledger runs follow RUN_ID``: the run's events live (status, streamed text, running cost), resumed
  with ``Last-Event-ID`` when the connection drops; exit 0 when the run ends ``success``, else 1.
- Logs (worker, api, migrate, reconcile): one JSON object per line on stderr (:mod:`runledger.logs`).
- Exit codes: 0 success, 1 failure at run time, 2 bad configuration (message on stderr, no traceback).

Heavy modules are imported inside the commands, so ``--help`` and configuration errors are instant.
LiteLLM is pinned offline for this process and its children before anything can import it.

Layout: :mod:`runledger.cli.app` (the parser and ``main``), :mod:`runledger.cli.settings` (settings and
:class:`~runledger.cli.settings.ConfigError`), :mod:`runledger.cli.roles` (``migrate``, ``worker``,
``api``, ``up``), :mod:`runledger.cli.maintenance` (``reconcile``, ``rotate-secrets``),
:mod:`runledger.cli.remote` (what every command over the API shares), one module per API command group
(``schedules``, ``grants``, ``keys``, ``webhooks``, ``connections``, ``runs`` and ``run_steps``), and
:mod:`runledger.cli.tables` (how answers are shown). ``python -m runledger.cli`` is the same command.
"""

from runledger.cli.app import main

__all__ = ["main"]
