"""temporal-dev.yml cannot run here (no Docker), so it is checked by parsing: the services exist,
ports stay on loopback, and it registers exactly the search attributes the code uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runledger.contracts.temporal import SEARCH_ATTRIBUTES

COMPOSE = Path(__file__).resolve().parents[1] / "temporal-dev.yml"


def _load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_services_and_loopback_ports() -> None:
    services = _load()["services"]
    assert {"postgresql", "temporal", "temporal-ui", "temporal-admin-tools"} <= set(services)
    for name, service in services.items():
        assert "image" in service, name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_registers_the_search_attributes_the_code_uses() -> None:
    command = " ".join(_load()["services"]["temporal-admin-tools"]["command"])
    registered = {part.split()[0] for part in command.split("--name ")[1:]}
    assert registered == {key.name for key in SEARCH_ATTRIBUTES}
