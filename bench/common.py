"""What the load generator hands to the processes it starts: one JSON blob in ``BENCH_STACK``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from pydantic import SecretStr

from runledger.config import OFFLINE_MODEL, Settings

ENV_VAR = "BENCH_STACK"


@dataclass(frozen=True)
class StackConfig:
    database_url: str
    temporal_address: str
    task_queue: str
    bare_task_queue: str
    admin_token: str
    api_port: int
    #: The model the built-in graphs call; by default the offline model (no network, priced).
    default_model: str = OFFLINE_MODEL
    #: An OpenAI-compatible endpoint for ``default_model`` (``bench.slow_provider``), as the README's
    #: model settings configure a real provider.
    model_api_base: str | None = None
    #: Activity slots of the bare baseline's worker (the sleep baseline needs one per run in flight).
    bare_max_activities: int | None = None
    #: Extra environment for the service processes' Settings (RUNLEDGER_* knobs under test).
    env: dict[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(**json.loads(os.environ[ENV_VAR]))

    def settings(self) -> Settings:
        """The same Settings in every process: by default the built-in offline model (LiteLLM's
        mock_response path, priced, no network), or a model behind ``model_api_base``; the defaults
        (or ``env``) for everything else."""
        if self.env:
            os.environ.update(self.env)
        return Settings(
            database_url=self.database_url,
            temporal_address=self.temporal_address,
            temporal_task_queue=self.task_queue,
            admin_token=SecretStr(self.admin_token),
            default_model=self.default_model,
            model_api_base=self.model_api_base,
            model_api_key=SecretStr("sk-bench") if self.model_api_base else None,
            api_port=self.api_port,
        )
