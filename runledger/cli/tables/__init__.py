"""How the user-facing CLI commands show API answers: rich tables for people, raw JSON for scripts.

Contract:
- Renderers take the API's JSON shapes (SPEC §4) as plain dicts and return rich renderables; they
  never call the API. Every value that comes from the API is rendered as plain text, never as markup.
- Times are shown in UTC (and, for a schedule's next runs, also in the schedule's time zone); money
  in integer credits (1 credit = 1e-7 USD) with the USD equivalent where it helps.
- ``emit_json`` writes exactly the JSON it is given, indented, to stdout.
- When stdout is not a terminal, tables are laid out 200 columns wide (or ``$COLUMNS``), so ids are
  never cut in pipes and logs.

One module per resource (:mod:`~runledger.cli.tables.schedules`, ``grants``, ``keys``, ``webhooks``,
``connections``, ``runs``, and ``follow`` for a run's live events); what they share is in
:mod:`runledger.cli.tables.base`.
"""
