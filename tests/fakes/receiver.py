"""A local webhook receiver for run-completion notifications: records every request it is sent, and
answers 503 to the first ``fail_first`` of them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response

from tests.fakes.loopback import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class ReceiverLog:
    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


def build_app(log: ReceiverLog) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = await request.body()
        with log.lock:
            status = 503 if len(log.requests) < log.fail_first else 204
            log.requests.append(Received(dict(request.headers), body, status))
        return Response(status_code=status)

    return app


class FakeReceiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.log = ReceiverLog(fail_first=fail_first)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/runledger"
        config = uvicorn.Config(build_app(self.log), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> FakeReceiver:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake receiver did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
