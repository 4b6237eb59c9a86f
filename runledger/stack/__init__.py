"""``runledger up``: the embedded dev stack, supervised by one foreground process.

Contract:
- Everything lives under the data dir (``RUNLEDGER_DATA_DIR``, default ``.runledger``): the embedded
  Postgres cluster (``pg/``), the Temporal dev server's SQLite file (``temporal.db``), the admin token, the
  secret keys (``secret_keys``: RUNLEDGER_SECRET_KEYS unless set, generated once), the demo user (``demo.json``), the logs (``logs/{temporal,worker,api}.log``) and, while the stack runs,
  ``stack.json`` with the process ids. A second ``up`` on the same data dir resumes the same data; two
  at once are refused (``up.lock``).
- Postgres and Temporal are started only when ``DATABASE_URL`` / ``TEMPORAL_ADDRESS`` are unset; when set,
  those servers are used and left alone.
- Start-up order: Postgres, Temporal, secret keys, migrations, search attributes, admin token, demo user, then worker
  and API. Those two processes are spawned first so that their slow imports overlap the rest, but they
  touch nothing until they are sent their environment (``runledger.cli`` ``--parent-pid``), after the
  migrations. The stack is announced only once the API answers ``/readyz`` and the worker polls its
  task queue.
- The worker's metrics endpoint takes ``RUNLEDGER_WORKER_METRICS_PORT`` when it is set (checked free like
  the API port; 0 turns it off), else a free port, so two stacks (or a stack beside a worker) never
  clash; the banner shows it.
- SIGINT, SIGTERM or SIGHUP stop API and worker (SIGTERM, then SIGKILL after a grace period), then
  Temporal, then Postgres, and ``run`` returns 0. Children run in their own sessions, so a terminal's
  Ctrl-C reaches only this process, which stops them in order; on Linux they also get SIGTERM if this
  process dies without cleaning up. If any part dies, everything is stopped and ``run`` returns 1 with
  a pointer to that part's log. A worker or API that refuses its configuration (exit code 2, e.g. a
  bad graph project given with ``--graphs``) is never started again: the stack stops with its line.

The package: :mod:`runledger.stack.supervisor` is the :class:`~runledger.stack.supervisor.Stack`
(start-up, supervision, shutdown); :mod:`runledger.stack.servers` the servers it embeds or waits for
(Postgres, Temporal, the readiness of worker and API). It uses the OS and process helpers of
:mod:`runledger.processes` and the banner text of :mod:`runledger.banner`; neither imports it.
"""

from runledger.stack.supervisor import run_up

__all__ = ["run_up"]
