"""Run Alembic programmatically (``runledger migrate``, the dev stack, the test session).

Migrations run as an explicit step, never at API or worker start-up.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(database_url: str, secret_keys: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    config.attributes["database_url"] = database_url
    if secret_keys is not None:
        # A migration that encrypts stored secrets uses them (else RUNLEDGER_SECRET_KEYS).
        config.attributes["secret_keys"] = secret_keys
    return config


def upgrade(database_url: str, revision: str = "head", *, secret_keys: str | None = None) -> None:
    command.upgrade(alembic_config(database_url, secret_keys), revision)
