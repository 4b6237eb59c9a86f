"""Where the CLI finds the API and its key (the connection settings of :mod:`runledger.api_client`).

Contract: the API URL is the explicit one, else ``RUNLEDGER_API_URL``, else
``http://127.0.0.1:{RUNLEDGER_API_PORT or 8000}``, and must be ``http://`` or ``https://``. The API key is
the explicit one, else ``RUNLEDGER_API_KEY``, else the ``api_key`` of
``<RUNLEDGER_DATA_DIR or .runledger>/demo.json`` (written by ``runledger up``). The environment is
passed in by the caller (a composition root); unusable settings raise :class:`ClientConfigError`.
Nothing here talks to the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_PORT = "8000"
DEFAULT_DATA_DIR = ".runledger"
#: Same name as ``runledger.demo.DEMO_FILE`` (not imported: that module pulls in the database layer).
DEMO_FILE = "demo.json"


class ClientConfigError(Exception):
    """The connection settings are missing or unusable."""


@dataclass(frozen=True)
class Connection:
    api_url: str
    api_key: str
    #: Where the key came from, for error messages ("--api-key", "RUNLEDGER_API_KEY" or a file path).
    key_source: str


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("RUNLEDGER_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def default_api_url(env: Mapping[str, str]) -> str:
    url = env.get("RUNLEDGER_API_URL")
    if url:
        return url
    return f"http://127.0.0.1:{env.get('RUNLEDGER_API_PORT') or DEFAULT_API_PORT}"


def demo_api_key(path: Path) -> str | None:
    """The ``api_key`` saved by ``runledger up``, or None when the file is absent or unreadable."""
    try:
        key = json.loads(path.read_text()).get("api_key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) and key else None


def resolve_api_url(api_url: str | None, env: Mapping[str, str]) -> str:
    url = (api_url or default_api_url(env)).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientConfigError(f"the API URL must start with http:// or https://, got {url!r}")
    return url


def resolve_connection(api_url: str | None, api_key: str | None, env: Mapping[str, str]) -> Connection:
    url = resolve_api_url(api_url, env)
    if api_key:
        return Connection(url, api_key, "--api-key")
    if env.get("RUNLEDGER_API_KEY"):
        return Connection(url, env["RUNLEDGER_API_KEY"], "RUNLEDGER_API_KEY")
    demo = data_dir(env) / DEMO_FILE
    key = demo_api_key(demo)
    if key is not None:
        return Connection(url, key, str(demo))
    raise ClientConfigError(
        f"no API key: pass --api-key or set RUNLEDGER_API_KEY (`runledger up` saves the demo user's key "
        f"in {demo}, which does not exist or has no api_key)"
    )
