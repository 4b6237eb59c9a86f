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

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(**json.loads(os.environ[ENV_VAR]))

    def settings(self) -> Settings:
        """The same Settings in every process: the built-in offline model (LiteLLM's mock_response
        path, priced, no network) and the defaults for everything else."""
        return Settings(
            database_url=self.database_url,
            temporal_address=self.temporal_address,
            temporal_task_queue=self.task_queue,
            admin_token=SecretStr(self.admin_token),
            default_model=OFFLINE_MODEL,
            api_port=self.api_port,
        )
