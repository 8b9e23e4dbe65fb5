"""Talk to the gateway's WebSocket in tests; every server frame is validated against the
protocol's pydantic models."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from contracts.events import server_event
from tests.backend import scaled


def check_event(raw: str | bytes) -> dict[str, Any]:
    assert isinstance(raw, str), "the server sends text frames only"
    event = json.loads(raw)
    server_event.validate_python(event)  # raises on anything off-protocol
    return event


async def run_session(
    url: str,
    audio: bytes,
    start: dict[str, Any] | None = None,
    frame_bytes: int = 9600,
    realtime_ms: float | None = None,
) -> list[dict[str, Any]]:
    """Start, send audio in frames, stop; return every event up to `end` (validated)."""
    events: list[dict[str, Any]] = []
    # no client pings: under backpressure the gateway does not read, a pong would wait too
    async with websockets.connect(url, max_size=2**24, ping_interval=None) as ws:
        await ws.send(json.dumps({"event": "start", **(start or {})}))

        async def reader() -> None:
            async for raw in ws:
                event = check_event(raw)
                events.append(event)
                if event["event"] == "end":
                    return

        reading = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()
        began = loop.time()
        for index, offset in enumerate(range(0, len(audio), frame_bytes)):
            if realtime_ms:
                await asyncio.sleep(max(0, began + (index + 1) * realtime_ms / 1000 - loop.time()))
            await ws.send(audio[offset : offset + frame_bytes])
        await ws.send(json.dumps({"event": "stop"}))
        await asyncio.wait_for(reading, timeout=scaled(300))
    return events


def transcripts(events: list[dict[str, Any]], channel: int | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["event"] == "transcript" and (channel is None or e.get("channel", 0) == channel)
    ]


def text_of(events: list[dict[str, Any]], channel: int | None = None) -> str:
    return " ".join(e["text"] for e in transcripts(events, channel))
