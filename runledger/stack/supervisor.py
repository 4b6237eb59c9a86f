"""The supervisor of ``runledger up``: the :class:`Stack` starts its parts in order, supervises them
and stops them in order (the contract is :mod:`runledger.stack`'s).

Contract of :func:`run_up`: it returns 0 after a stop signal (SIGINT, SIGTERM, SIGHUP), 1 when a part
failed to start or died (the reason and that part's log on stderr); a worker or API that dies is
started again unless it crash-loops (``MAX_RESTARTS`` within ``RESTART_WINDOW_SECONDS``) or refuses its
configuration (exit code 2). The servers themselves are :mod:`runledger.stack.servers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

from runledger.banner import render_banner
from runledger.processes import (
    any_free_port,
    die_with_parent,
    exit_description,
    pid_alive,
    port_free,
    signal_group,
    spawn_logged,
    tail,
)
from runledger.stack.servers import (
    EmbeddedPostgres,
    StackError,
    connect_temporal,
    temporal_dev_argv,
    wait_services,
)

if TYPE_CHECKING:
    from runledger.config import Settings
    from runledger.demo import DemoState

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SERVICES = ("worker", "api")
CHILD_GRACE_SECONDS = 10.0
#: A worker or API that dies while the stack runs is started again, unless it died this many times
#: within RESTART_WINDOW_SECONDS: then it is crash-looping and the stack stops, showing its log.
MAX_RESTARTS = 3
#: The exit code of a ``runledger`` command refusing its configuration (e.g. a bad graph project):
#: starting it again cannot help, so the stack stops at once with the command's one-line reason.
CONFIG_EXIT_CODE = 2
RESTART_WINDOW_SECONDS = 60.0


class Interrupted(Exception):
    """A stop signal arrived while the stack was starting."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.expanduser().resolve()
        self.logs_dir = self.data_dir / "logs"
        self.children: list[Child] = []
        #: The embedded cluster, when DATABASE_URL is unset.
        self.postgres: EmbeddedPostgres | None = None
        self.database_url = settings.database_url
        self.temporal_address = settings.temporal_address
        self.admin_token = ""
        self.secret_keys = ""
        self.notify_signing_key = ""
        #: Chosen in _check_ports: the configured port, or a free one.
        self.worker_metrics_port = settings.worker_metrics_port
        self.demo: DemoState | None = None
        self._lock_file: IO[str] | None = None
        self._stop_signal: int | None = None
        self._signals = 0
        #: The environment line the worker and the API start on (kept to start them again).
        self._service_env: bytes | None = None
        self._restarts: dict[str, list[float]] = {}

    # -- public -----------------------------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            self._start()
            self._print_banner()
            self._supervise()
            return 0
        except Interrupted:
            return 0
        except StackError as exc:
            print(f"\nrunledger up: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def pgdata(self) -> Path | None:
        return self.postgres.pgdata if self.postgres is not None else None

    @property
    def postmaster_pid(self) -> int | None:
        return self.postgres.pid if self.postgres is not None else None

    # -- start-up ---------------------------------------------------------------------------------

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self._lock()
        self._check_ports()
        print(f"runledger up: data dir {self.data_dir}", flush=True)
        # The worker and the API need seconds to import their libraries; they do it while Postgres and
        # Temporal start, and wait for _release to hand them their environment.
        self._spawn_services()
        if self.database_url is None:
            self.postgres = EmbeddedPostgres(self.data_dir / "pg")
            self.database_url = self.postgres.start()
        self._check()
        if self.temporal_address is None:
            self.temporal_address = self._start_temporal()
        from db.migrate import upgrade
        from runledger.demo import notify_signing_key, secret_keys

        configured_keys = self.settings.secret_keys
        self.secret_keys = secret_keys(
            self.data_dir, configured_keys.get_secret_value() if configured_keys else None
        )
        configured_notify = self.settings.notify_signing_key
        self.notify_signing_key = notify_signing_key(
            self.data_dir, configured_notify.get_secret_value() if configured_notify else None
        )
        print("runledger up: migrating the database", flush=True)
        try:
            upgrade(self.database_url, secret_keys=self.secret_keys)
        except Exception as exc:
            raise StackError(f"database migration failed: {exc}") from exc
        self._check()
        from runledger.demo import admin_token

        configured = self.settings.admin_token
        self.admin_token = admin_token(self.data_dir, configured.get_secret_value() if configured else None)
        asyncio.run(self._bootstrap())
        self._write_state()

    def _lock(self) -> None:
        lock = (self.data_dir / "up.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise StackError(f"another `runledger up` is already using {self.data_dir}") from None
        self._lock_file = lock

    def _check_ports(self) -> None:
        wanted = [("RUNLEDGER_API_PORT", self.settings.api_host, self.settings.api_port)]
        if self.temporal_address is None:
            wanted += [
                ("RUNLEDGER_TEMPORAL_PORT", "127.0.0.1", self.settings.temporal_port),
                ("RUNLEDGER_TEMPORAL_UI_PORT", "127.0.0.1", self.settings.temporal_ui_port),
            ]
        if "worker_metrics_port" not in self.settings.model_fields_set:
            self.worker_metrics_port = any_free_port(self.settings.worker_metrics_host)
        elif self.worker_metrics_port:
            wanted.append(
                ("RUNLEDGER_WORKER_METRICS_PORT", self.settings.worker_metrics_host, self.worker_metrics_port)
            )
        busy = [f"{port} ({var})" for var, host, port in wanted if not port_free(host, port)]
        if busy:
            raise StackError(f"port(s) already in use: {', '.join(busy)}; pick others with those variables")

    def _start_temporal(self) -> str:
        argv = temporal_dev_argv(self.settings, self.data_dir)
        print("runledger up: starting the Temporal dev server", flush=True)
        self._spawn("temporal", argv, env=None, preexec=die_with_parent)
        return f"127.0.0.1:{self.settings.temporal_port}"

    def _spawn_services(self) -> None:
        for role in SERVICES:
            self._spawn_service(role)

    def _spawn_service(self, role: str) -> Child:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # -P: not the current directory on the import path, so a graph project's module names are
        # checked against what is installed, not against whatever folder `up` was started from.
        argv = [sys.executable, "-P", "-m", "runledger.cli", role, "--parent-pid", str(os.getpid())]
        return self._spawn(role, argv, env=env, stdin=subprocess.PIPE)

    def _release(self) -> None:
        """Send the worker and the API their environment (one JSON line), which starts them."""
        assert self.database_url is not None
        assert self.temporal_address is not None
        s = self.settings
        env = dict(
            DATABASE_URL=self.database_url,
            TEMPORAL_ADDRESS=self.temporal_address,
            TEMPORAL_NAMESPACE=s.temporal_namespace,
            TEMPORAL_TASK_QUEUE=s.temporal_task_queue,
            RUNLEDGER_ADMIN_TOKEN=self.admin_token,
            RUNLEDGER_SECRET_KEYS=self.secret_keys,
            RUNLEDGER_NOTIFY_SIGNING_KEY=self.notify_signing_key,
            RUNLEDGER_API_HOST=s.api_host,
            RUNLEDGER_API_PORT=str(s.api_port),
            RUNLEDGER_TEMPORAL_UI_PORT=str(s.temporal_ui_port),
            RUNLEDGER_WORKER_METRICS_PORT=str(self.worker_metrics_port),
        )
        if s.graphs_config is not None:
            env["RUNLEDGER_GRAPHS_CONFIG"] = str(s.graphs_config.expanduser().resolve())
        self._service_env = (json.dumps(env) + "\n").encode()
        for child in self.children:
            if child.name in SERVICES:
                self._send_env(child)

    def _send_env(self, child: Child) -> None:
        assert self._service_env is not None
        if child.process.stdin is not None:
            # A child that already died is reported by _check, with its log.
            with contextlib.suppress(BrokenPipeError):
                child.process.stdin.write(self._service_env)
                child.process.stdin.close()

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None,
        stdin: int = subprocess.DEVNULL,
        preexec: Callable[[], None] | None = None,
    ) -> Child:
        log_path = self.logs_dir / f"{name}.log"
        process = spawn_logged(name, argv, log_path, env=env, stdin=stdin, preexec=preexec)
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    async def _bootstrap(self) -> None:
        from db.session import Database
        from runledger.demo import ensure_demo_user

        assert self.database_url is not None
        assert self.temporal_address is not None
        namespace = self.settings.temporal_namespace
        client = await connect_temporal(self.temporal_address, namespace, self._check, self._log_hint)
        database = Database(self.database_url, pool_size=2)
        try:
            self.demo = await ensure_demo_user(database, self.data_dir, self.settings.demo_credits)
        finally:
            await database.dispose()
        self._check()

        print("runledger up: starting the worker and the API", flush=True)
        self._release()
        await wait_services(client, self.settings, self.api_url, self._check, self._log_hint)

    def _write_state(self) -> None:
        pids: dict[str, int | None] = {"up": os.getpid(), "postgres": self.postmaster_pid}
        pids.update({child.name: child.process.pid for child in self.children})
        state = {"pids": pids, "api_url": self.api_url, "temporal_address": self.temporal_address}
        (self.data_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    # -- running ----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        host = self.settings.api_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.api_port}"

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._stop_signal is None:
            self._stop_signal = signum

    def _check(self) -> None:
        """Raise when a stop was requested or a part of the stack died."""
        if self._stop_signal is not None:
            raise Interrupted
        for child in self.children:
            code = child.process.poll()
            if code == CONFIG_EXIT_CODE and child.name in SERVICES:
                raise StackError(f"{child.name} refused to start: {_last_line(child.log_path)}")
            if code is not None:
                how = exit_description(code)
                again = (
                    f" (it died {MAX_RESTARTS} times in {RESTART_WINDOW_SECONDS:.0f} s)"
                    if child.name in self._restarts
                    else ""
                )
                raise StackError(
                    f"{child.name} {how} unexpectedly{again}; see {child.log_path}\n{tail(child.log_path)}"
                )
        if self.postmaster_pid is not None and not pid_alive(self.postmaster_pid):
            assert self.pgdata is not None
            raise StackError(f"Postgres stopped unexpectedly; see {self.pgdata / 'log'}")

    def _log_hint(self, name: str) -> str:
        for child in self.children:
            if child.name == name:
                return f"; see {child.log_path}\n{tail(child.log_path)}"
        return ""

    def _supervise(self) -> None:
        with contextlib.suppress(Interrupted):
            while True:
                self._restart_dead_services()
                self._check()
                time.sleep(0.25)

    def _restart_dead_services(self) -> None:
        """Start a worker or API that died again, as a process manager would: runs survive it
        (Temporal retries their activities on the new worker), and a crash loop stops the stack."""
        for child in list(self.children):
            code = child.process.poll()
            if (
                child.name not in SERVICES
                or code in (None, CONFIG_EXIT_CODE)
                or self._stop_signal is not None
            ):
                continue
            now = time.monotonic()
            recent = [t for t in self._restarts.get(child.name, []) if now - t < RESTART_WINDOW_SECONDS]
            if len(recent) >= MAX_RESTARTS:
                continue  # _check reports it and stops the stack
            self._restarts[child.name] = [*recent, now]
            how = exit_description(code)
            print(f"runledger up: {child.name} {how}; starting it again (log: {child.log_path})", flush=True)
            signal_group(child.process.pid, signal.SIGKILL)  # whatever it left in its group
            self.children.remove(child)
            self._send_env(self._spawn_service(child.name))
            self._write_state()

    def _print_banner(self) -> None:
        assert self.demo is not None
        banner = render_banner(
            settings=self.settings,
            demo=self.demo,
            api_url=self.api_url,
            temporal_address=self.temporal_address,
            database_url=self.database_url,
            admin_token=self.admin_token,
            worker_metrics_port=self.worker_metrics_port,
            data_dir=self.data_dir,
            logs_dir=self.logs_dir,
            log_names=[child.name for child in self.children],
            pgdata=self.pgdata,
            embedded_postgres=self.postmaster_pid is not None,
        )
        print(banner, flush=True)

    # -- shutdown ---------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        started = bool(self.children) or self.postmaster_pid is not None
        if started:
            print("\nrunledger up: stopping", flush=True)
        services = [child for child in self.children if child.name != "temporal"]
        self._terminate(services)
        self._terminate([child for child in self.children if child.name == "temporal"])
        self._stop_postgres()
        if self._lock_file is not None:
            # Only the holder of the lock owns stack.json; a refused second `up` leaves it alone.
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "stack.json").unlink()
            self._lock_file.close()
            self._lock_file = None
        if started:
            print("runledger up: stopped", flush=True)

    def _terminate(self, children: list[Child]) -> None:
        """SIGTERM each child's process group, then SIGKILL what is left after the grace period (or at
        once on a second stop signal)."""
        signals_before = self._signals
        for child in children:
            if child.process.poll() is None:
                signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + CHILD_GRACE_SECONDS
        for child in children:
            while child.process.poll() is None:
                if time.monotonic() > deadline or self._signals > signals_before:
                    print(f"runledger up: {child.name} did not stop in time; killing it", flush=True)
                    signal_group(child.process.pid, signal.SIGKILL)
                    child.process.wait()
                    break
                time.sleep(0.05)
            # Whatever the child left in its group goes with it.
            signal_group(child.process.pid, signal.SIGKILL)

    def _stop_postgres(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()


def _last_line(log_path: Path) -> str:
    """A command's last line of output: its reason for refusing to start (see CONFIG_EXIT_CODE)."""
    lines = [line for line in tail(log_path, lines=5).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"see {log_path}"


def run_up(settings: Settings) -> int:
    return Stack(settings).run()
