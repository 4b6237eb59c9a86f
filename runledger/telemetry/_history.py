"""Temporal history is an export too: every failure the worker records (an activity's or a workflow's
``ApplicationError`` message, its stack trace, each cause) passes the run scrubber first, so a
provider's or a graph's exception text quoting a key never reaches history (NO_SECRETS_IN_HISTORY)."""

from __future__ import annotations

import dataclasses

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.converter import DefaultFailureConverter, PayloadConverter

from runledger.contracts.scrub import Scrubber


class ScrubbingFailureConverter(DefaultFailureConverter):
    """The default conversion, then the message and stack trace of the failure and of each cause
    scrubbed. Subclassed per scrubber by :func:`scrubbing_client` (Temporal builds it from its class)."""

    scrubber: Scrubber = Scrubber()

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        current: Failure | None = failure
        while current is not None:
            current.message = self.scrubber.text(current.message)
            current.stack_trace = self.scrubber.text(current.stack_trace)
            current = current.cause if current.HasField("cause") else None


def scrubbing_client(client: Client, scrubber: Scrubber) -> Client:
    """``client`` (same connection, namespace, plugins, interceptors) whose data converter scrubs
    every failure; a worker built on it records only scrubbed failures."""
    config = client.config()
    converter = type("RunScrubbingFailureConverter", (ScrubbingFailureConverter,), {"scrubber": scrubber})
    config["data_converter"] = dataclasses.replace(
        config["data_converter"], failure_converter_class=converter
    )
    return Client(**config)
