"""A fake OpenAI-compatible provider with a real model's latency, for ``bench.latency_bench``.

``python -m bench.slow_provider --delay 1.0 --chunks 100`` serves ``POST /v1/chat/completions``:
after ``--delay`` seconds it streams the answer as ``--chunks`` SSE chunks (one word each, roughly a
token each, as a real model streams), then a usage chunk whose ``completion_tokens`` equals the chunk
count; a non-streamed request gets the same text as one JSON body. ``GET /stats`` answers
``{"completions", "in_flight", "peak_in_flight"}``: concurrency is counted here, at the provider,
where it is a fact rather than an estimate. ``POST /stats/reset`` zeroes the peak.

It is a bare asyncio HTTP/1.1 server (keep-alive, ``Content-Length`` bodies, chunked responses)
rather than a web framework, so that on a 2-core box the fake costs as little CPU as possible and
the figures are the product's. It prints ``ready <port>`` once it listens and stops when stdin
closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass


@dataclass
class Stats:
    completions: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


@dataclass(frozen=True)
class Answer:
    delay: float
    chunks: int
    chunk_interval: float


def _prompt_tokens(body: dict[str, object]) -> int:
    messages = body.get("messages")
    words = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                words += len(str(message.get("content") or "").split())
    return max(1, words)


def _chunk(cid: str, model: str, created: int, delta: dict[str, object], finish: str | None) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return _sse(body)


def _sse(body: object) -> bytes:
    data = b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Provider:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.stats = Stats()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(length) if length else b""
                if path.startswith("/stats"):
                    if method == "POST":
                        self.stats.peak_in_flight = self.stats.in_flight
                    await self._json(writer, 200, self.stats.__dict__)
                elif method == "POST" and path.endswith("/chat/completions"):
                    await self._complete(writer, json.loads(raw or b"{}"))
                else:
                    await self._json(writer, 404, {"error": {"message": f"no route {path}"}})
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )

    async def _complete(self, writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
        stats = self.stats
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            await asyncio.sleep(self.answer.delay)
            cid = f"chatcmpl-{uuid.uuid4().hex}"
            model = str(body.get("model") or "fake")
            created = int(time.time())
            words = [f"w{i} " for i in range(self.answer.chunks)]
            usage = {
                "prompt_tokens": _prompt_tokens(body),
                "completion_tokens": self.answer.chunks,
                "total_tokens": _prompt_tokens(body) + self.answer.chunks,
            }
            if not body.get("stream"):
                await self._json(
                    writer,
                    200,
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "".join(words)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            writer.write(_chunk(cid, model, created, {"role": "assistant", "content": ""}, None))
            for word in words:
                writer.write(_chunk(cid, model, created, {"content": word}, None))
                if self.answer.chunk_interval:
                    await writer.drain()
                    await asyncio.sleep(self.answer.chunk_interval)
            writer.write(_chunk(cid, model, created, {}, "stop"))
            tail = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            writer.write(_sse(tail) + _sse_done())
            stats.completions += 1
        finally:
            stats.in_flight -= 1


def _sse_done() -> bytes:
    data = b"data: [DONE]\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"


async def serve(answer: Answer, port: int) -> None:
    provider = Provider(answer)
    server = await asyncio.start_server(provider.handle, "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await asyncio.to_thread(sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before the first chunk")
    parser.add_argument("--chunks", type=int, default=100, help="streamed chunks per answer")
    parser.add_argument("--chunk-interval", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(Answer(args.delay, args.chunks, args.chunk_interval), args.port))


if __name__ == "__main__":
    main()
