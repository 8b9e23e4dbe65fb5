"""A stand-in worker for measuring the gateway alone (capacity test).

`POST /transcribe` drains the request, sleeps `--sleep-ms` and answers a small fixed
TranscriptionResponse (asr/schemas.py): two words placed near the end of the audio it was sent
(length estimated from the body size, PCM16 at 16 kHz), so the gateway keeps them and emits a
transcript per window as with a real worker. `GET /ready` and `/health` answer 200. A bare ASGI
app on uvicorn keeps the stub's own CPU cost low.

python -m bench.stub_worker --port 8001 --sleep-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.worker import ReadyResponse, Segment, TranscriptionResponse, Word

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BYTES_PER_SEC = 32_000


def response_for(duration: float) -> bytes:
    duration = max(duration, 1.0)
    words = [
        Word(word=" stub", start=duration - 0.9, end=duration - 0.6, probability=0.9),
        Word(word=" word", start=duration - 0.5, end=duration - 0.3, probability=0.9),
    ]
    body = TranscriptionResponse(
        text="stub word",
        language="pt",
        language_probability=1.0,
        duration_sec=duration,
        speech_sec=duration,
        speech_spans=[(0.0, duration)],
        segments=[
            Segment(
                id=0,
                start=words[0].start,
                end=words[-1].end,
                text="stub word",
                avg_logprob=-0.2,
                no_speech_prob=0.01,
                words=words,
            )
        ],
    )
    return body.model_dump_json().encode()


READY = ReadyResponse(
    status="ready", model="stub", device="none", compute_type="none", languages=["pt", "en"]
).model_dump_json()


def make_app(sleep_sec: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        size = 0
        while True:  # drain the body, as a worker must
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/transcribe":
            await asyncio.sleep(sleep_sec)
            status, body = 200, response_for(size / BYTES_PER_SEC)
        elif method == "GET" and path in ("/ready", "/health"):
            status, body = 200, READY.encode()
        else:
            status, body = 404, json.dumps({"detail": "not found"}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="stub ASR worker for gateway capacity tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--sleep-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    uvicorn.run(
        make_app(args.sleep_ms / 1000),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
