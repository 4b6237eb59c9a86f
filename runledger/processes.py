"""OS and process helpers of ``runledger up`` (:mod:`runledger.stack`) and of the children it starts.

Contract:
- Free functions over the standard library only; they hold no state and import nothing of ours, so a
  child of the stack (``runledger.cli`` ``--parent-pid``) can import this module without the stack.
- Parent binding: :func:`die_with_parent` asks Linux to SIGTERM the caller when its parent dies (no-op
  elsewhere); :func:`bind_to_parent` does that in a child and exits it when the parent is already gone.
- Liveness and signals: :func:`pid_alive` counts a zombie as gone; :func:`signal_group` signals a whole
  process group and ignores a group that is gone or not ours; :func:`wait_gone` polls until a pid is
  gone or the timeout passes.
- Ports: :func:`port_free` tells whether ``host:port`` can be bound now; :func:`any_free_port` picks one
  the OS considers free.
- Logs: :func:`spawn_logged` starts a process in its own session with stdout and stderr appended to a
  log file, after a ``--- <UTC time> runledger up starts <name> ---`` line; :func:`tail` gives the last
  lines of a log, indented, for an error message; :func:`exit_description` words a return code.
- Memory: :func:`freeze_startup_heap`, called by a long-running process once it has started up.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM the calling process when its parent dies (no-op elsewhere)."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def bind_to_parent(parent_pid: int) -> None:
    """For a child of the stack: exit with the stack, even if it is killed without cleaning up."""
    die_with_parent()
    if os.getppid() != parent_pid:
        # The parent died before the death signal was armed.
        raise SystemExit(f"parent process {parent_pid} is gone")


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def spawn_logged(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None,
    stdin: int = subprocess.DEVNULL,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n--- {stamp} runledger up starts {name} ---\n".encode())
        log.flush()
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )


def exit_description(code: int) -> str:
    """``exited with code N``, or ``was killed by SIGNAME`` for a negative return code."""
    return f"exited with code {code}" if code >= 0 else f"was killed by {signal.Signals(-code).name}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def freeze_startup_heap() -> None:
    """Move every object alive now (modules, LiteLLM's price map, compiled graphs, the sandbox's
    imports) out of the cyclic garbage collector's reach: they live as long as the process, and a
    full collection otherwise walks all of them. Measured in the worker under ``make
    bench-latency``: 680,000 objects, twelve full collections of ~250 ms each (3 s of CPU, each
    stopping the event loop) in one run of the benchmark. Objects made later are collected as
    before."""
    gc.collect()
    gc.freeze()
